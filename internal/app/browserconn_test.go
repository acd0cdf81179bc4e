package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// Every change Chromium reports for a page or frame nudges the cookie
// snapshot, the same URL again included (a reload, a login form posted to
// its own URL); other targets and other events do not.
func TestNavigationEvents(t *testing.T) {
	info := func(id, typ, url string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"targetInfo": map[string]any{"targetId": id, "type": typ, "url": url, "title": "t"}})
		return b
	}
	steps := []struct {
		method string
		params json.RawMessage
		nudge  bool
	}{
		{"Target.targetCreated", info("A", "page", "about:blank"), false},
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/login"), true},
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/login"), true}, // the form posted to itself
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/login"), true}, // a reload
		{"Target.targetInfoChanged", info("F", "iframe", "https://idp.example/"), true},
		{"Target.targetInfoChanged", info("W", "service_worker", "https://a.example/sw.js"), false},
		{"Target.targetInfoChanged", info("S", "shared_worker", "https://a.example/w.js"), false},
		{"Target.targetDestroyed", json.RawMessage(`{"targetId":"A"}`), false},
		{"Target.attachedToTarget", json.RawMessage(`{"targetInfo":{"type":"page"}}`), false},
		{"Target.targetInfoChanged", json.RawMessage(`not json`), false},
	}
	nav := make(chan struct{}, 1)
	for i, st := range steps {
		nudgeOnTargetChange(nav, st.method, st.params)
		got := false
		select {
		case <-nav:
			got = true
		default:
		}
		if got != st.nudge {
			t.Errorf("step %d (%s %s): nudged %v, want %v", i, st.method, st.params, got, st.nudge)
		}
	}
}

// fakeCDP is a browser endpoint for browserConn: /json/version and one
// WebSocket that answers Target.setDiscoverTargets as the test says,
// counts those calls, and sends the events the test asks for.
type fakeCDP struct {
	addr   string
	fail   int           // the first fail subscriptions answer an error
	hold   chan struct{} // if not nil, each subscription's answer waits for it
	got    chan struct{} // signalled when a subscription arrives
	events chan string   // events to send, as raw JSON
	subs   atomic.Int32
}

func newFakeCDP(t *testing.T, f *fakeCDP) *fakeCDP {
	t.Helper()
	f.got = make(chan struct{}, 16)
	f.events = make(chan string, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("/json/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Browser":"Chrome/156.0","webSocketDebuggerUrl":"ws://%s/devtools/browser/B"}`, r.Host)
	})
	mux.HandleFunc("/devtools/browser/B", f.serveWS)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	return f
}

func (f *fakeCDP) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	var wmu sync.Mutex
	send := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	go func() {
		for {
			select {
			case ev := <-f.events:
				send([]byte(ev))
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			ID     int64  `json:"id"`
			Method string `json:"method"`
		}
		if json.Unmarshal(b, &req) != nil {
			return
		}
		if req.Method != "Target.setDiscoverTargets" {
			send(fmt.Appendf(nil, `{"id":%d,"result":{}}`, req.ID))
			continue
		}
		n := int(f.subs.Add(1))
		f.got <- struct{}{}
		go func() {
			if f.hold != nil {
				select {
				case <-f.hold:
				case <-ctx.Done():
					return
				}
			}
			if n <= f.fail {
				send(fmt.Appendf(nil, `{"id":%d,"error":{"code":-32000,"message":"not now"}}`, req.ID))
				return
			}
			send(fmt.Appendf(nil, `{"id":%d,"result":{}}`, req.ID))
		}()
	}
}

// A subscription to target events that failed is retried at the next Get,
// and only a successful one counts.
func TestWatchRetriedAfterFailure(t *testing.T) {
	f := newFakeCDP(t, &fakeCDP{fail: 1})
	b := &browserConn{addr: f.addr, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nav := b.Navigations()
	c, err := b.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	watched := b.watched == c
	b.mu.Unlock()
	if watched {
		t.Error("a failed subscription counts as watched")
	}
	if c2, err := b.Get(ctx); err != nil || c2 != c {
		t.Fatalf("second Get: %v, %v; want the same connection", c2, err)
	}
	if _, err := b.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.subs.Load(); n != 2 {
		t.Fatalf("%d Target.setDiscoverTargets calls, want 2 (one failed, one retried)", n)
	}
	f.events <- `{"method":"Target.targetInfoChanged","params":{"targetInfo":{"targetId":"A","type":"page","url":"https://a.example/"}}}`
	select {
	case <-nav:
	case <-ctx.Done():
		t.Fatal("no navigation after the retried subscription")
	}
}

// The subscription has its own deadline: a caller whose context ends
// while it runs (a /readyz probe) gets its connection back at once, and
// the subscription still completes and is not repeated.
func TestWatchOutlivesItsCaller(t *testing.T) {
	f := newFakeCDP(t, &fakeCDP{hold: make(chan struct{})})
	var logs scrytest.LogBuffer
	b := &browserConn{addr: f.addr, log: slog.New(slog.NewTextHandler(&logs, nil))}
	defer b.Close()
	b.Navigations()
	short, cancel := context.WithCancel(context.Background())
	go func() {
		<-f.got // the subscription is in flight
		cancel()
	}()
	c, err := b.Get(short)
	if err != nil {
		t.Fatalf("Get with a context that ended during the subscription: %v", err)
	}
	close(f.hold)
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if c2, err := b.Get(ctx); err != nil || c2 != c {
		t.Fatalf("second Get: %v, %v; want the same connection", c2, err)
	}
	b.mu.Lock()
	watched := b.watched == c
	b.mu.Unlock()
	if !watched {
		t.Error("the subscription Chromium accepted was not recorded")
	}
	if n := f.subs.Load(); n != 1 {
		t.Errorf("%d Target.setDiscoverTargets calls, want 1", n)
	}
	if strings.Contains(logs.String(), "cannot watch navigations") {
		t.Errorf("the caller's deadline failed the subscription:\n%s", logs.String())
	}
}
