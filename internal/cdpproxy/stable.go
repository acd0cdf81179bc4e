package cdpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// The browser target's WebSocket path, /devtools/browser/<id>, changes at
// every Chromium start, so a client configured with it breaks on the next
// restart. scry therefore also takes a WebSocket upgrade at a few stable
// paths and connects it to the browser target Chromium has now:
//
//	/                          ws://scry:9222/?token=T, as hosted services give
//	/devtools/browser          the same, for clients that want the path
//	/devtools/browser/<id>     any id: the current one passes through as is,
//	                           a stale one is redirected (and logged)
//
// /json/version still hands out the real URL; page targets
// (/devtools/page/<id>) are never redirected: a page that is gone is gone.
const browserPathPrefix = "/devtools/browser"

// stableBrowserPath reports whether an upgrade to escapedPath is one scry
// connects to the current browser target, and the id it named ("" for
// / and /devtools/browser).
func stableBrowserPath(escapedPath string) (id string, ok bool) {
	switch escapedPath {
	case "/", browserPathPrefix, browserPathPrefix + "/":
		return "", true
	}
	rest, found := strings.CutPrefix(escapedPath, browserPathPrefix+"/")
	if !found || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

// browserTarget returns the escaped path of Chromium's current browser
// target, from the cached /json/version answer or, before there is one, by
// asking Chromium (and caching its answer for discovery too).
func (p *Proxy) browserTarget(ctx context.Context) (string, error) {
	c := p.version.Load()
	if c == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.cfg.Backend+"/json/version", nil)
		if err != nil {
			return "", err
		}
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			return "", fmt.Errorf("ask chromium for its browser target: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody))
		if err != nil {
			return "", fmt.Errorf("read chromium's /json/version: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("chromium's /json/version answered %s", resp.Status)
		}
		for _, h := range hopHeaders {
			resp.Header.Del(h)
		}
		c = newVersionAnswer(resp.Header.Clone(), body)
		p.version.Store(c)
	}
	if c.target == "" {
		return "", errors.New("chromium's /json/version names no browser WebSocket")
	}
	return c.target, nil
}

// newVersionAnswer caches a /json/version answer with its browser target
// parsed once, not on every upgrade.
func newVersionAnswer(h http.Header, body []byte) *cachedAnswer {
	c := &cachedAnswer{header: h, body: body}
	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	if json.Unmarshal(body, &v) == nil {
		if u, err := url.Parse(v.WS); err == nil && strings.HasPrefix(u.EscapedPath(), browserPathPrefix+"/") {
			c.target = u.EscapedPath()
		}
	}
	return c
}

// retarget points out, the upgrade on its way to Chromium, at the current
// browser target when the client asked for a stable path. It returns false
// after answering the client itself (Chromium could not be asked).
func (p *Proxy) retarget(w http.ResponseWriter, r, out *http.Request, log *slog.Logger) bool {
	id, ok := stableBrowserPath(r.URL.EscapedPath())
	if !ok {
		return true
	}
	target, err := p.browserTarget(r.Context())
	if err != nil && id != "" {
		// A browser id to pass through as asked: Chromium decides.
		log.Warn("cannot find the current browser target; passing the upgrade through as asked", "err", err)
		return true
	}
	if err != nil {
		log.Warn("cannot find the current browser target", "err", err)
		http.Error(w, "chromium's DevTools endpoint did not name its browser target; scry's log says why", http.StatusBadGateway)
		return false
	}
	if target == r.URL.EscapedPath() {
		return true
	}
	if id != "" {
		log.Info("redirected a stale browser WebSocket to the current browser",
			"asked", p.logPath(r), "current", target)
	}
	u, err := url.Parse(target)
	if err != nil {
		log.Warn("cannot use the current browser target", "target", target, "err", err)
		http.Error(w, "chromium's browser target is not a path scry understands", http.StatusBadGateway)
		return false
	}
	out.URL.Path, out.URL.RawPath = u.Path, u.RawPath
	return true
}
