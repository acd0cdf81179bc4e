package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// handoffView is the API's handoff object.
type handoffView struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	TargetID  string    `json:"targetId"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// agentCall makes one request on the agent door with the token and
// returns the status and body.
func agentCall(t *testing.T, s *Scry, token, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.CDPURL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func createHandoff(t *testing.T, s *Scry, token, body string) handoffView {
	t.Helper()
	code, resp := agentCall(t, s, token, http.MethodPost, "/scry/v1/handoffs", body)
	if code != http.StatusCreated {
		t.Fatalf("create handoff: %d %s", code, resp)
	}
	var v handoffView
	if err := json.Unmarshal([]byte(resp), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func getHandoff(t *testing.T, s *Scry, token, id, query string) handoffView {
	t.Helper()
	code, resp := agentCall(t, s, token, http.MethodGet, "/scry/v1/handoffs/"+id+query, "")
	if code != http.StatusOK {
		t.Fatalf("get handoff: %d %s", code, resp)
	}
	var v handoffView
	if err := json.Unmarshal([]byte(resp), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// attachWithToken is attach through a door that wants CDP_TOKEN: the
// browser's WebSocket URL from /json/version carries it.
func attachWithToken(t *testing.T, s *Scry, token string, opts ...chromedp.ContextOption) (context.Context, context.CancelFunc) {
	t.Helper()
	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := getJSON(ctx, s.CDPURL()+"/json/version?token="+token, "", &v); err != nil {
		t.Fatal(err)
	}
	actx, acancel := remote.NewAllocator(context.Background(), v.WS, remote.NoModifyURL)
	bctx, bcancel := chromedp.NewContext(actx, opts...)
	bctx, tcancel := context.WithTimeout(bctx, 120*time.Second)
	return bctx, func() { tcancel(); bcancel(); acancel() }
}

// openLinkPlain opens a handoff link with no cookies, as another browser
// would, and returns the status and body.
func openLinkPlain(t *testing.T, link string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// webhookSink records the bodies POSTed to it.
type webhookSink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	raw    []string
}

func newWebhookSink(t *testing.T) *webhookSink {
	w := &webhookSink{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			http.Error(rw, "not JSON", http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.bodies = append(w.bodies, m)
		w.raw = append(w.raw, string(b))
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// event returns the body of the first event named name for handoff id.
func (w *webhookSink) event(name, id string) (map[string]any, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, b := range w.bodies {
		h, _ := b["handoff"].(map[string]any)
		if b["event"] == name && h != nil && h["id"] == id {
			return b, w.raw[i]
		}
	}
	return nil, ""
}

// handoffSite serves a page with a field, and sets one session and one
// persistent cookie.
func handoffSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "remember", Value: "r1", Path: "/", MaxAge: 7200})
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>handoff site</title>
<input id="i" style="position:absolute;left:100px;top:100px;width:300px;height:40px;font-size:20px">`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// waitPageState waits until the handoff page says it is in state
// (connected, done, cancelled, expired).
func waitPageState(t *testing.T, hctx context.Context, state string) {
	t.Helper()
	waitFor(t, 60*time.Second, "the handoff page "+state, func() error {
		got, err := chromedp.Run(hctx, chromedp.Evaluate[string](`document.body.dataset.state || document.getElementById('status').textContent`))
		if err == nil && got != state {
			err = fmt.Errorf("page state %q", got)
		}
		return err
	})
}

// TestHandoffPersonTakesOver: an agent asks for a person over HTTP with its
// token; the person opens the link in a real browser, sees the reason
// with no password prompt, types into the agent's page through the view
// (read back over CDP), presses Done, and the agent's long-poll says done.
// The link is then spent, the webhook got every event, the login status
// lists the site, and neither secret nor token is in the log.
func TestHandoffPersonTakesOver(t *testing.T) {
	token := newToken(t)
	hook := newWebhookSink(t)
	s := Start(t, Options{Env: map[string]string{
		"CDP_TOKEN": token, "VNC_PASSWORD": "pw123456", "LOG_LEVEL": "debug",
		"HANDOFF_WEBHOOK_URL": hook.URL + "/hook", "WATCH_SITES": "127.0.0.1",
		"SESSION_COOKIE_INTERVAL": "1s",
	}})
	site := handoffSite(t)

	// The agent is on the site's page, which another tab then covers.
	// Both are opened with /json/new, so they share a window (a tab
	// alone in its own window would stay visible whatever is in front).
	newTab := func(u string) pageTarget {
		code, body := agentCall(t, s, token, http.MethodPut, "/json/new?"+url.QueryEscape(u), "")
		var p pageTarget
		if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("open %s: %d %s", u, code, body)
		}
		return p
	}
	agentTab := newTab(site.URL)
	ctx, cancel := attachWithToken(t, s, token, chromedp.WithTargetID(target.ID(agentTab.ID)))
	defer cancel()
	target := agentTab.ID
	waitFor(t, 20*time.Second, "the site loaded in the agent's tab", func() error {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.getElementById('i')`))
		if err == nil && !ok {
			err = fmt.Errorf("no field yet")
		}
		return err
	})
	visible := func() string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.visibilityState`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cover := newTab("about:blank")
	if code, body := agentCall(t, s, token, http.MethodGet, "/json/activate/"+cover.ID, ""); code != http.StatusOK {
		t.Fatalf("activate the covering tab: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "the agent's tab hidden behind the cover", func() error {
		if v := visible(); v != "hidden" {
			return fmt.Errorf("visibilityState %s", v)
		}
		return nil
	})

	const reason = "Please log in to the test site <and> pass the MFA"
	h := createHandoff(t, s, token, fmt.Sprintf(`{"reason": %q, "targetId": %q}`, reason, target))
	if h.State != "pending" || h.Reason != reason || h.ID == "" || !strings.Contains(h.URL, fmt.Sprintf(":%d/h/", s.NoVNCPort)) {
		t.Fatalf("created handoff: %+v", h)
	}
	if got := getHandoff(t, s, token, h.ID, ""); got.State != "pending" || got.URL != "" {
		t.Errorf("GET a new handoff: %+v, want pending and no link", got)
	}

	// The person opens the link: the page shows the reason and connects
	// without asking for the VNC password.
	hctx, hcancel := context.WithTimeout(humanBrowser(t), 120*time.Second)
	defer hcancel()
	if err := chromedp.Do(hctx, chromedp.Navigate(h.URL)); err != nil {
		t.Fatal(err)
	}
	waitPageState(t, hctx, "connected")
	shown := must(chromedp.Run(hctx, chromedp.Text(chromedp.ID("reason"))))(t)
	if shown != reason {
		t.Errorf("the banner shows %q, want %q", shown, reason)
	}
	if got := getHandoff(t, s, token, h.ID, ""); got.State != "active" {
		t.Errorf("after the link was opened the state is %s, want active", got.State)
	}
	// Opening the link brought the agent's tab to the front.
	waitFor(t, 20*time.Second, "the agent's tab in front", func() error {
		if v := visible(); v != "visible" {
			return fmt.Errorf("visibilityState %s", v)
		}
		return nil
	})

	// The person clicks the field on the remote screen and types.
	x, y := screenPoint(t, ctx, "i")
	var at []float64
	waitFor(t, 30*time.Second, "the remote screen drawn in the page", func() error {
		var err error
		at, err = chromedp.Run(hctx, chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => {
		  const c = document.querySelector('#screen canvas');
		  if (!c || c.width !== 1440) throw new Error('no full-size canvas yet');
		  const r = c.getBoundingClientRect();
		  return [r.left + %d * r.width / c.width, r.top + %d * r.height / c.height]; })()`, x, y)))
		return err
	})
	const text = "typed through the handoff 42"
	if err := chromedp.Do(hctx, chromedp.MouseClickXY(at[0], at[1])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the field focused by the person's click", func() error {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement && document.activeElement.id === 'i'`))
		if err == nil && !ok {
			err = fmt.Errorf("not focused")
		}
		return err
	})
	if err := chromedp.Do(hctx, chromedp.KeyEvent(text)); err != nil {
		t.Fatal(err)
	}
	waitValue(t, ctx, "i", text)

	// Done: the agent's long-poll, already waiting, returns done.
	polled := make(chan handoffView, 1)
	go func() {
		code, body := agentCall(t, s, token, http.MethodGet, "/scry/v1/handoffs/"+h.ID+"?wait=60s", "")
		var v handoffView
		_ = json.Unmarshal([]byte(body), &v)
		if code != http.StatusOK {
			v.State = fmt.Sprintf("status %d: %s", code, body)
		}
		polled <- v
	}()
	// (Should the poll arrive after Done, it returns at once: an ended
	// handoff changes no more.)
	if err := chromedp.Do(hctx, chromedp.Click(chromedp.ID("done"))); err != nil {
		t.Fatalf("Done: %v", err)
	}
	waitPageState(t, hctx, "done")
	endText := must(chromedp.Run(hctx, chromedp.Text(chromedp.ID("endtext"))))(t)
	if !strings.Contains(endText, "Thank you") {
		t.Errorf("after Done the page says %q", endText)
	}
	if v := <-polled; v.State != "done" {
		t.Errorf("the agent's long-poll returned %q, want done", v.State)
	}

	// The link is spent.
	if code, body := openLinkPlain(t, h.URL); code != http.StatusGone || !strings.Contains(body, "ended") {
		t.Errorf("link reopened: %d %q, want 410 and a sentence", code, body)
	}

	// The webhook got created (with the link), active and done.
	waitFor(t, 30*time.Second, "webhook events", func() error {
		for _, ev := range []string{"handoff.created", "handoff.active", "handoff.done"} {
			b, _ := hook.event(ev, h.ID)
			if b == nil {
				return fmt.Errorf("no %s yet", ev)
			}
			if txt, _ := b["text"].(string); txt == "" {
				return fmt.Errorf("%s has no text", ev)
			}
		}
		return nil
	})
	created, raw := hook.event("handoff.created", h.ID)
	if hv := created["handoff"].(map[string]any); hv["url"] != h.URL || !strings.Contains(created["text"].(string), h.URL) {
		t.Errorf("the created event does not carry the link: %s", raw)
	}
	hook.mu.Lock()
	for _, r := range hook.raw {
		if strings.Contains(r, token) {
			t.Errorf("a webhook body carries the token: %s", r)
		}
	}
	hook.mu.Unlock()

	// The login status lists the site (an IP stays itself) with its two
	// cookies, one a session cookie.
	var st struct {
		Sites []struct {
			Site           string     `json:"site"`
			Cookies        int        `json:"cookies"`
			SessionCookies int        `json:"sessionCookies"`
			EarliestExpiry *time.Time `json:"earliestExpiry"`
		} `json:"sites"`
	}
	waitFor(t, 30*time.Second, "the site in /scry/v1/sessions", func() error {
		code, body := agentCall(t, s, token, http.MethodGet, "/scry/v1/sessions", "")
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		for _, site := range st.Sites {
			if site.Site == "127.0.0.1" && site.Cookies == 2 && site.SessionCookies == 1 && site.EarliestExpiry != nil {
				return nil
			}
		}
		return fmt.Errorf("sites %s", body)
	})
	mctx, mcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer mcancel()
	m, err := scrape(mctx, s, bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m[`scry_site_cookie_expiry_seconds{site="127.0.0.1"}`]; !ok || v <= 0 || v > 7200 {
		t.Errorf("scry_site_cookie_expiry_seconds for 127.0.0.1: %v (present %v), want within the cookie's 2 h", v, ok)
	}
	if m[`scry_handoffs_total{outcome="done"}`] != 1 || m["scry_handoffs_open"] != 0 {
		t.Errorf("handoff metrics: done %v, open %v", m[`scry_handoffs_total{outcome="done"}`], m["scry_handoffs_open"])
	}

	// One INFO line per state change, with the id; no secret, no token.
	for _, msg := range []string{"handoff created", "handoff active", "handoff done"} {
		found := false
		for _, r := range s.Records() {
			if r["msg"] == msg && r["id"] == h.ID && r["level"] == "INFO" {
				found = true
			}
		}
		if !found {
			t.Errorf("no INFO %q line for %s", msg, h.ID)
		}
	}
	secret := h.URL[strings.LastIndex(h.URL, "/")+1:]
	log := s.Log()
	if strings.Contains(log, secret) {
		t.Errorf("the link's secret is in the log")
	}
	if strings.Contains(log, token) {
		t.Errorf("the token is in the log")
	}
}

// TestHandoffEndingCutsTheViewer: a cancelled handoff and an expired one
// (timeoutSeconds 10) each cut the person's connected viewer, and the page
// says why.
func TestHandoffEndingCutsTheViewer(t *testing.T) {
	token := newToken(t)
	hook := newWebhookSink(t)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token, "VNC_PASSWORD": "pw123456", "HANDOFF_WEBHOOK_URL": hook.URL}})
	hooked := func(event, id string) {
		t.Helper()
		waitFor(t, 30*time.Second, "the webhook's "+event, func() error {
			if b, _ := hook.event(event, id); b == nil {
				return fmt.Errorf("none yet")
			}
			return nil
		})
	}
	hctx, hcancel := context.WithTimeout(humanBrowser(t), 120*time.Second)
	defer hcancel()

	connect := func(h handoffView) {
		t.Helper()
		if err := chromedp.Do(hctx, chromedp.Navigate(h.URL)); err != nil {
			t.Fatal(err)
		}
		waitPageState(t, hctx, "connected")
	}
	ended := func(state, says string) {
		t.Helper()
		waitPageState(t, hctx, state)
		text := must(chromedp.Run(hctx, chromedp.Text(chromedp.ID("endtext"))))(t)
		if !strings.Contains(text, says) {
			t.Errorf("the page says %q, want %q in it", text, says)
		}
	}
	cuts := func() int {
		n := 0
		for _, r := range s.Records() {
			if r["msg"] == "viewer disconnected" && r["handoff"] == true && r["reason"] == "cut by scry (its handoff ended)" {
				n++
			}
		}
		return n
	}

	t.Run("cancel", func(t *testing.T) {
		h := createHandoff(t, s, token, `{"reason": "cancel me"}`)
		connect(h)
		// Without the cookie, the handoff's id lets nobody in: the VNC
		// password is still asked for.
		vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer vcancel()
		wsURL := fmt.Sprintf("ws://127.0.0.1:%d/websockify?handoff=%s", s.NoVNCPort, h.ID)
		if v, err := rfbclient.DialWebSocket(vctx, wsURL, rfbclient.Config{}); err == nil {
			v.Close()
			t.Errorf("a viewer with the handoff's id but not its cookie got in without the password")
		}
		// A password viewer beside the handoff's is not cut with it.
		pwViewer, err := viewer(vctx, s, "pw123456")
		if err != nil {
			t.Fatal(err)
		}
		defer pwViewer.Close()
		before := cuts()
		code, body := agentCall(t, s, token, http.MethodDelete, "/scry/v1/handoffs/"+h.ID, "")
		if code != http.StatusOK || !strings.Contains(body, `"cancelled"`) {
			t.Fatalf("DELETE: %d %s", code, body)
		}
		ended("cancelled", "withdrawn")
		waitFor(t, 10*time.Second, "the viewer cut in the log", func() error {
			if cuts() == before {
				return fmt.Errorf("no cut yet")
			}
			return nil
		})
		if err := pwViewer.RequestFull(); err != nil {
			t.Fatalf("the password viewer: %v", err)
		}
		if _, err := pwViewer.ReadUpdate(vctx); err != nil {
			t.Errorf("the password viewer was cut with the handoff: %v", err)
		}
		if code, _ := openLinkPlain(t, h.URL); code != http.StatusGone {
			t.Errorf("a cancelled handoff's link: %d, want 410", code)
		}
		if code, body := agentCall(t, s, token, http.MethodDelete, "/scry/v1/handoffs/"+h.ID, ""); code != http.StatusConflict {
			t.Errorf("DELETE twice: %d %s, want 409", code, body)
		}
		hooked("handoff.cancelled", h.ID)
	})
	t.Run("expiry", func(t *testing.T) {
		h := createHandoff(t, s, token, `{"reason": "expire me", "timeoutSeconds": 10}`)
		connect(h)
		before := cuts()
		ended("expired", "expired")
		if got := getHandoff(t, s, token, h.ID, ""); got.State != "expired" {
			t.Errorf("state %s, want expired", got.State)
		}
		hooked("handoff.expired", h.ID)
		waitFor(t, 10*time.Second, "the viewer cut in the log", func() error {
			if cuts() == before {
				return fmt.Errorf("no cut yet")
			}
			return nil
		})
	})
}

// TestHandoffAPIRefusals: every bad input gets a JSON error that says what
// to fix, and the door's token rules apply.
func TestHandoffAPIRefusals(t *testing.T) {
	token := newToken(t)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token}})
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		says                     string
	}{
		{"unknown field", "POST", "/scry/v1/handoffs", `{"reason": "x", "colour": "red"}`, 400, "unknown field"},
		{"missing reason", "POST", "/scry/v1/handoffs", `{"url": "https://example.com/"}`, 400, "reason"},
		{"blank reason", "POST", "/scry/v1/handoffs", `{"reason": "   "}`, 400, "reason"},
		{"reason too long", "POST", "/scry/v1/handoffs", `{"reason": "` + strings.Repeat("é", 501) + `"}`, 400, "at most 500"},
		{"bad JSON", "POST", "/scry/v1/handoffs", `{"reason": `, 400, "JSON"},
		{"wrong type", "POST", "/scry/v1/handoffs", `{"reason": "x", "timeoutSeconds": "ten"}`, 400, "timeoutSeconds"},
		{"timeout too short", "POST", "/scry/v1/handoffs", `{"reason": "x", "timeoutSeconds": 9}`, 400, "between 10 and 86400"},
		{"timeout too long", "POST", "/scry/v1/handoffs", `{"reason": "x", "timeoutSeconds": 86401}`, 400, "between 10 and 86400"},
		{"bad url", "POST", "/scry/v1/handoffs", `{"reason": "x", "url": "file:///etc/passwd"}`, 400, "http or https"},
		{"unknown target", "POST", "/scry/v1/handoffs", `{"reason": "x", "targetId": "0123456789ABCDEF"}`, 400, "no target"},
		{"body over 4 KiB", "POST", "/scry/v1/handoffs", `{"reason": "` + strings.Repeat("a", 5000) + `"}`, 413, "4096"},
		{"unknown id", "GET", "/scry/v1/handoffs/h_0000000000000000", "", 404, "do not survive a restart"},
		{"cancel unknown id", "DELETE", "/scry/v1/handoffs/h_0000000000000000", "", 404, "do not survive a restart"},
		{"wait too long", "GET", "/scry/v1/handoffs/h_0000000000000000?wait=61s", "", 400, "at most 1m0s"},
		{"bad wait", "GET", "/scry/v1/handoffs/h_0000000000000000?wait=soon", "", 400, "wait=30s"},
		{"wrong method", "PUT", "/scry/v1/handoffs", "", 405, "POST"},
		{"unknown endpoint", "GET", "/scry/v1/nothing", "", 404, "/scry/v1/handoffs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := agentCall(t, s, token, tc.method, tc.path, tc.body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Errorf("body %q is not a JSON error", body)
			}
			if code != tc.code || !strings.Contains(e.Error, tc.says) {
				t.Errorf("%d %q, want %d and %q in the error", code, e.Error, tc.code, tc.says)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		for _, p := range []string{"/scry/v1/handoffs", "/scry/v1/sessions", "/mcp"} {
			if code, _ := agentCall(t, s, "", http.MethodGet, p, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without the token: %d, want 401", p, code)
			}
		}
	})
	t.Run("at most 32 open", func(t *testing.T) {
		var ids []string
		for i := range 32 {
			ids = append(ids, createHandoff(t, s, token, fmt.Sprintf(`{"reason": "number %d"}`, i)).ID)
		}
		code, body := agentCall(t, s, token, http.MethodPost, "/scry/v1/handoffs", `{"reason": "one too many"}`)
		if code != http.StatusTooManyRequests || !strings.Contains(body, "32") {
			t.Errorf("the 33rd: %d %s, want 429", code, body)
		}
		var list struct {
			Handoffs []handoffView `json:"handoffs"`
		}
		_, body = agentCall(t, s, token, http.MethodGet, "/scry/v1/handoffs", "")
		if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Handoffs) != 32 {
			t.Errorf("list: %d handoffs (%v), want 32", len(list.Handoffs), err)
		}
		for _, id := range ids {
			if code, body := agentCall(t, s, token, http.MethodDelete, "/scry/v1/handoffs/"+id, ""); code != http.StatusOK {
				t.Fatalf("cancel %s: %d %s", id, code, body)
			}
		}
		createHandoff(t, s, token, `{"reason": "room again"}`)
	})
}

// bearerTransport adds the token to every request, as an MCP client's
// configured Authorization header does.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPDoor: the MCP tools, listed and called with the Go SDK's own
// client over Streamable HTTP, behind the token.
func TestMCPDoor(t *testing.T) {
	token := newToken(t)
	hook := newWebhookSink(t)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token, "HANDOFF_WEBHOOK_URL": hook.URL,
		"HANDOFF_BASE_URL": "https://scry.example.com/people/", "LOG_LEVEL": "debug"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client := mcp.NewClient(&mcp.Implementation{Name: "scry-test", Version: "1"}, nil)
	if _, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.CDPURL() + "/mcp"}, nil); err == nil {
		t.Errorf("connected to /mcp without the token")
	}
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: s.CDPURL() + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{token}},
	}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer sess.Close()

	tools, err := sess.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "login_status,request_human,wait_for_human" {
		t.Errorf("tools %v", names)
	}

	call := func(name string, args map[string]any) (string, bool) {
		t.Helper()
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b bytes.Buffer
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return b.String(), res.IsError
	}
	out, isErr := call("request_human", map[string]any{"reason": "solve the captcha", "timeoutSeconds": 60})
	var h handoffView
	if isErr || json.Unmarshal([]byte(out), &h) != nil || h.State != "pending" || !strings.HasPrefix(h.URL, "https://scry.example.com/people/h/") {
		t.Fatalf("request_human: %s (error %v)", out, isErr)
	}
	out, isErr = call("wait_for_human", map[string]any{"id": h.ID, "waitSeconds": 1})
	var w handoffView
	if isErr || json.Unmarshal([]byte(out), &w) != nil || w.State != "pending" {
		t.Errorf("wait_for_human: %s (error %v)", out, isErr)
	}
	// A person opens the link (rebased on this door, as an ingress would)
	// while the agent waits.
	got := make(chan string, 1)
	go func() {
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_human", Arguments: map[string]any{"id": h.ID, "waitSeconds": 50}})
		if err != nil || res.IsError {
			got <- fmt.Sprint("error ", err)
			return
		}
		var v handoffView
		_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &v)
		got <- v.State
	}()
	u, _ := url.Parse(h.URL)
	waitFor(t, 30*time.Second, "the link opened", func() error {
		if code, body := openLinkPlain(t, s.NoVNCURL()+strings.TrimPrefix(u.Path, "/people")); code != http.StatusSeeOther {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	if st := <-got; st != "active" {
		t.Errorf("wait_for_human during the open: %s, want active", st)
	}
	if out, isErr = call("wait_for_human", map[string]any{"id": h.ID, "waitSeconds": 51}); !isErr || !strings.Contains(out, "50") {
		t.Errorf("wait_for_human waitSeconds 51: %s (error %v), want an error", out, isErr)
	}
	if out, isErr = call("wait_for_human", map[string]any{"id": "h_nope"}); !isErr || !strings.Contains(out, "restart") {
		t.Errorf("wait_for_human unknown id: %s (error %v)", out, isErr)
	}
	if out, isErr = call("request_human", map[string]any{"reason": ""}); !isErr || !strings.Contains(out, "reason") {
		t.Errorf("request_human without a reason: %s (error %v)", out, isErr)
	}
	if out, isErr = call("login_status", nil); isErr || !strings.Contains(out, `"sites"`) {
		t.Errorf("login_status: %s (error %v)", out, isErr)
	}
	waitFor(t, 30*time.Second, "the webhook's created event", func() error {
		if b, _ := hook.event("handoff.created", h.ID); b == nil {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	if log := s.Log(); strings.Contains(log, u.Path[strings.LastIndex(u.Path, "/")+1:]) || strings.Contains(log, token) {
		t.Errorf("the link's secret or the token is in the log")
	}
}
