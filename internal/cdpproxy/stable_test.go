package cdpproxy

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

func TestStableBrowserPath(t *testing.T) {
	tests := []struct {
		path   string
		id     string
		stable bool
	}{
		{"/", "", true},
		{"/devtools/browser", "", true},
		{"/devtools/browser/", "", true},
		{"/devtools/browser/0b7e-stale", "0b7e-stale", true},
		{"/devtools/browser/a/b", "", false},
		{"/devtools/page/P1", "", false},
		{"/json/version", "", false},
		{"/devtools/browserx", "", false},
		{"//", "", false},
	}
	for _, tt := range tests {
		id, ok := stableBrowserPath(tt.path)
		if ok != tt.stable || id != tt.id {
			t.Errorf("stableBrowserPath(%q) = %q, %v; want %q, %v", tt.path, id, ok, tt.id, tt.stable)
		}
	}
}

// TestProxyStableEndpoint connects WebSockets at the stable paths, with
// the token in the header and in the query, and checks that each reaches
// Chromium's current browser target, that only a stale id is logged as
// redirected, and that discovery still hands out the real URL.
func TestProxyStableEndpoint(t *testing.T) {
	const token = "stable-endpoint-token-0123456789"
	fc := newFakeChrome(t)
	logs := &scrytest.LogBuffer{}
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: token,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	bearer := http.Header{"Authorization": {"Bearer " + token}}

	tests := []struct {
		name   string
		path   string
		header http.Header
		logged bool
	}{
		{"root, header", "/", bearer, false},
		{"root, query", "/?token=" + token, nil, false},
		{"browser, header", "/devtools/browser", bearer, false},
		{"stale id, query", "/devtools/browser/STALE-ID?token=" + token, nil, true},
		{"current id, header", "/devtools/browser/B1", bearer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fc.requests())
			c, resp, err := b.dial(t, "ws://"+b.public()+tt.path, tt.header)
			if err != nil {
				t.Fatalf("dial %s: %v (%v)", tt.path, err, resp)
			}
			roundTrip(t, c, websocket.MessageText, []byte(`{"id":1,"method":"Browser.getVersion"}`))
			c.Close(websocket.StatusNormalClosure, "")
			reqs := fc.requests()[before:]
			var upgrades []string
			for _, r := range reqs {
				if r.Header.Get("Upgrade") != "" {
					upgrades = append(upgrades, r.URL.RequestURI())
				}
			}
			if len(upgrades) != 1 || !strings.HasPrefix(upgrades[0], "/devtools/browser/B1") {
				t.Errorf("chromium saw upgrades %q, want one to /devtools/browser/B1", upgrades)
			}
			for _, u := range upgrades {
				if strings.Contains(u, token) {
					t.Errorf("chromium saw the token: %q", u)
				}
			}
			redirected := strings.Contains(logs.String(), "path="+strings.SplitN(tt.path, "?", 2)[0]+" ") &&
				strings.Contains(logs.String(), "redirected a stale browser WebSocket")
			if tt.logged && !redirected {
				t.Errorf("no INFO line saying %s was redirected; log:\n%s", tt.path, logs.String())
			}
		})
	}
	if n := strings.Count(logs.String(), "redirected a stale browser WebSocket"); n != 1 {
		t.Errorf("%d redirect lines, want 1 (the stale id only); log:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}

	t.Run("no token", func(t *testing.T) {
		c, resp, err := b.dial(t, "ws://"+b.public()+"/", nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("upgrade at / without the token succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("got %v, want 401", resp)
		}
	})
	t.Run("discovery unchanged", func(t *testing.T) {
		code, body := b.get(t, b.public(), "/json/version", bearer)
		if code != http.StatusOK || !strings.Contains(string(body), "ws://"+b.public()+"/devtools/browser/B1?token=") {
			t.Errorf("GET /json/version = %d %s, want the real browser URL", code, body)
		}
	})
	t.Run("page targets are not redirected", func(t *testing.T) {
		c, resp, err := b.dial(t, "ws://"+b.public()+"/devtools/page/GONE", bearer)
		if err == nil {
			c.CloseNow()
			t.Fatal("upgrade to a gone page succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("got %v, want Chrome's 404", resp)
		}
	})
}
