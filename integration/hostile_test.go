package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/coder/websocket"
)

// vmRSS reads a process's resident memory from /proc, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// door is one of scry's two listening ports.
type door struct {
	name string
	addr string
}

func doors(s *Scry) []door {
	return []door{
		{"cdp", fmt.Sprintf("127.0.0.1:%d", s.CDPPort)},
		{"novnc", fmt.Sprintf("127.0.0.1:%d", s.NoVNCPort)},
	}
}

// rawExchange sends req on a fresh connection (writing concurrently, since
// the server may answer and hang up before it has read everything) and
// returns the status line of the answer and the connection, still open.
func rawExchange(t *testing.T, addr string, req []byte) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = c.Write(req) }()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return "", c
	}
	return strings.TrimSpace(line), c
}

// statusOf is the code in an HTTP status line, 0 if it is not one.
func statusOf(line string) int {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// waitClosed reads c until the peer closes it or deadline passes, and
// reports when it closed.
func waitClosed(c net.Conn, deadline time.Time) (time.Time, error) {
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return time.Now(), nil
		}
		return time.Time{}, err
	}
}

func TestHostileClients(t *testing.T) {
	const headerTimeout = 2 * time.Second
	const margin = 10 * time.Second // a loaded 2-core machine
	s := Start(t, Options{Env: map[string]string{"HEADER_TIMEOUT": headerTimeout.String()}})
	site := testSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A well-behaved client, connected throughout.
	actx, acancel := remote.NewAllocator(ctx, s.CDPURL())
	defer acancel()
	good, gcancel := chromedp.NewContext(actx)
	defer gcancel()
	if err := chromedp.Do(good, chromedp.Navigate(site.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		t.Fatalf("well-behaved client before: %v", err)
	}
	chromiumPid := s.ChromiumPid
	rss0 := vmRSS(t, s.Pid())
	m0, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := browserWS(t, ctx, s, "", nil)
	browserPath := must(url.Parse(ws))(t).Path

	t.Run("malformed requests", func(t *testing.T) {
		for _, d := range doors(s) {
			for _, req := range []string{
				"GARBAGE\r\n\r\n",
				"\x00\x01\x02\xff\xfe\r\n\r\n",
				"GET\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
				"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked, bogus\r\n\r\n",
			} {
				line, c := rawExchange(t, d.addr, []byte(req))
				c.Close()
				if code := statusOf(line); code < 400 || code > 505 {
					t.Errorf("%s: %q answered %q, want a 4xx/5xx refusal", d.name, req, line)
				}
			}
		}
	})

	t.Run("oversized headers and request line", func(t *testing.T) {
		big := strings.Repeat("a", 100<<10)
		line1MB := strings.Repeat("a", 1<<20)
		for _, d := range doors(s) {
			for name, req := range map[string]string{
				"100 KiB header":    "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + "\r\n\r\n",
				"1 MB request line": "GET /" + line1MB + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
			} {
				line, c := rawExchange(t, d.addr, []byte(req))
				c.Close()
				if code := statusOf(line); code != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("%s, %s: answered %q, want 431", d.name, name, line)
				}
			}
		}
	})

	t.Run("upgrade with a bad Sec-WebSocket-Key", func(t *testing.T) {
		upgrade := func(path, host, version, key string) string {
			return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s%s\r\n", path, host, version, key)
		}
		// The agent door holds the handshake to RFC 6455 itself (Chromium
		// would take any key and any version).
		cdp := doors(s)[0].addr
		for _, tc := range []struct {
			name, version, key string
			want               int
		}{
			{"key not base64", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: !!not base64!!\r\n", http.StatusBadRequest},
			{"8-byte key", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: c2hvcnQ=\r\n", http.StatusBadRequest},
			{"empty key", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: \r\n", http.StatusBadRequest},
			{"version 8", "Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", http.StatusUpgradeRequired},
			{"no version", "", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", http.StatusUpgradeRequired},
		} {
			line, c := rawExchange(t, cdp, []byte(upgrade(browserPath, cdp, tc.version, tc.key)))
			c.Close()
			if code := statusOf(line); code != tc.want {
				t.Errorf("cdp %s, %s: answered %q, want %d", browserPath, tc.name, line, tc.want)
			}
		}
		for _, key := range []string{"!!not base64!!", "c2hvcnQ=", ""} {
			addr := doors(s)[1].addr
			line, c := rawExchange(t, addr, []byte(upgrade("/websockify", addr, "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: "+key+"\r\n")))
			code := statusOf(line)
			if code == http.StatusSwitchingProtocols {
				// Accepting is not a crash, but say so: the key is not a
				// 16-byte nonce.
				t.Logf("novnc /websockify: key %q accepted: %q", key, line)
			} else if code < 400 {
				t.Errorf("novnc /websockify: key %q answered %q, want a refusal (or 101)", key, line)
			}
			c.Close()
		}
	})

	t.Run("garbage after a successful upgrade to a page target", func(t *testing.T) {
		tg := newPage(t, s.CDPURL(), "/json/new", "about:blank", s.CDPURL(), nil)
		path := must(url.Parse(tg.WS))(t).Path
		for _, garbage := range [][]byte{randomBytes(t, 64<<10), []byte("\x81\xffAAAAAAAA"), []byte("GET / HTTP/1.1\r\n\r\n")} {
			upgrade := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, s.CDPPort)
			c, err := net.DialTimeout("tcp", doors(s)[0].addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			if _, err := c.Write([]byte(upgrade)); err != nil {
				t.Fatal(err)
			}
			r, err := http.ReadResponse(br, nil)
			if err != nil || r.StatusCode != http.StatusSwitchingProtocols {
				c.Close()
				t.Fatalf("upgrade to the page target: %v %v", r, err)
			}
			go func() { _, _ = c.Write(garbage) }()
			// Chromium may close the socket or ignore the junk; either is
			// fine. Don't wait forever for it to decide.
			if _, err := waitClosed(c, time.Now().Add(3*time.Second)); err != nil {
				t.Logf("%d bytes of garbage: connection still open after 3s (%v); closing it", len(garbage), err)
			}
			c.Close()
		}
		// The target (and the browser) still answer over a proper client.
		c, _, err := websocket.Dial(ctx, tg.WS, nil)
		if err != nil {
			t.Fatalf("the page target after garbage: %v", err)
		}
		ans, err := wsCall(ctx, c, "Runtime.evaluate", `{"expression":"6*7"}`)
		c.Close(websocket.StatusNormalClosure, "")
		if err != nil || !strings.Contains(ans, `"value":42`) {
			t.Errorf("Runtime.evaluate on the page target after garbage: %v %s", err, ans)
		}
	})

	t.Run("RFB client silent mid-handshake", func(t *testing.T) {
		wsc, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/websockify", doors(s)[1].addr), &websocket.DialOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			t.Fatal(err)
		}
		conn := websocket.NetConn(context.Background(), wsc, websocket.MessageBinary)
		banner := make([]byte, 12)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(conn, banner); err != nil || !strings.HasPrefix(string(banner), "RFB ") {
			t.Fatalf("RFB banner: %q %v", banner, err)
		}
		// Silent now, as at the password prompt: a login in progress (held
		// up to 2 minutes), not a viewer, so it takes no viewer slot.
		waitFor(t, 20*time.Second, "silent login counted", func() error { return metricIs(ctx, s, "scry_vnc_logins_in_progress", 1) })
		if err := metricIs(ctx, s, "scry_vnc_viewers_open", 0); err != nil {
			t.Errorf("a viewer that never logged in counts as a viewer: %v", err)
		}
		conn.Close()
		waitFor(t, 20*time.Second, "silent login's slot freed", func() error { return metricIs(ctx, s, "scry_vnc_logins_in_progress", 0) })
	})

	t.Run("500 abandoned connections per door", func(t *testing.T) {
		const n = 500
		var wg sync.WaitGroup
		for _, d := range doors(s) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns := make([]net.Conn, 0, n)
				defer func() {
					for _, c := range conns {
						c.Close()
					}
				}()
				opened := time.Now()
				for range n {
					c, err := net.DialTimeout("tcp", d.addr, 10*time.Second)
					if err != nil {
						t.Errorf("%s: dial %d: %v", d.name, len(conns), err)
						return
					}
					conns = append(conns, c)
				}
				dialled := time.Since(opened)
				deadline := opened.Add(headerTimeout + margin)
				var mu sync.Mutex
				var last time.Time
				var open []error
				var rw sync.WaitGroup
				for _, c := range conns {
					rw.Add(1)
					go func() {
						defer rw.Done()
						at, err := waitClosed(c, deadline)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							open = append(open, err)
						} else if at.After(last) {
							last = at
						}
					}()
				}
				rw.Wait()
				if len(open) > 0 {
					t.Errorf("%s: %d of %d silent connections still open %s after they were opened (HEADER_TIMEOUT %s): %v",
						d.name, len(open), n, headerTimeout+margin, headerTimeout, open[0])
				}
				t.Logf("%s: %d silent connections opened in %s; the last closed by scry %s after the first was opened",
					d.name, n, dialled.Round(time.Millisecond), last.Sub(opened).Round(time.Millisecond))
			}()
		}
		wg.Wait()
	})

	t.Run("slowloris", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, d := range doors(s) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", d.addr, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				start := time.Now()
				closed := make(chan time.Time, 1)
				go func() {
					at, err := waitClosed(c, start.Add(headerTimeout+margin))
					if err != nil {
						at = time.Time{}
					}
					closed <- at
				}()
				// The request line and one header at once, then the rest of
				// the headers one byte at a time.
				if _, err := io.WriteString(c, "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
					t.Error(err)
					return
				}
				head := "X-Slow: " + strings.Repeat("z", 100)
				tick := time.NewTicker(500 * time.Millisecond) // the attack's pace, not synchronisation
				defer tick.Stop()
				sent := 0
				for i := 0; i < len(head); i++ {
					if _, err := c.Write([]byte{head[i]}); err != nil {
						break
					}
					sent++
					select {
					case at := <-closed:
						closed <- at
						i = len(head)
					case <-tick.C:
					}
				}
				at := <-closed
				if at.IsZero() {
					t.Errorf("%s: a client trickling one header byte per 500ms was not cut within %s (HEADER_TIMEOUT %s)", d.name, headerTimeout+margin, headerTimeout)
					return
				}
				t.Logf("%s: slowloris cut after %s, %d bytes sent", d.name, at.Sub(start).Round(time.Millisecond), sent)
			}()
		}
		wg.Wait()
	})

	t.Run("trickled body", func(t *testing.T) {
		// The headers at once, then a declared 1000-byte body one byte per
		// 500 ms: the agent door must cut it, whether it refuses the client
		// (no token) or would forward it (a token, or none needed). A
		// second scry asks for a token.
		tok := newToken(t)
		st := Start(t, Options{Env: map[string]string{"HEADER_TIMEOUT": headerTimeout.String(), "CDP_TOKEN": tok}})
		var wg sync.WaitGroup
		for _, tc := range []struct {
			name   string
			sc     *Scry
			target string
			header string
			want   int
		}{
			{"no CDP_TOKEN", s, "/json/version", "", http.StatusRequestTimeout},
			{"CDP_TOKEN, none sent", st, "/json/version", "", http.StatusUnauthorized},
			{"CDP_TOKEN in the header", st, "/json/version", "Authorization: Bearer " + tok + "\r\n", http.StatusRequestTimeout},
			{"CDP_TOKEN in the query", st, "/json/new?about:blank&token=" + tok, "", http.StatusRequestTimeout},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				addr := fmt.Sprintf("127.0.0.1:%d", tc.sc.CDPPort)
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				start := time.Now()
				type answer struct {
					line string
					at   time.Time // when scry closed the connection, zero if it did not
				}
				done := make(chan answer, 1)
				go func() {
					_ = c.SetReadDeadline(start.Add(headerTimeout + margin))
					br := bufio.NewReader(c)
					line, _ := br.ReadString('\n')
					var at time.Time
					if _, err := io.Copy(io.Discard, br); err == nil || errors.Is(err, syscall.ECONNRESET) {
						at = time.Now()
					}
					done <- answer{strings.TrimSpace(line), at}
				}()
				if _, err := fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n%s\r\n", tc.target, addr, tc.header); err != nil {
					t.Error(err)
					return
				}
				tick := time.NewTicker(500 * time.Millisecond) // the attack's pace, not synchronisation
				defer tick.Stop()
				var a answer
				sent := 0
			trickle:
				for {
					select {
					case a = <-done:
						break trickle
					case <-tick.C:
						if _, err := c.Write([]byte{'x'}); err == nil {
							sent++
						}
					}
				}
				if code := statusOf(a.line); code != tc.want {
					t.Errorf("cdp, %s: answered %q, want %d", tc.name, a.line, tc.want)
				}
				if a.at.IsZero() {
					t.Errorf("cdp, %s: a body trickled one byte per 500ms was not cut within %s (HEADER_TIMEOUT %s)", tc.name, headerTimeout+margin, headerTimeout)
					return
				}
				t.Logf("cdp, %s: %q, cut after %s, %d body bytes sent", tc.name, a.line, a.at.Sub(start).Round(time.Millisecond), sent)
			}()
		}
		wg.Wait()
		for _, sc := range []*Scry{s, st} {
			if sc.HasLog("chromium did not answer") {
				t.Errorf("a client's trickled body was blamed on Chromium:\n%s", sc.Log())
			}
		}
	})

	// Nothing moved: the same Chromium, the well-behaved client still
	// works, no connection or goroutine left behind, memory bounded.
	if s.Exited() {
		t.Fatalf("scry exited:\n%s", s.Log())
	}
	if s.ChromiumPid != chromiumPid || syscall.Kill(chromiumPid, 0) != nil {
		t.Errorf("Chromium (pid %d) died or was replaced", chromiumPid)
	}
	if err := chromedp.Do(good, chromedp.Navigate(site.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		t.Errorf("well-behaved client after: %v", err)
	} else if out, err := chromedp.Run(good, chromedp.Text(chromedp.ID("out"))); err != nil || out != "clicked" {
		t.Errorf("well-behaved client after: %q %v", out, err)
	}
	if p := probeOnce(s, "/readyz"); p.code != http.StatusOK {
		t.Errorf("/readyz after the hostile clients: %d %v", p.code, p.err)
	}
	waitFor(t, 30*time.Second, "only the well-behaved CDP connection open", func() error {
		return metricIs(ctx, s, "scry_cdp_connections_open", 1)
	})
	waitFor(t, 30*time.Second, "goroutines back near where they started", func() error {
		m, err := scrape(ctx, s, nil)
		if err != nil {
			return err
		}
		if g, g0 := m["go_goroutines"], m0["go_goroutines"]; g > g0+20 {
			return fmt.Errorf("%v goroutines, %v before", g, g0)
		}
		return nil
	})
	rss1 := vmRSS(t, s.Pid())
	t.Logf("scry RSS %d MiB before, %d MiB after", rss0>>20, rss1>>20)
	if rss1-rss0 > 100<<20 {
		t.Errorf("scry's RSS grew by %d MiB (from %d MiB), want < 100 MiB", (rss1-rss0)>>20, rss0>>20)
	}
}

// metricIs checks one unlabelled series' value.
func metricIs(ctx context.Context, s *Scry, name string, want float64) error {
	m, err := scrape(ctx, s, nil)
	if err != nil {
		return err
	}
	if got := m[name]; got != want {
		return fmt.Errorf("%s = %v, want %v", name, got, want)
	}
	return nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
