package cdpproxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestProxyNoTokenDoor: the door without the token (Selenium's) serves
// discovery and WebSockets without it, never hands the token out, keeps
// the Host and Origin checks, and shares the connection cap with the main
// door, which still wants the token.
func TestProxyNoTokenDoor(t *testing.T) {
	const token = "no-token-door-token-0123456789ab"
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: token, MaxConns: 1})
	srv := httptest.NewServer(b.p.NoToken())
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	open := &bridge{p: b.p, obs: b.obs, srv: srv, addr: srv.Listener.Addr().String(), port: port}

	code, body := open.get(t, "127.0.0.1:"+port, "/json/version", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /json/version on the no-token door = %d %s", code, body)
	}
	if strings.Contains(string(body), token) {
		t.Errorf("the no-token door handed out the token: %s", body)
	}
	ws := decodeTargets(t, body)[0]["webSocketDebuggerUrl"].(string)
	if want := "ws://127.0.0.1:" + port + "/devtools/browser/B1"; ws != want {
		t.Errorf("webSocketDebuggerUrl = %s, want %s", ws, want)
	}
	c, _, err := open.dial(t, ws, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", ws, err)
	}
	roundTrip(t, c, websocket.MessageText, []byte("selenium"))

	// One cap for both doors: the main door is full now.
	_, resp, err := b.dial(t, "ws://"+b.public()+"/", http.Header{"Authorization": {"Bearer " + token}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second connection over CDP_MAX_CONNS=1 through the main door: %v %v, want 503", resp, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	if code, _ := b.get(t, b.public(), "/json/version", nil); code != http.StatusUnauthorized {
		t.Errorf("main door without the token = %d, want 401", code)
	}
	if code, body := open.get(t, "evil.example:"+port, "/json/version", nil); code != http.StatusForbidden {
		t.Errorf("no-token door with a foreign Host = %d %s, want 403", code, body)
	}
	if code, body := open.get(t, "127.0.0.1:"+port, "/json/version", http.Header{"Origin": {"https://evil.example"}}); code != http.StatusForbidden {
		t.Errorf("no-token door with a web page's Origin = %d %s, want 403", code, body)
	}
}
