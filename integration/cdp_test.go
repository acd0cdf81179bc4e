package integration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/coder/websocket"
)

// testSite serves a page with a button that changes the DOM.
func testSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>scry test</title>
<button id="b" onclick="document.getElementById('out').textContent='clicked'">click me</button>
<p id="out">waiting</p>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// attach returns a chromedp context attached to scry's bridge.
func attach(t *testing.T, s *Scry) (context.Context, context.CancelFunc) {
	t.Helper()
	actx, acancel := remote.NewAllocator(context.Background(), s.CDPURL())
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	return ctx, func() { tcancel(); cancel(); acancel() }
}

func TestDriveThroughBridge(t *testing.T) {
	s := Start(t, Options{})
	site := testSite(t)
	ctx, cancel := attach(t, s)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(site.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		t.Fatalf("drive through the bridge: %v", err)
	}
	out := must(chromedp.Run(ctx, chromedp.Text(chromedp.ID("out"))))(t)
	if out != "clicked" {
		t.Errorf("after click, #out = %q, want clicked", out)
	}
	innerW := must(chromedp.Run(ctx, chromedp.Evaluate[int]("window.innerWidth")))(t)
	innerH := must(chromedp.Run(ctx, chromedp.Evaluate[int]("window.innerHeight")))(t)
	buf := must(chromedp.Run(ctx, chromedp.CaptureScreenshot()))(t)
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	// The window fills the 1440x900 screen: the page is as wide as the
	// screen and the screenshot is exactly the page's viewport.
	if b := img.Bounds(); b.Dx() != 1440 || b.Dx() != innerW || b.Dy() != innerH {
		t.Errorf("screenshot %dx%d, viewport %dx%d: want 1440 wide and equal to the viewport", b.Dx(), b.Dy(), innerW, innerH)
	}

	// And the browser window covers the screen from its origin: exactly
	// as wide, and one row taller (see browser.Flags for why).
	c := chromedp.FromContext(ctx)
	win, err := cdp.Call(ctx, c.Browser, browser.GetWindowForTarget, browser.GetWindowForTargetParams{TargetID: c.Target.TargetID})
	if err != nil {
		t.Fatal(err)
	}
	if b := win.Bounds; deref(b.Left) != 0 || deref(b.Top) != 0 || b.Width != 1440 || b.Height != 901 {
		t.Errorf("window bounds %s, want 1440x901 at 0,0 (covering SCREEN 1440x900)", fmtBounds(b))
	}
}

// must unwraps a (value, error) pair in a test.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// deref reads an optional CDP integer, which is omitted when zero.
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func fmtBounds(b *browser.Bounds) string {
	return fmt.Sprintf("%dx%d at %d,%d", b.Width, b.Height, deref(b.Left), deref(b.Top))
}

func TestScreenGeometryFollowsSCREEN(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"SCREEN": "1024x768x24"}})
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	w := must(chromedp.Run(ctx, chromedp.Evaluate[int]("screen.width")))(t)
	h := must(chromedp.Run(ctx, chromedp.Evaluate[int]("screen.height")))(t)
	if w != 1024 || h != 768 {
		t.Errorf("screen %dx%d, want 1024x768", w, h)
	}
}

// dialAs opens a CDP WebSocket to url through scry's port, sending the
// given Host (the URL's host) and Origin, whatever the name resolves to.
func dialAs(ctx context.Context, s *Scry, url, origin string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", s.CDPPort))
	}}
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: h})
}

func TestHostAndOriginPolicy(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"CDP_ALLOWED_HOSTS": "scry"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	allowed := fmt.Sprintf("scry:%d", s.CDPPort)

	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	if code, err := getJSON(ctx, s.CDPURL()+"/json/version", allowed, &v); err != nil {
		t.Fatalf("Host %s (in CDP_ALLOWED_HOSTS): %d %v", allowed, code, err)
	}
	if want := "ws://" + allowed + "/devtools/browser/"; !strings.HasPrefix(v.WS, want) {
		t.Fatalf("webSocketDebuggerUrl = %q, want prefix %q", v.WS, want)
	}

	// The rewritten URL works as handed out, Host and all.
	c, _, err := dialAs(ctx, s, v.WS, "")
	if err != nil {
		t.Fatalf("dial %s: %v", v.WS, err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"Browser.getVersion"}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"product"`) {
		t.Fatalf("Browser.getVersion through %s: %s %v", allowed, msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Targets too, and wss when the client came through TLS.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.CDPURL()+"/json/list", nil)
	req.Host = allowed
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), `"webSocketDebuggerUrl": "wss://`+allowed+`/devtools/page/`) {
		t.Errorf("/json/list via TLS does not hand out wss://%s URLs:\n%s", allowed, body.String())
	}

	// An unlisted name is refused, and the answer names the variable.
	code, err := getJSON(ctx, s.CDPURL()+"/json/version", fmt.Sprintf("rebound.example:%d", s.CDPPort), &v)
	if code != http.StatusForbidden || err == nil || !strings.Contains(err.Error(), "CDP_ALLOWED_HOSTS") {
		t.Errorf("unlisted Host: got %d %v, want 403 naming CDP_ALLOWED_HOSTS", code, err)
	}
	_, resp, err = dialAs(ctx, s, strings.Replace(v.WS, allowed, fmt.Sprintf("rebound.example:%d", s.CDPPort), 1), "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket with unlisted Host: want 403, got %v %v", resp, err)
	}

	// A WebSocket from a web page (it carries an Origin) is refused.
	_, resp, err = dialAs(ctx, s, v.WS, "https://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket with Origin: want 403, got %v %v", resp, err)
	}
}

func TestAllowedOrigin(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"CDP_ALLOWED_ORIGINS": "https://tool.example"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	if _, err := getJSON(ctx, s.CDPURL()+"/json/version", "", &v); err != nil {
		t.Fatal(err)
	}
	c, _, err := dialAs(ctx, s, v.WS, "https://tool.example")
	if err != nil {
		t.Fatalf("listed origin refused: %v", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if _, resp, err := dialAs(ctx, s, v.WS, "https://other.example"); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("unlisted origin: want 403, got %v", err)
	}
}

// TestIdleConnectionSurvives leaves two CDP WebSockets silent for longer
// than every timer that could cut one, then uses them again: chromedp's
// browser socket and a page socket. The timers: HEADER_TIMEOUT (1 s here),
// the bridge's 30 s deadline on Chromium's upgrade answer and its 30 s
// half-close timer, and the keepalive idle time (the default 30 s, so
// probes run while the sockets are quiet). The server's 2-minute
// IdleTimeout is not waited out: it only applies between requests on a
// connection the server still owns, never a hijacked one.
func TestIdleConnectionSurvives(t *testing.T) {
	const idle = 35 * time.Second
	s := Start(t, Options{Env: map[string]string{"HEADER_TIMEOUT": "1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), idle+90*time.Second)
	defer cancel()
	actx, acancel := remote.NewAllocator(ctx, s.CDPURL())
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.CDPURL()+"/json/new?about:blank", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tg struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tg)
	resp.Body.Close()
	if err != nil || tg.WS == "" {
		t.Fatalf("PUT /json/new: %d %v", resp.StatusCode, err)
	}
	page, _, err := websocket.Dial(ctx, tg.WS, nil)
	if err != nil {
		t.Fatalf("dial the page socket %s: %v", tg.WS, err)
	}
	defer page.CloseNow()
	if ans, err := wsCall(ctx, page, "Runtime.evaluate", `{"expression":"6*7"}`); err != nil || !strings.Contains(ans, `"value":42`) {
		t.Fatalf("page socket before the idle period: %v %s", err, ans)
	}
	waitFor(t, 10*time.Second, "both sockets open", func() error { return metricIs(ctx, s, "scry_cdp_connections_open", 2) })

	// The idle period is what is tested, not a synchronisation: nothing
	// is sent on either socket until it ends.
	quiet := time.NewTimer(idle)
	defer quiet.Stop()
	select {
	case <-quiet.C:
	case <-bctx.Done():
		t.Fatalf("chromedp's connection ended while idle: %v", bctx.Err())
	}

	if s.HasLog("cdp connection closed") {
		t.Fatalf("a CDP connection was closed during the %s idle period:\n%s", idle, s.Log())
	}
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int]("6*7")); err != nil || n != 42 {
		t.Errorf("browser socket after %s idle: %v %d", idle, err, n)
	}
	if ans, err := wsCall(ctx, page, "Runtime.evaluate", `{"expression":"6*7"}`); err != nil || !strings.Contains(ans, `"value":42`) {
		t.Errorf("page socket after %s idle: %v %s", idle, err, ans)
	}
	if err := metricIs(ctx, s, "scry_cdp_connections_open", 2); err != nil {
		t.Errorf("after the idle period: %v", err)
	}
}

func TestManyClientsIndependent(t *testing.T) {
	s := Start(t, Options{})
	site := testSite(t)
	var cancels []context.CancelFunc
	var ctxs []context.Context
	for i := 0; i < 4; i++ {
		ctx, cancel := attach(t, s)
		ctxs, cancels = append(ctxs, ctx), append(cancels, cancel)
		if err := chromedp.Do(ctx, chromedp.Navigate(site.URL)); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	// Client 0 goes away (its tab closes with it); the others carry on.
	cancels[0]()
	for i := 1; i < 4; i++ {
		if err := chromedp.Do(ctxs[i], chromedp.Click(chromedp.ID("b"))); err != nil {
			t.Errorf("client %d after client 0 left: %v", i, err)
			continue
		}
		if out, err := chromedp.Run(ctxs[i], chromedp.Text(chromedp.ID("out"))); err != nil || out != "clicked" {
			t.Errorf("client %d after client 0 left: %v %q", i, err, out)
		}
	}
	for _, c := range cancels[1:] {
		c()
	}
	ctx, cancel := attach(t, s)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatalf("browser unusable after clients left: %v", err)
	}
}

func TestChromiumDeathEndsScry(t *testing.T) {
	s := Start(t, Options{})
	if err := syscall.Kill(s.ChromiumPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code := s.Wait(40 * time.Second)
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("scry exit code %d after Chromium was SIGKILLed, want %d", code, 128+int(syscall.SIGKILL))
	}
	if pids := processesUsing(s.ProfileDir); len(pids) > 0 {
		t.Errorf("processes left using the profile after scry exited: %v", pids)
	}
	if pids := processesUsing("Xvfb " + s.Display + " "); len(pids) > 0 {
		t.Errorf("Xvfb left running: %v", pids)
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	s := Start(t, Options{})
	ctx, cancel := attach(t, s)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	cancel()
	s.Stop()
	if !s.HasLog("chromium closed cleanly") {
		t.Errorf("Chromium was not closed through CDP:\n%s", s.Log())
	}
	if pids := processesUsing(s.ProfileDir); len(pids) > 0 {
		t.Errorf("children left after a clean exit: %v", pids)
	}
	if pids := processesUsing("Xvfb " + s.Display + " "); len(pids) > 0 {
		t.Errorf("Xvfb left running: %v", pids)
	}
}

func TestBadConfigurationStopsBeforeAnything(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SCREEN": "big"}, `SCREEN="big"`},
		{map[string]string{"CDP_PORT": "99999"}, `CDP_PORT="99999"`},
		{map[string]string{"DISPLAY": "99"}, `DISPLAY="99"`},
		{map[string]string{"CHROME_EXTRA_FLAGS": "--remote-debugging-port=9333"}, "CDP_INTERNAL_PORT"},
		{map[string]string{"CDP_ALLOWED_HOSTS": "*.scry"}, "wildcards are not supported"},
	}
	for _, tt := range tests {
		s := Start(t, Options{Env: tt.env, NoWait: true})
		if code := s.Wait(10 * time.Second); code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.env, code)
		}
		if !s.HasLog(tt.want) {
			t.Errorf("%v: error does not name %s:\n%s", tt.env, tt.want, s.Log())
		}
		if s.HasLog("starting xvfb") {
			t.Errorf("%v: something started despite bad configuration", tt.env)
		}
	}
}

// TestNewTargetKeepsItsURL opens pages with PUT /json/new, straight at
// Chromium's loopback port and through the bridge with CDP_TOKEN set: the
// bridge must make no difference to the page Chromium opens (it reads the
// query raw, up to the first '&', and unescapes it), and Chromium must never
// see scry's token.
func TestNewTargetKeepsItsURL(t *testing.T) {
	token := newToken(t)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token}})
	direct := "http://127.0.0.1:" + s.Env["CDP_INTERNAL_PORT"]
	queries := make(chan string, 16)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/landing" {
			queries <- r.URL.RawQuery
		}
		fmt.Fprint(w, "<!doctype html><title>landing</title>")
	}))
	t.Cleanup(site.Close)
	landing := site.URL + "/landing"

	// open asks base for a new page at path (/json/new, or anything under
	// it: Chromium reads both alike) and returns the query the page was
	// loaded with and the page's webSocketDebuggerUrl.
	open := func(t *testing.T, base, path, query string, h http.Header) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tg := newPage(t, base, path, query, direct, h)
		select {
		case got := <-queries:
			return got, tg.WS
		case <-ctx.Done():
			t.Fatalf("PUT %s%s?%s: the page never loaded", base, path, query)
			return "", ""
		}
	}

	for _, tc := range []struct {
		name   string
		path   string // "" means /json/new
		target string // the /json/new query, before scry's token
		header http.Header
		want   string // "" means whatever Chromium makes of it directly
	}{
		{name: "raw URL with several parameters", target: landing + "?b=2&a=%2F&c=x%20y"},
		{name: "escaped URL", target: url.QueryEscape(landing + "?b=2&a=%2F&c=x y"), want: "b=2&a=%2F&c=x+y"},
		{name: "the page's own token", target: landing + "?token=theirs", want: "token=theirs"},
		{name: "bearer, the page's own token", target: url.QueryEscape(landing + "?z=1&token=theirs"),
			header: bearer(token), want: "z=1&token=theirs"},
		{name: "/json/new/ANYTHING, the page's own token", path: "/json/new/x", target: url.QueryEscape(landing + "?z=1&token=theirs"),
			want: "z=1&token=theirs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := cmp.Or(tc.path, "/json/new")
			want, _ := open(t, direct, path, tc.target, nil)
			if tc.want != "" && want != tc.want {
				t.Fatalf("straight at Chromium the page was loaded with %q, want %q: the test's premise is wrong", want, tc.want)
			}
			q := tc.target
			if tc.header == nil {
				q += "&token=" + token
			}
			got, ws := open(t, s.CDPURL(), path, q, tc.header)
			if got != want {
				t.Errorf("through scry the page was loaded with query %q, straight at Chromium with %q", got, want)
			}
			if u, err := url.Parse(ws); err != nil || u.Host != strings.TrimPrefix(s.CDPURL(), "http://") || u.Query().Get("token") != token {
				t.Errorf("through scry %s answered webSocketDebuggerUrl %q, want it on scry's door with the token", path, ws)
			}
		})
	}
}

// TestChildrenDropRootGroups starts scry the way sudo would, as root with
// root's supplementary groups: the children must run as CHILD_UID with no
// supplementary groups at all, gid 0 least of all.
func TestChildrenDropRootGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: scry only changes the children's credentials when it runs as root")
	}
	orig, err := syscall.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	// Every thread of this test process gets them, and scry inherits them.
	if err := syscall.Setgroups([]int{0, 4, 27}); err != nil {
		t.Skipf("cannot give this process supplementary groups: %v", err)
	}
	func() {
		defer func() {
			if err := syscall.Setgroups(orig); err != nil {
				t.Errorf("restore this process's groups: %v", err)
			}
		}()
		s := Start(t, Options{})
		if got := procStatus(t, s.Pid(), "Groups"); got != "0 4 27" {
			t.Fatalf("scry's groups = %q, want root's 0 4 27 (the test's premise)", got)
		}
		for _, field := range []string{"Uid", "Gid"} {
			if got := strings.Fields(procStatus(t, s.ChromiumPid, field)); len(got) == 0 || got[0] != "1000" {
				t.Errorf("chromium %s: %q, want 1000", field, got)
			}
		}
		if got := procStatus(t, s.ChromiumPid, "Groups"); got != "" {
			t.Errorf("chromium's supplementary groups = %q, want none", got)
		}
	}()
}

// TestKeptGroupsAreNamed runs scry as root with supplementary groups in a
// user namespace that denies setgroups(2), as some rootless container
// runtimes do: it cannot drop the groups for its children and must say
// which they keep. A missing Chromium stops it right after.
func TestKeptGroupsAreNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: setpriv gives the supplementary groups")
	}
	for _, tool := range []string{"setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (util-linux)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// unshare --map-root-user writes "deny" to /proc/self/setgroups; the
	// groups, unmapped there, show as the overflow gid.
	cmd := exec.CommandContext(ctx, "setpriv", "--groups", "4,27", "unshare", "--user", "--map-root-user", scryBin)
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH=/nonexistent/chromium", "LOG_FORMAT=json",
		"PROFILE_DIR="+filepath.Join(tempDir(t), "profile"))
	out, err := cmd.CombinedOutput()
	if bytes.HasPrefix(out, []byte("unshare:")) || bytes.HasPrefix(out, []byte("setpriv:")) {
		t.Skipf("cannot make the user namespace here: %s", out)
	}
	if err == nil {
		t.Fatalf("scry started without Chromium:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil || r["level"] != "WARN" {
			continue
		}
		if msg, _ := r["msg"].(string); strings.Contains(msg, "supplementary groups") {
			if g, _ := r["groups"].(string); !strings.HasPrefix(g, "65534") || len(strings.Fields(g)) != 2 {
				t.Errorf("the warning names groups %q, want the two kept (unmapped, so 65534)", g)
			}
			return
		}
	}
	t.Errorf("no warning that the children keep scry's supplementary groups:\n%s", out)
}

// procStatus returns a field of /proc/PID/status, trimmed.
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

// TestNodeClientsDriveTheDefaultDoor: Playwright (connectOverCDP) and
// Puppeteer (connect with browserURL) pointed at the door the way users do,
// no token, by a host name rather than an IP (localhost, which Chrome's
// check and scry's allow by default), click a button and read the DOM.
func TestNodeClientsDriveTheDefaultDoor(t *testing.T) {
	s := Start(t, Options{})
	site := testSite(t)
	for _, client := range []string{"playwright", "puppeteer"} {
		res, err := runNode(t, client, fmt.Sprintf("http://localhost:%d", s.CDPPort), "", "none", site.URL)
		if err != nil || !res.OK || res.Text != "clicked" {
			t.Errorf("%s through http://localhost:%d: %+v %v, want ok and #out clicked", client, s.CDPPort, res, err)
		}
	}
}
