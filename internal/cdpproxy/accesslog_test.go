package cdpproxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dataplanelabs/scry/internal/ratelog"
	"github.com/dataplanelabs/scry/internal/scrytest"
)

// newLog is a debug-level JSON logger writing to a buffer.
func newLog() (*slog.Logger, *scrytest.LogBuffer) {
	lb := &scrytest.LogBuffer{}
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// TestProxyAccessLog: every answer on the door gets one debug record with
// the client, method, path, status, duration and bytes, scry's own
// answers and refusals included; a spliced WebSocket gets its info line
// when it closes. Neither the token nor the Authorization header ever
// reaches the log.
func TestProxyAccessLog(t *testing.T) {
	fc := newFakeChrome(t)
	const tok = "s3cret-token-0123456789"
	const wrong = "wrong-token-9876543210"
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "scry_up 1") })
	log, lb := newLog()
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: tok, Health: health, Metrics: metrics, Logger: log})
	bearer := http.Header{"Authorization": {"Bearer " + tok}}

	tests := []struct {
		method, target string
		header         http.Header
		wantPath       string
		wantCode       int
	}{
		{"GET", "/json/version?token=" + tok, nil, "/json/version", http.StatusOK},
		{"GET", "/json/list", bearer, "/json/list", http.StatusOK},
		{"GET", "/json/protocol?token=" + tok, nil, "/json/protocol", http.StatusOK},
		{"GET", "/json/activate/NOPE?token=" + tok, nil, "/json/activate/NOPE", http.StatusNotFound},
		{"GET", "/json/close/NOPE", bearer, "/json/close/NOPE", http.StatusNotFound},
		{"PUT", "/json/new?https%3A%2F%2Fexample.com%2F%3Ftoken%3D" + tok + "&token=" + tok, nil, "/json/new", http.StatusOK},
		{"PUT", "/json/new/" + tok + "?about:blank", bearer, "/json/new/REDACTED", http.StatusOK},
		{"GET", "/healthz", nil, "/healthz", http.StatusOK},
		{"GET", "/readyz?token=" + tok, nil, "/readyz", http.StatusOK},
		{"GET", "/metrics", bearer, "/metrics", http.StatusOK},
		{"GET", "/metrics?token=" + wrong, nil, "/metrics", http.StatusUnauthorized},
		{"GET", "/json/version", http.Header{"Authorization": {"Bearer " + wrong}}, "/json/version", http.StatusUnauthorized},
		{"GET", "/devtools/browser/B1?token=" + tok, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"c2hvcnQ="}}, "/devtools/browser/B1", http.StatusBadRequest},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, tt.method, "http://"+b.addr+tt.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = b.public()
		for k, v := range tt.header {
			req.Header[k] = v
		}
		resp, err := b.client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.wantPath, err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s %s = %d %q, want %d", tt.method, tt.wantPath, resp.StatusCode, body.Bytes(), tt.wantCode)
		}
		var got []map[string]any
		waitFor(t, "the access record of "+tt.method+" "+tt.wantPath, func() bool {
			got = nil
			for _, r := range lb.Records(t) {
				if r["msg"] == "request" && r["method"] == tt.method && r["path"] == tt.wantPath && r["status"] == float64(resp.StatusCode) {
					got = append(got, r)
				}
			}
			return len(got) > 0
		})
		if len(got) != 1 {
			t.Errorf("%s %s: %d access records, want 1: %v", tt.method, tt.wantPath, len(got), got)
		}
		r := got[0]
		if r["level"] != "DEBUG" {
			t.Errorf("%s %s: access record at level %v, want DEBUG", tt.method, tt.wantPath, r["level"])
		}
		if c, _ := r["client"].(string); c == "" || !strings.HasPrefix(c, "127.0.0.1:") {
			t.Errorf("%s %s: client %v, want the client's address", tt.method, tt.wantPath, r["client"])
		}
		if r["bytes"] != float64(body.Len()) {
			t.Errorf("%s %s: bytes %v, want the %d sent", tt.method, tt.wantPath, r["bytes"], body.Len())
		}
		if d, ok := r["duration"].(float64); !ok || d <= 0 {
			t.Errorf("%s %s: duration %v, want a positive duration", tt.method, tt.wantPath, r["duration"])
		}
	}

	// A WebSocket: its info line when it closes, with what it carried.
	c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/browser/B1?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, websocket.MessageText, []byte("ping"))
	_ = c.CloseNow()
	var closed map[string]any
	waitFor(t, "the WebSocket's close record", func() bool {
		for _, r := range lb.Records(t) {
			if r["msg"] == "cdp connection closed" {
				closed = r
				return true
			}
		}
		return false
	})
	if closed["level"] != "INFO" || closed["path"] != "/devtools/browser/B1" || closed["reason"] == nil || closed["duration"] == nil {
		t.Errorf("close record %v, want INFO with path, duration and reason", closed)
	}
	if client, _ := closed["client"].(string); net.ParseIP(strings.Split(client, ":")[0]) == nil {
		t.Errorf("close record client %v, want the client's address", closed["client"])
	}
	if in, out := closed["bytes_in"].(float64), closed["bytes_out"].(float64); in < 4 || out < 4 {
		t.Errorf("close record bytes_in %v, bytes_out %v, want at least the 4-byte message each way", in, out)
	}

	all := lb.String()
	for name, secret := range map[string]string{"token": tok, "wrong token": wrong} {
		if strings.Contains(all, secret) {
			t.Errorf("the %s appears in the log:\n%s", name, all)
		}
	}
	for _, r := range lb.Records(t) {
		for k := range r {
			if k := strings.ToLower(k); strings.Contains(k, "authorization") || strings.Contains(k, "header") || k == "query" || k == "url" {
				t.Errorf("a record carries %s: %v", k, r)
			}
		}
	}
}

// TestRefusalFloodIsNotLogged: a client refused over and over gets a burst
// of WARN lines, not one per request; every refusal is still counted, and
// the access log keeps one debug record each. The bridge's limiter refills
// once an hour here, so the count does not depend on how fast the loop
// runs (package ratelog tests the refill against a clock of its own).
func TestRefusalFloodIsNotLogged(t *testing.T) {
	fc := newFakeChrome(t)
	log, lb := newLog()
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: "s3cret-token-0123456789", Logger: log},
		func(p *Proxy) { p.refusalLog = ratelog.New(refusalBurst, time.Hour) })
	const n = 100
	for range n {
		if code, _ := b.get(t, b.public(), "/json/version", nil); code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	}
	warned, requests := 0, 0
	for _, r := range lb.Records(t) {
		switch r["msg"] {
		case "refused":
			warned++
		case "request":
			requests++
		}
	}
	if warned != refusalBurst {
		t.Errorf("%d refusals logged at WARN for %d refused requests, want the burst, %d", warned, n, refusalBurst)
	}
	if got := len(b.obs.refusals()); got != n {
		t.Errorf("%d refusals counted, want %d", got, n)
	}
	if requests != n {
		t.Errorf("%d debug access records, want %d", requests, n)
	}
}
