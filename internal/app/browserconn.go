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

// browserConn is scry's own persistent CDP connection to the browser
// target, redialled when it drops. One connection serves every internal
// need (cookie snapshots, readiness, navigation events) instead of one
// per use.
type browserConn struct {
	addr string
	log  *slog.Logger

	mu      sync.Mutex
	conn    *cdp.Conn
	nav     chan struct{} // non-nil once Navigations was called
	watched *cdp.Conn     // the connection nav is fed from

	urlMu sync.Mutex
	urls  map[string]string // target id → URL, for the targets seen
}

// Get returns a live connection, dialling a new one if needed.
func (b *browserConn) Get(ctx context.Context) (*cdp.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		select {
		case <-b.conn.Done():
			b.conn = nil
		default:
			return b.conn, nil
		}
	}
	v, err := cdp.GetVersion(ctx, &http.Client{Timeout: 5 * time.Second}, b.addr)
	if err != nil {
		return nil, err
	}
	c, err := cdp.Dial(ctx, v.WebSocketDebuggerURL)
	if err != nil {
		return nil, err
	}
	b.conn = c
	if b.nav != nil {
		b.watch(ctx, c)
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
	if b.conn != nil && b.watched != b.conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.watch(ctx, b.conn)
	}
	return b.nav
}

// watch subscribes to target discovery on c: Chromium then reports every
// target with Target.targetCreated and each URL or title change with
// Target.targetInfoChanged. Called with b.mu held.
func (b *browserConn) watch(ctx context.Context, c *cdp.Conn) {
	b.watched = c
	nav := b.nav
	b.urlMu.Lock()
	b.urls = map[string]string{}
	b.urlMu.Unlock()
	c.OnEvent(func(method string, params json.RawMessage) { b.onEvent(nav, method, params) })
	if err := c.Call(ctx, "Target.setDiscoverTargets", map[string]any{"discover": true}, nil); err != nil && b.log != nil {
		b.log.Warn("cannot watch navigations; cookies are snapshotted only every SESSION_COOKIE_INTERVAL", "err", err)
	}
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
