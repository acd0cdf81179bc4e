// Command containercheck drives a running scry container for
// scripts/container-test.sh. Its modes:
//
//	containercheck serve  -addr 127.0.0.1:18080
//	containercheck get    -url http://127.0.0.1:18080/echo
//	containercheck set    -cdp http://127.0.0.1:PORT -page http://127.0.0.1:18080 -value V
//	containercheck verify -cdp http://127.0.0.1:PORT [-page URL] -value V
//	containercheck vnc    -url ws://127.0.0.1:PORT/websockify -password PW [-screen 1440x900]
//	containercheck vnc-server -addr 127.0.0.1:5900
//	containercheck fonts   -cdp http://127.0.0.1:PORT -page http://127.0.0.1:18080
//	containercheck fileurl -cdp http://127.0.0.1:PORT -url file:///data/Default/Preferences
//
// fonts asks Chromium which platform fonts rendered CJK text and emoji on the
// test site's /fonts page (the image keeps Noto Sans CJK and Noto Color
// Emoji). fileurl proves a tab cannot open a file: URL.
//
// vnc logs in through the human door with a wrong and the right password;
// vnc-server, run inside the container, proves x11vnc's own port is never
// open (scry gives it a password only scry knows).
//
// get is a tiny curl for images without one (readiness of serve).
//
// serve runs inside the container (the script copies this static binary in):
// a published port does not let the container's Chromium reach the host's
// loopback, so the test site lives next to the browser. Its /set answers with
// a persistent Set-Cookie (Max-Age), like a login would, and /echo shows the
// cookie the browser sent back.
//
// set and verify run on the host and talk CDP through scry's published port
// with chromedp, as an agent would. set logs in; verify, run against a new
// container on the same volume, proves the cookie survived the restart.
// Neither closes the browser: they open their own tab and close only that.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

const (
	cookieName = "scry_check"
	cookieAge  = 30 * 24 * time.Hour
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("containercheck: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: containercheck serve|set|verify [flags]")
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "serve: listen address")
	cdpURL := fs.String("cdp", "", "set/verify: scry's CDP base URL as the host sees it, e.g. http://127.0.0.1:39222")
	page := fs.String("page", "", "set/verify: base URL of the serve mode as Chromium (in the container) sees it")
	value := fs.String("value", "", "set/verify: cookie value")
	getURL := fs.String("url", "", "get: URL that must answer 200; vnc: the /websockify URL")
	password := fs.String("password", "", "vnc: VNC_PASSWORD (pass it in the environment as VNC_PASSWORD instead to keep it out of ps)")
	screen := fs.String("screen", "1440x900", "vnc: expected screen size WxH")
	timeout := fs.Duration("timeout", 60*time.Second, "overall deadline")
	fs.Parse(args)

	var err error
	switch mode {
	case "serve":
		err = serve(*addr)
	case "get":
		err = get(*getURL, *timeout)
	case "set", "verify":
		if *cdpURL == "" || *value == "" || (mode == "set" && *page == "") {
			log.Fatalf("%s: -cdp and -value are required (and -page for set)", mode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		err = drive(ctx, mode, *cdpURL, *page, *value)
	case "vnc":
		var w, h int
		if _, err := fmt.Sscanf(*screen, "%dx%d", &w, &h); err != nil {
			log.Fatalf("vnc: -screen %q: want WxH", *screen)
		}
		pw := *password
		if pw == "" {
			pw = os.Getenv("VNC_PASSWORD")
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		err = checkVNC(ctx, *getURL, pw, w, h)
	case "fonts", "fileurl":
		if *cdpURL == "" || (mode == "fonts" && *page == "") || (mode == "fileurl" && *getURL == "") {
			log.Fatalf("%s: -cdp and -page (fonts) or -url (fileurl) are required", mode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		if mode == "fonts" {
			err = checkFonts(ctx, *cdpURL, *page)
		} else {
			err = checkFileURL(ctx, *cdpURL, *getURL)
		}
	case "vnc-server":
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		err = checkVNCServerClosed(ctx, *addr)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		log.Fatalf("%s: %v", mode, err)
	}
}

func serve(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("v")
		http.SetCookie(w, &http.Cookie{
			Name: cookieName, Value: v, Path: "/",
			MaxAge: int(cookieAge / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
		fmt.Fprintf(w, "<!doctype html><title>logged in</title><p id=state>set %s</p>", html.EscapeString(v))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var v string
		if c, err := r.Cookie(cookieName); err == nil {
			v = c.Value
		}
		fmt.Fprintf(w, "<!doctype html><title>echo</title><p id=state>cookie=%s</p>", html.EscapeString(v))
	})
	mux.HandleFunc("/fonts", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>fonts</title>`+
			`<p id=cjk lang=ja>日本語の文章と中文和한국어</p><p id=emoji>😀🎉🚀</p>`)
	})
	log.Printf("serving on http://%s", addr)
	return http.ListenAndServe(addr, mux)
}

func get(u string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func drive(ctx context.Context, mode, cdpURL, page, value string) error {
	wsURL, err := debuggerURL(ctx, cdpURL)
	if err != nil {
		return err
	}
	allocCtx, cancelAlloc := remote.NewAllocator(ctx, wsURL, remote.NoModifyURL)
	defer cancelAlloc()
	// The cancel funcs close our tab and the websocket, never the browser
	// (chromedp.Cancel would send Browser.close to scry's Chromium).
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	if mode == "set" {
		state, err := pageText(tabCtx, strings.TrimSuffix(page, "/")+"/set?v="+url.QueryEscape(value))
		if err != nil {
			return fmt.Errorf("open %s/set in the container's browser: %w", page, err)
		}
		if state != "set "+value {
			return fmt.Errorf("page says %q, want %q", state, "set "+value)
		}
	}

	c, err := findCookie(tabCtx)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("cookie %s is not in the browser's cookie store (profile not persisted?)", cookieName)
	}
	if c.Value != value {
		return fmt.Errorf("cookie %s = %q, want %q", cookieName, c.Value, value)
	}
	expires := time.Unix(int64(c.Expires), 0)
	if c.Session || time.Until(expires) < 24*time.Hour {
		return fmt.Errorf("cookie %s is not persistent (session %v, expires %v)", cookieName, c.Session, expires)
	}

	if page != "" {
		state, err := pageText(tabCtx, strings.TrimSuffix(page, "/")+"/echo")
		if err != nil {
			return fmt.Errorf("open %s/echo: %w", page, err)
		}
		if state != "cookie="+value {
			return fmt.Errorf("site received %q, want %q", state, "cookie="+value)
		}
	}
	log.Printf("%s ok: cookie %s=%s persistent until %s", mode, cookieName, value, expires.UTC().Format(time.RFC3339))
	return nil
}

// tab opens a tab of its own in scry's browser, through the published port.
func tab(ctx context.Context, cdpURL string) (context.Context, func(), error) {
	wsURL, err := debuggerURL(ctx, cdpURL)
	if err != nil {
		return nil, nil, err
	}
	allocCtx, cancelAlloc := remote.NewAllocator(ctx, wsURL, remote.NoModifyURL)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	return tabCtx, func() { cancelTab(); cancelAlloc() }, nil
}

// checkFonts: the platform fonts Chromium rendered the test page's CJK text
// and emoji with.
func checkFonts(ctx context.Context, cdpURL, page string) error {
	tabCtx, done, err := tab(ctx, cdpURL)
	if err != nil {
		return err
	}
	defer done()
	if err := chromedp.Do(tabCtx, chromedp.Navigate(strings.TrimSuffix(page, "/")+"/fonts")); err != nil {
		return err
	}
	for sel, want := range map[string]string{"#cjk": "Noto Sans CJK", "#emoji": "Noto Color Emoji"} {
		fonts, err := chromedp.Run(tabCtx, func(ctx context.Context, t *chromedp.Target) ([]string, error) {
			if _, err := cdp.Call(ctx, t, dom.Enable, dom.EnableParams{}); err != nil {
				return nil, err
			}
			if _, err := cdp.Call(ctx, t, css.Enable, cdp.Empty{}); err != nil {
				return nil, err
			}
			doc, err := cdp.Call(ctx, t, dom.GetDocument, dom.GetDocumentParams{})
			if err != nil {
				return nil, err
			}
			n, err := cdp.Call(ctx, t, dom.QuerySelector, dom.QuerySelectorParams{NodeID: doc.Root.NodeID, Selector: sel})
			if err != nil {
				return nil, err
			}
			res, err := cdp.Call(ctx, t, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: n.NodeID})
			if err != nil {
				return nil, err
			}
			var names []string
			for _, f := range res.Fonts {
				names = append(names, f.FamilyName)
			}
			return names, nil
		})
		if err != nil {
			return fmt.Errorf("fonts of %s: %w", sel, err)
		}
		if !slices.ContainsFunc(fonts, func(f string) bool { return strings.HasPrefix(f, want) }) {
			return fmt.Errorf("%s was rendered with %q, want %s", sel, fonts, want)
		}
		log.Printf("fonts ok: %s rendered with %q", sel, fonts)
	}
	return nil
}

// checkFileURL: navigating a tab to u must be refused by the navigation
// blocklist scry puts in the profile.
func checkFileURL(ctx context.Context, cdpURL, u string) error {
	tabCtx, done, err := tab(ctx, cdpURL)
	if err != nil {
		return err
	}
	defer done()
	err = chromedp.Do(tabCtx, chromedp.Navigate(u))
	if err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_ADMINISTRATOR") {
		return fmt.Errorf("navigate %s = %v, want net::ERR_BLOCKED_BY_ADMINISTRATOR", u, err)
	}
	log.Printf("fileurl ok: %s refused", u)
	return nil
}

// debuggerURL fetches /json/version through scry and checks that scry
// rewrote webSocketDebuggerUrl to the address the client used (here a
// published host port), not Chromium's internal 127.0.0.1:CDP_INTERNAL_PORT.
func debuggerURL(ctx context.Context, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/json/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("cdp discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("cdp discovery: %s", resp.Status)
	}
	var v struct {
		Browser string `json:"Browser"`
		WS      string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("cdp discovery: %w", err)
	}
	ws, err := url.Parse(v.WS)
	if err != nil || ws.Host != u.Host {
		return "", fmt.Errorf("webSocketDebuggerUrl %q does not point at %s: scry must rewrite it to the host the client used", v.WS, u.Host)
	}
	log.Printf("browser %s at %s", v.Browser, v.WS)
	return v.WS, nil
}

// pageText navigates the tab and returns the text of the test page's #state.
func pageText(ctx context.Context, u string) (string, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		return "", err
	}
	return chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#state")))
}

// findCookie reads the browser's whole cookie store, as an agent reusing the
// logged-in session would see it.
func findCookie(ctx context.Context) (*network.Cookie, error) {
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (storage.GetCookiesResult, error) {
		return cdp.Call(ctx, t, storage.GetCookies, storage.GetCookiesParams{})
	})
	if err != nil {
		return nil, fmt.Errorf("Storage.getCookies: %w", err)
	}
	for _, c := range res.Cookies {
		if c.Name == cookieName {
			return c, nil
		}
	}
	return nil, nil
}
