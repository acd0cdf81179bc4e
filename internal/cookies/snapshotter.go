package cookies

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Snapshotter is the cookie store as a component: Run puts the last
// snapshot back into the browser and then snapshots on a schedule; Close
// takes the final snapshot.
type Snapshotter struct {
	Store    *Store
	Schedule Schedule
	// Conn returns the current browser connection.
	Conn func(context.Context) (Caller, error)
	// BrowserAlive reports whether a final snapshot can reach the
	// browser; nil means always.
	BrowserAlive func() bool
	Logger       *slog.Logger
	// Tabs, if not nil, records the open tabs with each snapshot and
	// reopens them after the restore (RESTORE_TABS=on).
	Tabs *Tabs

	once     sync.Once
	ready    chan struct{} // closed once restored
	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	done     chan struct{} // closed when the schedule has stopped
}

func (s *Snapshotter) init() {
	s.once.Do(func() { s.ready, s.stop, s.done = make(chan struct{}), make(chan struct{}), make(chan struct{}) })
}

// Ready is closed once the snapshot was put back: no agent should see the
// browser before.
func (s *Snapshotter) Ready() <-chan struct{} {
	s.init()
	return s.ready
}

// Run restores the last snapshot (session cookies, and persistent ones a
// hard kill lost), then snapshots on the schedule until ctx ends or Close
// is called. It fails only when it cannot reach the browser to restore.
func (s *Snapshotter) Run(ctx context.Context) error {
	s.init()
	defer close(s.done)
	c, err := s.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to chromium to restore cookies: %w; to start without restoring them, set SESSION_COOKIES=off "+
			"(the snapshot stays in %s, untouched, for a later start)", err, s.Store.Path())
	}
	res, err := s.Store.Restore(ctx, c)
	if err != nil {
		// The browser answered nothing sensible; the login may be gone
		// but the browser is usable. Keep going, say so, and keep the
		// snapshot out of reach of the next one.
		s.Store.KeepCopy("unrestored", err)
	} else if res.Put > 0 || res.Removed > 0 {
		newer := "profile"
		if res.SnapshotNewer {
			newer = "snapshot"
		}
		s.Logger.Info("cookies restored", "count", res.Put, "removed", res.Removed, "newer", newer,
			"saved", res.Saved.UTC().Format(time.RFC3339))
	}
	if s.Tabs != nil {
		n, err := s.Tabs.Restore(ctx, c)
		if err != nil {
			s.Logger.Warn("tabs not restored; the browser starts without them", "err", err)
		} else if n > 0 {
			s.Logger.Info("tabs restored", "count", n)
		}
	}
	close(s.ready)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.Store.run(ctx, s.Schedule, s.Conn, s.Tabs)
	return nil
}

// Close stops the schedule and, while the browser is alive, saves the
// cookies one last time (within 5 s and ctx).
func (s *Snapshotter) Close(ctx context.Context) {
	s.init()
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.ready:
	default:
		return // never restored: nothing to save over the snapshot
	}
	<-s.done
	if s.BrowserAlive != nil && !s.BrowserAlive() {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := s.Conn(sctx)
	if err == nil {
		_, err = s.Store.Snapshot(sctx, c)
	}
	if err != nil {
		s.Logger.Warn("final cookie snapshot failed", "err", err)
		return
	}
	if s.Tabs != nil {
		if _, err := s.Tabs.Record(sctx, c); err != nil {
			s.Logger.Warn("final tab list not saved", "err", err)
		}
	}
	_, n := s.Store.Stats()
	s.Logger.Info("cookies saved", "count", n)
}
