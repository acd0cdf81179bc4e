// Package door serves one of scry's doors (the agent's CDP bridge, the
// human's noVNC page) over HTTP with the settings every door shares: TCP
// keepalive on accepted connections (the design's 30 s / 10 s / 3), a
// bound on reading request headers, and no other timeouts, because
// hijacked WebSocket streams must never idle out.
package door

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is one door's HTTP server. Run opens and serves it; Close stops
// it.
type Server struct {
	// Addr is where to listen, e.g. ":9222".
	Addr    string
	Handler http.Handler
	// KeepAlive applies to every accepted connection.
	KeepAlive net.KeepAliveConfig
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout time.Duration
	// Grace is how long Close lets in-flight requests finish.
	Grace  time.Duration
	Logger *slog.Logger

	once    sync.Once
	ready   chan struct{} // closed once listening
	closing chan struct{} // closed by Close
	served  chan struct{} // closed when Serve has returned

	mu     sync.Mutex
	closed bool
	l      net.Listener
	srv    *http.Server
}

func (s *Server) init() {
	s.once.Do(func() {
		s.ready, s.closing, s.served = make(chan struct{}), make(chan struct{}), make(chan struct{})
	})
}

// Ready is closed once the door listens; Address is valid from then on.
func (s *Server) Ready() <-chan struct{} {
	s.init()
	return s.ready
}

// Address is the address the door listens on.
func (s *Server) Address() string { return s.l.Addr().String() }

// Run listens and serves until ctx ends or Close is called (it then
// returns nil), or until serving fails.
func (s *Server) Run(ctx context.Context) error {
	s.init()
	lc := net.ListenConfig{KeepAliveConfig: s.KeepAlive}
	l, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: s.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return l.Close()
	}
	s.l, s.srv = l, srv
	close(s.ready)
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		defer close(s.served)
		errc <- srv.Serve(l)
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	case <-s.closing:
		<-s.served
		return nil
	case <-ctx.Done():
		s.shutdown(context.Background())
		return nil
	}
}

// Close stops accepting, lets in-flight requests finish within Grace (and
// ctx), then closes what is left. It returns once the server has stopped
// serving; a Run that has not listened yet will not.
func (s *Server) Close(ctx context.Context) {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	started := s.srv != nil
	s.mu.Unlock()
	if started {
		s.shutdown(ctx)
	}
	close(s.closing)
}

func (s *Server) shutdown(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, s.Grace)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.served
}
