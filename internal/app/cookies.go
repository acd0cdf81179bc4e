package app

import (
	"context"
	"fmt"
	"time"

	"github.com/dataplanelabs/scry/internal/cookies"
)

// prepareCookies sets up the cookie store before Chromium starts, while
// the profile's cookie database is still as the last Chromium left it.
func (s *scry) prepareCookies(uid, gid int) {
	s.cookies = cookies.New(s.cfg.ProfileDir, s.log.With("component", "cookies"), uid, gid)
	s.cookies.NoteDatabase()
}

// navigationSettle is how long after a page navigates (a login's redirect,
// say) scry snapshots the cookies: long enough for redirect chains and the
// landing page's scripts, short enough that a hard kill soon after a login
// keeps it.
const navigationSettle = time.Second

// startCookies restores the last cookie snapshot (session cookies, and
// persistent ones a hard kill lost) and starts the periodic snapshots.
func (s *scry) startCookies(ctx context.Context) error {
	log := s.log.With("component", "cookies")
	nav := s.bconn.Navigations()
	c, err := s.bconn.Get(ctx)
	if err != nil {
		return fmt.Errorf("connect to chromium to restore cookies: %w; to start without restoring them, set SESSION_COOKIES=off "+
			"(the snapshot stays in %s, untouched, for a later start)", err, s.cookies.Path())
	}
	res, err := s.cookies.Restore(ctx, c)
	if err != nil {
		// The browser answered nothing sensible; the login may be gone
		// but the browser is usable. Keep going, say so, and keep the
		// snapshot out of reach of the next one.
		s.cookies.KeepCopy("unrestored", err)
	} else if res.Put > 0 || res.Removed > 0 {
		newer := "profile"
		if res.SnapshotNewer {
			newer = "snapshot"
		}
		log.Info("cookies restored", "count", res.Put, "removed", res.Removed, "newer", newer,
			"saved", res.Saved.UTC().Format(time.RFC3339))
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.cookies.Run(rctx, cookies.Schedule{
			Interval: s.cfg.CookieInterval,
			Nudge:    nav, Settle: navigationSettle, MaxWait: 5 * navigationSettle,
		}, s.bconn.Caller)
	}()
	s.cookieStop = func() { cancel(); <-done }
	return nil
}

// finalCookieSnapshot saves session cookies one last time before Chromium
// closes.
func (s *scry) finalCookieSnapshot(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := s.bconn.Get(sctx)
	if err == nil {
		_, err = s.cookies.Snapshot(sctx, c)
	}
	if err != nil {
		s.log.Warn("final cookie snapshot failed", "err", err)
		return
	}
	_, n := s.cookies.Stats()
	s.log.Info("cookies saved", "count", n)
}
