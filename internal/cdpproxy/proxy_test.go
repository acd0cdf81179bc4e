package cdpproxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/hostpolicy"
)

// fakeChrome mimics the parts of Chrome's DevTools HTTP handler the bridge
// depends on: the Host check, URLs built from the Host it was sent, the
// Origin refusal on WebSocket upgrades, and a WebSocket that echoes.
type fakeChrome struct {
	srv  *httptest.Server
	addr string // 127.0.0.1:port

	mu   sync.Mutex
	seen []*http.Request // every request Chrome accepted, as it saw it
}

const chromeHostMessage = "Host header is specified and is not an IP address or localhost."

func newFakeChrome(t *testing.T) *fakeChrome {
	t.Helper()
	fc := &fakeChrome{}
	fc.srv = httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(fc.srv.Close)
	fc.addr = fc.srv.Listener.Addr().String()
	return fc
}

func (fc *fakeChrome) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if r.Host != "" && net.ParseIP(strings.Trim(host, "[]")) == nil && host != "localhost" {
		http.Error(w, chromeHostMessage, http.StatusInternalServerError)
		return
	}
	fc.mu.Lock()
	fc.seen = append(fc.seen, r.Clone(context.Background()))
	fc.mu.Unlock()

	ws := "ws://" + r.Host
	frontend := "/devtools/inspector.html?ws=" + r.Host
	// Chrome (156) takes the first segment after /json as the command
	// and ignores what follows: /json/new/x opens a tab.
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/json/"); ok {
		cmd, _, _ := strings.Cut(rest, "/")
		path = "/json/" + cmd
	}
	switch path {
	case "/json/version":
		writeJSON(w, map[string]string{
			"Browser":              "Chrome/126.0.6478.126",
			"Protocol-Version":     "1.3",
			"webSocketDebuggerUrl": ws + "/devtools/browser/B1",
		})
	case "/json", "/json/list":
		writeJSON(w, []map[string]string{{
			"id": "P1", "type": "page", "url": "about:blank", "title": "about:blank",
			"devtoolsFrontendUrl":  frontend + "/devtools/page/P1",
			"webSocketDebuggerUrl": ws + "/devtools/page/P1",
		}})
	case "/json/new":
		// Chrome (156) opens the raw query up to its first '&',
		// unescaped, and only on PUT.
		if r.Method != http.MethodPut {
			http.Error(w, "Using unsafe HTTP verb "+r.Method+" to invoke /json/new. This action supports only PUT verb.",
				http.StatusMethodNotAllowed)
			return
		}
		raw, _, _ := strings.Cut(r.URL.RawQuery, "&")
		target, err := url.QueryUnescape(raw)
		if err != nil || target == "" {
			target = "about:blank"
		}
		writeJSON(w, map[string]string{
			"id": "P2", "type": "page", "url": target,
			"devtoolsFrontendUrl":  frontend + "/devtools/page/P2",
			"webSocketDebuggerUrl": ws + "/devtools/page/P2",
		})
	case "/json/protocol":
		writeJSON(w, map[string]any{"domains": []string{}})
	case "/devtools/browser/B1", "/devtools/page/P1", "/devtools/page/SETTINGS", "/devtools/page/UNKNOWN":
		if origin := r.Header.Get("Origin"); origin != "" {
			http.Error(w, "Rejected an incoming WebSocket connection from the "+origin+" origin. "+
				"Use the command line flag --remote-allow-origins="+origin+" to allow connections from this origin "+
				"or --remote-allow-origins=* to allow all origins.", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		echo(r.Context(), c)
	default:
		http.Error(w, "No such target id: "+strings.TrimPrefix(r.URL.Path, "/devtools/page/"), http.StatusNotFound)
	}
}

// cookieEvent is what fakeChrome sends before echoing a message that
// mentions "emitCookieEvent": an event carrying a cookie, as Chromium's
// raw-header events do.
const cookieEvent = `{"method":"Network.requestWillBeSentExtraInfo","params":{"requestId":"1","associatedCookies":[{"blockedReasons":[],"cookie":{"name":"sid","value":"fake-session-secret","httpOnly":true}}],"headers":{"Cookie":"sid=fake-session-secret","Accept":"*/*"}},"sessionId":"S1"}`

func echo(ctx context.Context, c *websocket.Conn) {
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText {
			b, err := io.ReadAll(rd)
			if err != nil {
				return
			}
			if bytes.Contains(b, []byte("emitCookieEvent")) {
				if c.Write(ctx, websocket.MessageText, []byte(cookieEvent)) != nil {
					return
				}
			}
			if c.Write(ctx, typ, b) != nil {
				return
			}
			continue
		}
		wr, err := c.Writer(ctx, typ)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	b, _ := json.MarshalIndent(v, "", "   ")
	_, _ = w.Write(b)
}

// requests returns what Chrome received.
func (fc *fakeChrome) requests() []*http.Request {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]*http.Request(nil), fc.seen...)
}

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	refused  []string
	commands []string // refused CDP commands: "role method"
	opened   int
	closed   int
}

func (r *recorder) Refused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, reason)
}

func (r *recorder) ConnOpened() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened++
}

func (r *recorder) RefusedCommand(role, method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = append(r.commands, role+" "+method)
}

func (r *recorder) ConnClosed(time.Duration, int64, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
}

func (r *recorder) refusals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.refused...)
}

// bridge is a Proxy serving on a real loopback listener.
type bridge struct {
	p    *Proxy
	obs  *recorder
	srv  *httptest.Server
	addr string // 127.0.0.1:port
	port string
}

const publicName = "scry-0.scry"

// newBridge serves a Proxy for cfg on a loopback listener, filling in a
// quiet logger (unless cfg has one) and a recording observer. adjust, if
// any, changes the Proxy before it serves.
func newBridge(t *testing.T, cfg Config, adjust ...func(*Proxy)) *bridge {
	t.Helper()
	obs := &recorder{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.DialTimeout = 2 * time.Second
	cfg.Observer = obs
	// As scry configures the door: refusals name its settings.
	cfg.Policy.HostsVariable = "CDP_ALLOWED_HOSTS"
	cfg.Policy.OriginsVariable = "CDP_ALLOWED_ORIGINS"
	p := New(cfg)
	for _, f := range adjust {
		f(p)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		p.Close()
		srv.Close()
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return &bridge{p: p, obs: obs, srv: srv, addr: srv.Listener.Addr().String(), port: port}
}

// allowPublic is the policy of a bridge agents reach as "scry-0.scry".
var allowPublic = hostpolicy.Policy{AllowedHosts: []string{publicName}}

// public is the host:port agents use for the bridge.
func (b *bridge) public() string { return publicName + ":" + b.port }

// client returns an HTTP client that reaches the bridge whatever host name
// a URL names, the way DNS would send "scry-0.scry" there.
func (b *bridge) client() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, b.addr)
		},
		DisableKeepAlives: true,
	}}
}

// get fetches path from the bridge with the given Host and headers.
func (b *bridge) get(t *testing.T, host, path string, header http.Header) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, body
}

// discover returns the browser WebSocket URL the bridge hands out.
func (b *bridge) discover(t *testing.T) string {
	t.Helper()
	code, body := b.get(t, b.public(), "/json/version", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /json/version = %d %s", code, body)
	}
	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode /json/version %s: %v", body, err)
	}
	return v.WS
}

// dial opens a CDP WebSocket through the bridge.
func (b *bridge) dial(t *testing.T, wsURL string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:      b.client(),
		HTTPHeader:      header,
		CompressionMode: websocket.CompressionDisabled,
	})
	if c != nil {
		c.SetReadLimit(64 << 20)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func (b *bridge) mustDial(t *testing.T) *websocket.Conn {
	t.Helper()
	c, _, err := b.dial(t, b.discover(t), nil)
	if err != nil {
		t.Fatalf("dial through bridge: %v", err)
	}
	return c
}

// roundTrip sends msg and wants it back unchanged. It reads while it
// writes: the echo of a large message starts before the last byte is sent,
// and a writer that waited for its own write to finish would test the
// sockets' buffer sizes (and deadlock when they are smaller than msg), not
// the proxy.
func roundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	written := make(chan error, 1)
	go func() { written <- c.Write(ctx, typ, msg) }()
	gotTyp, got, err := c.Read(ctx)
	if werr := <-written; werr != nil {
		t.Fatalf("write %d bytes: %v", len(msg), werr)
	}
	if err != nil {
		t.Fatalf("read echo of %d bytes: %v", len(msg), err)
	}
	if gotTyp != typ || !bytes.Equal(got, msg) {
		t.Fatalf("echo differs: got %v %d bytes, sent %v %d bytes", gotTyp, len(got), typ, len(msg))
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyDiscovery(t *testing.T) {
	fc := newFakeChrome(t)
	tests := []struct {
		name     string
		path     string
		token    string // Config.Token
		header   http.Header
		query    string
		scheme   string
		frontend bool
	}{
		{name: "version", path: "/json/version", scheme: "ws"},
		{name: "list", path: "/json/list", scheme: "ws", frontend: true},
		{name: "json", path: "/json", scheme: "ws", frontend: true},
		{name: "behind TLS terminator", path: "/json/version", scheme: "wss",
			header: http.Header{"X-Forwarded-Proto": {"https"}}},
		{name: "list behind TLS terminator", path: "/json/list", scheme: "wss", frontend: true,
			header: http.Header{"X-Forwarded-Proto": {"HTTPS"}}},
		{name: "token in query", path: "/json/version", query: "?token=abc", token: "abc", scheme: "ws"},
		{name: "token as bearer", path: "/json/list", token: "xyz", scheme: "ws", frontend: true,
			header: http.Header{"Authorization": {"Bearer xyz"}}},
		{name: "token as lower-case bearer", path: "/json/version", token: "xyz", scheme: "ws",
			header: http.Header{"Authorization": {"bearer xyz"}}},
		{name: "stray token without CDP_TOKEN", path: "/json/version", query: "?token=abc", scheme: "ws"},
		{name: "token twice", path: "/json/list", query: "?token=abc&token=abc", token: "abc", scheme: "ws", frontend: true},
		{name: "version with a trailing segment", path: "/json/version/x", scheme: "ws"},
		{name: "list with a trailing segment", path: "/json/list/x", scheme: "ws", frontend: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: tt.token})
			code, body := b.get(t, b.public(), tt.path+tt.query, tt.header)
			if code != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tt.path, code, body)
			}
			for _, target := range decodeTargets(t, body) {
				ws, _ := target["webSocketDebuggerUrl"].(string)
				u, err := url.Parse(ws)
				if err != nil {
					t.Fatalf("webSocketDebuggerUrl %q: %v", ws, err)
				}
				if u.Scheme != tt.scheme || u.Host != b.public() {
					t.Errorf("webSocketDebuggerUrl = %q, want %s://%s/...", ws, tt.scheme, b.public())
				}
				if got := u.Query().Get("token"); got != tt.token {
					t.Errorf("webSocketDebuggerUrl %q: token %q, want %q", ws, got, tt.token)
				}
				if tt.frontend {
					fe, _ := target["devtoolsFrontendUrl"].(string)
					fu, err := url.Parse(fe)
					if err != nil {
						t.Fatalf("devtoolsFrontendUrl %q: %v", fe, err)
					}
					want := b.public() + "/devtools/page/P1"
					if tt.token != "" {
						want += "?token=" + tt.token
					}
					if got := fu.Query().Get(tt.scheme); got != want {
						t.Errorf("devtoolsFrontendUrl %q: %s=%q, want %q", fe, tt.scheme, got, want)
					}
				}
			}
			// Chrome saw its own loopback Host and nothing meant for scry.
			reqs := fc.requests()
			last := reqs[len(reqs)-1]
			if last.Host != fc.addr {
				t.Errorf("chrome got Host %q, want %q", last.Host, fc.addr)
			}
			for _, h := range []string{"Authorization", "X-Forwarded-Proto", "Origin"} {
				if v := last.Header.Get(h); v != "" {
					t.Errorf("chrome got %s: %q", h, v)
				}
			}
			// Without CDP_TOKEN a token parameter is not scry's: it passes.
			if want := strings.TrimPrefix(tt.query, "?"); tt.token != "" && last.URL.RawQuery != "" ||
				tt.token == "" && last.URL.RawQuery != want {
				t.Errorf("chrome got query %q (CDP_TOKEN %q, sent %q)", last.URL.RawQuery, tt.token, tt.query)
			}
		})
	}
}

// TestProxyNewTarget: /json/new's query is the URL of the page to open,
// which Chrome reads raw, so scry takes out its own token segment and
// nothing else, byte for byte, and passes the method (Chrome wants PUT).
func TestProxyNewTarget(t *testing.T) {
	fc := newFakeChrome(t)
	const tok = "s3cret"
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	tests := []struct {
		name      string
		path      string // "" means /json/new
		token     string // Config.Token
		method    string // "" means PUT
		query     string
		header    http.Header
		wantCode  int
		wantQuery string // what Chrome got
	}{
		{name: "token appended", token: tok, query: "https://example.com/?a=b&c=d&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/?a=b&c=d"},
		{name: "escapes and order kept", token: tok, query: "https://example.com/s?q=a%20b&z=1&a=%2F&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/s?q=a%20b&z=1&a=%2F"},
		{name: "target's own token before scry's", token: tok, query: "https://example.com/?token=theirs&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/?token=theirs"},
		{name: "only scry's token: about:blank", token: tok, query: "token=" + tok,
			wantCode: 200, wantQuery: ""},
		{name: "bearer, target's token untouched", token: tok, query: "https://example.com/?a=b&token=theirs", header: bearer,
			wantCode: 200, wantQuery: "https://example.com/?a=b&token=theirs"},
		{name: "bearer and scry's token too", token: tok, query: "https://example.com/?a=b&token=" + tok, header: bearer,
			wantCode: 200, wantQuery: "https://example.com/?a=b"},
		{name: "no CDP_TOKEN: token belongs to the target", query: "https://example.com/?a=b&c=d&token=x",
			wantCode: 200, wantQuery: "https://example.com/?a=b&c=d&token=x"},
		{name: "scry's token inside the target URL is not scry's", token: tok, query: "https://example.com/?token=" + tok,
			wantCode: http.StatusUnauthorized},
		{name: "scry's token first is part of the target URL", token: tok, query: "token=" + tok + "&https://example.com/",
			wantCode: http.StatusUnauthorized},
		{name: "GET reaches chrome as GET", method: http.MethodGet, query: "https://example.com/",
			wantCode: http.StatusMethodNotAllowed, wantQuery: "https://example.com/"},
		{name: "scry's token appended twice", token: tok, query: "https://example.com/?a=b&token=" + tok + "&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/?a=b"},
		{name: "only the trailing run of scry's tokens goes", token: tok, query: "https://example.com/?token=" + tok + "&a=b&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/?token=" + tok + "&a=b"},
		{name: "/json/new/ANYTHING is /json/new", path: "/json/new/x", token: tok, query: "https://example.com/?a=b&token=" + tok,
			wantCode: 200, wantQuery: "https://example.com/?a=b"},
		{name: "/json/new/: scry's token first is part of the target URL", path: "/json/new/", token: tok, query: "token=" + tok + "&https://example.com/",
			wantCode: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: tt.token})
			method := cmp.Or(tt.method, http.MethodPut)
			path := cmp.Or(tt.path, "/json/new")
			req, err := http.NewRequest(method, "http://"+b.addr+path+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = b.public()
			for k, v := range tt.header {
				req.Header[k] = v
			}
			before := len(fc.requests())
			resp, err := b.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s?%s = %d %s, want %d", method, path, tt.query, resp.StatusCode, body, tt.wantCode)
			}
			reqs := fc.requests()
			if tt.wantCode == http.StatusUnauthorized {
				if len(reqs) != before {
					t.Errorf("a refused request reached chrome: %q", reqs[len(reqs)-1].URL.RawQuery)
				}
				return
			}
			last := reqs[len(reqs)-1]
			if last.Method != method || last.URL.Path != path || last.URL.RawQuery != tt.wantQuery {
				t.Errorf("chrome got %s %s?%s, want %s %s?%s", last.Method, last.URL.Path, last.URL.RawQuery, method, path, tt.wantQuery)
			}
			if resp.StatusCode == http.StatusOK {
				ws, _ := decodeTargets(t, body)[0]["webSocketDebuggerUrl"].(string)
				if !strings.HasPrefix(ws, "ws://"+b.public()+"/devtools/page/P2") {
					t.Errorf("webSocketDebuggerUrl = %q, want it on %s", ws, b.public())
				}
			}
		})
	}
}

func TestRequestToken(t *testing.T) {
	tests := []struct {
		path, query, auth string
		want              string
	}{
		{"/json/version", "token=abc", "", "abc"},
		{"/json/version", "x=1&token=abc&token=def", "", "abc"},
		{"/json/version", "token=a%2Bb", "", "a+b"},
		{"/json/version", "token=%zz", "", ""},
		{"/json/version", "token=abc", "Bearer hdr", "hdr"},
		{"/json/version", "token=abc", "Basic eDp5", "abc"},
		{"/devtools/browser/B1", "token=abc", "", "abc"},
		{"/json/new", "https://example.com/?token=theirs&token=abc", "", "abc"},
		{"/json/new/", "https://example.com/?a=b&token=abc", "", "abc"},
		{"/json/new", "token=abc", "", "abc"},
		{"/json/new", "https://example.com/?token=theirs", "", ""},
		{"/json/new", "token=abc&https://example.com/", "", ""},
		{"/json/new", "https://example.com/?token=theirs&token=abc", "Bearer hdr", "hdr"},
		{"/json/new/x", "token=abc&https://example.com/", "", ""},
		{"/json/new/x", "https://example.com/?token=theirs&token=abc", "", "abc"},
		{"/json/newx", "token=abc&https://example.com/", "", "abc"},
	}
	for _, tt := range tests {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: tt.path, RawQuery: tt.query}}
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := RequestToken(r); got != tt.want {
			t.Errorf("RequestToken(%s?%s, Authorization %q) = %q, want %q", tt.path, tt.query, tt.auth, got, tt.want)
		}
	}
}

func TestWithoutToken(t *testing.T) {
	const tok = "s3cret"
	tests := []struct {
		cmd, query, want string
	}{
		{"version", "token=s3cret", ""},
		{"version", "token=s3cret&token=s3cret", ""},
		{"list", "x=1&token=s3cret&y=2&token=s3cret", "x=1&y=2"},
		{"list", "token=other&token=s3cret", "token=other"},
		{"list", "token=s3cr%65t", ""}, // escaped, still scry's
		{"", "a=%zz&token=s3cret", "a=%zz"},
		{"list", "x=1", "x=1"},
		{"list", "", ""},
		{"new", "https://e.example/?a=b&token=s3cret&token=s3cret", "https://e.example/?a=b"},
		{"new", "https://e.example/?token=s3cret&a=b&token=s3cret", "https://e.example/?token=s3cret&a=b"},
		{"new", "token=s3cret&https://e.example/", "token=s3cret&https://e.example/"},
		{"new", "https://e.example/?a=b&token=other", "https://e.example/?a=b&token=other"},
	}
	for _, tt := range tests {
		if got := withoutToken(tt.cmd, tt.query, withLegacy(nil, tok)); got != tt.want {
			t.Errorf("withoutToken(%q, %q) = %q, want %q", tt.cmd, tt.query, got, tt.want)
		}
	}
}

// TestFakeChromeChecksHost makes sure the fake refuses what Chrome refuses,
// so the proxy tests prove the bridge really gets past Chrome's check.
func TestFakeChromeChecksHost(t *testing.T) {
	fc := newFakeChrome(t)
	req, err := http.NewRequest(http.MethodGet, fc.srv.URL+"/json/version", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = publicName + ":9222"
	resp, err := fc.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), chromeHostMessage) {
		t.Fatalf("fake chrome answered a named Host with %d %q", resp.StatusCode, body)
	}
}

// TestProxyVersionPerClient asks for /json/version as several clients in
// turn: each must get URLs for the address it used, whatever the bridge
// remembers from earlier answers.
func TestProxyVersionPerClient(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic})
	tests := []struct {
		host   string
		header http.Header
		want   string
	}{
		{host: publicName + ":9222", want: "ws://" + publicName + ":9222/devtools/browser/B1"},
		{host: "127.0.0.1:" + b.port, want: "ws://127.0.0.1:" + b.port + "/devtools/browser/B1"},
		{host: "[::1]:9222", want: "ws://[::1]:9222/devtools/browser/B1"},
		{host: "::1", want: "ws://[::1]/devtools/browser/B1"},
		{host: "2001:db8::7", want: "ws://[2001:db8::7]/devtools/browser/B1"},
		{host: "[::1]", want: "ws://[::1]/devtools/browser/B1"},
		{host: "scry-0.scry.:9222", want: "ws://scry-0.scry.:9222/devtools/browser/B1"},
		{host: publicName, header: http.Header{"X-Forwarded-Proto": {"https"}}, want: "wss://" + publicName + "/devtools/browser/B1"},
		{host: publicName + ":9222", want: "ws://" + publicName + ":9222/devtools/browser/B1"},
	}
	for _, tt := range tests {
		code, body := b.get(t, tt.host, "/json/version", tt.header)
		if code != http.StatusOK {
			t.Fatalf("Host %s: %d %s", tt.host, code, body)
		}
		if got := decodeTargets(t, body)[0]["webSocketDebuggerUrl"]; got != tt.want {
			t.Errorf("Host %s: webSocketDebuggerUrl = %v, want %s", tt.host, got, tt.want)
		}
	}
}

func TestProxyToken(t *testing.T) {
	fc := newFakeChrome(t)
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "scry_up 1") })
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Token: "s3cret", Health: health, Metrics: metrics})
	tests := []struct {
		name     string
		path     string
		header   http.Header
		wantCode int
		wantBody string
	}{
		{"no token", "/json/version", nil, http.StatusUnauthorized, "CDP_TOKEN"},
		{"wrong token", "/json/version?token=nope", nil, http.StatusUnauthorized, "CDP_TOKEN"},
		{"wrong bearer", "/json/version", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized, "CDP_TOKEN"},
		{"basic auth is not a token", "/json/version", http.Header{"Authorization": {"Basic czNjcmV0"}}, http.StatusUnauthorized, "CDP_TOKEN"},
		{"prefix of the token", "/json/version?token=s3cre", nil, http.StatusUnauthorized, "CDP_TOKEN"},
		{"right token", "/json/version?token=s3cret", nil, http.StatusOK, "webSocketDebuggerUrl"},
		{"right bearer", "/json/version", http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusOK, "webSocketDebuggerUrl"},
		{"health needs no token", "/healthz", nil, http.StatusOK, "healthy"},
		{"readiness needs no token", "/readyz", nil, http.StatusOK, "healthy"},
		{"metrics need the token", "/metrics", nil, http.StatusUnauthorized, "CDP_TOKEN"},
		{"metrics with token", "/metrics?token=s3cret", nil, http.StatusOK, "scry_up 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fc.requests())
			code, body := b.get(t, b.public(), tt.path, tt.header)
			if code != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d with %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
			if tt.wantCode != http.StatusOK || !strings.HasPrefix(tt.path, "/json") {
				if len(fc.requests()) != before {
					t.Errorf("GET %s reached chrome", tt.path)
				}
			}
		})
	}
	t.Run("upgrade without token", func(t *testing.T) {
		c, resp, err := b.dial(t, "ws://"+b.public()+"/devtools/browser/B1", nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("upgrade without the token succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("upgrade without the token: %v, want 401", err)
		}
	})
	t.Run("upgrade follows the handed-out URL", func(t *testing.T) {
		code, body := b.get(t, b.public(), "/json/version", http.Header{"Authorization": {"Bearer s3cret"}})
		if code != http.StatusOK {
			t.Fatalf("GET /json/version = %d %s", code, body)
		}
		ws := decodeTargets(t, body)[0]["webSocketDebuggerUrl"].(string)
		c, _, err := b.dial(t, ws, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", ws, err)
		}
		roundTrip(t, c, websocket.MessageText, []byte("with token"))
		reqs := fc.requests()
		if last := reqs[len(reqs)-1]; last.URL.Query().Has("token") {
			t.Errorf("chrome got the token on the upgrade: %q", last.URL.RawQuery)
		}
	})
}

func TestProxyHealthStillChecksHost(t *testing.T) {
	fc := newFakeChrome(t)
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	b := newBridge(t, Config{Backend: fc.addr, Health: health})
	if code, body := b.get(t, "127.0.0.1:"+b.port, "/healthz", nil); code != http.StatusOK {
		t.Errorf("GET /healthz by IP = %d %s", code, body)
	}
	if code, _ := b.get(t, "evil.example", "/healthz", nil); code != http.StatusForbidden {
		t.Errorf("GET /healthz with a rebinding Host = %d, want 403", code)
	}
}

func TestProxyMaxConns(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, MaxConns: 1})
	first := b.mustDial(t)
	waitFor(t, "the first connection to be spliced", func() bool { return b.p.Open() == 1 })

	c, resp, err := b.dial(t, b.discover(t), nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("second connection accepted over CDP_MAX_CONNS=1")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection: %v, want 503", err)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "CDP_MAX_CONNS") {
		t.Errorf("refusal %q does not name CDP_MAX_CONNS", body)
	}
	roundTrip(t, first, websocket.MessageText, []byte("unaffected"))

	first.CloseNow()
	waitFor(t, "the first connection to be released", func() bool { return b.p.Open() == 0 })
	roundTrip(t, b.mustDial(t), websocket.MessageText, []byte("room again"))
}

// TestProxyMaxConnsConcurrent opens many connections at once: the cap
// must hold even when upgrades race each other.
func TestProxyMaxConnsConcurrent(t *testing.T) {
	fc := newFakeChrome(t)
	const limit, tries = 2, 8
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, MaxConns: limit})
	ws := b.discover(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*websocket.Conn
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: b.client()})
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range conns {
		defer c.CloseNow()
	}
	t.Logf("%d of %d accepted", len(conns), tries)
	if len(conns) > limit {
		t.Errorf("%d of %d simultaneous connections accepted with CDP_MAX_CONNS=%d", len(conns), tries, limit)
	}
}

func TestProxyPassesOtherPathsThrough(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr})
	code, body := b.get(t, "127.0.0.1:"+b.port, "/json/protocol", nil)
	if code != http.StatusOK || strings.TrimSpace(string(body)) != `{
   "domains": []
}` {
		t.Errorf("GET /json/protocol = %d %q, want Chrome's answer unchanged", code, body)
	}
	code, body = b.get(t, "127.0.0.1:"+b.port, "/json/activate/NOPE", nil)
	if code != http.StatusNotFound || !strings.Contains(string(body), "No such target id") {
		t.Errorf("GET /json/activate/NOPE = %d %q, want Chrome's 404", code, body)
	}
}

func TestProxyRefuses(t *testing.T) {
	fc := newFakeChrome(t)
	tests := []struct {
		name     string
		policy   hostpolicy.Policy
		host     string // "" means the public name
		path     string
		header   http.Header
		upgrade  bool
		wantCode int
		wantBody string
		reason   string
	}{
		{name: "unlisted host", host: "evil.example:9222", path: "/json/version",
			wantCode: http.StatusForbidden, wantBody: "CDP_ALLOWED_HOSTS", reason: "host"},
		{name: "public name not configured", path: "/json/version",
			wantCode: http.StatusForbidden, wantBody: "CDP_ALLOWED_HOSTS", reason: "host"},
		{name: "unlisted host upgrade", host: "evil.example:9222", path: "/devtools/browser/B1", upgrade: true,
			wantCode: http.StatusForbidden, wantBody: "CDP_ALLOWED_HOSTS", reason: "host"},
		{name: "origin on discovery", policy: allowPublic, path: "/json/version",
			header:   http.Header{"Origin": {"https://evil.example"}},
			wantCode: http.StatusForbidden, wantBody: "CDP_ALLOWED_ORIGINS", reason: "origin"},
		{name: "origin on upgrade", policy: allowPublic, path: "/devtools/browser/B1", upgrade: true,
			header:   http.Header{"Origin": {"https://evil.example"}},
			wantCode: http.StatusForbidden, wantBody: "CDP_ALLOWED_ORIGINS", reason: "origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBridge(t, Config{Backend: fc.addr, Policy: tt.policy})
			host := tt.host
			if host == "" {
				host = b.public()
			}
			before := len(fc.requests())
			var code int
			var body []byte
			if tt.upgrade {
				h := tt.header.Clone()
				if h == nil {
					h = http.Header{}
				}
				c, resp, err := b.dial(t, "ws://"+host+tt.path, h)
				if err == nil {
					c.CloseNow()
					t.Fatal("upgrade succeeded, want refused")
				}
				if resp == nil {
					t.Fatalf("upgrade failed without an answer: %v", err)
				}
				code = resp.StatusCode
				body, _ = io.ReadAll(resp.Body)
			} else {
				code, body = b.get(t, host, tt.path, tt.header)
			}
			if code != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("got %d %q, want %d mentioning %s", code, body, tt.wantCode, tt.wantBody)
			}
			if got := b.obs.refusals(); len(got) != 1 || got[0] != tt.reason {
				t.Errorf("observer refusals = %q, want [%s]", got, tt.reason)
			}
			if n := len(fc.requests()); n != before {
				t.Errorf("a refused request reached chrome")
			}
		})
	}
}

func TestProxyAllowedOriginIsNotForwarded(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: hostpolicy.Policy{AllowedHosts: []string{publicName}, AllowedOrigins: []string{"https://app.example"}}})
	c, _, err := b.dial(t, b.discover(t), http.Header{"Origin": {"https://app.example"}})
	if err != nil {
		t.Fatalf("dial with an allowed Origin: %v", err)
	}
	roundTrip(t, c, websocket.MessageText, []byte(`{"id":1,"method":"Browser.getVersion"}`))
}

func TestProxyWebSocketLargeMessage(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic})
	c := b.mustDial(t)
	msg := make([]byte, 20<<20)
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, websocket.MessageBinary, msg)
	roundTrip(t, c, websocket.MessageText, []byte(`{"id":2,"method":"Target.getTargets"}`))
}

func TestProxyClientsAreIndependent(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic})
	first, second := b.mustDial(t), b.mustDial(t)
	roundTrip(t, first, websocket.MessageText, []byte("first"))
	roundTrip(t, second, websocket.MessageText, []byte("second"))
	waitFor(t, "two spliced connections", func() bool { return b.p.Open() == 2 })

	first.CloseNow()
	waitFor(t, "the first connection to be released", func() bool { return b.p.Open() == 1 })
	roundTrip(t, second, websocket.MessageText, []byte("still here"))
	b.obs.mu.Lock()
	opened, closed := b.obs.opened, b.obs.closed
	b.obs.mu.Unlock()
	if opened != 2 || closed != 1 {
		t.Errorf("observer saw %d opened, %d closed; want 2, 1", opened, closed)
	}
}

func TestProxyCloseEndsConnections(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic})
	conns := []*websocket.Conn{b.mustDial(t), b.mustDial(t)}
	for _, c := range conns {
		roundTrip(t, c, websocket.MessageText, []byte("hello"))
	}
	b.p.Close()
	if n := b.p.Open(); n != 0 {
		t.Errorf("Open() = %d after Close", n)
	}
	for i, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("conn %d: Read after Proxy.Close = %v, want the connection ended", i, err)
		}
	}
	// Discovery still works: Close only ends spliced streams.
	if code, body := b.get(t, b.public(), "/json/version", nil); code != http.StatusOK {
		t.Errorf("GET /json/version after Close = %d %s", code, body)
	}
}

// TestProxyUpgradeRefusedByChrome checks that Chrome's own refusal of an
// upgrade reaches the client as Chrome said it.
func TestProxyUpgradeRefusedByChrome(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic})
	c, resp, err := b.dial(t, "ws://"+b.public()+"/devtools/page/NOPE", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("upgrade to an unknown target succeeded")
	}
	if resp == nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "No such target id: NOPE") {
		t.Errorf("got %d %q, want Chrome's 404", resp.StatusCode, body)
	}
	if n := b.p.Open(); n != 0 {
		t.Errorf("Open() = %d after a refused upgrade", n)
	}
}

func TestProxyBackendDown(t *testing.T) {
	// A port nothing listens on: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	b := newBridge(t, Config{Backend: dead, Policy: allowPublic})
	t.Run("discovery", func(t *testing.T) {
		code, body := b.get(t, b.public(), "/json/version", nil)
		if code != http.StatusBadGateway || !strings.Contains(string(body), "chromium's DevTools endpoint") {
			t.Errorf("got %d %q, want 502 naming chromium's DevTools endpoint", code, body)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		c, resp, err := b.dial(t, fmt.Sprintf("ws://%s/devtools/browser/B1", b.public()), nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("upgrade succeeded with chromium down")
		}
		if resp == nil {
			t.Fatalf("no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "chromium's DevTools endpoint") {
			t.Errorf("got %d %q, want 502 naming chromium's DevTools endpoint", resp.StatusCode, body)
		}
	})
}

// TestProxyKeepAliveBothLegs reads the kernel's keepalive settings on
// scry's end of both legs of a spliced WebSocket: the hijacked client
// connection (httptest's listener sets Go's own 15 s default there) and
// the connection to Chromium.
func TestProxyKeepAliveBothLegs(t *testing.T) {
	fc := newFakeChrome(t)
	tests := []struct {
		name string
		cfg  net.KeepAliveConfig
		want [3]int // idle s, interval s, count
	}{
		{"design default", net.KeepAliveConfig{}, [3]int{30, 10, 3}},
		{"configured", net.KeepAliveConfig{Enable: true, Idle: 37 * time.Second, Interval: 11 * time.Second, Count: 4}, [3]int{37, 11, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, KeepAlive: tt.cfg})
			c := b.mustDial(t)
			roundTrip(t, c, websocket.MessageText, []byte("hello"))
			b.p.mu.Lock()
			var legs []*net.TCPConn
			for conn := range b.p.conns {
				legs = append(legs, conn.(*net.TCPConn))
			}
			b.p.mu.Unlock()
			seen := map[string]bool{}
			for _, leg := range legs {
				name := "client"
				if leg.RemoteAddr().String() == fc.addr {
					name = "chromium"
				}
				seen[name] = true
				on, got := keepAliveOf(t, leg)
				if !on || got != tt.want {
					t.Errorf("%s leg: keepalive on=%v idle/interval/count=%v, want on, %v", name, on, got, tt.want)
				}
			}
			if !seen["client"] || !seen["chromium"] {
				t.Fatalf("legs found: %v, want client and chromium", seen)
			}
		})
	}
}

// keepAliveOf reads SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT from c's socket.
func keepAliveOf(t *testing.T, c *net.TCPConn) (bool, [3]int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var v [3]int
	var errs []error
	err = rc.Control(func(fd uintptr) {
		get := func(level, opt int) int {
			n, err := syscall.GetsockoptInt(int(fd), level, opt)
			errs = append(errs, err)
			return n
		}
		on = get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		v[0] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		v[1] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		v[2] = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		t.Fatalf("getsockopt: %v", err)
	}
	return on != 0, v
}
