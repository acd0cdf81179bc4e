package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// secretFile writes a file the browser's uid can read, as the cookie
// snapshot is: what an agent must not be able to open in a tab.
func secretFile(t *testing.T) (path, secret string) {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	secret = "SECRET-" + hex.EncodeToString(b)
	path = filepath.Join(tempDir(t), "cookies.json")
	if err := os.WriteFile(path, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, secret
}

// pageState waits until the target has settled on either the file's text
// or Chromium's error page, and returns its URL and text.
func pageState(t *testing.T, ctx context.Context, secret string) (href, text string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the page to load or be refused", func() error {
		type state struct {
			Href  string `json:"href"`
			Text  string `json:"text"`
			Ready string `json:"ready"`
		}
		st, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({href: location.href, text: document.body ? document.body.innerText : "", ready: document.readyState})`))
		if err != nil {
			return err
		}
		href, text = st.Href, st.Text
		if strings.Contains(text, secret) || strings.HasPrefix(href, "chrome-error:") && st.Ready == "complete" {
			return nil
		}
		return fmt.Errorf("at %s (%s)", href, st.Ready)
	})
	return href, text
}

// TestFileURLsBlocked reproduces issue 14 item 5: an authorized agent opened
// file:///data/.scry/cookies.json in a tab and read every cookie. Every way
// an agent opens a URL must now be refused.
func TestFileURLsBlocked(t *testing.T) {
	path, secret := secretFile(t)
	fileURL := "file://" + path
	s := Start(t, Options{})
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}

	refused := func(t *testing.T, ctx context.Context) {
		t.Helper()
		href, text := pageState(t, ctx, secret)
		if strings.Contains(text, secret) {
			t.Fatalf("the agent read the file through %s", href)
		}
		if !strings.Contains(text, "blocked") {
			t.Errorf("page %s says %q, want Chromium's \"blocked\" page", href, text)
		}
	}
	// attachTo drives an existing target.
	attachTo := func(t *testing.T, id target.ID) context.Context {
		t.Helper()
		tctx, tcancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
		t.Cleanup(tcancel)
		return tctx
	}

	t.Run("Page.navigate", func(t *testing.T) {
		// A tab each: Chromium 156 crashes (SIGTRAP) when a tab showing
		// an error page navigates to a blocked chrome:// page.
		for _, u := range []string{fileURL, "view-source:" + fileURL, "FILE://" + path, "chrome://policy/test", "devtools://devtools/bundled/inspector.html"} {
			tctx, tcancel := chromedp.NewContext(ctx)
			err := chromedp.Do(tctx, chromedp.Navigate(u))
			if err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_ADMINISTRATOR") {
				t.Errorf("Page.navigate %s = %v, want net::ERR_BLOCKED_BY_ADMINISTRATOR", u, err)
			}
			if u == fileURL {
				refused(t, tctx)
			}
			tcancel()
		}
	})
	t.Run("Target.createTarget", func(t *testing.T) {
		res, err := chromedp.CallBrowser(ctx, target.CreateTarget, target.CreateTargetParams{URL: fileURL})
		if err != nil {
			t.Fatal(err)
		}
		refused(t, attachTo(t, res.TargetID))
	})
	t.Run("Target.createTarget in a new browser context", func(t *testing.T) {
		bc, err := chromedp.CallBrowser(ctx, target.CreateBrowserContext, target.CreateBrowserContextParams{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = chromedp.CallBrowser(ctx, target.DisposeBrowserContext, target.DisposeBrowserContextParams(bc))
		})
		res, err := chromedp.CallBrowser(ctx, target.CreateTarget, target.CreateTargetParams{URL: fileURL, BrowserContextID: bc.BrowserContextID})
		if err != nil {
			t.Fatal(err)
		}
		refused(t, attachTo(t, res.TargetID))
	})
	t.Run("/json/new", func(t *testing.T) {
		tg := newPage(t, s.CDPURL(), "/json/new", fileURL, s.CDPURL(), nil)
		refused(t, attachTo(t, target.ID(tg.ID)))
	})
}

// TestAllowFileURLs: the opt-out opens file: URLs again, and only those.
func TestAllowFileURLs(t *testing.T) {
	path, secret := secretFile(t)
	s := Start(t, Options{Env: map[string]string{"ALLOW_FILE_URLS": "on"}})
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path)); err != nil {
		t.Fatalf("ALLOW_FILE_URLS=on, Page.navigate file://: %v", err)
	}
	if _, text := pageState(t, ctx, secret); !strings.Contains(text, secret) {
		t.Errorf("ALLOW_FILE_URLS=on: the file's page says %q", text)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("chrome://policy")); err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_ADMINISTRATOR") {
		t.Errorf("ALLOW_FILE_URLS=on, chrome://policy = %v, want it still blocked", err)
	}
}

// TestUploadAndDownloadWithFileURLsBlocked: blocking file: navigation must
// leave an agent's file upload (DOM.setFileInputFiles) and downloads alone.
func TestUploadAndDownloadWithFileURLsBlocked(t *testing.T) {
	upload, content := secretFile(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/report.txt":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
			fmt.Fprint(w, "report body")
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><input type="file" id="f"><p id="out">none</p>
<script>document.getElementById('f').onchange = e => e.target.files[0].text().then(s => document.getElementById('out').textContent = s)</script>`)
		}
	}))
	t.Cleanup(site.Close)
	downloads := tempDir(t)
	if err := os.Chmod(downloads, 0o777); err != nil { // the browser's uid writes here
		t.Fatal(err)
	}

	s := Start(t, Options{})
	ctx, cancel := attach(t, s)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(site.URL)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.ID("f"), []string{upload})); err != nil {
		t.Fatalf("DOM.setFileInputFiles: %v", err)
	}
	waitFor(t, 30*time.Second, "the page to read the uploaded file", func() error {
		out, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
		if err != nil {
			return err
		}
		if out != content {
			return fmt.Errorf("the page shows %q", out)
		}
		return nil
	})

	events := true
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: &events})
	if err != nil {
		t.Fatalf("Browser.setDownloadBehavior: %v", err)
	}
	// A download aborts the navigation that started it; the file is what counts.
	_ = chromedp.Do(ctx, chromedp.Navigate(site.URL+"/report.txt"))
	// Chromium reserves the final name with an empty file before the
	// download lands there: wait for the content, not the name.
	waitFor(t, 30*time.Second, "the download", func() error {
		b, err := os.ReadFile(filepath.Join(downloads, "report.txt"))
		if err != nil {
			return err
		}
		if string(b) != "report body" {
			return fmt.Errorf("report.txt holds %q", b)
		}
		return nil
	})
}
