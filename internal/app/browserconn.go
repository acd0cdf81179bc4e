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

	urlMu sync.Mutex
	urls  map[string]string // target id → URL, for the targets seen
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
// blocking the connection) whenever a page or frame's URL changes, on this
// connection and every later one.
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
	b.urlMu.Lock()
	b.urls = map[string]string{}
	b.urlMu.Unlock()
	c.OnEvent(func(method string, params json.RawMessage) { b.onEvent(nav, method, params) })
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

// onEvent runs on the connection's reader: it never blocks.
func (b *browserConn) onEvent(nav chan struct{}, method string, params json.RawMessage) {
	var p struct {
		TargetID   string `json:"targetId"`
		TargetInfo struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
			URL      string `json:"url"`
		} `json:"targetInfo"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	ti := p.TargetInfo
	b.urlMu.Lock()
	defer b.urlMu.Unlock()
	switch method {
	case "Target.targetDestroyed":
		delete(b.urls, p.TargetID)
		return
	case "Target.targetCreated", "Target.targetInfoChanged":
	default:
		return
	}
	if ti.Type != "page" && ti.Type != "iframe" {
		return
	}
	old, seen := b.urls[ti.TargetID]
	b.urls[ti.TargetID] = ti.URL
	if method == "Target.targetInfoChanged" && (!seen || old != ti.URL) {
		select {
		case nav <- struct{}{}:
		default: // one pending is enough
		}
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
