package clipboard

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Service is the clipboard as a component: Run opens an Owner on the
// display and runs it; Paste hands it what viewers paste.
type Service struct {
	Display string
	Logger  *slog.Logger

	once   sync.Once
	ready  chan struct{}
	owner  atomic.Pointer[Owner]
	closed atomic.Bool
}

func (s *Service) init() { s.once.Do(func() { s.ready = make(chan struct{}) }) }

// Ready is closed once the Owner holds the display's selections.
func (s *Service) Ready() <-chan struct{} {
	s.init()
	return s.ready
}

// Run opens the Owner and answers selection requests until ctx ends,
// Close is called (it then returns nil) or the X connection fails.
func (s *Service) Run(ctx context.Context) error {
	s.init()
	o, err := Open(s.Display, s.Logger)
	if err != nil {
		return err
	}
	s.owner.Store(o)
	if s.closed.Load() { // Close came while it was opening
		o.Close()
		return nil
	}
	close(s.ready)
	return o.Run(ctx)
}

// Paste is the human door's paste hook: RFB cut text, Latin-1. Before Run
// opened the Owner, or after Close, pastes go nowhere. The text is never
// logged: a paste is often a password.
func (s *Service) Paste(text []byte) {
	if o := s.owner.Load(); o != nil && !s.closed.Load() {
		o.Paste(Latin1ToUTF8(text))
	}
}

// Close closes the Owner's X connection at once; Run returns nil.
func (s *Service) Close(context.Context) {
	s.closed.Store(true)
	if o := s.owner.Load(); o != nil {
		o.Close()
	}
}
