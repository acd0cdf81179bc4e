package integration

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// humanBrowser starts a second, headless Chromium: the human's browser that
// opens the noVNC page. It keeps its sandbox by running as uid 1000 when the
// test runs as root.
func humanBrowser(t *testing.T) context.Context {
	t.Helper()
	profile := tempDir(t)
	if os.Geteuid() == 0 {
		if err := os.Chown(profile, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath("chromium"),
			chromedp.UserDataDir(profile),
			chromedp.Env("HOME="+profile),
			chromedp.WindowSize(1280, 860),
			chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if os.Geteuid() == 0 {
					cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 1000, Gid: 1000}
				}
			}),
		)...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	// The first run starts the browser and must carry no timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start the human's chromium: %v", err)
	}
	return bctx
}

// TestNoVNCPageTypesIntoTheBrowser: a human opens scry's noVNC page in a real
// browser, logs in to VNC, sees the remote screen, and uses the page's
// "type into remote" panel to fill a field in the logged-in browser.
func TestNoVNCPageTypesIntoTheBrowser(t *testing.T) {
	const pw = "pw123456"
	s := Start(t, Options{Env: map[string]string{"VNC_PASSWORD": pw}})
	site := formSite(t)
	ctx, cancel := openInFront(t, s, site.URL)
	defer cancel()

	hctx, hcancel := context.WithTimeout(humanBrowser(t), 90*time.Second)
	defer hcancel()
	connected := chromedp.Poll[chromedp.Void](`document.getElementById('status').dataset.state === 'connected'`,
		chromedp.WithPollingTimeout(30*time.Second))
	if err := chromedp.Do(hctx,
		chromedp.Navigate(s.NoVNCURL()+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.CSS("#login button")),
		connected,
	); err != nil {
		t.Fatalf("noVNC page did not connect: %v", err)
	}
	// The remote screen is drawn: the canvas has the screen's size and,
	// once the first update lands, is not one flat colour.
	drawn := chromedp.Poll[chromedp.Void](`(() => {
	  const c = document.querySelector('#screen canvas');
	  if (!c || c.width !== 1440 || c.height !== 900) return false;
	  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
	  for (let i = 4; i < d.length; i += 4 * 97) if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2]) return true;
	  return false; })()`, chromedp.WithPollingTimeout(30*time.Second))
	if err := chromedp.Do(hctx, drawn); err != nil {
		t.Errorf("the noVNC canvas does not show the remote screen: %v", err)
	}

	// Focus the field the way a human does: click it on the remote screen.
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	v, err := viewer(vctx, s, pw)
	if err != nil {
		t.Fatal(err)
	}
	x, y := screenPoint(t, ctx, "i")
	if err := v.Click(x, y); err != nil {
		t.Fatal(err)
	}
	v.Close()

	const text = "Typed from the page, Secret!42"
	if err := chromedp.Do(hctx,
		chromedp.Click(chromedp.ID("clipbtn")),
		chromedp.SetValue(chromedp.ID("cliptext"), text),
		chromedp.Click(chromedp.ID("cliptype")),
	); err != nil {
		t.Fatal(err)
	}
	waitValue(t, ctx, "i", text)

	// The full manual UI is there too.
	if err := chromedp.Do(hctx, chromedp.Navigate(s.NoVNCURL()+"/vnc.html"), chromedp.WaitVisible(chromedp.ID("noVNC_connect_button"))); err != nil {
		t.Errorf("/vnc.html: %v", err)
	}
}
