package cdpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawConn is a client connection to the bridge that writes exactly what a
// test says, the way a broken or hostile client would.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func (b *bridge) rawDial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// exchange writes req (concurrently: the bridge may answer and hang up
// before it has read everything) and reads the answer.
func (c *rawConn) exchange(t *testing.T, req string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, req) }()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", firstLine(req), err)
	}
	return resp
}

// closedBy reads until the bridge closes the connection, and reports
// whether it did before deadline.
func (c *rawConn) closedBy(deadline time.Time) bool {
	_ = c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c.br)
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestProxyUpgradeHandshake: an upgrade Chromium would take although it
// breaks RFC 6455 is refused by the bridge, counted, and never reaches
// Chromium; a correct one still goes through.
func TestProxyUpgradeHandshake(t *testing.T) {
	fc := newFakeChrome(t)
	const goodKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's sample: 16 bytes
	upgrade := func(first string, headers ...string) string {
		return first + "\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + strings.Join(headers, "") + "\r\n"
	}
	get := "GET /devtools/browser/B1 HTTP/1.1"
	v13, key := "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: "+goodKey+"\r\n"
	tests := []struct {
		name     string
		req      string
		wantCode int
		wantBody string
	}{
		{"key not base64", upgrade(get, v13, "Sec-WebSocket-Key: !!not base64!!\r\n"), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"8-byte key", upgrade(get, v13, "Sec-WebSocket-Key: c2hvcnQ=\r\n"), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"17-byte key", upgrade(get, v13, "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZmc=\r\n"), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"empty key", upgrade(get, v13, "Sec-WebSocket-Key: \r\n"), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"no key", upgrade(get, v13), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"two keys", upgrade(get, v13, key, key), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"version 8", upgrade(get, "Sec-WebSocket-Version: 8\r\n", key), http.StatusUpgradeRequired, "Sec-WebSocket-Version: 13"},
		{"no version", upgrade(get, key), http.StatusUpgradeRequired, "Sec-WebSocket-Version: 13"},
		{"POST", upgrade("POST /devtools/browser/B1 HTTP/1.1", v13, key), http.StatusMethodNotAllowed, "GET"},
		{"a body", upgrade(get, v13, key, "Content-Length: 5\r\n") + "hello", http.StatusBadRequest, "no body"},
		{"HTTP/1.0", upgrade("GET /devtools/browser/B1 HTTP/1.0", v13, key), http.StatusBadRequest, "HTTP/1.1"},
		{"valid", upgrade(get, v13, key), http.StatusSwitchingProtocols, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBridge(t, Config{Backend: fc.addr})
			upgrades := func() int {
				n := 0
				for _, r := range fc.requests() {
					if r.Header.Get("Upgrade") != "" {
						n++
					}
				}
				return n
			}
			before := upgrades()
			c := b.rawDial(t)
			resp := c.exchange(t, tt.req)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s: %s, want %d", tt.name, resp.Status, tt.wantCode)
			}
			if tt.wantCode == http.StatusSwitchingProtocols {
				// (scry may also have asked /json/version for the
				// browser target: that is no upgrade.)
				if upgrades() != before+1 {
					t.Error("the valid upgrade did not reach chrome")
				}
				return
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("refusal %q does not mention %q", body, tt.wantBody)
			}
			if tt.wantCode == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13 (headers %v)", resp.Header)
			}
			if got := b.obs.refusals(); len(got) != 1 || got[0] != "bad_request" {
				t.Errorf("refusals = %q, want [bad_request]", got)
			}
			if upgrades() != before {
				t.Error("a refused upgrade reached chrome")
			}
			if !c.closedBy(time.Now().Add(5 * time.Second)) {
				t.Error("the connection stayed open after the refusal")
			}
		})
	}
}

// trickle sends body one byte every 100 ms (the attack's pace) until a
// write fails or stop is closed.
func trickle(c net.Conn, body string, stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(body); i++ {
		if _, err := c.Write([]byte{body[i]}); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// TestProxyTrickledBody: a client that sends its headers and then trickles
// its body is cut once BodyTimeout has passed, whoever it is and whatever
// it asked; a refusal is answered at once, not after the body.
//
// No clock is read: the trickle takes 100 s, so a 408 and a cut while it
// still runs came from BodyTimeout; and where the answer must not wait
// for the body, BodyTimeout is an hour, so an answer and a cut at all came
// without it. A minute bounds each wait, only so that a broken bridge
// fails instead of hanging.
func TestProxyTrickledBody(t *testing.T) {
	fc := newFakeChrome(t)
	const tok = "s3cret-s3cret-s3cret"
	const body = 1000 // bytes, one per 100 ms
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	tests := []struct {
		name      string
		token     string // Config.Token
		target    string
		header    string
		wantCode  int
		immediate bool // the answer comes before the body would have
	}{
		{"no token configured", "", "/json/version", "", http.StatusRequestTimeout, false},
		{"token missing", tok, "/json/version", "", http.StatusUnauthorized, true},
		{"wrong token", tok, "/json/list?token=nope", "", http.StatusUnauthorized, true},
		{"token in the header", tok, "/json/version", "Authorization: Bearer " + tok + "\r\n", http.StatusRequestTimeout, false},
		{"token in the query", tok, "/json/new?about:blank&token=" + tok, "", http.StatusRequestTimeout, false},
		{"health", tok, "/healthz", "", http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout := 2 * time.Second
			if tt.immediate {
				timeout = time.Hour
			}
			b := newBridge(t, Config{Backend: fc.addr, Token: tt.token, BodyTimeout: timeout, Health: health})
			c := b.rawDial(t)
			if _, err := fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s\r\n", tt.target, body, tt.header); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			trickled := make(chan struct{})
			go func() {
				defer close(trickled)
				trickle(c, strings.Repeat("x", body), stop)
			}()
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("no answer (BodyTimeout %s): %v", timeout, err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("answered %s, want %d", resp.Status, tt.wantCode)
			}
			// Answered without its body, the connection must not then wait
			// for the body it will never use.
			if !c.closedBy(time.Now().Add(time.Minute)) {
				t.Fatalf("connection still open after the answer (BodyTimeout %s)", timeout)
			}
			select {
			case <-trickled:
				t.Errorf("the body was sent in full (%d bytes over 100 s) before the connection was cut, want it cut mid-body", body)
			default:
			}
			t.Logf("answered %d, then cut mid-body", resp.StatusCode)
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		for _, r := range fc.requests() {
			if r.Method == http.MethodPut {
				t.Errorf("a trickled request reached chrome: %s %s", r.Method, r.URL)
			}
		}
	})
}

// TestProxyClientBody: a body the client got wrong is answered as the
// client's fault (4xx), never forwarded, never logged as Chromium's; a
// good one reaches Chromium with its length, even if it came chunked.
func TestProxyClientBody(t *testing.T) {
	fc := newFakeChrome(t)
	head := "POST /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	chunked := head + "Transfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name     string
		req      string
		wantCode int
	}{
		{"bad chunk size", chunked + "zz\r\nabc\r\n0\r\n\r\n", http.StatusBadRequest},
		{"chunk size overflows", chunked + "ffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", http.StatusBadRequest},
		{"oversized", head + "Content-Length: 65536\r\n\r\n" + strings.Repeat("x", 65536), http.StatusRequestEntityTooLarge},
		{"oversized, chunked", chunked + "2000\r\n" + strings.Repeat("x", 0x2000) + "\r\n0\r\n\r\n", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, lb := newLog()
			b := newBridge(t, Config{Backend: fc.addr, Logger: log})
			before := len(fc.requests())
			c := b.rawDial(t)
			resp := c.exchange(t, tt.req)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("answered %s, want %d", resp.Status, tt.wantCode)
			}
			if got := b.obs.refusals(); len(got) != 1 || got[0] != "bad_request" {
				t.Errorf("refusals = %q, want [bad_request]", got)
			}
			if len(fc.requests()) != before {
				t.Error("a bad body reached chrome")
			}
			if strings.Contains(lb.String(), "chromium") {
				t.Errorf("a client's bad body blamed on chromium:\n%s", lb)
			}
		})
	}
	t.Run("good chunked body", func(t *testing.T) {
		b := newBridge(t, Config{Backend: fc.addr})
		resp := b.rawDial(t).exchange(t, chunked+"5\r\nhello\r\n0\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("answered %s, want chrome's 200", resp.Status)
		}
		reqs := fc.requests()
		last := reqs[len(reqs)-1]
		if last.ContentLength != 5 || len(last.TransferEncoding) != 0 {
			t.Errorf("chrome got Content-Length %d, Transfer-Encoding %q; want 5 and none", last.ContentLength, last.TransferEncoding)
		}
	})
}
