package novnc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/rfbauth"
	"github.com/dataplanelabs/scry/internal/scrytest"
)

// refusals counts what a Handler reports to OnRefused.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// rawViewer opens /websockify and returns the RFB byte stream.
func rawViewer(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := dialViewer(ctx, srv)
	if err != nil {
		t.Fatalf("dial /websockify: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	c.SetReadDeadline(time.Time{})
	return b
}

func send(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// toPasswordPrompt plays a noVNC viewer up to the VNC authentication
// challenge, which it returns; the viewer then waits for a human. sent is
// when the last machine-paced byte went out, before scry saw it.
func toPasswordPrompt(t *testing.T, c net.Conn) (challenge [16]byte, sent time.Time) {
	t.Helper()
	readN(t, c, 12)
	send(t, c, []byte("RFB 003.008\n"))
	if types := readN(t, c, 2); !bytes.Equal(types, []byte{1, rfbauth.SecurityVNCAuth}) {
		t.Fatalf("security types %v, want VNC auth only", types)
	}
	sent = time.Now()
	send(t, c, []byte{rfbauth.SecurityVNCAuth})
	copy(challenge[:], readN(t, c, 16))
	return challenge, sent
}

// answer sends the password and reads the SecurityResult.
func answer(t *testing.T, c net.Conn, password string, challenge [16]byte) uint32 {
	t.Helper()
	resp := rfbauth.DESResponse([]byte(password), challenge)
	send(t, c, resp[:])
	return binary.BigEndian.Uint32(readN(t, c, 4))
}

// cutBy waits up to d for the server to close c and returns when it did;
// it fails the test if c is still open then.
func cutBy(t *testing.T, c net.Conn, d time.Duration, what string) time.Time {
	t.Helper()
	done := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, c) // until the server closes it
		done <- time.Now()
	}()
	select {
	case at := <-done:
		return at
	case <-time.After(d):
		t.Fatalf("%s: still open after %s", what, d)
		return time.Time{}
	}
}

// TestSilentLoginIsCutAfterHandshakeTimeout: a client that stops in the
// machine-paced steps is cut after HandshakeTimeout, not after the
// password prompt's much longer bound, and it is counted.
func TestSilentLoginIsCutAfterHandshakeTimeout(t *testing.T) {
	const short = 200 * time.Millisecond
	for _, tt := range []struct {
		name string
		play func(t *testing.T, c net.Conn)
	}{
		{"after the banner", func(t *testing.T, c net.Conn) { readN(t, c, 12) }},
		{"after its version", func(t *testing.T, c net.Conn) {
			readN(t, c, 12)
			send(t, c, []byte("RFB 003.008\n"))
			readN(t, c, 2)
		}},
		{"mid-version", func(t *testing.T, c net.Conn) {
			readN(t, c, 12)
			send(t, c, []byte("RFB 00"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ref refusals
			h, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", StaticDir: fakeNoVNC(t), Password: "pw",
				HandshakeTimeout: short, PasswordTimeout: time.Hour, OnRefused: ref.add})
			start := time.Now()
			c := rawViewer(t, srv)
			tt.play(t, c)
			at := cutBy(t, c, 20*time.Second, "a silent login")
			if d := at.Sub(start); d < short {
				t.Errorf("cut after %s, before HandshakeTimeout %s", d, short)
			}
			waitFor(t, "no login in progress", func() bool { return h.Logins() == 0 })
			waitFor(t, "the refusal counted", func() bool { return ref.get("handshake") == 1 })
		})
	}
}

// TestPasswordPromptGetsTheLongBound: at the password prompt a viewer
// outlives HandshakeTimeout (two silent logins opened after it are cut in
// the meantime), can still log in, and is cut after PasswordTimeout if no
// answer comes.
func TestPasswordPromptGetsTheLongBound(t *testing.T) {
	const short = 200 * time.Millisecond
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)

	t.Run("the human answers late", func(t *testing.T) {
		h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: "pw",
			HandshakeTimeout: short, PasswordTimeout: time.Minute})
		human := rawViewer(t, srv)
		challenge, _ := toPasswordPrompt(t, human)
		// Each silent login below starts after the human reached the
		// prompt and is cut HandshakeTimeout later: had the human kept
		// that bound, it would have been cut twice over by now.
		for range 2 {
			cutBy(t, rawViewer(t, srv), 20*time.Second, "a silent login")
		}
		if r := answer(t, human, "pw", challenge); r != 0 {
			t.Fatalf("SecurityResult %d after answering late, want 0 (OK)", r)
		}
		if w, _ := clientInit(t, human); w != testW {
			t.Errorf("framebuffer width %d after a late answer, want %d", w, testW)
		}
		waitFor(t, "one viewer", func() bool { return h.Viewers() == 1 })
	})

	t.Run("nobody answers", func(t *testing.T) {
		const long = time.Second
		var ref refusals
		_, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: "pw",
			HandshakeTimeout: short, PasswordTimeout: long, OnRefused: ref.add})
		c := rawViewer(t, srv)
		_, sent := toPasswordPrompt(t, c)
		at := cutBy(t, c, 20*time.Second, "a viewer silent at the password prompt")
		if d := at.Sub(sent); d < long {
			t.Errorf("cut %s after reaching the prompt, before PasswordTimeout %s", d, long)
		}
		waitFor(t, "the refusal counted", func() bool { return ref.get("handshake") == 1 })
	})
}

// clientInit sends a shared ClientInit and reads ServerInit's size.
func clientInit(t *testing.T, c net.Conn) (w, h uint16) {
	t.Helper()
	send(t, c, []byte{1})
	si := readN(t, c, 24)
	readN(t, c, int(binary.BigEndian.Uint32(si[20:24]))) // the name
	return binary.BigEndian.Uint16(si[0:2]), binary.BigEndian.Uint16(si[2:4])
}

// TestLoginCapFullOfSilentConnections: with every login slot taken by
// silent connections, the human still logs in; the oldest silent one gives
// way, not a viewer at the password prompt.
func TestLoginCapFullOfSilentConnections(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	var ref refusals
	// Two viewers: four logins in progress at most.
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: "pw", MaxViewers: 2,
		HandshakeTimeout: time.Minute, OnRefused: ref.add})
	if h.maxLogins() != 4 {
		t.Fatalf("maxLogins() = %d, want 4", h.maxLogins())
	}

	prompt := rawViewer(t, srv) // the oldest, at the password prompt
	challenge, _ := toPasswordPrompt(t, prompt)
	var silent []net.Conn
	for range 3 {
		c := rawViewer(t, srv)
		readN(t, c, 12)
		silent = append(silent, c)
	}
	waitFor(t, "four logins in progress", func() bool { return h.Logins() == 4 })

	c, err := handshake(t, srv, "pw")
	if err != nil {
		t.Fatalf("the human, with the login cap full of silent connections: %v", err)
	}
	readFullFrame(t, c)
	cutBy(t, silent[0], 20*time.Second, "the oldest silent login")
	waitFor(t, "the eviction counted", func() bool { return ref.get("evicted") == 1 })
	if n := h.Logins(); n != 3 {
		t.Errorf("Logins() = %d, want 3 (the prompt and two silent ones)", n)
	}
	// The viewer at the prompt, older than every silent one, is still
	// there and logs in.
	if r := answer(t, prompt, "pw", challenge); r != 0 {
		t.Fatalf("the viewer at the prompt: SecurityResult %d, want 0 (OK)", r)
	}
	waitFor(t, "two viewers", func() bool { return h.Viewers() == 2 })
}

// TestLoginsEvictionOrder: the newcomer takes the place of the oldest
// login still in the machine-paced steps, else of the oldest at the prompt.
func TestLoginsEvictionOrder(t *testing.T) {
	var q logins
	l := make([]*login, 6)
	for i := range l {
		l[i] = &login{start: time.Now(), end: func() {}}
	}
	for i := range 3 {
		if ev := q.add(l[i], 3); ev != nil {
			t.Fatalf("add %d under the cap evicted %p", i, ev)
		}
	}
	q.awaitPassword(l[0])
	q.awaitPassword(l[2])
	if ev := q.add(l[3], 3); ev != l[1] {
		t.Fatalf("evicted %v, want the oldest still in the machine-paced steps (1)", ev)
	}
	q.awaitPassword(l[3])
	if ev := q.add(l[4], 3); ev != l[0] {
		t.Fatalf("evicted %v, want the oldest at the prompt (0) when all are there", ev)
	}
	if !q.remove(l[0]) || !q.remove(l[1]) {
		t.Error("remove does not report the evicted logins")
	}
	if q.remove(l[2]) {
		t.Error("remove reports a login that was not evicted")
	}
	if n := q.n.Load(); n != 2 {
		t.Errorf("%d logins left, want 2 (3 and 4)", n)
	}
	if ev := q.add(l[5], 0); ev != nil {
		t.Error("no cap, yet a login was evicted")
	}
}

// rawHTTP sends req on a fresh connection, then feeds trickle one byte at
// a time, and returns the response and when the server closed the
// connection.
func rawHTTP(t *testing.T, addr, req, trickle string) (*http.Response, time.Time) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond) // the attack's pace, not synchronisation
		defer tick.Stop()
		for i := 0; i < len(trickle); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{trickle[i]}); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	return resp, time.Now()
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestBodiesAreNotRead: a request with a body (no route takes one) is
// answered and its connection closed at once, however slowly the body
// comes, and so is a refused upgrade.
func TestBodiesAreNotRead(t *testing.T) {
	_, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", StaticDir: fakeNoVNC(t), RequestTimeout: time.Hour})
	addr := srv.Listener.Addr().String()
	body := strings.Repeat("x", 1000)
	for _, tt := range []struct {
		name, req string
		code      int
	}{
		{"POST / with a trickled body", "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 1000\r\n\r\n", http.StatusMethodNotAllowed},
		{"chunked POST /vnc.html", "POST /vnc.html HTTP/1.1\r\nHost: " + addr + "\r\nTransfer-Encoding: chunked\r\n\r\n", http.StatusMethodNotAllowed},
		{"GET / with a body", "GET / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 1000\r\n\r\n", http.StatusOK},
		{"upgrade with a bad key and a body", "GET /websockify HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\nContent-Length: 1000\r\n\r\n", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, closed := rawHTTP(t, addr, tt.req, body)
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if !resp.Close {
				t.Errorf("response without Connection: close (%v)", resp.Header)
			}
			// 1000 bytes at 50 ms each would take 50 s.
			if d := closed.Sub(start); d > 20*time.Second {
				t.Errorf("connection closed after %s, want at once", d)
			}
		})
	}
}

// TestRefusalsClose: refusals carry Connection: close; a missing file does
// not.
func TestRefusalsClose(t *testing.T) {
	_, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", StaticDir: fakeNoVNC(t),
		CheckHost: func(h string) error {
			if strings.HasPrefix(h, "evil") {
				return errors.New("not this host")
			}
			return nil
		}})
	for _, tt := range []struct {
		path, host string
		code       int
		close      bool
	}{
		{"/", "evil.example", http.StatusForbidden, true},
		{"/websockify", "", http.StatusUpgradeRequired, true},
		{"/nope.js", "", http.StatusNotFound, false},
		{"/", "", http.StatusOK, false},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Close != tt.close {
			t.Errorf("GET %s (Host %q): %d, close %v; want %d, close %v", tt.path, tt.host, resp.StatusCode, resp.Close, tt.code, tt.close)
		}
	}
}

// TestRefusalsReported: each kind of refusal reaches OnRefused once.
func TestRefusalsReported(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	var ref refusals
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: "pw", MaxViewers: 1,
		FailDelay: -1, OnRefused: ref.add,
		CheckHost: func(h string) error {
			if strings.HasPrefix(h, "evil") {
				return errors.New("not this host")
			}
			return nil
		}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/websockify"

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "evil.example"
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	if _, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}}); err == nil {
		t.Error("cross-origin upgrade accepted")
	}
	if resp, err := srv.Client().Get(srv.URL + "/websockify"); err == nil { // not an upgrade
		resp.Body.Close()
	}
	if _, err := handshake(t, srv, "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
	c := rawViewer(t, srv)
	readN(t, c, 12)
	send(t, c, []byte("GET / HTTP/1"))
	cutBy(t, c, 20*time.Second, "a viewer speaking HTTP instead of RFB")

	v, err := handshake(t, srv, "pw")
	if err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, v)
	if _, _, err := dialViewer(ctx, srv); err == nil {
		t.Error("a second viewer accepted with MaxViewers 1")
	}
	waitFor(t, "one viewer", func() bool { return h.Viewers() == 1 })
	for _, reason := range []string{"host", "origin", "upgrade", "password", "handshake", "limit"} {
		waitFor(t, "one refusal for "+reason, func() bool { return ref.get(reason) == 1 })
	}
	if n := ref.get("evicted"); n != 0 {
		t.Errorf("%d evictions, want none", n)
	}
}

// TestAccessLog: every request gets one debug record with the client,
// method, path (never the query), status, duration and bytes; a viewer gets
// a close record with its duration, bytes each way and reason; neither the
// password nor pasted text is ever logged.
func TestAccessLog(t *testing.T) {
	display := startXvfb(t, testW, testH)
	vncAddr := startX11vnc(t, display, serverPW)
	var out scrytest.LogBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const password, paste = "Pa55-w0rd", "pasted-secret-text"
	h, srv := startServer(t, Config{VNCAddr: vncAddr, ServerPassword: serverPW, Password: password, Logger: log,
		OnCutText: func([]byte) {},
		CheckHost: func(h string) error {
			if strings.HasPrefix(h, "evil") {
				return errors.New("not this host")
			}
			return nil
		}})

	get := func(path, host string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/", "")
	get("/vnc.html?password="+password, "")
	get("/nope.js", "")
	get("/", "evil.example")
	if resp, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
	}
	v, err := handshake(t, srv, password)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SendCutText(paste); err != nil {
		t.Fatal(err)
	}
	readFullFrame(t, v)
	v.Close()
	waitFor(t, "the viewer gone", func() bool { return h.Viewers() == 0 && strings.Contains(out.String(), `"viewer access"`) })

	var recs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	find := func(msg, method, path string, status float64) map[string]any {
		t.Helper()
		var found map[string]any
		for _, m := range recs {
			if m["msg"] == msg && (method == "" || m["method"] == method) && (path == "" || m["path"] == path) &&
				(status == 0 || m["status"] == status) {
				if found != nil {
					t.Errorf("two %q records for %s %s", msg, method, path)
				}
				found = m
			}
		}
		if found == nil {
			t.Fatalf("no %q record for %s %s in\n%s", msg, method, path, out.String())
		}
		return found
	}
	for _, tt := range []struct {
		method, path string
		status       float64
		body         bool
	}{
		{"GET", "/", 200, true},
		{"GET", "/vnc.html", 200, true},
		{"GET", "/nope.js", 404, true},
		{"GET", "/", 403, true}, // the refused Host
		{"POST", "/", 405, true},
		{"GET", "/websockify", 101, false},
	} {
		m := find("request", tt.method, tt.path, tt.status)
		if m["level"] != "DEBUG" {
			t.Errorf("%s %s: level %v, want DEBUG", tt.method, tt.path, m["level"])
		}
		if c, _ := m["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") {
			t.Errorf("%s %s: client %q", tt.method, tt.path, c)
		}
		if _, ok := m["duration"].(float64); !ok {
			t.Errorf("%s %s: no duration in %v", tt.method, tt.path, m)
		}
		if b, _ := m["bytes"].(float64); (b > 0) != tt.body {
			t.Errorf("%s %s: bytes %v", tt.method, tt.path, m["bytes"])
		}
	}
	va := find("viewer access", "", "", 0)
	if va["level"] != "DEBUG" || va["reason"] != "viewer closed" {
		t.Errorf("viewer access: level %v reason %v, want DEBUG, viewer closed", va["level"], va["reason"])
	}
	if c, _ := va["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") {
		t.Errorf("viewer access: client %q", c)
	}
	if d, _ := va["duration"].(float64); d <= 0 {
		t.Errorf("viewer access: duration %v", va["duration"])
	}
	// A full 640x480 frame went to the viewer; the paste came from it.
	if b, _ := va["bytes_to_viewer"].(float64); b < testW*testH {
		t.Errorf("viewer access: bytes_to_viewer %v, want a frame's worth", va["bytes_to_viewer"])
	}
	if b, _ := va["bytes_from_viewer"].(float64); b < float64(len(paste)) {
		t.Errorf("viewer access: bytes_from_viewer %v, want at least the paste", va["bytes_from_viewer"])
	}
	for _, secret := range []string{password, paste, password[:8]} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestRefusalFloodIsNotLogged: refused over and over, the door logs a
// burst per reason, not a line per refusal; every refusal is still counted.
func TestRefusalFloodIsNotLogged(t *testing.T) {
	var buf scrytest.LogBuffer
	var ref refusals
	_, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", ServerPassword: serverPW, OnRefused: ref.add,
		Logger:    slog.New(slog.NewJSONHandler(&buf, nil)),
		CheckHost: func(string) error { return errors.New("not this host") }})
	const n = 100
	start := time.Now()
	for range n {
		resp, err := srv.Client().Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	}
	if got := ref.get("host"); got != n {
		t.Errorf("%d host refusals counted, want %d", got, n)
	}
	// The burst, plus one per second the loop took (a loaded machine is
	// slow, and the bucket refills at one a second).
	most := refusalBurst + int(time.Since(start)/time.Second) + 1
	if lines := strings.Count(buf.String(), `"msg":"refused"`); lines < 1 || lines > most {
		t.Errorf("%d refusal lines logged for %d refusals, want 1..%d", lines, n, most)
	}
}

// slowRFBServer is an RFB server that sends its banner only after delay
// (an x11vnc busy with another viewer, say) and then takes any answer to
// its VNC authentication challenge.
func slowRFBServer(t *testing.T, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				<-time.After(delay) // the slow server's delay, not synchronisation
				io.WriteString(c, "RFB 003.008\n")
				b := make([]byte, 12)
				io.ReadFull(c, b)
				c.Write([]byte{1, 2}) // one type: VNC authentication
				io.ReadFull(c, b[:1])
				c.Write(make([]byte, 16)) // the challenge
				io.ReadFull(c, make([]byte, 16))
				c.Write([]byte{0, 0, 0, 0}) // SecurityResult OK
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

// TestAuthenticatedViewerIsNotEvicted: once the password is right the
// viewer is no longer a login in progress, so newer logins filling the cap
// while scry still reaches x11vnc cannot cut the human who just logged in.
func TestAuthenticatedViewerIsNotEvicted(t *testing.T) {
	var ref refusals
	h, srv := startServer(t, Config{VNCAddr: slowRFBServer(t, time.Second), ServerPassword: serverPW,
		Password: "pw", MaxViewers: 4, OnRefused: ref.add})
	human := rawViewer(t, srv)
	ch, _ := toPasswordPrompt(t, human)
	resp := rfbauth.DESResponse([]byte("pw"), ch)
	send(t, human, resp[:]) // scry now dials the (slow) VNC server
	// Once scry has checked the password, the human is no longer a login.
	waitFor(t, "the right password checked", func() bool { return h.Logins() == 0 })
	for range 4 {
		toPasswordPrompt(t, rawViewer(t, srv)) // the cap (4) fills at the prompt
	}
	if got := readN(t, human, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Fatalf("SecurityResult %v after the right password, want OK", got)
	}
	if n := ref.get("evicted"); n != 0 {
		t.Errorf("%d logins evicted; the four at the prompt fit beside an authenticated viewer", n)
	}
}

// TestCloseDoesNotWaitOutWrongPasswords: viewers queued behind the
// wrong-password pacer leave it when scry shuts down, so a flood of wrong
// answers cannot hold up the browser's graceful close.
func TestCloseDoesNotWaitOutWrongPasswords(t *testing.T) {
	h, srv := startServer(t, Config{VNCAddr: "127.0.0.1:1", ServerPassword: serverPW, Password: "pw", MaxViewers: 1,
		FailDelay: time.Second})
	for range 30 {
		c := rawViewer(t, srv)
		toPasswordPrompt(t, c)
		send(t, c, make([]byte, 16)) // wrong: queued ~1 s apart
	}
	start := time.Now()
	srv.CloseClientConnections()
	h.Close()
	// 30 answers paced 1 s apart would hold Close for 30 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v with 30 wrong passwords queued, want it not to wait their turns", d)
	}
}
