package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdp"
	"github.com/dataplanelabs/scry/internal/cookies"
)

// watchTimeout bounds subscribing a connection to target events. It is
// the watch's own: the caller that happened to trigger it (a /readyz
// probe with a 3 s budget, say) never cuts it short.
const watchTimeout = 10 * time.Second

// dialTimeout bounds one dial of the internal connection (discovery and
// the WebSocket handshake). Like watchTimeout it is the dial's own: the
// callers waiting for it each give up at their own deadline.
const dialTimeout = 10 * time.Second

// browserConn is scry's own persistent CDP connection to the browser
// target, redialled when it drops. One connection serves every internal
// need (cookie snapshots, readiness, navigation events) instead of one
// per use.
type browserConn struct {
	addr string
	log  *slog.Logger

	mu       sync.Mutex
	conn     *cdp.Conn
	dialing  *dial // the dial in progress, if any
	closed   bool
	nav      chan struct{} // non-nil once Navigations was called
	watched  *cdp.Conn     // the connection subscribed to target events
	watching *watch        // the subscription in progress, if any
	warned   *cdp.Conn     // the connection whose failed subscription was logged

	// pageCreated, if set before the first Get, is told each page
	// target Chromium reports, in the order it reports them (the tab
	// list's order, RESTORE_TABS). It runs on the reader: it must not block.
	pageCreated func(targetID string)
	// targets, if set before the first Get, keeps every target's URL
	// (WatchTargets).
	targets *targetURLs
}

// dial is one attempt at a new connection; done is closed when it ends,
// after err is set (nil: b.conn is the new connection).
type dial struct {
	done chan struct{}
	err  error
}

// watch is one subscription attempt; done is closed when it ends.
type watch struct {
	conn *cdp.Conn
	done chan struct{}
}

// errClosed is what Get answers once Close was called.
var errClosed = errors.New("scry's internal CDP connection is closed")

// Get returns a live connection, dialling a new one if needed. The lock
// is never held across the network: one dial at a time runs on its own
// deadline (dialTimeout) and every caller waits for it no longer than its
// own ctx allows, so a /readyz probe answers within its budget even while
// a cookie snapshot waits for a slow Chromium. Once Navigations was
// called Get also makes sure the connection is subscribed to target
// events, retrying a subscription that failed; it waits for the
// subscription no longer than ctx allows, and the subscription carries on
// without it.
func (b *browserConn) Get(ctx context.Context) (*cdp.Conn, error) {
	b.mu.Lock()
	for {
		if b.closed {
			b.mu.Unlock()
			return nil, errClosed
		}
		if b.conn != nil {
			select {
			case <-b.conn.Done():
				b.conn = nil
			default:
			}
		}
		if b.conn != nil {
			break
		}
		d := b.dialing
		if d == nil {
			d = &dial{done: make(chan struct{})}
			b.dialing = d
			go b.dial(d)
		}
		b.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to chromium's CDP on %s: %w", b.addr, ctx.Err())
		}
		if d.err != nil {
			return nil, d.err
		}
		b.mu.Lock()
	}
	c := b.conn
	w := b.startWatch(c)
	b.mu.Unlock()
	if w != nil {
		select {
		case <-w.done:
		case <-ctx.Done():
		}
	}
	return c, nil
}

// dial makes a new connection for d, without b.mu, and installs it.
func (b *browserConn) dial(d *dial) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	// No keep-alive: the HTTP request is once per dial, and an idle
	// socket left open to Chromium would be a second connection.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var c *cdp.Conn
	v, err := cdp.GetVersion(ctx, hc, b.addr)
	if err == nil {
		c, err = cdp.Dial(ctx, v.WebSocketDebuggerURL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dialing = nil
	switch {
	case err != nil:
		d.err = err
	case b.closed:
		c.Close()
		d.err = errClosed
	default:
		b.conn = c
	}
	close(d.done)
}

// Navigations returns a channel that gets a value (coalesced, never
// blocking the connection) whenever Chromium reports a page or frame's
// target info changed, on this connection and every later one.
func (b *browserConn) Navigations() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nav == nil {
		b.nav = make(chan struct{}, 1)
	}
	if b.conn != nil {
		b.startWatch(b.conn)
	}
	return b.nav
}

// WatchTargets keeps every target's URL in targets, on this connection and
// every later one. Call it before the first Get.
func (b *browserConn) WatchTargets(targets *targetURLs) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets = targets
}

// startWatch subscribes c to target discovery, unless it is subscribed
// already or nobody asked for navigations: Chromium then reports every
// target with Target.targetCreated and its changes with
// Target.targetInfoChanged. It returns the attempt in progress (nil if
// none is needed). Called with b.mu held; the call itself runs without it.
func (b *browserConn) startWatch(c *cdp.Conn) *watch {
	if (b.nav == nil && b.targets == nil) || b.watched == c {
		return nil
	}
	if b.watching != nil && b.watching.conn == c {
		return b.watching
	}
	w := &watch{conn: c, done: make(chan struct{})}
	b.watching = w
	b.watched = nil // an older connection's watch no longer counts
	nav, created, targets := b.nav, b.pageCreated, b.targets
	if targets != nil {
		targets.forget()
	}
	c.OnEvent(func(method string, params json.RawMessage) {
		if targets != nil {
			targets.note(method, params)
		}
		if nav != nil {
			nudgeOnTargetChange(nav, method, params)
		}
		if created != nil {
			notePageCreated(created, method, params)
		}
	})
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
		err := c.Call(ctx, "Target.setDiscoverTargets", map[string]any{"discover": true}, nil)
		cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.watching != w {
			return // a newer watch took over
		}
		b.watching = nil
		select {
		case <-c.Done():
			err = errors.New("the connection closed")
		default:
		}
		if err == nil {
			b.watched = c
			if targets != nil {
				targets.watching()
				// The moment the connection is lost, navigations go
				// unseen: nothing the events told is trusted from then.
				go func() {
					<-c.Done()
					b.mu.Lock()
					defer b.mu.Unlock()
					if b.watched == c {
						targets.forget()
					}
				}()
			}
			return
		}
		if b.log == nil {
			return
		}
		// Retried at the next Get; said once per connection.
		if b.warned != c {
			b.warned = c
			b.log.Warn("cannot watch navigations; will retry, and cookies are snapshotted every SESSION_COOKIE_INTERVAL meanwhile", "err", err)
		} else {
			b.log.Debug("cannot watch navigations", "err", err)
		}
	}()
	return w
}

// nudgeOnTargetChange runs on the connection's reader: it never blocks.
// Chromium 156 sends Target.targetInfoChanged for a page or frame when a
// navigation commits (a new URL, a reload, a form posted to its own URL,
// a fragment or pushState change) and when a client attaches or detaches;
// not for a title change, the end of a load, or a fetch. Any of them can
// follow a login, so each nudges: the snapshot waits for the page to
// settle and writes only when the cookies changed.
func nudgeOnTargetChange(nav chan struct{}, method string, params json.RawMessage) {
	if method != "Target.targetInfoChanged" {
		return
	}
	var p struct {
		TargetInfo struct {
			Type string `json:"type"`
		} `json:"targetInfo"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	if t := p.TargetInfo.Type; t != "page" && t != "iframe" {
		return
	}
	select {
	case nav <- struct{}{}:
	default: // one pending is enough
	}
}

// notePageCreated tells created about a new page target.
func notePageCreated(created func(string), method string, params json.RawMessage) {
	if method != "Target.targetCreated" {
		return
	}
	var p struct {
		TargetInfo struct {
			ID   string `json:"targetId"`
			Type string `json:"type"`
		} `json:"targetInfo"`
	}
	if json.Unmarshal(params, &p) == nil && p.TargetInfo.Type == "page" {
		created(p.TargetInfo.ID)
	}
}

// Caller adapts Get for the cookie store.
func (b *browserConn) Caller(ctx context.Context) (cookies.Caller, error) {
	return b.Get(ctx)
}

// Close drops the connection; Get fails from now on.
func (b *browserConn) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}
