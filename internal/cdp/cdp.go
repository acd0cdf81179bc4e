// Package cdp is a minimal Chrome DevTools Protocol client for scry's own
// use: discovery over HTTP and JSON-RPC calls over one WebSocket. Agents use
// real CDP libraries; scry only needs a handful of browser-level calls.
package cdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Version is Chrome's /json/version answer.
type Version struct {
	Browser              string `json:"Browser"`
	ProtocolVersion      string `json:"Protocol-Version"`
	UserAgent            string `json:"User-Agent"`
	WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
}

// GetVersion asks Chrome's HTTP endpoint at addr ("127.0.0.1:9223") for its
// version and browser WebSocket URL.
func GetVersion(ctx context.Context, client *http.Client, addr string) (*Version, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/json/version", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read /json/version: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/json/version: %s: %s", resp.Status, body)
	}
	var v Version
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("decode /json/version: %w", err)
	}
	if v.WebSocketDebuggerURL == "" {
		return nil, errors.New("/json/version has no webSocketDebuggerUrl")
	}
	return &v, nil
}

// Error is an error answered by Chrome.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message)
}

type message struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Conn is one CDP WebSocket connection, safe for concurrent calls.
type Conn struct {
	ws      *websocket.Conn
	nextID  atomic.Int64
	mu      sync.Mutex
	pending map[int64]chan message
	onEvent func(method string, params json.RawMessage)
	done    chan struct{}
	err     error
}

// Dial connects to a CDP WebSocket URL.
func Dial(ctx context.Context, url string) (*Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial cdp %s: %w", url, err)
	}
	ws.SetReadLimit(256 << 20)
	c := &Conn{ws: ws, pending: map[int64]chan message{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *Conn) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var b []byte
		_, b, err = c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m message
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.ID == 0 {
			c.mu.Lock()
			fn := c.onEvent
			c.mu.Unlock()
			if fn != nil && m.Method != "" {
				fn(m.Method, m.Params)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// OnEvent has fn receive every event (a message without an id) that
// arrives from now on; nil stops them. fn runs on the connection's reader,
// in order: it must return quickly and never wait on a Call.
func (c *Conn) OnEvent(fn func(method string, params json.RawMessage)) {
	c.mu.Lock()
	c.onEvent = fn
	c.mu.Unlock()
}

// Done is closed when the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Call sends method with params and decodes the result into result (which
// may be nil).
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	id := c.nextID.Add(1)
	m := message{ID: id, Method: method}
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%s: encode params: %w", method, err)
		}
		m.Params = p
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ch := make(chan message, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		return answer(method, r, result)
	case <-c.done:
		// The answer may have arrived just before the connection went
		// (Browser.close does exactly that): it wins.
		select {
		case r := <-ch:
			return answer(method, r, result)
		default:
		}
		return fmt.Errorf("%s: connection closed: %v", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func answer(method string, r message, result any) error {
	if r.Error != nil {
		return fmt.Errorf("%s: %w", method, r.Error)
	}
	if result != nil && len(r.Result) > 0 {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.ws.CloseNow()
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
	return err
}
