package app

import (
	"context"
	"encoding/json"
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

// browserConn is scry's own persistent CDP connection to the browser
// target, redialled when it drops. One connection serves every internal
// need (cookie snapshots, readiness, navigation events) instead of one
// per use.
type browserConn struct {
	addr string
	log  *slog.Logger

	mu       sync.Mutex
	conn     *cdp.Conn
	nav      chan struct{} // non-nil once Navigations was called
	watched  *cdp.Conn     // the connection subscribed to target events
	watching *watch        // the subscription in progress, if any
	warned   *cdp.Conn     // the connection whose failed subscription was logged
}

// watch is one subscription attempt; done is closed when it ends.
type watch struct {
	conn *cdp.Conn
	done chan struct{}
}

// Get returns a live connection, dialling a new one if needed. Once
// Navigations was called it also makes sure the connection is subscribed
// to target events, retrying a subscription that failed; it waits for the
// subscription no longer than ctx allows, and the subscription carries on
// without it.
func (b *browserConn) Get(ctx context.Context) (*cdp.Conn, error) {
	b.mu.Lock()
	if b.conn != nil {
		select {
		case <-b.conn.Done():
			b.conn = nil
		default:
		}
	}
	if b.conn == nil {
		v, err := cdp.GetVersion(ctx, &http.Client{Timeout: 5 * time.Second}, b.addr)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		c, err := cdp.Dial(ctx, v.WebSocketDebuggerURL)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.conn = c
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

// startWatch subscribes c to target discovery, unless it is subscribed
// already or nobody asked for navigations: Chromium then reports every
// target with Target.targetCreated and its changes with
// Target.targetInfoChanged. It returns the attempt in progress (nil if
// none is needed). Called with b.mu held; the call itself runs without it.
func (b *browserConn) startWatch(c *cdp.Conn) *watch {
	if b.nav == nil || b.watched == c {
		return nil
	}
	if b.watching != nil && b.watching.conn == c {
		return b.watching
	}
	w := &watch{conn: c, done: make(chan struct{})}
	b.watching = w
	nav := b.nav
	c.OnEvent(func(method string, params json.RawMessage) { nudgeOnTargetChange(nav, method, params) })
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
		err := c.Call(ctx, "Target.setDiscoverTargets", map[string]any{"discover": true}, nil)
		cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.watching == w {
			b.watching = nil
		}
		if err == nil {
			b.watched = c
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

// Caller adapts Get for the cookie store.
func (b *browserConn) Caller(ctx context.Context) (cookies.Caller, error) {
	return b.Get(ctx)
}

// Close drops the connection.
func (b *browserConn) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}
