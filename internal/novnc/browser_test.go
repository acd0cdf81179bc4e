package novnc

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestPageInChromium loads scry's page in a real Chromium, under a path
// prefix as behind an ingress: it must ask for the password, report a wrong
// one, connect with the right one, draw the screen, and reconnect by itself
// (reusing the password) after x11vnc restarts.
func TestPageInChromium(t *testing.T) {
	needBinaries(t, "chromium")
	if _, err := os.Stat(filepath.Join(DefaultStaticDir, "core", "rfb.js")); err != nil {
		t.Skip("noVNC not installed in /usr/share/novnc: apt-get install novnc")
	}
	display := startXvfb(t, testW, testH)
	const password = "pa55word"
	port := freePort(t)
	vncAddr, stopVNC := runX11vnc(t, display, serverPW, port)

	h, err := New(Config{VNCAddr: vncAddr, Logger: testLogger(t), Password: password, ServerPassword: serverPW})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scry/", http.StripPrefix("/scry", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); h.Close() })

	profile := childDir(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath("chromium"),
			chromedp.UserDataDir(profile),
			chromedp.Flag("ignore-certificate-errors", true), // httptest's TLS server
			chromedp.Env("HOME="+profile),
			chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if os.Geteuid() == 0 { // keep the sandbox: run as the child user
					cmd.SysProcAttr.Credential = &syscall.Credential{Uid: childUID, Gid: childGID}
				}
			}),
		)...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	state := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`document.getElementById('status').dataset.state === '`+want+`'`,
			chromedp.WithPollingTimeout(30*time.Second))
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/scry/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "wrong"),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.Poll[chromedp.Void](`document.getElementById('loginerr').textContent !== ''`,
			chromedp.WithPollingTimeout(30*time.Second)),
	)
	if err != nil {
		t.Fatalf("wrong password: %v", err)
	}
	errText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("loginerr")))
	if err != nil || !strings.Contains(errText, "Authentication failed") {
		t.Errorf("wrong password shows %q (%v)", errText, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("#login button")),
		state("connected"),
	)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	canvasW, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector('#screen canvas').width`))
	if err != nil || canvasW != testW {
		t.Errorf("canvas width %d (%v), want %d", canvasW, err, testW)
	}
	full, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('full').href`))
	if err != nil || !strings.HasSuffix(full, "/scry/vnc.html?path=scry%2Fwebsockify") {
		t.Errorf("full noVNC link %q (%v) does not keep the prefix", full, err)
	}

	// x11vnc restarts (the supervisor's job): the page reconnects alone,
	// reusing the password it was given.
	stopVNC()
	if err := chromedp.Do(ctx, state("error")); err != nil {
		t.Fatalf("page did not notice the drop: %v", err)
	}
	runX11vnc(t, display, serverPW, port)
	if err := chromedp.Do(ctx, state("connected")); err != nil {
		t.Fatalf("page did not reconnect: %v", err)
	}

	// Clipboard: the panel sends text to the remote and stays connected.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("clipbtn")),
		chromedp.SetValue(chromedp.ID("cliptext"), "from the clipboard"),
		chromedp.Click(chromedp.ID("clipsend")),
		state("connected"),
	)
	if err != nil {
		t.Fatalf("clipboard paste: %v", err)
	}
	if n := h.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d after reconnect, want 1", n)
	}

	// Behind a TLS ingress under the same prefix: the page derives wss
	// from https (a ws:// attempt on a TLS port could not connect).
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	before := h.TotalViewers()
	err = chromedp.Do(ctx,
		chromedp.Navigate(tlsSrv.URL+"/scry"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("#login button")),
		state("connected"),
	)
	if err != nil {
		t.Fatalf("page over https: %v", err)
	}
	if h.TotalViewers() <= before {
		t.Errorf("no new viewer through the TLS server")
	}
}

// TestPagesLoadEverythingTheyNeed: scry's page, vnc.html (in German, so it
// fetches a translation) and vnc_lite.html load in a real Chromium with
// the allow-list in place, and no request of theirs is refused or missing:
// the network log shows no 4xx or 5xx answer and no failed load.
func TestPagesLoadEverythingTheyNeed(t *testing.T) {
	needBinaries(t, "chromium")
	if _, err := os.Stat(filepath.Join(DefaultStaticDir, "core", "rfb.js")); err != nil {
		t.Skip("noVNC not installed in /usr/share/novnc: apt-get install novnc")
	}
	// No VNC server and no password: the pages connect, scry tells them
	// the screen is unavailable, and they stay put.
	h, err := New(Config{VNCAddr: "127.0.0.1:1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })

	profile := childDir(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath("chromium"),
			chromedp.UserDataDir(profile),
			chromedp.Flag("accept-lang", "de-DE,de"),
			chromedp.Flag("lang", "de-DE"),
			chromedp.Env("HOME="+profile, "LANGUAGE=de"),
			chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if os.Geteuid() == 0 { // keep the sandbox: run as the child user
					cmd.SysProcAttr.Credential = &syscall.Credential{Uid: childUID, Gid: childGID}
				}
			}),
		)...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var loaded, bad []string
	urls := map[network.RequestID]string{}
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[ev.RequestID] = ev.Request.URL
		case *network.EventResponseReceived:
			p := strings.TrimPrefix(ev.Response.URL, srv.URL)
			loaded = append(loaded, p)
			// Debian's noVNC has no package.json (vnc.html shows no
			// version then); the browser asks for a favicon by itself.
			if ev.Response.Status >= 400 && p != "/package.json" && p != "/favicon.ico" {
				bad = append(bad, fmt.Sprintf("%s: %d", p, ev.Response.Status))
			}
		case *network.EventLoadingFailed:
			if ev.Type != network.ResourceTypeWebSocket && !ev.Canceled {
				bad = append(bad, fmt.Sprintf("%s: %s", strings.TrimPrefix(urls[ev.RequestID], srv.URL), ev.ErrorText))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	poll := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(30*time.Second))
	}
	for _, p := range []struct{ path, ready string }{
		// Both of scry's modules loaded and a connection tried.
		{"/", `['connecting', 'error', 'password'].includes(document.getElementById('status').dataset.state)`},
		// The UI started (after its translation) and offers to connect.
		{"/vnc.html", `document.getElementById('noVNC_connect_dlg').classList.contains('noVNC_open') &&
			document.getElementById('noVNC_connect_button').textContent.includes('Verbinden')`},
		// rfb.js loaded and tried to connect.
		{"/vnc_lite.html", `document.getElementById('status').textContent !== 'Loading'`},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+p.path), chromedp.WaitReady("body"), poll(p.ready)); err != nil {
			t.Errorf("%s did not load: %v", p.path, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"/core/rfb.js", "/vendor/pako/lib/zlib/inflate.js", "/app/ui.js",
		"/app/styles/base.css", "/app/locale/de.json", "/app/images/connect.svg", "/app/styles/Orbitron700.woff"} {
		if !slices.Contains(loaded, want) {
			t.Errorf("the pages did not load %s", want)
		}
	}
	if len(bad) > 0 {
		t.Errorf("requests refused or failed: %q", bad)
	}
	t.Logf("%d requests answered, %d refused or failed", len(loaded), len(bad))
}
