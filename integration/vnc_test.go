package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/dataplanelabs/scry/internal/rfbclient"
	"github.com/dataplanelabs/scry/internal/vnc"
)

// viewer connects to scry's /websockify the way noVNC does and runs the RFB
// handshake.
func viewer(ctx context.Context, s *Scry, password string) (*rfbclient.Client, error) {
	return rfbclient.DialWebSocket(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websockify", s.NoVNCPort), rfbclient.Config{Password: password})
}

// formSite serves a page with an input and a button that opens a login
// popup the way OAuth providers do.
func formSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>form</title>
<input id="i" style="position:absolute;left:100px;top:100px;width:300px;height:40px;font-size:20px">
<button id="open" style="position:absolute;left:100px;top:200px;width:200px;height:60px"
  onclick="window.open('/popup', 'login', 'width=520,height=420')">log in</button>`)
	})
	mux.HandleFunc("/popup", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>popup</title>
<input id="p" style="position:absolute;left:40px;top:60px;width:300px;height:40px;font-size:20px">`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// screenPoint returns where the centre of the element with id is on the X
// screen, from the page's own idea of its window and viewport.
func screenPoint(t *testing.T, ctx context.Context, id string) (uint16, uint16) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const r = document.getElementById(%q).getBoundingClientRect();
	  const chromeTop = window.outerHeight - window.innerHeight;
	  const chromeLeft = (window.outerWidth - window.innerWidth) / 2;
	  return [Math.round(window.screenX + chromeLeft + r.left + r.width/2),
	          Math.round(window.screenY + chromeTop + r.top + r.height/2)]; })()`, id)
	xy := must(chromedp.Run(ctx, chromedp.Evaluate[[]int](js)))(t)
	return uint16(xy[0]), uint16(xy[1])
}

// typeInto clicks the element through VNC until it has the focus, as a
// human would who sees no caret yet (a window just opened may still be
// moving into place or not yet on top), and types text into it.
func typeInto(t *testing.T, v *rfbclient.Client, ctx context.Context, id, text string) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("#%s focused by a click through VNC", id), func() error {
		x, y := screenPoint(t, ctx, id)
		if err := v.Click(x, y); err != nil {
			t.Fatal(err)
		}
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.hasFocus() && document.activeElement === document.getElementById(%q)`, id)))
		if err != nil {
			return err
		}
		if !focused {
			return fmt.Errorf("clicked at %d,%d; not focused", x, y)
		}
		return nil
	})
	if err := v.TypeText(text); err != nil {
		t.Fatal(err)
	}
}

// waitValue polls the element's value over CDP until it is want.
func waitValue(t *testing.T, ctx context.Context, id, want string) {
	t.Helper()
	var got string
	waitFor(t, 20*time.Second, fmt.Sprintf("#%s value %q over CDP", id, want), func() error {
		var err error
		got, err = chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).value`, id)))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("value is %q", got)
		}
		return nil
	})
}

func TestHumanAndAgentShareTheBrowser(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"VNC_PASSWORD": "s3cret"}})
	site := formSite(t)
	ctx, cancel := openInFront(t, s, site.URL)
	defer cancel()
	c := chromedp.FromContext(ctx)

	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	v, err := viewer(vctx, s, "s3cret")
	if err != nil {
		t.Fatalf("VNC with the right password: %v", err)
	}
	defer v.Close()
	if v.Width != 1440 || v.Height != 900 {
		t.Errorf("VNC framebuffer %dx%d, want SCREEN 1440x900", v.Width, v.Height)
	}

	// Type into the page through VNC; read it back through CDP.
	typeInto(t, v, ctx, "i", "hello from vnc")
	waitValue(t, ctx, "i", "hello from vnc")

	// The login popup: a human clicks the button, the popup must land on
	// the screen and take typing.
	bx, by := screenPoint(t, ctx, "open")
	if err := v.Click(bx, by); err != nil {
		t.Fatal(err)
	}
	// The target list, not chromedp.WaitNewTarget: that one skips a
	// target someone attached to before its URL became /popup.
	var popupID target.ID
	waitFor(t, 20*time.Second, "a popup opened by clicking through VNC", func() error {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			return err
		}
		for _, i := range infos {
			if i.Type == "page" && strings.HasSuffix(i.URL, "/popup") {
				popupID = i.TargetID
				return nil
			}
		}
		return errors.New("no /popup page among the targets")
	})
	pctx, pcancel := chromedp.NewContext(ctx, chromedp.WithTargetID(popupID))
	defer pcancel()
	waitFor(t, 20*time.Second, "popup loaded", func() error {
		ok, err := chromedp.Run(pctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!document.getElementById("p")`))
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not loaded")
		}
		return nil
	})
	win, err := cdp.Call(pctx, c.Browser, browser.GetWindowForTarget, browser.GetWindowForTargetParams{TargetID: popupID})
	if err != nil {
		t.Fatal(err)
	}
	b := win.Bounds
	if deref(b.Left) < 0 || deref(b.Top) < 0 || deref(b.Left)+b.Width > 1440 || deref(b.Top)+b.Height > 900 || b.Width < 200 {
		t.Errorf("popup window %s is not inside the 1440x900 screen", fmtBounds(b))
	}
	typeInto(t, v, pctx, "p", "popup typing")
	waitValue(t, pctx, "p", "popup typing")
}

func TestVNCPasswords(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"VNC_PASSWORD": "right-one-too-long"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !s.HasLog("VNC_PASSWORD is 18 bytes long") {
		t.Errorf("no warning about a password longer than 8 bytes:\n%s", s.Log())
	}
	if s.HasLog("right-one") {
		t.Errorf("the VNC password reached the log")
	}
	if v, err := viewer(ctx, s, "wrongpwd"); err == nil {
		v.Close()
		t.Error("a wrong VNC password was accepted")
	} else if !errors.As(err, new(*rfbclient.AuthError)) {
		t.Errorf("wrong password: want an authentication failure, got %v", err)
	}
	v, err := viewer(ctx, s, "right-one-too-long")
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	v.Close()
	// The password is in no child's command line.
	pids := processesUsing("x11vnc")
	if len(pids) == 0 {
		t.Fatal("no x11vnc process found")
	}
	for _, pid := range pids {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(b), "right-one") {
			t.Errorf("x11vnc pid %d has the password on its command line", pid)
		}
	}
	// Nor in any child's environment.
	for _, pid := range append(pids, browserPid(t, s)) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "right-one") || strings.Contains(string(b), "VNC_PASSWORD=") {
			t.Errorf("pid %d has VNC_PASSWORD in its environment", pid)
		}
	}
	// x11vnc's own password file: 0600, outside the profile, not the
	// user's password, gone when scry stops.
	f := x11vncPasswordFile(t, s)
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
	}
	if strings.HasPrefix(f, s.ProfileDir) {
		t.Errorf("%s is inside PROFILE_DIR %s", f, s.ProfileDir)
	}
	content, _ := os.ReadFile(f)
	if enc := vnc.EncodePassword("right-one-too-long"); bytes.Equal(content, enc[:]) {
		t.Errorf("x11vnc's password file holds VNC_PASSWORD; want scry's own random password")
	}
	s.Stop()
	if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after scry stopped (%v)", f, err)
	}
}

func TestOpenVNCWarnsAndOffersNone(t *testing.T) {
	s := Start(t, Options{})
	if !s.HasLog("VNC_PASSWORD is empty") {
		t.Errorf("no loud warning for an open login screen:\n%s", s.Log())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := viewer(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if len(v.SecurityTypes) != 1 || v.Security != 1 {
		t.Errorf("security types offered %v, chosen %d; want only None (1)", v.SecurityTypes, v.Security)
	}
	// A web page that DNS-rebinds a name onto this port is refused.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.NoVNCURL()+"/", nil)
	req.Host = fmt.Sprintf("rebound.example:%d", s.NoVNCPort)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("noVNC with an unlisted Host: want 403, got %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := v.RequestFull(); err != nil {
		t.Fatal(err)
	}
	var w, h int
	for w*h < 1440*900 {
		rects, err := v.ReadUpdate(ctx)
		if err != nil {
			t.Fatalf("framebuffer update: %v", err)
		}
		for _, r := range rects {
			if r.Encoding == 0 && int(r.W)*int(r.H) > w*h {
				w, h = int(r.W), int(r.H)
			}
		}
	}
	if w != 1440 || h != 900 {
		t.Errorf("full update %dx%d, want 1440x900", w, h)
	}
}

func TestViewerChurnAndX11vncCrashLeaveBrowserAlone(t *testing.T) {
	s := Start(t, Options{})
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	chromiumPid := s.ChromiumPid
	vctx, vcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer vcancel()
	for i := 0; i < 50; i++ {
		v, err := viewer(vctx, s, "")
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		v.Close()
	}

	// Kill x11vnc outright; scry brings it back, and nothing else moves.
	pid := vncPid(t, s, 1)
	segs, err := vnc.SegmentsOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) == 0 {
		t.Fatalf("x11vnc (pid %d) has no System V shared memory segments: the leak check below would prove nothing", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "x11vnc restarted", func() error {
		if n := countLog(s, "x11vnc ready"); n < 2 {
			return fmt.Errorf("%d x11vnc ready lines", n)
		}
		return nil
	})
	// The killed x11vnc could not free its shared memory; scry did (else
	// each crash leaks ~47 segments until the kernel has none left).
	if left, err := vnc.SegmentsOf(pid); err != nil || len(left) > 0 {
		t.Errorf("after x11vnc (pid %d) was killed and restarted, %d of its %d shared memory segments remain (%v)", pid, len(left), len(segs), err)
	}
	v, err := viewer(vctx, s, "")
	if err != nil {
		t.Fatalf("VNC after x11vnc restart: %v", err)
	}
	v.Close()
	if got := browserPid(t, s); got != chromiumPid {
		t.Errorf("scry's chromium is pid %d now, was %d", got, chromiumPid)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int]("1+1")); err != nil || n != 2 {
		t.Errorf("the open CDP connection broke: %v", err)
	}
	if s.HasLog("cdp connection closed") {
		t.Errorf("a CDP connection was closed during VNC churn")
	}
}

func countLog(s *Scry, sub string) int {
	n := 0
	for _, r := range s.Records() {
		if m, _ := r["msg"].(string); strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// vncPid returns the pid of the nth x11vnc that became ready.
func vncPid(t *testing.T, s *Scry, nth int) int {
	t.Helper()
	n := 0
	for _, r := range s.Records() {
		if r["msg"] == "x11vnc ready" {
			n++
			if n == nth {
				return int(r["pid"].(float64))
			}
		}
	}
	t.Fatalf("no x11vnc ready #%d in log", nth)
	return 0
}

// openInFront opens url in a new tab of scry's browser and makes it the
// visible tab, where VNC input lands.
func openInFront(t *testing.T, s *Scry, url string) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := attach(t, s)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		cancel()
		t.Fatal(err)
	}
	c := chromedp.FromContext(ctx)
	if _, err := cdp.Call(ctx, c.Target, page.BringToFront, cdp.Empty{}); err != nil {
		cancel()
		t.Fatal(err)
	}
	return ctx, cancel
}

// TestWebPageCannotUseX11vnc: x11vnc answers WebSocket upgrades on its own
// port with no Origin check, so any page open in scry's browser can reach
// ws://127.0.0.1:VNC_PORT. It must meet a password only scry knows, even
// with VNC_PASSWORD empty (where scry's own door offers None).
func TestWebPageCannotUseX11vnc(t *testing.T) {
	s := Start(t, Options{})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>hostile</title><p>a page that tries the VNC port</p>`)
	}))
	t.Cleanup(page.Close)
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	// The page speaks RFB 3.8 as far as it can: the banner, its version,
	// then it reports the security types it was offered.
	js := fmt.Sprintf(`new Promise((resolve) => {
	  const ws = new WebSocket('ws://127.0.0.1:%d/', ['binary']);
	  ws.binaryType = 'arraybuffer';
	  let buf = new Uint8Array(0), sentVersion = false;
	  const done = (v) => { try { ws.close(); } catch (e) {} resolve(v); };
	  ws.onerror = () => done({error: 'websocket error'});
	  ws.onclose = () => done({error: 'closed', got: Array.from(buf)});
	  ws.onmessage = (e) => {
	    const b = new Uint8Array(e.data), n = new Uint8Array(buf.length + b.length);
	    n.set(buf); n.set(b, buf.length); buf = n;
	    if (!sentVersion && buf.length >= 12) {
	      sentVersion = true;
	      ws.send(new TextEncoder().encode('RFB 003.008\n'));
	    }
	    if (sentVersion && buf.length >= 13 && buf.length >= 13 + buf[12]) {
	      done({banner: new TextDecoder().decode(buf.slice(0, 12)), types: Array.from(buf.slice(13, 13 + buf[12]))});
	    }
	  };
	  setTimeout(() => done({error: 'timeout', got: Array.from(buf)}), 15000);
	})`, s.VNCPort)
	type result struct {
		Banner string `json:"banner"`
		Types  []int  `json:"types"`
		Error  string `json:"error"`
		Got    []int  `json:"got"`
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[result](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a page on %s reaching x11vnc directly: %+v", page.URL, res)
	// x11vnc listens on the IPv4 loopback only.
	if got := listeners(t, s.VNCPort); !slices.Equal(got, []string{"0100007F"}) {
		t.Errorf("listening sockets on VNC_PORT %d: %v, want only 127.0.0.1 (0100007F)", s.VNCPort, got)
	}
	// Debian's x11vnc (libvncserver 0.9.14) does answer the page; if a
	// future one stops, this test must be looked at again, not pass.
	if res.Error != "" || res.Banner != "RFB 003.008\n" {
		t.Fatalf("the page did not get x11vnc's RFB banner (%+v): the test no longer shows what it should", res)
	}
	if len(res.Types) != 1 || res.Types[0] != 2 {
		t.Fatalf("x11vnc offered security types %v to a web page, want only VNC authentication [2]", res.Types)
	}
	// And the human door still offers None, as the design says for an
	// empty VNC_PASSWORD.
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	v, err := viewer(vctx, s, "")
	if err != nil {
		t.Fatalf("viewer through scry's door: %v", err)
	}
	v.Close()
}

// x11vncPasswordFile returns the -rfbauth file on the running x11vnc's
// command line.
func x11vncPasswordFile(t *testing.T, s *Scry) string {
	t.Helper()
	pid := vncPid(t, s, 1)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(string(b), "\x00")
	for i, a := range args {
		if a == "-rfbauth" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("x11vnc (pid %d) has no -rfbauth: %q", pid, args)
	return ""
}

// browserPid returns the pid of the live Chromium browser process that scry
// started (its child, not a renderer), read from /proc now.
func browserPid(t *testing.T, s *Scry) int {
	t.Helper()
	var found []int
	for _, pid := range processesUsing("--user-data-dir=" + s.ProfileDir) {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(s.Pid()) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("scry's children with the profile: %v, want exactly one browser", found)
	}
	return found[0]
}

// listeners returns the local addresses (hex, as /proc/net/tcp{,6} shows
// them) of the sockets listening on port.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, _ := strings.Cut(fields[1], ":")
			if n, err := strconv.ParseInt(p, 16, 32); err == nil && int(n) == port {
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

// TestPasteFromViewerWithCtrlV: text a viewer pastes (noVNC's clipboard
// panel sends RFB ClientCutText) is pasted into the remote browser's focused
// field with Ctrl+V, and read back over CDP.
func TestPasteFromViewerWithCtrlV(t *testing.T) {
	s := Start(t, Options{})
	site := formSite(t)
	ctx, cancel := openInFront(t, s, site.URL)
	defer cancel()
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	v, err := viewer(vctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	const text = "pasted Pa55-wörd!"
	if err := v.SendCutText(text); err != nil { // Latin-1 on the wire
		t.Fatal(err)
	}
	s.WaitLog("clipboard set from a viewer's paste", 20*time.Second)
	if s.HasLog("Pa55") {
		t.Error("the pasted text reached scry's log")
	}
	x, y := screenPoint(t, ctx, "i")
	if err := v.Click(x, y); err != nil {
		t.Fatal(err)
	}
	const ctrl, keyV = 0xffe3, 'v'
	for _, k := range []struct {
		sym  uint32
		down bool
	}{{ctrl, true}, {keyV, true}, {keyV, false}, {ctrl, false}} {
		if err := v.KeyEvent(k.sym, k.down); err != nil {
			t.Fatal(err)
		}
	}
	waitValue(t, ctx, "i", text)
}
