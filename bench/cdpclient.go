package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// conn is a minimal synchronous CDP client: one request in flight, events
// skipped. No reader goroutine stands between the socket and the clock.
type conn struct {
	ws   *websocket.Conn
	next int64
}

type request struct {
	ID        int64  `json:"id"`
	Method    string `json:"method"`
	Params    any    `json:"params,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
}

type response struct {
	ID     int64           `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// newHTTPClient returns a client that opens a new TCP connection for every
// request, as a fresh agent would, and never goes through an HTTP proxy.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

// discover asks addr's /json/version for the browser WebSocket URL. The
// Host header is addr, an IP, which Chrome accepts even through socat.
func discover(ctx context.Context, hc *http.Client, addr string) (string, error) {
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

// dial discovers and opens the browser WebSocket at addr.
func dial(ctx context.Context, hc *http.Client, addr string) (*conn, error) {
	u, err := discover(ctx, hc, addr)
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	ws.SetReadLimit(256 << 20)
	return &conn{ws: ws}, nil
}

// encode prepares a request outside the timed section.
func (c *conn) encode(session, method string, params any) (int64, []byte, error) {
	c.next++
	b, err := json.Marshal(request{ID: c.next, Method: method, Params: params, SessionID: session})
	return c.next, b, err
}

// roundTrip sends msg and reads until the reply to id. The duration runs
// from just before the write to the moment the reply's last byte is read;
// decoding happens after the clock stops. It returns the reply's result
// and its size on the wire.
func (c *conn) roundTrip(ctx context.Context, id int64, msg []byte) (json.RawMessage, time.Duration, int, error) {
	start := time.Now()
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		return nil, 0, 0, err
	}
	for {
		_, data, err := c.ws.Read(ctx)
		d := time.Since(start)
		if err != nil {
			return nil, 0, 0, err
		}
		var r response
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, 0, 0, fmt.Errorf("decode CDP message: %w", err)
		}
		if r.ID != id {
			continue // an event, or a late reply
		}
		if r.Error != nil {
			return nil, d, len(data), fmt.Errorf("CDP error %d: %s", r.Error.Code, r.Error.Message)
		}
		return r.Result, d, len(data), nil
	}
}

// call is encode plus roundTrip, decoding the result into out if not nil.
func (c *conn) call(ctx context.Context, session, method string, params, out any) error {
	id, msg, err := c.encode(session, method, params)
	if err != nil {
		return err
	}
	res, _, _, err := c.roundTrip(ctx, id, msg)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

func (c *conn) close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }
