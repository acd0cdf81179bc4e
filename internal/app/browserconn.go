package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdp"
	"github.com/dataplanelabs/scry/internal/cookies"
)

// browserConn is scry's own persistent CDP connection to the browser
// target, redialled when it drops. One connection serves every internal
// need (cookie snapshots, readiness) instead of one per use.
type browserConn struct {
	addr string
	mu   sync.Mutex
	conn *cdp.Conn
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
	return c, nil
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
