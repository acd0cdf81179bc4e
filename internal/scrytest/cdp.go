package scrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// CDP is a minimal synchronous CDP client: one call in flight, events
// skipped. No reader goroutine stands between the socket and the clock,
// so the benchmarks time it as it is. A call whose context ends closes the
// connection (the WebSocket library's rule).
type CDP struct {
	WS   *websocket.Conn
	next int64
}

// CDPError is an error answer from the browser.
type CDPError struct {
	Method  string
	Code    int
	Message string
}

func (e *CDPError) Error() string {
	if e.Method == "" {
		return fmt.Sprintf("CDP error %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: CDP error %d: %s", e.Method, e.Code, e.Message)
}

// NewHTTPClient returns a client that opens a new TCP connection for every
// request, as a fresh agent would, and never goes through an HTTP proxy.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

// Discover asks addr's /json/version for the browser WebSocket URL. The
// Host header is addr, an IP, which Chrome accepts even through a relay.
func Discover(ctx context.Context, hc *http.Client, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/json/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /json/version on %s: %s: %s", addr, resp.Status, body)
	}
	var v struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("decode /json/version: %w", err)
	}
	if v.WebSocketDebuggerURL == "" {
		return "", fmt.Errorf("/json/version on %s has no webSocketDebuggerUrl", addr)
	}
	return v.WebSocketDebuggerURL, nil
}

// DialBrowser discovers and opens the browser WebSocket at addr.
func DialBrowser(ctx context.Context, hc *http.Client, addr string) (*CDP, error) {
	u, err := Discover(ctx, hc, addr)
	if err != nil {
		return nil, err
	}
	return Dial(ctx, hc, u)
}

// Dial opens the CDP WebSocket at url; hc may be nil.
func Dial(ctx context.Context, hc *http.Client, url string) (*CDP, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(256 << 20)
	return &CDP{WS: ws}, nil
}

// NewCDP speaks CDP on a WebSocket the caller opened.
func NewCDP(ws *websocket.Conn) *CDP { return &CDP{WS: ws} }

type cdpRequest struct {
	ID        int64  `json:"id"`
	Method    string `json:"method"`
	Params    any    `json:"params,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
}

type cdpResponse struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Encode prepares a call, outside any timed section.
func (c *CDP) Encode(session, method string, params any) (int64, []byte, error) {
	c.next++
	b, err := json.Marshal(cdpRequest{ID: c.next, Method: method, Params: params, SessionID: session})
	return c.next, b, err
}

// RoundTrip sends msg and reads until the answer to id. The duration runs
// from just before the write to the moment the answer's last byte is
// read; decoding happens after the clock stops. It returns the answer's
// result and its size on the wire.
func (c *CDP) RoundTrip(ctx context.Context, id int64, msg []byte) (json.RawMessage, time.Duration, int, error) {
	start := time.Now()
	if err := c.WS.Write(ctx, websocket.MessageText, msg); err != nil {
		return nil, 0, 0, err
	}
	for {
		_, data, err := c.WS.Read(ctx)
		d := time.Since(start)
		if err != nil {
			return nil, 0, 0, err
		}
		var r cdpResponse
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, 0, 0, fmt.Errorf("decode CDP message: %w", err)
		}
		if r.ID != id {
			continue // an event, or a late answer
		}
		if r.Error != nil {
			return nil, d, len(data), &CDPError{Code: r.Error.Code, Message: r.Error.Message}
		}
		return r.Result, d, len(data), nil
	}
}

// Call is Encode plus RoundTrip, decoding the result into out if not nil.
// params is anything encoding/json takes (a json.RawMessage as it is).
func (c *CDP) Call(ctx context.Context, session, method string, params, out any) error {
	res, err := c.CallRaw(ctx, session, method, params)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

// CallRaw is Call returning the result undecoded.
func (c *CDP) CallRaw(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	id, msg, err := c.Encode(session, method, params)
	if err != nil {
		return nil, err
	}
	res, _, _, err := c.RoundTrip(ctx, id, msg)
	if ce, ok := err.(*CDPError); ok {
		ce.Method = method
		return nil, ce
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return res, nil
}

// Close closes the connection cleanly.
func (c *CDP) Close() error { return c.WS.Close(websocket.StatusNormalClosure, "") }
