package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
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
	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// viewer connects to scry's /websockify the way noVNC does and runs the RFB
// handshake.
func viewer(ctx context.Context, s *Scry, password string) (*rfbclient.Client, error) {
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websockify", s.NoVNCPort),
		&websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return nil, fmt.Errorf("dial websockify: %w", err)
	}
	ws.SetReadLimit(-1)
	conn := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	c, err := rfbclient.Handshake(ctx, conn, rfbclient.Config{Password: password})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
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

// typeInto clicks the element through VNC and types text into it.
func typeInto(t *testing.T, v *rfbclient.Client, x, y uint16, text string) {
	t.Helper()
	if err := v.Click(x, y); err != nil {
		t.Fatal(err)
	}
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
	x, y := screenPoint(t, ctx, "i")
	typeInto(t, v, x, y, "hello from vnc")
	waitValue(t, ctx, "i", "hello from vnc")

	// The login popup: a human clicks the button, the popup must land on
	// the screen and take typing.
	popupCh := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool { return strings.HasSuffix(i.URL, "/popup") })
	bx, by := screenPoint(t, ctx, "open")
	if err := v.Click(bx, by); err != nil {
		t.Fatal(err)
	}
	var popupID target.ID
	select {
	case popupID = <-popupCh:
	case <-time.After(20 * time.Second):
		t.Fatal("no popup opened after clicking through VNC")
	}
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
	px, py := screenPoint(t, pctx, "p")
	typeInto(t, v, px, py, "popup typing")
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
	for _, pid := range processesUsing("x11vnc") {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(b), "right-one") {
			t.Errorf("x11vnc pid %d has the password on its command line", pid)
		}
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
	if v.Security != 1 {
		t.Errorf("security type %d, want None (1)", v.Security)
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
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "x11vnc restarted", func() error {
		if n := countLog(s, "x11vnc ready"); n < 2 {
			return fmt.Errorf("%d x11vnc ready lines", n)
		}
		return nil
	})
	v, err := viewer(vctx, s, "")
	if err != nil {
		t.Fatalf("VNC after x11vnc restart: %v", err)
	}
	v.Close()
	if s.ChromiumPid != chromiumPid || syscall.Kill(chromiumPid, 0) != nil {
		t.Errorf("chromium pid changed or died: was %d", chromiumPid)
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
