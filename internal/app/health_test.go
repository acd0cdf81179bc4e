package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// stubBrowser is Chromium's DevTools endpoint as /readyz sees it:
// /json/version (which can be held, as a Chromium too busy to answer) and
// one browser WebSocket whose calls are answered, or not while stalled.
// It counts discovery requests and WebSocket upgrades, so a test can tell
// how many connections scry made.
type stubBrowser struct {
	addr     string
	versions atomic.Int32
	upgrades atomic.Int32
	stalled  atomic.Bool   // calls get no answer
	asked    chan struct{} // a /json/version request arrived
	gate     chan struct{} // closed: /json/version answers
}

// newStubBrowser starts the stub; held makes /json/version wait until
// release is called (or the test ends).
func newStubBrowser(t *testing.T, held bool) (f *stubBrowser, release func()) {
	t.Helper()
	f = &stubBrowser{asked: make(chan struct{}, 64), gate: make(chan struct{})}
	var once sync.Once
	release = func() { once.Do(func() { close(f.gate) }) }
	if !held {
		release()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/json/version", func(w http.ResponseWriter, r *http.Request) {
		f.versions.Add(1)
		f.asked <- struct{}{}
		select {
		case <-f.gate:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, `{"Browser":"Chrome/156.0","webSocketDebuggerUrl":"ws://%s/devtools/browser/B"}`, r.Host)
	})
	mux.HandleFunc("/devtools/browser/B", func(w http.ResponseWriter, r *http.Request) {
		// Counted before the 101 goes out: the client may go on (and
		// the test read the count) the moment it has the answer.
		f.upgrades.Add(1)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var req struct {
				ID int64 `json:"id"`
			}
			if json.Unmarshal(b, &req) != nil || f.stalled.Load() {
				continue
			}
			_ = c.Write(r.Context(), websocket.MessageText, fmt.Appendf(nil, `{"id":%d,"result":{}}`, req.ID))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first: the server's Close waits for handlers
	f.addr = srv.Listener.Addr().String()
	return f, release
}

func startSleep(t *testing.T) *supervise.Process {
	t.Helper()
	p, err := supervise.Start(supervise.Spec{Name: "chromium", Path: "sleep", Args: []string{"60"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), time.Second) })
	return p
}

// get calls the handler as a client would and returns the status. A
// handler that never answers fails the test after a minute: the stub's
// stalls and held dials last until the test releases them, so an answer
// that comes at all came from the handler's own budget.
func get(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	}()
	select {
	case <-done:
		return rec.Code
	case <-time.After(time.Minute):
		t.Fatalf("%s: no answer while Chromium does not answer: it waits on something other than its own budget", path)
		return 0
	}
}

func newHealth(t *testing.T, p *supervise.Process, addr string, timeout time.Duration) (*health, *browserConn) {
	t.Helper()
	b := &browserConn{addr: addr, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(b.Close)
	return &health{
		chromium: func() *supervise.Process { return p },
		conn:     b,
		timeout:  timeout,
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, b
}

// Each state the design names, with the answer it must get: /healthz
// follows Chromium's process only; /readyz follows a CDP call.
func TestHealthHandlerStates(t *testing.T) {
	f, _ := newStubBrowser(t, false)
	const timeout = 300 * time.Millisecond

	t.Run("no chromium", func(t *testing.T) {
		h, _ := newHealth(t, nil, f.addr, timeout)
		if code := get(t, h.handler(), "/healthz"); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz = %d, want 503", code)
		}
	})

	p := startSleep(t)
	h, _ := newHealth(t, p, f.addr, timeout)
	hh := h.handler()
	t.Run("ready", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code := get(t, hh, path); code != http.StatusOK {
				t.Errorf("%s = %d, want 200", path, code)
			}
		}
	})

	t.Run("stalled", func(t *testing.T) {
		f.stalled.Store(true)
		defer f.stalled.Store(false)
		// Stalled calls are never answered: a 503 at all is the budget's.
		if code := get(t, hh, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("stalled browser: /readyz = %d, want 503", code)
		}
		if code := get(t, hh, "/healthz"); code != http.StatusOK {
			t.Errorf("stalled browser: /healthz = %d, want 200 (the process is alive)", code)
		}
	})

	t.Run("recovered", func(t *testing.T) {
		if code := get(t, hh, "/readyz"); code != http.StatusOK {
			t.Errorf("after the stall: /readyz = %d, want 200", code)
		}
	})

	t.Run("dead", func(t *testing.T) {
		if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		if code := get(t, hh, "/healthz"); code != http.StatusServiceUnavailable {
			t.Errorf("dead chromium: /healthz = %d, want 503", code)
		}
	})
}

// /readyz uses scry's one persistent connection: many probes, one
// discovery request and one WebSocket.
func TestReadyzReusesOneConnection(t *testing.T) {
	f, _ := newStubBrowser(t, false)
	h, _ := newHealth(t, startSleep(t), f.addr, 3*time.Second)
	hh := h.handler()
	for i := range 20 {
		if code := get(t, hh, "/readyz"); code != http.StatusOK {
			t.Fatalf("probe %d: /readyz = %d, want 200", i, code)
		}
	}
	if v, u := f.versions.Load(), f.upgrades.Load(); v != 1 || u != 1 {
		t.Errorf("20 probes made %d discovery requests and %d WebSockets, want 1 and 1", v, u)
	}
}

// While the internal connection is being redialled for another caller
// with a long deadline (a cookie snapshot) and Chromium is slow to answer,
// /readyz still answers 503 within its own budget; once Chromium answers,
// every waiter shares that one dial.
func TestReadyzWithinBudgetWhileRedialling(t *testing.T) {
	f, release := newStubBrowser(t, true)
	const timeout = 300 * time.Millisecond
	h, b := newHealth(t, startSleep(t), f.addr, timeout)
	hh := h.handler()

	snap := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := b.Get(ctx)
		snap <- err
	}()
	select {
	case <-f.asked: // the snapshot's dial is waiting on Chromium
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot never dialled")
	}
	// The dial is held until release: a probe answered at all was
	// answered within its own budget, not after the dial.
	for i := range 3 {
		if code := get(t, hh, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("probe %d during the dial: /readyz = %d, want 503", i, code)
		}
		select {
		case err := <-snap:
			t.Fatalf("the snapshot's dial ended (%v) before Chromium answered", err)
		default:
		}
	}
	release()
	select {
	case err := <-snap:
		if err != nil {
			t.Fatalf("the snapshot's Get after Chromium answered: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot's Get never returned")
	}
	if code := get(t, hh, "/readyz"); code != http.StatusOK {
		t.Errorf("after the dial: /readyz = %d, want 200", code)
	}
	if v, u := f.versions.Load(), f.upgrades.Load(); v != 1 || u != 1 {
		t.Errorf("%d discovery requests and %d WebSockets, want one dial shared by every waiter", v, u)
	}
}

// After Close, Get fails at once instead of dialling a connection nobody
// would close.
func TestBrowserConnClosed(t *testing.T) {
	f, _ := newStubBrowser(t, false)
	b := &browserConn{addr: f.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Get(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := b.Get(ctx); err == nil {
		t.Error("Get after Close succeeded")
	}
	if u := f.upgrades.Load(); u != 1 {
		t.Errorf("%d WebSockets, want 1", u)
	}
}
