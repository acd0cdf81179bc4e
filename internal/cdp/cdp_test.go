package cdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeBrowser speaks CDP's JSON-RPC over a WebSocket: it answers each
// request on its own goroutine (so answers come back out of order), sends
// an event before every answer, and implements a few methods.
type fakeBrowser struct {
	srv *httptest.Server
}

type request struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func newFakeBrowser(t *testing.T) *fakeBrowser {
	t.Helper()
	fb := &fakeBrowser{}
	mux := http.NewServeMux()
	mux.HandleFunc("/devtools/browser/B1", fb.serveWS)
	mux.HandleFunc("/json/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Browser":"Chrome/126.0","Protocol-Version":"1.3","User-Agent":"UA","webSocketDebuggerUrl":"ws://%s/devtools/browser/B1"}`, r.Host)
	})
	fb.srv = httptest.NewServer(mux)
	t.Cleanup(fb.srv.Close)
	return fb
}

func (fb *fakeBrowser) wsURL() string {
	return "ws://" + fb.srv.Listener.Addr().String() + "/devtools/browser/B1"
}

func (fb *fakeBrowser) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	send := func(v any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req request
		if err := json.Unmarshal(b, &req); err != nil {
			return
		}
		switch req.Method {
		case "Test.hangUp":
			c.CloseNow()
			return
		case "Test.answerThenHangUp":
			send(map[string]any{"id": req.ID, "result": map[string]any{}})
			c.Close(websocket.StatusNormalClosure, "")
			return
		case "Test.silent":
			continue
		}
		go func() {
			if rand.N(2) == 0 {
				runtime.Gosched() // let later requests overtake this one
			}
			send(map[string]any{"method": "Target.targetCreated", "params": map[string]any{"id": req.ID}})
			switch req.Method {
			case "Browser.getVersion":
				send(map[string]any{"id": req.ID, "result": map[string]any{
					"protocolVersion": "1.3", "product": "Chrome/126.0", "userAgent": "UA", "jsVersion": "12.6",
				}})
			case "Test.echo":
				send(map[string]any{"id": req.ID, "result": req.Params})
			case "Test.empty":
				send(map[string]any{"id": req.ID, "result": map[string]any{}})
			case "Test.badResult":
				send(map[string]any{"id": req.ID, "result": []int{1}})
			default:
				send(map[string]any{"id": req.ID, "error": map[string]any{
					"code": -32601, "message": fmt.Sprintf("'%s' wasn't found", req.Method),
				}})
			}
		}()
	}
}

func dial(t *testing.T, fb *fakeBrowser) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, fb.wsURL())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCall(t *testing.T) {
	fb := newFakeBrowser(t)
	c := dial(t, fb)

	type version struct {
		Product         string `json:"product"`
		ProtocolVersion string `json:"protocolVersion"`
	}
	tests := []struct {
		name    string
		method  string
		params  any
		result  any
		want    any
		wantErr string
	}{
		{name: "result decoded", method: "Browser.getVersion", result: &version{},
			want: &version{Product: "Chrome/126.0", ProtocolVersion: "1.3"}},
		{name: "params sent", method: "Test.echo", params: map[string]any{"url": "https://example.com/?a=1&b=<2>"},
			result: &map[string]any{}, want: &map[string]any{"url": "https://example.com/?a=1&b=<2>"}},
		{name: "nil result", method: "Test.empty"},
		{name: "error reply", method: "No.such", wantErr: "No.such: cdp error -32601: 'No.such' wasn't found"},
		{name: "undecodable result", method: "Test.badResult", result: &version{}, wantErr: "decode result"},
		{name: "unencodable params", method: "Test.echo", params: func() {}, wantErr: "encode params"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Call(callCtx(t), tt.method, tt.params, tt.result)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Call = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if tt.want != nil && fmt.Sprint(tt.result) != fmt.Sprint(tt.want) {
				t.Errorf("result = %v, want %v", tt.result, tt.want)
			}
		})
	}
}

func TestCallErrorIsTyped(t *testing.T) {
	c := dial(t, newFakeBrowser(t))
	err := c.Call(callCtx(t), "Page.nope", map[string]int{"x": 1}, nil)
	var cdpErr *Error
	if !errors.As(err, &cdpErr) {
		t.Fatalf("Call = %v (%T), want a *cdp.Error inside", err, err)
	}
	if cdpErr.Code != -32601 || cdpErr.Message != "'Page.nope' wasn't found" {
		t.Errorf("error = %+v", cdpErr)
	}
}

func TestCallConcurrent(t *testing.T) {
	c := dial(t, newFakeBrowser(t))
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got struct{ N int }
			if err := c.Call(context.Background(), "Test.echo", map[string]int{"n": i}, &got); err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
				return
			}
			if got.N != i {
				errs <- fmt.Errorf("call %d got the answer to call %d", i, got.N)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("concurrent calls did not all return")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallConnectionClosed(t *testing.T) {
	c := dial(t, newFakeBrowser(t))
	// The browser hangs up while the call waits for its answer.
	err := c.Call(callCtx(t), "Test.hangUp", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "Test.hangUp") {
		t.Fatalf("Call = %v, want an error naming the method", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the browser hung up")
	}
	if err := c.Call(callCtx(t), "Browser.getVersion", nil, nil); err == nil {
		t.Fatal("Call on a closed connection succeeded")
	}
}

// TestCallAnswerThenClose is Browser.close: Chrome answers and hangs up at
// once. The answer must win over the hang-up. The race is narrow (the
// answer and the close have to land before Call reaches its select), so
// many connections try it side by side.
func TestCallAnswerThenClose(t *testing.T) {
	fb := newFakeBrowser(t)
	const workers, rounds = 4, 25
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := Dial(ctx, fb.wsURL())
				if err != nil {
					cancel()
					errs <- err
					return
				}
				if err := c.Call(ctx, "Test.answerThenHangUp", nil, nil); err != nil {
					errs <- err
				}
				c.Close()
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n == 1 {
			t.Errorf("Call = %v, want the answer that arrived before the close", err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls lost their answer", n, workers*rounds)
	}
}

func TestCallContextCancelled(t *testing.T) {
	c := dial(t, newFakeBrowser(t))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, "Test.silent", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want the context's error", err)
	}
	// The connection is still usable.
	if err := c.Call(callCtx(t), "Test.empty", nil, nil); err != nil {
		t.Fatalf("Call after a timed-out call: %v", err)
	}
}

func TestCloseEndsReadLoop(t *testing.T) {
	c := dial(t, newFakeBrowser(t))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close returned")
	}
}

func TestDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, "ws://"+srv.Listener.Addr().String()+"/devtools/browser/nope")
	if err == nil || !strings.Contains(err.Error(), "dial cdp") {
		t.Fatalf("Dial = %v, want an error", err)
	}
}

func TestGetVersion(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantWS  string
		wantErr string
	}{
		{
			name: "ok",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/json/version" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, `{"Browser":"Chrome/126.0","Protocol-Version":"1.3","webSocketDebuggerUrl":"ws://127.0.0.1:9223/devtools/browser/B1"}`)
			},
			wantWS: "ws://127.0.0.1:9223/devtools/browser/B1",
		},
		{
			name: "host refused",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "Host header is specified and is not an IP address or localhost.", http.StatusInternalServerError)
			},
			wantErr: "Host header is specified",
		},
		{
			name:    "not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") },
			wantErr: "decode /json/version",
		},
		{
			name:    "no socket URL",
			handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"Browser":"Chrome/126.0"}`) },
			wantErr: "no webSocketDebuggerUrl",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			v, err := GetVersion(callCtx(t), srv.Client(), srv.Listener.Addr().String())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("GetVersion = %+v, %v; want an error containing %q", v, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.WebSocketDebuggerURL != tt.wantWS || v.Browser != "Chrome/126.0" || v.ProtocolVersion != "1.3" {
				t.Errorf("GetVersion = %+v", v)
			}
		})
	}
}

func TestGetVersionThenDial(t *testing.T) {
	fb := newFakeBrowser(t)
	v, err := GetVersion(callCtx(t), fb.srv.Client(), fb.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(callCtx(t), v.WebSocketDebuggerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(callCtx(t), "Browser.getVersion", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// Events reach the handler, in order, before the answer that followed them.
func TestOnEvent(t *testing.T) {
	fb := newFakeBrowser(t)
	c := dial(t, fb)
	var mu sync.Mutex
	var got []string
	c.OnEvent(func(method string, params json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, method+" "+string(params))
	})
	for range 2 {
		if err := c.Call(callCtx(t), "Test.empty", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.OnEvent(nil)
	if err := c.Call(callCtx(t), "Test.empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`Target.targetCreated {"id":1}`, `Target.targetCreated {"id":2}`}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
