package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dataplanelabs/scry/internal/scrytest"
)

// The scoped-token tests with real clients (issue 15): Playwright,
// Puppeteer, chromedp and chrome-devtools-mcp drive scry with agent
// tokens. Each client gets its own token, named after it, so the audit
// trail tells their commands apart.

// tokenLine is one line of a CDP_TOKENS_FILE.
type tokenLine struct{ name, role, token string }

// tokensFile writes toks as a CDP_TOKENS_FILE and returns its path.
func tokensFile(t *testing.T, toks ...tokenLine) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# written by the scoped-token tests\n\n")
	for _, tk := range toks {
		fmt.Fprintf(&b, "%s %s %s\n", tk.name, tk.role, tk.token)
	}
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// agentTokens is an admin token (for the test's own checks) and one agent
// token per name.
func agentTokens(t *testing.T, names ...string) (admin string, agents map[string]string, toks []tokenLine) {
	t.Helper()
	admin = newToken(t)
	toks = []tokenLine{{"tester", "admin", admin}}
	agents = map[string]string{}
	for _, n := range names {
		agents[n] = newToken(t)
		toks = append(toks, tokenLine{n, "agent", agents[n]})
	}
	return admin, agents, toks
}

// scopedSite serves the page the scoped flows drive: a text field #name,
// a password field #pw, and a button #b whose click fetches /data and
// writes "clicked:<name>:<what /data said>" into #out. The page sets an
// HttpOnly session cookie whose value is returned.
func scopedSite(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	session := "sess" + newToken(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "served")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: session, Path: "/", HttpOnly: true, MaxAge: 3600})
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>scry scoped test</title>
<input id="name" aria-label="name">
<input id="pw" type="password" aria-label="password">
<button id="b" onclick="go()">click me</button>
<p id="out">waiting</p>
<script>
async function go() {
  const r = await fetch('/data');
  document.getElementById('out').textContent = 'clicked:' + document.getElementById('name').value + ':' + await r.text();
}
</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, session
}

// runScoped runs js/scoped.mjs (client, flow) with token and decodes what
// the flow saw. The result is returned whether or not the flow got
// through, for the caller to judge.
func runScoped(t *testing.T, s *Scry, client, flow, token, pageURL string, env ...string) (nodeResult, map[string]any) {
	t.Helper()
	res := runScript(t, "scoped.mjs", append([]string{"SCRY_CLIENT=" + client, "SCRY_FLOW=" + flow,
		"SCRY_CDP_URL=" + s.CDPURL(), "SCRY_TOKEN=" + token, "SCRY_AUTH=header", "SCRY_PAGE_URL=" + pageURL}, env...)...)
	var seen map[string]any
	if res.OK {
		if err := json.Unmarshal([]byte(res.Text), &seen); err != nil {
			t.Fatalf("%s %s: result %q: %v", client, flow, res.Text, err)
		}
	}
	return res, seen
}

// audit is scry's audit trail so far: the records with "log":"audit".
type audit []map[string]any

func auditOf(s *Scry) audit {
	var a audit
	for _, r := range s.Records() {
		if r["log"] == "audit" {
			a = append(a, r)
		}
	}
	return a
}

// with is the records whose msg is msg and, if token is not empty, whose
// token is token.
func (a audit) with(msg, token string) audit {
	var out audit
	for _, r := range a {
		if r["msg"] == msg && (token == "" || r["token"] == token) {
			out = append(out, r)
		}
	}
	return out
}

// methods are the methods of a's records, counted.
func (a audit) methods() map[string]int {
	m := map[string]int{}
	for _, r := range a {
		if s, ok := r["method"].(string); ok {
			m[s]++
		}
	}
	return m
}

// hasMethod reports whether one of a's records has a method starting with
// prefix.
func (a audit) hasMethod(prefix string) bool {
	for m := range a.methods() {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// deliberatelyRefused are methods that real clients send in their
// ordinary flows and that scry refuses to agents on purpose, each with
// why; those clients' flows must still pass.
var deliberatelyRefused = map[string]string{
	// chrome-devtools-mcp 1.11 sets these up on every page and goes on
	// without them.
	"Autofill.enable":          "its events carry what autofill filled in: the profile's saved addresses and cards",
	"Autofill.setAddresses":    "autofill is the profile's, not the agent's",
	"Target.getDevToolsTarget": "DevTools has every power of the protocol, cookie export included",
}

// refusals describes every refusal the trail holds but those of the
// methods in except: the refused lines, counted by token and reason
// (which names the method), and, for a connection whose summary counts
// more refusals than it has refused lines (the rate limit keeps some out
// of the log), how many went unlogged.
func (a audit) refusals(except map[string]string) []string {
	n := map[string]int{}
	lines := map[any]int{}
	for _, r := range a.with("cdp command refused", "") {
		lines[r["conn"]]++
		// Clients attach to every tab, Chromium's own too (its new tab
		// page), and set each up; acting there is refused on purpose.
		onBrowserPage := strings.Contains(fmt.Sprint(r["reason"]), "which is not a web page")
		if _, ok := except[fmt.Sprint(r["method"])]; !ok && !onBrowserPage {
			n[fmt.Sprintf("token %v: %v", r["token"], r["reason"])]++
		}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		out = append(out, fmt.Sprintf("%s (%d×)", k, n[k]))
	}
	for _, r := range a.with("cdp connection summary", "") {
		ref, _ := r["refused"].(map[string]any)
		total := 0
		for _, v := range ref {
			c, _ := v.(float64)
			total += int(c)
		}
		if total > lines[r["conn"]] {
			out = append(out, fmt.Sprintf("token %v conn %v: %d more refusals not logged one by one (summary: %v)", r["token"], r["conn"], total-lines[r["conn"]], ref))
		}
	}
	return out
}

// waitConnsClosed waits until every connection that sent a command as
// one of tokens has written its summary line: by then every line about
// those connections, refusals included, has been read.
func waitConnsClosed(t *testing.T, s *Scry, tokens ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, "every client connection's audit summary", func() error {
		a := auditOf(s)
		for _, tk := range tokens {
			open := map[any]bool{}
			for _, r := range a {
				if r["token"] == tk && r["conn"] != nil {
					open[r["conn"]] = true
				}
			}
			if len(open) == 0 {
				return fmt.Errorf("no audit line for token %s", tk)
			}
			for _, r := range a.with("cdp connection summary", tk) {
				delete(open, r["conn"])
			}
			if len(open) > 0 {
				return fmt.Errorf("token %s: connections %v have no summary yet", tk, slices.Collect(maps.Keys(open)))
			}
		}
		return nil
	})
}

// startWithTokens starts scry with a CDP_TOKENS_FILE of toks and env.
func startWithTokens(t *testing.T, env map[string]string, toks ...tokenLine) *Scry {
	t.Helper()
	e := map[string]string{"CDP_TOKENS_FILE": tokensFile(t, toks...)}
	maps.Copy(e, env)
	return Start(t, Options{Env: e})
}

// TestAgentTokenRealClients: with agent tokens, Playwright MCP,
// Playwright, Puppeteer, chromedp and chrome-devtools-mcp run their whole
// ordinary flows (navigate, type, click, screenshot, evaluate; Playwright
// also routes a request), the audit trail (AUDIT_LOG=commands) shows each
// client's commands, and scry refused none of them. A refusal here means
// an allow-list (internal/cdprole) breaks a real client: the test names
// the method.
//
// Playwright MCP goes first and drives the tab it finds, the one Chromium
// opened at launch: that tab is about:blank, not the new-tab page (one of
// the browser's own pages, where Playwright's set-up of the page is
// refused to an agent and Playwright MCP then waits until it times out).
func TestAgentTokenRealClients(t *testing.T) {
	clientTool(t, "js/node_modules/chrome-devtools-mcp/package.json", "run `make deps`, or `npm ci` in integration/js")
	clientTool(t, "js/node_modules/@playwright/mcp/package.json", "run `make deps`, or `npm ci` in integration/js")
	clients := []string{"pwmcp", "playwright", "puppeteer", "chromedp", "mcp"}
	admin, agents, toks := agentTokens(t, clients...)
	port := freePort(t)
	s := startWithTokens(t, map[string]string{"AUDIT_LOG": "commands", "CDP_PORT": strconv.Itoa(port)}, toks...)
	s.CDPPort = port
	site, _ := scopedSite(t)

	func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := scrytest.Dial(ctx, nil, browserWS(t, ctx, s, "", bearer(admin)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, 20*time.Second, "the start tab, about:blank", func() error {
			ts, err := tabs(ctx, c)
			if err != nil {
				return err
			}
			var got []string
			for _, tb := range ts {
				if !strings.Contains(tb.URL, ".top-chrome/") { // the browser window's own pages
					got = append(got, tb.URL)
				}
			}
			if !slices.Equal(got, []string{"about:blank"}) {
				return fmt.Errorf("the tabs are %q, want [about:blank]", got)
			}
			return nil
		})
	}()
	if res := runScript(t, "pwmcp_flow.mjs", "SCRY_CDP_URL="+s.CDPURL(), "SCRY_TOKEN="+agents["pwmcp"],
		"SCRY_PAGE_URL="+site.URL, "SCRY_OUT_DIR="+t.TempDir()); !res.OK || !strings.Contains(res.Text, "clicked:pwmcp:served") {
		t.Errorf("Playwright MCP with an agent token: %+v, want browser_evaluate to return clicked:pwmcp:served", res)
	}

	// Playwright: fill and pressSequentially, and page.route answers /data.
	if res, seen := runScoped(t, s, "playwright", "drive", agents["playwright"], site.URL); !res.OK {
		t.Errorf("playwright with an agent token: %s", res.Error)
	} else if seen["out"] != "clicked:playwright:routed" || seen["routed"] != 1.0 || seen["png"] != true || seen["evaluated"] != 42.0 {
		t.Errorf("playwright with an agent token saw %v, want #out clicked:playwright:routed, one routed request, a PNG, 42", seen)
	}
	// Puppeteer: page.type.
	if res, seen := runScoped(t, s, "puppeteer", "drive", agents["puppeteer"], site.URL); !res.OK {
		t.Errorf("puppeteer with an agent token: %s", res.Error)
	} else if seen["out"] != "clicked:puppeteer:served" || seen["png"] != true || seen["evaluated"] != 42.0 {
		t.Errorf("puppeteer with an agent token saw %v, want #out clicked:puppeteer:served, a PNG, 42", seen)
	}
	// chromedp: discovery with ?token=, then its own new tab.
	func() {
		ctx, cancel := attachWithToken(t, s, agents["chromedp"])
		defer cancel()
		err := chromedp.Do(ctx,
			chromedp.Navigate(site.URL),
			chromedp.SendKeys(chromedp.ID("name"), "chromedp"),
			chromedp.Click(chromedp.ID("b")),
			chromedp.Poll[chromedp.Void](`document.querySelector('#out').textContent !== 'waiting'`),
		)
		if err != nil {
			t.Errorf("chromedp with an agent token: %v", err)
			return
		}
		out, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
		if err != nil || out != "clicked:chromedp:served" {
			t.Errorf("chromedp: #out %q %v, want clicked:chromedp:served", out, err)
		}
		if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("chromedp screenshot: %d bytes, %v", len(png), err)
		}
		if v, err := chromedp.Run(ctx, chromedp.Evaluate[int]("6*7")); err != nil || v != 42 {
			t.Errorf("chromedp evaluate: %d %v", v, err)
		}
	}()
	// chrome-devtools-mcp on the stable endpoint, the token in --wsHeaders.
	if res := runScript(t, "mcp_flow.mjs", fmt.Sprintf("SCRY_WS_URL=ws://127.0.0.1:%d/", port),
		"SCRY_TOKEN="+agents["mcp"], "SCRY_PAGE_URL="+site.URL); !res.OK || !strings.Contains(res.Text, "clicked:mcp:served") {
		t.Errorf("chrome-devtools-mcp with an agent token: %+v, want evaluate_script to return clicked:mcp:served", res)
	}

	waitConnsClosed(t, s, clients...)
	a := auditOf(s)
	if r := a.refusals(deliberatelyRefused); len(r) > 0 {
		t.Errorf("scry refused commands of real clients' ordinary flows (a bug in internal/cdprole's allow-lists):\n  %s", strings.Join(r, "\n  "))
	}
	want := map[string][]string{
		"pwmcp":      {"Input.", "Page.captureScreenshot", "Runtime.", "Page.navigate", "Page.addScriptToEvaluateOnNewDocument"},
		"playwright": {"Input.", "Page.captureScreenshot", "Runtime.", "Fetch.", "Target.createTarget"},
		"puppeteer":  {"Input.", "Page.captureScreenshot", "Runtime.", "Target.createTarget"},
		"chromedp":   {"Input.", "Page.captureScreenshot", "Runtime.", "Page.navigate", "Target.createTarget"},
		"mcp":        {"Input.", "Page.captureScreenshot", "Runtime.", "Page.navigate"},
	}
	for _, c := range clients {
		cmds := a.with("cdp command", c)
		for _, m := range want[c] {
			if !cmds.hasMethod(m) {
				t.Errorf("the audit trail has no %s* command from %s; it has %v", m, c, cmds.methods())
			}
		}
		for _, r := range cmds {
			if r["role"] != "agent" {
				t.Errorf("audit line for token %s says role %v, want agent: %v", c, r["role"], r)
				break
			}
		}
	}
	// The navigations are on record with their URL.
	navigated := false
	for _, r := range a.with("cdp command", "chromedp") {
		if r["method"] == "Page.navigate" && r["url"] == site.URL {
			navigated = true
		}
	}
	if !navigated {
		t.Errorf("no audit line for chromedp's Page.navigate with url %s", site.URL)
	}
	for _, tk := range append(slices.Collect(maps.Values(agents)), admin) {
		if s.HasLog(tk) {
			t.Errorf("a token is in scry's log")
		}
	}
}

// TestAgentTokenCookieExportRefused: with an agent token, Playwright's
// context.cookies() and addCookies() and Puppeteer's page.cookies(),
// browser.cookies() and browser.setCookie() fail with scry's error, the
// session cookie's value never reaches the client, and the same
// connection then goes on navigating and evaluating. The browser does
// hold the cookie (an admin token reads it), so the refusal is not
// vacuous; the refusals are in the audit trail and counted in /metrics.
func TestAgentTokenCookieExportRefused(t *testing.T) {
	admin, agents, toks := agentTokens(t, "playwright", "puppeteer")
	s := startWithTokens(t, nil, toks...)
	site, session := scopedSite(t)

	const refusal = "not allowed for role agent"
	check := func(client string, seen map[string]any, calls ...string) {
		t.Helper()
		for _, call := range calls {
			got, _ := seen[call].(map[string]any)
			if got == nil || got["ok"] != false || !strings.Contains(fmt.Sprint(got["error"]), refusal) {
				t.Errorf("%s %s with an agent token: %v, want an error containing %q", client, call, got, refusal)
			}
		}
		if seen["after"] != "?after 42" {
			t.Errorf("%s after the refusals: navigate and evaluate gave %v, want \"?after 42\"", client, seen["after"])
		}
	}
	res, seen := runScoped(t, s, "playwright", "cookies", agents["playwright"], site.URL)
	if !res.OK {
		t.Errorf("playwright cookie flow: %s", res.Error)
	} else {
		check("playwright", seen, "cookies", "addCookies")
	}
	if strings.Contains(res.Text+res.Error, session) {
		t.Errorf("playwright with an agent token got the HttpOnly session cookie's value")
	}
	res, seen = runScoped(t, s, "puppeteer", "cookies", agents["puppeteer"], site.URL)
	if !res.OK {
		t.Errorf("puppeteer cookie flow: %s", res.Error)
	} else {
		check("puppeteer", seen, "pageCookies", "browserCookies", "setCookie")
	}
	if strings.Contains(res.Text+res.Error, session) {
		t.Errorf("puppeteer with an agent token got the HttpOnly session cookie's value")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := scrytest.Dial(ctx, nil, browserWS(t, ctx, s, "", bearer(admin)))
	if err != nil {
		t.Fatal(err)
	}
	var jar struct {
		Cookies []struct{ Name, Value string }
	}
	if err := c.Call(ctx, "", "Storage.getCookies", nil, &jar); err != nil {
		t.Fatalf("Storage.getCookies with the admin token: %v", err)
	}
	c.Close()
	held := false
	for _, ck := range jar.Cookies {
		held = held || ck.Value == session
	}
	if !held {
		t.Errorf("the browser does not hold the site's session cookie (the admin token sees %d cookies): the refusals prove nothing", len(jar.Cookies))
	}

	waitConnsClosed(t, s, "playwright", "puppeteer")
	a := auditOf(s)
	for client, methods := range map[string][]string{
		"playwright": {"Storage.getCookies", "Storage.setCookies"},
		"puppeteer":  {"Network.getCookies", "Storage.getCookies", "Storage.setCookies"},
	} {
		refused := a.with("cdp command refused", client).methods()
		for _, m := range methods {
			if refused[m] == 0 {
				t.Errorf("no audit line \"cdp command refused\" for %s's %s; refused lines: %v", client, m, refused)
			}
		}
	}
	m, err := scrape(ctx, s, bearer(admin))
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"Storage.getCookies", "Storage.setCookies", "Network.getCookies"} {
		if n := metricWith(m, "scry_cdp_refused_commands_total", `role="agent"`, `method="`+method+`"`); n < 1 {
			t.Errorf("scry_cdp_refused_commands_total{role=agent,method=%s} = %v, want at least 1", method, n)
		}
	}
}

// metricWith sums the samples of name whose labels include every one of
// labels.
func metricWith(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		if !strings.HasPrefix(k, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(k, l)
		}
		if all {
			sum += v
		}
	}
	return sum
}

// TestAuditNeverHoldsTypedText: Playwright fills a password field and
// Puppeteer types into one, each a different random string, with
// AUDIT_LOG=commands and LOG_LEVEL=debug. The audit trail records their
// Input commands, with none of the keys that would carry a value, and
// nothing scry writes holds either string.
func TestAuditNeverHoldsTypedText(t *testing.T) {
	_, agents, toks := agentTokens(t, "playwright", "puppeteer")
	s := startWithTokens(t, map[string]string{"AUDIT_LOG": "commands", "LOG_LEVEL": "debug"}, toks...)
	site, _ := scopedSite(t)
	secrets := map[string]string{"playwright": "Pw" + newToken(t)[3:23], "puppeteer": "Pp" + newToken(t)[3:23]}
	for _, client := range []string{"playwright", "puppeteer"} {
		res, seen := runScoped(t, s, client, "password", agents[client], site.URL, "SCRY_SECRET="+secrets[client])
		if !res.OK || seen["typed"] != true {
			t.Errorf("%s typing into the password field: %+v %v, want the field to hold the typed text", client, res, seen)
		}
	}
	waitConnsClosed(t, s, "playwright", "puppeteer")
	a := auditOf(s)
	// What an audit line may say (the contract's keys and slog's own).
	allowed := map[string]bool{"time": true, "level": true, "msg": true, "log": true, "token": true, "role": true,
		"conn": true, "method": true, "session": true, "target": true, "url": true, "inner_method": true, "inner_url": true}
	for _, client := range []string{"playwright", "puppeteer"} {
		cmds := a.with("cdp command", client)
		var input audit
		for _, r := range cmds {
			if m, _ := r["method"].(string); strings.HasPrefix(m, "Input.") {
				input = append(input, r)
			}
		}
		if len(input) == 0 {
			t.Errorf("no audit line for %s's Input commands; it has %v", client, cmds.methods())
		}
		for _, r := range input {
			for k := range r {
				if !allowed[k] {
					t.Errorf("an audit line for %s's %v has the key %q: %v", client, r["method"], k, r)
				}
			}
		}
	}
	log := s.Log()
	for client, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the text %s typed is in scry's log", client)
		}
	}
}
