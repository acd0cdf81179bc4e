package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// The security promises of scoped CDP tokens (issue 15), checked through a
// raw CDP client that keeps every message it receives: an agent uses the
// login but cannot carry it away, an observer only looks, and what they
// were refused is counted and on record.

// scopedTokens are the tokens of a CDP_TOKENS_FILE, by role. Their names
// in the file are boss (admin), bot (agent) and eye (observer).
type scopedTokens struct{ admin, agent, observer string }

// writeTokensFile writes a tokens file with one token of each role, a
// comment and a blank line, and returns its path.
func writeTokensFile(t *testing.T) (string, scopedTokens) {
	t.Helper()
	tk := scopedTokens{admin: newToken(t), agent: newToken(t), observer: newToken(t)}
	body := "# scry tokens: NAME ROLE TOKEN\n\nboss admin " + tk.admin + "\nbot agent " + tk.agent + "\n  eye   observer\t" + tk.observer + "\n"
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tk
}

// startScoped runs scry with a tokens file (and env on top).
func startScoped(t *testing.T, env map[string]string) (*Scry, scopedTokens) {
	t.Helper()
	path, tk := writeTokensFile(t)
	e := map[string]string{"CDP_TOKENS_FILE": path}
	for k, v := range env {
		e[k] = v
	}
	return Start(t, Options{Env: e}), tk
}

// cdpMsg is one message from the bridge: a reply (ID > 0) or an event.
type cdpMsg struct {
	ID        int64           `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Raw string `json:"-"`
}

func (m cdpMsg) String() string {
	if len(m.Raw) > 400 {
		return m.Raw[:400] + "…"
	}
	return m.Raw
}

// rawCDP is a CDP connection that keeps every message it receives, with a
// reader goroutine so that events (Fetch.requestPaused) can be answered
// while a call waits.
type rawCDP struct {
	t       *testing.T
	ws      *websocket.Conn
	onEvent func(c *rawCDP, m cdpMsg) // on the reader goroutine; may send, never call

	mu      sync.Mutex
	next    int64
	msgs    []string
	waiting map[int64]chan cdpMsg
	done    chan struct{}
	err     error
}

// dialRaw opens the browser WebSocket URL u (which carries the token).
func dialRaw(t *testing.T, u string, onEvent func(c *rawCDP, m cdpMsg)) *rawCDP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial %s: %v", withoutToken(t, u), err)
	}
	ws.SetReadLimit(256 << 20)
	c := &rawCDP{t: t, ws: ws, onEvent: onEvent, waiting: map[int64]chan cdpMsg{}, done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { ws.Close(websocket.StatusNormalClosure, "") })
	return c
}

// dialToken opens the browser WebSocket that /json/version hands token.
func dialToken(t *testing.T, s *Scry, token string, onEvent func(c *rawCDP, m cdpMsg)) *rawCDP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return dialRaw(t, browserWS(t, ctx, s, "?token="+url.QueryEscape(token), nil), onEvent)
}

func (c *rawCDP) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var m cdpMsg
		if err := json.Unmarshal(data, &m); err != nil {
			m.Method = "(not JSON)"
		}
		m.Raw = string(data)
		c.mu.Lock()
		c.msgs = append(c.msgs, m.Raw)
		ch := c.waiting[m.ID]
		delete(c.waiting, m.ID)
		c.mu.Unlock()
		switch {
		case ch != nil:
			ch <- m
		case m.ID == 0 && c.onEvent != nil:
			c.onEvent(c, m)
		}
	}
}

// encode makes a command with the next id; params is a JSON string or
// anything encoding/json takes (nil: none).
func (c *rawCDP) encode(session, method string, params any) (int64, []byte) {
	c.mu.Lock()
	c.next++
	id := c.next
	c.mu.Unlock()
	if s, ok := params.(string); ok {
		params = json.RawMessage(s)
	}
	b, err := json.Marshal(struct {
		ID        int64  `json:"id"`
		SessionID string `json:"sessionId,omitempty"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
	}{id, session, method, params})
	if err != nil {
		panic(err) // the tests' own parameters
	}
	return id, b
}

// send writes a command without waiting for its reply.
func (c *rawCDP) send(session, method string, params any) error {
	_, b := c.encode(session, method, params)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// call sends a command and returns its reply, error replies included; a
// broken connection or no reply within a minute fails the test.
func (c *rawCDP) call(session, method string, params any) cdpMsg {
	c.t.Helper()
	m, err := c.try(session, method, params)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *rawCDP) try(session, method string, params any) (cdpMsg, error) {
	id, b := c.encode(session, method, params)
	ch := make(chan cdpMsg, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return cdpMsg{}, fmt.Errorf("%s: write: %w", method, err)
	}
	select {
	case m := <-ch:
		return m, nil
	case <-c.done:
		return cdpMsg{}, fmt.Errorf("%s: the connection ended before the reply: %v", method, c.err)
	case <-ctx.Done():
		return cdpMsg{}, fmt.Errorf("%s: no reply in a minute", method)
	}
}

// rawCall sends the command text (with %d for its id) as a message of typ
// in n frames, and returns the reply.
func (c *rawCDP) rawCall(typ websocket.MessageType, text string, n int) (cdpMsg, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMsg, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	msg := []byte(fmt.Sprintf(text, id))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := c.ws.Writer(ctx, typ)
	if err != nil {
		return cdpMsg{}, err
	}
	for i := range n { // one frame per Write
		if _, err := w.Write(msg[i*len(msg)/n : (i+1)*len(msg)/n]); err != nil {
			return cdpMsg{}, err
		}
	}
	if err := w.Close(); err != nil {
		return cdpMsg{}, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-c.done:
		return cdpMsg{}, fmt.Errorf("the connection ended before the reply: %v", c.err)
	case <-ctx.Done():
		return cdpMsg{}, errors.New("no reply in a minute")
	}
}

// ok calls and fails the test on an error reply; it returns the result.
func (c *rawCDP) ok(session, method string, params any) json.RawMessage {
	c.t.Helper()
	m := c.call(session, method, params)
	if m.Error != nil {
		c.t.Fatalf("%s: %s", method, m)
	}
	return m.Result
}

// seen is every message received so far.
func (c *rawCDP) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// openPage creates a target at u and attaches to it (flattened); it
// returns the target's id and the session's.
func (c *rawCDP) openPage(u string) (targetID, sessionID string) {
	c.t.Helper()
	var tg struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(c.ok("", "Target.createTarget", map[string]any{"url": u}), &tg); err != nil {
		c.t.Fatal(err)
	}
	return tg.TargetID, c.attachTo(tg.TargetID)
}

// attachTo attaches to a target (flattened) and returns the session's id.
func (c *rawCDP) attachTo(targetID string) string {
	c.t.Helper()
	var at struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(c.ok("", "Target.attachToTarget", map[string]any{"targetId": targetID, "flatten": true}), &at); err != nil || at.SessionID == "" {
		c.t.Fatalf("Target.attachToTarget: %v %s", err, at.SessionID)
	}
	return at.SessionID
}

// eval evaluates expr in the session's page and returns its value as JSON.
func (c *rawCDP) eval(session, expr string) (string, error) {
	m, err := c.try(session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return "", err
	}
	if m.Error != nil {
		return "", errors.New(m.Error.Message)
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(m.Result, &r); err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", fmt.Errorf("exception: %s", r.ExceptionDetails)
	}
	return string(r.Result.Value), nil
}

// waitEval waits until expr evaluates to want (JSON) in the session.
func (c *rawCDP) waitEval(session, expr, want string) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, expr+" = "+want, func() error {
		got, err := c.eval(session, expr)
		if err == nil && got != want {
			err = fmt.Errorf("%s", got)
		}
		return err
	})
}

// stillWorks checks the connection after a refusal: the page evaluates 1+1.
func (c *rawCDP) stillWorks(session string) {
	c.t.Helper()
	if got, err := c.eval(session, "1+1"); err != nil || got != "2" {
		c.t.Fatalf("after a refusal, Runtime.evaluate 1+1 = %s, %v", got, err)
	}
}

// wantRefused checks m is scry's refusal of method for role on session:
// the same session, code -32000, the method and role named.
func wantRefused(t *testing.T, m cdpMsg, session, method, role string) {
	t.Helper()
	want := "scry: " + method + " is not allowed for role " + role
	if m.Error == nil || m.Error.Code != -32000 || m.Error.Message != want || m.SessionID != session {
		t.Errorf("%s (session %q): got %s, want code -32000 %q on the same session", method, session, m, want)
	}
}

// wantScryError checks m is an error reply from scry (code -32000, its
// message starting "scry:") on session, and that the message has sub.
func wantScryError(t *testing.T, what string, m cdpMsg, session, sub string) {
	t.Helper()
	if m.Error == nil || m.Error.Code != -32000 || !strings.HasPrefix(m.Error.Message, "scry: ") || !strings.Contains(m.Error.Message, sub) || m.SessionID != session {
		t.Errorf("%s: got %s, want scry's -32000 error naming %q on session %q", what, m, sub, session)
	}
}

// auditRecords are scry's audit records with msg, for the token named.
func auditRecords(s *Scry, msg, name string) []map[string]any {
	var out []map[string]any
	for _, r := range s.Records() {
		if r["log"] == "audit" && r["msg"] == msg && r["token"] == name {
			out = append(out, r)
		}
	}
	return out
}

// httpAs makes one request on the agent door with token and returns the status.
func httpAs(t *testing.T, s *Scry, token, method, path string) (int, string) {
	t.Helper()
	return agentCall(t, s, token, method, path, "")
}

// TestAgentRefusedMethods: each command that would export or change the
// login, or end the browser, is refused to an agent with scry's reply on
// the same id and session — on the browser session and on a page's — and
// the connection, and the browser, go on working. Each refusal is counted
// and has an audit line with the token's name.
func TestAgentRefusedMethods(t *testing.T) {
	s, tk := startScoped(t, nil)
	agent := dialToken(t, s, tk.agent, nil)
	pageTarget, page := agent.openPage("about:blank")
	// Non-flattened session, for the command wrapped in sendMessageToTarget.
	var legacy struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(agent.ok("", "Target.attachToTarget", map[string]any{"targetId": pageTarget, "flatten": false}), &legacy); err != nil {
		t.Fatal(err)
	}

	cookie := map[string]any{"name": "x", "value": "y", "domain": "127.0.0.1", "path": "/"}
	cases := []struct {
		method string
		params any
		names  string // the method the refusal names, if not method
	}{
		{"Storage.getCookies", nil, ""},
		{"Storage.setCookies", map[string]any{"cookies": []any{cookie}}, ""},
		{"Storage.clearDataForOrigin", map[string]any{"origin": "http://127.0.0.1", "storageTypes": "all"}, ""},
		{"Network.getAllCookies", nil, ""},
		{"Network.getCookies", map[string]any{"urls": []string{"http://127.0.0.1/"}}, ""},
		{"Network.setCookie", map[string]any{"name": "x", "value": "y", "url": "http://127.0.0.1/"}, ""},
		{"Network.setCookies", map[string]any{"cookies": []any{cookie}}, ""},
		{"Network.clearBrowserCookies", nil, ""},
		{"Browser.close", nil, ""},
		{"Browser.crash", nil, ""},
		{"Target.exposeDevToolsProtocol", map[string]any{"targetId": pageTarget}, ""},
		{"Extensions.loadUnpacked", map[string]any{"path": "/tmp"}, ""},
		{"DOMStorage.getDOMStorageItems", map[string]any{"storageId": map[string]any{"securityOrigin": "http://127.0.0.1", "isLocalStorage": true}}, ""},
		{"IndexedDB.requestDatabaseNames", map[string]any{"securityOrigin": "http://127.0.0.1"}, ""},
		{"CacheStorage.requestCacheNames", map[string]any{"securityOrigin": "http://127.0.0.1"}, ""},
		{"Network.loadNetworkResource", map[string]any{"url": "http://127.0.0.1/", "options": map[string]any{"disableCache": true, "includeCredentials": true}}, ""},
		{"Browser.executeBrowserCommand", map[string]any{"commandId": "openTabSearch"}, ""},
		{"Target.sendMessageToTarget", map[string]any{"sessionId": legacy.SessionID, "message": `{"id":1,"method":"Network.getAllCookies"}`}, "Network.getAllCookies"},
	}
	refusals := map[string]int{} // by the method named
	byOuter := map[string]int{}  // by the method sent
	var sequence []string        // the methods named, in order
	for _, tc := range cases {
		names := tc.method
		if tc.names != "" {
			names = tc.names
		}
		for _, session := range []string{"", page} {
			wantRefused(t, agent.call(session, tc.method, tc.params), session, names, "agent")
			agent.stillWorks(page)
			refusals[names]++
			byOuter[tc.method]++
			sequence = append(sequence, names)
		}
	}

	// The browser lived through Browser.close and Browser.crash.
	agent.ok("", "Browser.getVersion", nil)
	if err := syscall.Kill(s.ChromiumPid, 0); err != nil {
		t.Errorf("Chromium (pid %d) is gone: %v", s.ChromiumPid, err)
	}

	// The same commands from the admin are not refused: the check can fail.
	// (Network.getCookies lives on page sessions in Chromium 156.)
	admin := dialToken(t, s, tk.admin, nil)
	_, apage := admin.openPage("about:blank")
	for _, c := range []struct{ session, method string }{{"", "Storage.getCookies"}, {apage, "Network.getCookies"}} {
		if r := admin.ok(c.session, c.method, nil); !strings.Contains(string(r), `"cookies"`) {
			t.Errorf("admin %s: %s", c.method, r)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 30*time.Second, "the refusals counted", func() error {
		m, err := scrape(ctx, s, bearer(tk.admin))
		if err != nil {
			return err
		}
		for _, k := range []string{"Storage.getCookies", "Browser.close"} {
			key := `scry_cdp_refused_commands_total{method="` + k + `",role="agent"}`
			if m[key] != float64(refusals[k]) {
				return fmt.Errorf("%s = %v, want %d", key, m[key], refusals[k])
			}
		}
		if _, v, _ := series(m, `scry_cdp_refused_commands_total{method="Storage.getCookies",role="admin"}`); v != 0 {
			return fmt.Errorf("admin commands counted as refused: %v", v)
		}
		return nil
	})
	// Refusals are logged as they happen, the first refusedBurst (20) of
	// a token at once and then one a second (scry's guard against a
	// flood), in the order they were made; the connection's summary at
	// its close counts every one.
	const burst = 20
	waitFor(t, 30*time.Second, "an audit line for each of the first refusals", func() error {
		recs := auditRecords(s, "cdp command refused", "bot")
		if len(recs) < min(burst, len(sequence)) {
			return fmt.Errorf("%d audit lines, want at least %d", len(recs), min(burst, len(sequence)))
		}
		for i, r := range recs[:burst] {
			m, _ := r["method"].(string)
			if in, _ := r["inner_method"].(string); in != "" {
				m = in
			}
			if r["role"] != "agent" || r["reason"] == nil || m != sequence[i] {
				return fmt.Errorf("audit line %d: %v, want %s refused for role agent with a reason", i, r, sequence[i])
			}
		}
		return nil
	})
	agent.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, 30*time.Second, "the connection's audit summary", func() error {
		recs := auditRecords(s, "cdp connection summary", "bot")
		if len(recs) != 1 {
			return fmt.Errorf("%d summaries", len(recs))
		}
		got, _ := recs[0]["refused"].(map[string]any)
		if len(got) != len(byOuter) {
			return fmt.Errorf("refused %v, want %v", got, byOuter)
		}
		for m, n := range byOuter {
			if got[m] != float64(n) {
				return fmt.Errorf("refused %v, want %v", got, byOuter)
			}
		}
		return nil
	})
	if log := s.Log(); strings.Contains(log, tk.agent) || strings.Contains(log, tk.admin) {
		t.Errorf("a token is in scry's log")
	}

	// Ways to say Storage.getCookies that Chromium may understand and a
	// naive peek would not: each gets no cookies for the agent. The admin
	// sends the same, to show which of them Chromium really executes.
	t.Run("disguised", func(t *testing.T) {
		// legacySession attaches c to a new page without flattening, for
		// Target.sendMessageToTarget.
		legacySession := func(c *rawCDP) string {
			tg, _ := c.openPage("about:blank")
			var at struct {
				SessionID string `json:"sessionId"`
			}
			if err := json.Unmarshal(c.ok("", "Target.attachToTarget", map[string]any{"targetId": tg, "flatten": false}), &at); err != nil {
				t.Fatal(err)
			}
			return at.SessionID
		}
		agent := dialToken(t, s, tk.agent, nil)
		_, page := agent.openPage("about:blank")
		agentLegacy, adminLegacy := legacySession(agent), legacySession(admin)
		for _, tc := range []struct {
			name, text string
			typ        websocket.MessageType
			frames     int
			wrapped    bool // inside Target.sendMessageToTarget: an answer at all means it was passed on
		}{
			{"three fragments", `{"id":%d,"method":"Storage.getCookies"}`, websocket.MessageText, 3, false},
			{"one byte a frame", `{"id":%d,"method":"Storage.getCookies"}`, websocket.MessageText, 39, false},
			{"escaped method", `{"id":%d,"method":"Storage.get\u0043ookies"}`, websocket.MessageText, 1, false},
			{"escaped key", `{"id":%d,"\u006dethod":"Storage.getCookies"}`, websocket.MessageText, 1, false},
			{"duplicate method, refused one last", `{"id":%d,"method":"Browser.getVersion","method":"Storage.getCookies"}`, websocket.MessageText, 1, false},
			{"duplicate method, refused one first", `{"id":%d,"method":"Storage.getCookies","method":"Browser.getVersion"}`, websocket.MessageText, 1, false},
			{"method in params first", `{"params":{"method":"Browser.getVersion"},"id":%d,"method":"Storage.getCookies"}`, websocket.MessageText, 1, false},
			{"whitespace", "{\n\t\"id\" : %d ,\r\n \"method\"\t:\t\"Storage.getCookies\" }", websocket.MessageText, 1, false},
			{"wrapped, escaped", `{"id":%d,"method":"Target.sendMessageToTarget","params":{"sessionId":"SESSION","message":"{\"id\":1,\"method\":\"Network.get\\u0043ookies\"}"}}`, websocket.MessageText, 1, true},
			{"wrapped, duplicate", `{"id":%d,"method":"Target.sendMessageToTarget","params":{"sessionId":"SESSION","message":"{\"id\":1,\"method\":\"Runtime.evaluate\",\"method\":\"Network.getCookies\"}"}}`, websocket.MessageText, 1, true},
			// Last: Chromium closes a connection that sends a binary frame.
			{"binary frame", `{"id":%d,"method":"Storage.getCookies"}`, websocket.MessageBinary, 1, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				adm, err := admin.rawCall(tc.typ, strings.ReplaceAll(tc.text, "SESSION", adminLegacy), tc.frames)
				executed := err == nil && adm.Error == nil && (tc.wrapped || strings.Contains(string(adm.Result), `"cookies"`))
				if !executed {
					t.Logf("Chromium does not take this as the command: the admin got %s %v", adm, err)
				}
				m, err := agent.rawCall(tc.typ, strings.ReplaceAll(tc.text, "SESSION", agentLegacy), tc.frames)
				if err != nil && tc.typ == websocket.MessageBinary {
					t.Logf("the agent's connection: %v", err)
					return // closed, as Chromium closes the admin's
				}
				if err != nil {
					t.Fatalf("agent: %v", err)
				}
				if strings.Contains(string(m.Result), `"cookies"`) || tc.wrapped && m.Error == nil {
					t.Errorf("the agent got past the check: %s", m)
				}
				if executed && (m.Error == nil || m.Error.Code != -32000) {
					t.Errorf("the agent's disguised command: %s, want scry's refusal", m)
				}
				agent.stillWorks(page)
			})
		}
	})
}

// TestAgentFileAndInternalURLsRefused: an agent can open http(s) and
// about:blank, but not file:, view-source:, chrome:, devtools: or
// javascript: URLs, by any of the three ways to open one; with
// ALLOW_FILE_URLS=on the admin may open a file, the agent still not.
func TestAgentFileAndInternalURLsRefused(t *testing.T) {
	s, tk := startScoped(t, nil)
	site := testSite(t)
	tls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "tls site")
	}))
	tls.Config.ErrorLog = log.New(io.Discard, "", 0) // Chromium rejects the test certificate, as it should
	tls.StartTLS()
	t.Cleanup(tls.Close)

	agent := dialToken(t, s, tk.agent, nil)
	_, page := agent.openPage("about:blank")
	// targetURLs lists the targets: id → URL.
	targetURLs := func() map[string]string {
		var ts struct {
			TargetInfos []struct {
				ID  string `json:"targetId"`
				URL string `json:"url"`
			} `json:"targetInfos"`
		}
		if err := json.Unmarshal(agent.ok("", "Target.getTargets", nil), &ts); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, ti := range ts.TargetInfos {
			m[ti.ID] = ti.URL
		}
		return m
	}
	before := targetURLs()
	bad := []string{
		"file:///etc/passwd",
		"file://" + filepath.Join(s.ProfileDir, ".scry", "cookies.json"),
		" FILE:///x",
		"view-source:file:///x",
		"chrome://settings",
		"javascript:alert(1)",
		"devtools://devtools/bundled/inspector.html",
	}
	for _, u := range bad {
		wantScryError(t, "Page.navigate "+u, agent.call(page, "Page.navigate", map[string]any{"url": u}), page, "")
		agent.stillWorks(page)
		wantScryError(t, "Target.createTarget "+u, agent.call("", "Target.createTarget", map[string]any{"url": u}), "", "")
		for _, q := range []string{strings.ReplaceAll(u, " ", "%20"), url.QueryEscape(u)} {
			if code, body := httpAs(t, s, tk.agent, http.MethodPut, "/json/new?"+q); code != http.StatusForbidden {
				t.Errorf("PUT /json/new?%s as agent: %d %s, want 403", q, code, body)
			}
		}
	}
	if href, err := agent.eval(page, "location.href"); err != nil || href != `"about:blank"` {
		t.Errorf("after the refused navigations the page is at %s (%v), want about:blank", href, err)
	}
	// No target came of the refused ones (Chromium's own, such as the
	// omnibox popup, were there before).
	for id, u := range targetURLs() {
		if _, ok := before[id]; !ok {
			t.Errorf("a target was opened at %s", u)
		}
	}

	// What an agent may open.
	for _, u := range []string{site.URL + "/", tls.URL + "/", "about:blank"} {
		if m := agent.call(page, "Page.navigate", map[string]any{"url": u}); m.Error != nil {
			t.Errorf("Page.navigate %s: %s", u, m)
		}
	}
	agent.ok(page, "Page.navigate", map[string]any{"url": site.URL + "/"})
	agent.waitEval(page, "document.getElementById('out') && document.getElementById('out').textContent", `"waiting"`)
	var tg struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(agent.ok("", "Target.createTarget", map[string]any{"url": site.URL}), &tg); err != nil {
		t.Fatal(err)
	}
	agent.ok("", "Target.closeTarget", map[string]any{"targetId": tg.TargetID})
	code, body := httpAs(t, s, tk.agent, http.MethodPut, "/json/new?"+site.URL)
	var p pageTarget
	if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
		t.Errorf("PUT /json/new?%s as agent: %d %s", site.URL, code, body)
	} else {
		if !strings.Contains(p.WS, tk.agent) || strings.Contains(p.WS, tk.admin) {
			t.Errorf("/json/new hands the agent %s, want its own token", withoutToken(t, p.WS))
		}
		if code, body := httpAs(t, s, tk.agent, http.MethodGet, "/json/close/"+p.ID); code != http.StatusOK {
			t.Errorf("/json/close as agent: %d %s", code, body)
		}
	}

	t.Run("ALLOW_FILE_URLS=on", func(t *testing.T) {
		path, secret := secretFile(t)
		s, tk := startScoped(t, map[string]string{"ALLOW_FILE_URLS": "on"})
		agent := dialToken(t, s, tk.agent, nil)
		_, page := agent.openPage("about:blank")
		wantScryError(t, "agent Page.navigate file:", agent.call(page, "Page.navigate", map[string]any{"url": "file://" + path}), page, "")
		wantScryError(t, "agent Target.createTarget file:", agent.call("", "Target.createTarget", map[string]any{"url": "file://" + path}), "", "")
		if code, _ := httpAs(t, s, tk.agent, http.MethodPut, "/json/new?file://"+path); code != http.StatusForbidden {
			t.Errorf("PUT /json/new?file:// as agent with ALLOW_FILE_URLS=on: %d, want 403", code)
		}
		if text, err := agent.eval(page, "document.body.innerText"); err != nil || strings.Contains(text, secret) {
			t.Errorf("the agent's page: %s %v", text, err)
		}
		// The admin may: the check can fail.
		admin := dialToken(t, s, tk.admin, nil)
		_, apage := admin.openPage("about:blank")
		admin.ok(apage, "Page.navigate", map[string]any{"url": "file://" + path})
		admin.waitEval(apage, "document.body.innerText.trim()", `"`+secret+`"`)
	})
}

// cookieTrap serves /login, which sets an HttpOnly cookie holding secret
// on its redirect to /, which sets a visible one holding visible and whose
// script fetches /data and opens a WebSocket to /ws: both answer "ok" only
// when the HttpOnly cookie came with the request.
func cookieTrap(t *testing.T, secret, visible string) *httptest.Server {
	t.Helper()
	hasCookie := func(r *http.Request) bool {
		c, err := r.Cookie("hid")
		return err == nil && c.Value == secret
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "hid", Value: secret, Path: "/", HttpOnly: true})
			http.Redirect(w, r, "/", http.StatusFound)
		case "/data":
			w.Header().Set("Content-Type", "text/plain")
			if !hasCookie(r) {
				fmt.Fprint(w, "no cookie")
				return
			}
			fmt.Fprint(w, "ok")
		case "/ws":
			if !hasCookie(r) {
				http.Error(w, "no cookie", http.StatusForbidden)
				return
			}
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			_ = c.Write(r.Context(), websocket.MessageText, []byte("ok"))
			_, _, _ = c.Read(r.Context()) // until the page goes
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "vis", Value: visible, Path: "/"})
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><p id="out">waiting</p><p id="ws">waiting</p>
<script>fetch('/data').then(r => r.text()).then(t => document.getElementById('out').textContent = t)
const ws = new WebSocket('ws://' + location.host + '/ws')
ws.onmessage = e => document.getElementById('ws').textContent = e.data</script>`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// continuePaused lets every request a Fetch domain paused go on, at the
// request stage and at the response stage.
func continuePaused(c *rawCDP, m cdpMsg) {
	if m.Method != "Fetch.requestPaused" {
		return
	}
	var p struct {
		RequestID           string `json:"requestId"`
		ResponseStatusCode  int    `json:"responseStatusCode"`
		ResponseErrorReason string `json:"responseErrorReason"`
	}
	if json.Unmarshal(m.Params, &p) != nil {
		return
	}
	method := "Fetch.continueRequest"
	if p.ResponseStatusCode != 0 || p.ResponseErrorReason != "" {
		method = "Fetch.continueResponse"
	}
	_ = c.send(m.SessionID, method, map[string]any{"requestId": p.RequestID})
}

// TestAgentNeverSeesHttpOnlyCookie: a site that sets an HttpOnly cookie on
// a redirect and sends it again with a fetch and a WebSocket handshake
// works for an agent that watches the network and intercepts every
// request and response, and yet no message the agent receives holds the
// cookie's value. The admin, doing the same, sees it.
func TestAgentNeverSeesHttpOnlyCookie(t *testing.T) {
	s, tk := startScoped(t, nil)
	secret, visible := "hid"+newToken(t), "vis"+newToken(t)
	site := cookieTrap(t, secret, visible)

	// load drives the site on a fresh page with Network and Fetch on, and
	// returns every message the connection received.
	load := func(token string) []string {
		t.Helper()
		c := dialToken(t, s, token, continuePaused)
		_, page := c.openPage("about:blank")
		c.ok(page, "Network.enable", nil)
		c.ok(page, "Fetch.enable", map[string]any{"patterns": []any{
			map[string]any{"urlPattern": "*", "requestStage": "Request"},
			map[string]any{"urlPattern": "*", "requestStage": "Response"},
		}})
		c.ok(page, "Page.enable", nil)
		c.ok(page, "Page.navigate", map[string]any{"url": site.URL + "/login"})
		loaded := "document.getElementById('out') && document.getElementById('out').textContent + document.getElementById('ws').textContent"
		c.waitEval(page, loaded, `"okok"`)
		// Page JavaScript reads the visible cookie, not the HttpOnly one.
		dc, err := c.eval(page, "document.cookie")
		if err != nil || !strings.Contains(dc, visible) || strings.Contains(dc, secret) {
			t.Errorf("document.cookie = %s (%v), want the visible cookie only", dc, err)
		}
		// The page loaded twice more, now with the cookie in the jar.
		c.ok(page, "Page.reload", nil)
		c.waitEval(page, loaded, `"okok"`)
		return c.seen()
	}

	seen := load(tk.agent)
	leaks := 0
	for _, m := range seen {
		if strings.Contains(m, secret) {
			leaks++
			if leaks <= 5 {
				t.Errorf("the agent received the HttpOnly cookie's value in: %s", cdpMsg{Raw: m})
			}
		}
	}
	if leaks > 0 {
		t.Errorf("%d of %d messages to the agent held the HttpOnly cookie's value", leaks, len(seen))
	}
	redacted := 0
	for _, m := range seen {
		if strings.Contains(m, "(redacted by scry)") {
			redacted++
		}
	}
	if redacted == 0 {
		t.Errorf("no message to the agent says \"(redacted by scry)\" (%d messages)", len(seen))
	}

	// The admin sees the value: the search above could have found it.
	found := false
	for _, m := range load(tk.admin) {
		found = found || strings.Contains(m, secret)
	}
	if !found {
		t.Errorf("the admin's messages never hold the cookie's value: the agent's check proves nothing")
	}
}

// TestAgentDownloadsAndUploads: an agent's download lands in DOWNLOAD_DIR
// whatever path it asks for, and it may upload only files from there.
func TestAgentDownloadsAndUploads(t *testing.T) {
	elsewhere := tempDir(t)
	if err := os.Chmod(elsewhere, 0o777); err != nil { // the browser's uid could write here
		t.Fatal(err)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := strings.TrimPrefix(r.URL.Path, "/dl/"); name != r.URL.Path {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
			fmt.Fprint(w, "body of "+name)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><input type="file" id="f"><p id="out">none</p>
<script>document.getElementById('f').onchange = e => e.target.files[0].text().then(s => document.getElementById('out').textContent = s)</script>`)
	}))
	t.Cleanup(site.Close)
	s, tk := startScoped(t, nil)
	downloads := filepath.Join(s.ProfileDir, "Downloads")

	download := func(c *rawCDP, page, name, dir string) {
		t.Helper()
		c.ok("", "Browser.setDownloadBehavior", map[string]any{"behavior": "allow", "downloadPath": elsewhere, "eventsEnabled": true})
		// A download aborts the navigation that started it; the file counts.
		c.call(page, "Page.navigate", map[string]any{"url": site.URL + "/dl/" + name})
		waitFor(t, 30*time.Second, name+" in "+dir, func() error {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			if string(b) != "body of "+name {
				return fmt.Errorf("%s holds %q", name, b)
			}
			return nil
		})
	}

	// Each tab shows a page before its download: Chromium closes a new
	// tab whose first navigation becomes a download (and the session with
	// it), which made this test fail once under load.
	agent := dialToken(t, s, tk.agent, nil)
	_, page := agent.openPage(site.URL + "/")
	agent.waitEval(page, "!!document.getElementById('f')", "true")
	download(agent, page, "agent.txt", downloads)
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("the agent's download path was used: %s holds %v", elsewhere, ents)
	}
	// The admin's path is kept: the check can fail.
	admin := dialToken(t, s, tk.admin, nil)
	_, apage := admin.openPage(site.URL + "/")
	admin.waitEval(apage, "!!document.getElementById('f')", "true")
	download(admin, apage, "admin.txt", elsewhere)

	// Uploads.
	agent.ok(page, "Page.navigate", map[string]any{"url": site.URL + "/"})
	agent.waitEval(page, "!!document.getElementById('f')", "true")
	var doc struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	if err := json.Unmarshal(agent.ok(page, "DOM.getDocument", nil), &doc); err != nil {
		t.Fatal(err)
	}
	var q struct {
		NodeID int `json:"nodeId"`
	}
	if err := json.Unmarshal(agent.ok(page, "DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": "#f"}), &q); err != nil || q.NodeID == 0 {
		t.Fatalf("DOM.querySelector #f: %v %d", err, q.NodeID)
	}
	upload := func(path string) cdpMsg {
		return agent.call(page, "DOM.setFileInputFiles", map[string]any{"files": []string{path}, "nodeId": q.NodeID})
	}
	for _, p := range []string{
		filepath.Join(s.ProfileDir, "Default", "Cookies"),
		"/etc/passwd",
		downloads + "/../Default/Cookies",
		filepath.Join(s.ProfileDir, ".scry", "cookies.json"),
		"Downloads/agent.txt",
	} {
		wantScryError(t, "DOM.setFileInputFiles "+p, upload(p), page, "")
		agent.stillWorks(page)
	}
	// Dragging files onto the page is an upload too.
	drag := map[string]any{"type": "dragEnter", "x": 10, "y": 10, "data": map[string]any{
		"items": []any{}, "files": []string{"/etc/passwd"}, "dragOperationsMask": 1}}
	wantScryError(t, "Input.dispatchDragEvent with /etc/passwd", agent.call(page, "Input.dispatchDragEvent", drag), page, "")
	agent.stillWorks(page)
	if m := upload(filepath.Join(downloads, "agent.txt")); m.Error != nil {
		t.Fatalf("DOM.setFileInputFiles from DOWNLOAD_DIR: %s", m)
	}
	agent.waitEval(page, "document.getElementById('out').textContent", `"body of agent.txt"`)
}

// TestAgentInputWhilePersonHasControl: while a person holds the handoff an
// agent asked for, the agent's Input.* is refused (Runtime still works, and
// the admin's input is not held back); after Done, input works again.
// Typed text never reaches the audit log.
func TestAgentInputWhilePersonHasControl(t *testing.T) {
	hook := newWebhookSink(t)
	s, tk := startScoped(t, map[string]string{"VNC_PASSWORD": "pw123456", "AUDIT_LOG": "commands", "HANDOFF_WEBHOOK_URL": hook.URL})
	agent := dialToken(t, s, tk.agent, nil)
	targetID, page := agent.openPage("data:text/html,<input id=i>")
	agent.waitEval(page, "!!document.getElementById('i')", "true")
	typeText := func(text string) cdpMsg {
		t.Helper()
		if _, err := agent.eval(page, "document.getElementById('i').focus()"); err != nil {
			t.Fatal(err)
		}
		return agent.call(page, "Input.insertText", map[string]any{"text": text})
	}
	typed := []string{"typed-before-" + newToken(t), "typed-admin-" + newToken(t), "typed-after-" + newToken(t)}
	if m := typeText(typed[0]); m.Error != nil {
		t.Fatalf("Input.insertText before the handoff: %s", m)
	}
	agent.waitEval(page, "document.getElementById('i').value", `"`+typed[0]+`"`)

	// The agent asks; the link, full control of the browser, goes to the
	// webhook (the people), never to the agent.
	h := createHandoff(t, s, tk.agent, `{"reason": "scoped token test"}`)
	if h.URL != "" {
		t.Fatalf("an agent token was handed the link %s", h.URL)
	}
	var link string
	waitFor(t, 30*time.Second, "the link at the webhook", func() error {
		created, _ := hook.event("handoff.created", h.ID)
		hv, _ := created["handoff"].(map[string]any)
		if link, _ = hv["url"].(string); link == "" {
			return errors.New("no handoff.created with a link yet")
		}
		return nil
	})
	hctx, hcancel := context.WithTimeout(humanBrowser(t), 120*time.Second)
	defer hcancel()
	if err := chromedp.Do(hctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	waitPageState(t, hctx, "connected")
	if got := getHandoff(t, s, tk.agent, h.ID, ""); got.State != "active" {
		t.Fatalf("after the link was opened the handoff is %s, want active", got.State)
	}

	wantHeld := func(what string, m cdpMsg, method string) {
		t.Helper()
		want := "a person has control (handoff " + h.ID + ")"
		if m.Error == nil || m.Error.Code != -32000 || !strings.Contains(m.Error.Message, want) || !strings.Contains(m.Error.Message, method) || m.SessionID != page {
			t.Errorf("%s while a person has control: %s, want an error with %q and %s", what, m, want, method)
		}
	}
	wantHeld("Input.dispatchMouseEvent", agent.call(page, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": 5, "y": 5}), "Input.dispatchMouseEvent")
	wantHeld("Input.insertText", typeText("refused"), "Input.insertText")
	agent.stillWorks(page)
	if v, _ := agent.eval(page, "document.getElementById('i').value"); v != `"`+typed[0]+`"` {
		t.Errorf("the field holds %s after refused input", v)
	}
	// The admin's input is not held back: the check can fail.
	admin := dialToken(t, s, tk.admin, nil)
	apage := admin.attachTo(targetID)
	if _, err := admin.eval(apage, "document.getElementById('i').focus()"); err != nil {
		t.Fatal(err)
	}
	admin.ok(apage, "Input.insertText", map[string]any{"text": typed[1]})
	agent.waitEval(page, "document.getElementById('i').value", `"`+typed[0]+typed[1]+`"`)

	if err := chromedp.Do(hctx, chromedp.Click(chromedp.ID("done"))); err != nil {
		t.Fatalf("Done: %v", err)
	}
	waitPageState(t, hctx, "done")
	if got := getHandoff(t, s, tk.agent, h.ID, ""); got.State != "done" {
		t.Fatalf("after Done the handoff is %s", got.State)
	}
	if m := typeText(typed[2]); m.Error != nil {
		t.Fatalf("Input.insertText after Done: %s", m)
	}
	agent.waitEval(page, "document.getElementById('i').value", `"`+strings.Join(typed, "")+`"`)

	// AUDIT_LOG=commands logs the agent's input commands, never their text.
	waitFor(t, 30*time.Second, "the agent's Input.insertText in the audit log", func() error {
		for _, r := range auditRecords(s, "cdp command", "bot") {
			if r["method"] == "Input.insertText" {
				return nil
			}
		}
		return errors.New("none yet")
	})
	if len(auditRecords(s, "cdp command refused", "bot")) < 2 {
		t.Errorf("the two refused input commands have no audit lines")
	}
	log := s.Log()
	for _, text := range typed {
		if strings.Contains(log, text) {
			t.Errorf("typed text %q is in scry's log", text)
		}
	}
}

// TestObserverToken: an observer reads screenshots, the DOM, the
// accessibility tree and the target list, and can change nothing, over
// CDP or HTTP.
func TestObserverToken(t *testing.T) {
	s, tk := startScoped(t, nil)
	site := testSite(t)
	code, body := httpAs(t, s, tk.admin, http.MethodPut, "/json/new?"+site.URL)
	var tab pageTarget
	if code != http.StatusOK || json.Unmarshal([]byte(body), &tab) != nil {
		t.Fatalf("admin PUT /json/new: %d %s", code, body)
	}

	obs := dialToken(t, s, tk.observer, nil)
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
		} `json:"targetInfos"`
	}
	if err := json.Unmarshal(obs.ok("", "Target.getTargets", nil), &targets); err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, ti := range targets.TargetInfos {
		listed = listed || ti.TargetID == tab.ID
	}
	if !listed {
		t.Errorf("Target.getTargets does not list the admin's tab")
	}
	page := obs.attachTo(tab.ID)
	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(obs.ok(page, "Page.captureScreenshot", nil), &shot); err != nil {
		t.Fatal(err)
	}
	if b, err := base64.StdEncoding.DecodeString(shot.Data); err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("Page.captureScreenshot: %d bytes, %v, want a PNG", len(b), err)
	}
	if r := obs.ok(page, "DOM.getDocument", nil); !strings.Contains(string(r), `"root"`) {
		t.Errorf("DOM.getDocument: %s", r)
	}
	if r := obs.ok(page, "Accessibility.getFullAXTree", nil); !strings.Contains(string(r), `"nodes"`) {
		t.Errorf("Accessibility.getFullAXTree: %s", r)
	}

	for _, tc := range []struct {
		session, method string
		params          any
	}{
		{page, "Runtime.evaluate", map[string]any{"expression": "document.title='changed'"}},
		{page, "Input.insertText", map[string]any{"text": "x"}},
		{page, "Page.navigate", map[string]any{"url": "about:blank"}},
		{"", "Target.createTarget", map[string]any{"url": "about:blank"}},
		{"", "Storage.getCookies", nil},
		{page, "Storage.getCookies", nil},
	} {
		wantRefused(t, obs.call(tc.session, tc.method, tc.params), tc.session, tc.method, "observer")
		obs.ok(page, "DOM.getDocument", nil) // and the connection goes on
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, _ := scrape(ctx, s, bearer(tk.admin))
	refusedHTTP := 0
	for _, tc := range []struct{ method, path string }{
		{http.MethodPut, "/json/new?about:blank"},
		{http.MethodGet, "/json/close/" + tab.ID},
		{http.MethodPut, "/json/close/" + tab.ID},
		{http.MethodGet, "/json/activate/" + tab.ID},
		{http.MethodPost, "/scry/v1/handoffs"},
	} {
		code, body := agentCall(t, s, tk.observer, tc.method, tc.path, `{"reason": "observer"}`)
		if code != http.StatusForbidden {
			t.Errorf("%s %s as observer: %d %s, want 403", tc.method, tc.path, code, body)
		}
		refusedHTTP++
	}
	// Without a webhook an agent cannot ask for a person (the link would
	// be its, and the link is full control); the admin can, link and all.
	if code, body := agentCall(t, s, tk.agent, http.MethodPost, "/scry/v1/handoffs", `{"reason": "agent"}`); code != http.StatusForbidden || !strings.Contains(body, "HANDOFF_WEBHOOK_URL") {
		t.Errorf("an agent's handoff without a webhook: %d %s, want 403 naming HANDOFF_WEBHOOK_URL", code, body)
	}
	if h := createHandoff(t, s, tk.admin, `{"reason": "admin"}`); h.URL == "" {
		t.Errorf("the admin's handoff has no link")
	}
	for _, p := range []string{"/json/list", "/json/version", "/scry/v1/sessions"} {
		if code, body := httpAs(t, s, tk.observer, http.MethodGet, p); code != http.StatusOK {
			t.Errorf("GET %s as observer: %d %s, want 200", p, code, body)
		}
	}
	// The tab is still there, its title unchanged.
	if err := json.Unmarshal(obs.ok("", "Target.getTargets", nil), &targets); err != nil {
		t.Fatal(err)
	}
	listed = false
	for _, ti := range targets.TargetInfos {
		listed = listed || ti.TargetID == tab.ID
	}
	if !listed {
		t.Errorf("the observer closed the tab")
	}
	admin := dialToken(t, s, tk.admin, nil)
	if title, err := admin.eval(admin.attachTo(tab.ID), "document.title"); err != nil || title != `"scry test"` {
		t.Errorf("the tab's title is %s (%v), want it unchanged", title, err)
	}

	key := `scry_refused_requests_total{door="cdp",reason="role"}`
	waitFor(t, 30*time.Second, "the refused requests counted", func() error {
		m, err := scrape(ctx, s, bearer(tk.admin))
		if err != nil {
			return err
		}
		if m[key]-before[key] != float64(refusedHTTP) {
			return fmt.Errorf("%s went from %v to %v, want +%d", key, before[key], m[key], refusedHTTP)
		}
		if v := m[`scry_cdp_refused_commands_total{method="Runtime.evaluate",role="observer"}`]; v != 1 {
			return fmt.Errorf("observer's Runtime.evaluate refusals counted %v, want 1", v)
		}
		return nil
	})
}

// TestTokensFileErrors: a bad line stops scry at start with exit 2 and an
// error that names the line and never the token; a good file works beside
// CDP_TOKEN, each client getting its own token back.
func TestTokensFileErrors(t *testing.T) {
	good := newToken(t)
	for _, tc := range []struct {
		name, line, token string
	}{
		{"unknown role", "bot wizard " + good, good},
		{"short token", "bot agent shorttok12", "shorttok12"},
		{"no token", "bot agent", ""},
		{"too many fields", "bot agent " + good + " extra", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			adminToken := newToken(t)
			body := "# tokens\nboss admin " + adminToken + "\n" + tc.line + "\n"
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			s := Start(t, Options{NoWait: true, Env: map[string]string{"CDP_TOKENS_FILE": path}})
			if code := s.Wait(60 * time.Second); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			log := s.Log()
			if !strings.Contains(log, "line 3") || s.HasLog("starting xvfb") {
				t.Errorf("want an error naming line 3 and nothing started:\n%s", log)
			}
			if tc.token != "" && strings.Contains(log, tc.token) {
				t.Errorf("the token is in the error:\n%s", log)
			}
			if strings.Contains(log, adminToken) {
				t.Errorf("the good line's token is in the error:\n%s", log)
			}
		})
	}

	t.Run("with CDP_TOKEN", func(t *testing.T) {
		path, tk := writeTokensFile(t)
		cdpToken := newToken(t)
		s := Start(t, Options{Env: map[string]string{"CDP_TOKENS_FILE": path, "CDP_TOKEN": cdpToken}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, tok := range []string{cdpToken, tk.admin, tk.agent, tk.observer} {
			ws := browserWS(t, ctx, s, "", bearer(tok))
			if !strings.Contains(ws, tok) {
				t.Errorf("/json/version with a token hands back %s, not that token", withoutToken(t, ws))
			}
		}
		if code, _, _, _ := get(ctx, s.CDPURL()+"/json/version", bearer(newToken(t))); code != http.StatusUnauthorized {
			t.Errorf("an unknown token: %d, want 401", code)
		}
		admin := dialToken(t, s, cdpToken, nil)
		admin.ok("", "Storage.getCookies", nil)
		agent := dialToken(t, s, tk.agent, nil)
		wantRefused(t, agent.call("", "Storage.getCookies", nil), "", "Storage.getCookies", "agent")
		agent.ok("", "Browser.getVersion", nil)
	})
}

// An agent may look at the browser's own pages (a chrome://settings tab a
// person left open) but not act on them: they have browser APIs web pages
// lack. Nor in a tab that has shown one, whatever it shows now: its page
// can go back there. Its own tabs are the agent's to drive; and real
// clients still start with such a tab open, though they attach to every
// tab.
func TestAgentCannotActOnBrowserPages(t *testing.T) {
	site := testSite(t)
	s, tk := startScoped(t, nil)
	admin := dialToken(t, s, tk.admin, nil)
	settingsTarget, adminSettings := admin.openPage("chrome://settings")
	admin.waitEval(adminSettings, "location.protocol", `"chrome:"`) // the admin may act there

	agent := dialToken(t, s, tk.agent, nil)
	settings := agent.attachTo(settingsTarget)
	for _, c := range []struct {
		method string
		params any
	}{
		{"Runtime.evaluate", map[string]any{"expression": "1+1"}},
		{"Input.insertText", map[string]any{"text": "x"}},
		{"Page.reload", nil},
		{"Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": "1"}},
	} {
		m, err := agent.try(settings, c.method, c.params)
		if err != nil {
			t.Fatal(err)
		}
		wantScryError(t, c.method+" on chrome://settings", m, settings, "which is not a web page")
	}
	agent.ok(settings, "DOM.getDocument", nil) // looking is allowed
	agent.ok(settings, "Page.captureScreenshot", nil)
	// The tab's own WebSocket (/devtools/page/ID, listed by /json/list)
	// takes commands without a session: they are the page's, and checked
	// as such.
	pageWS := dialRaw(t, fmt.Sprintf("ws://127.0.0.1:%d/devtools/page/%s?token=%s", s.CDPPort, settingsTarget, url.QueryEscape(tk.agent)), nil)
	if m, err := pageWS.try("", "Runtime.evaluate", map[string]any{"expression": "1+1"}); err != nil {
		t.Fatal(err)
	} else {
		wantScryError(t, "Runtime.evaluate on chrome://settings's own WebSocket", m, "", "which is not a web page")
	}
	pageWS.ok("", "DOM.getDocument", nil)

	// Navigated to a web page, the tab is still not the agent's to act in:
	// history.back() from its page goes back to chrome://settings, and
	// what the agent sent right after would run there before scry heard
	// of the navigation. Nor may it plant what would outlive one.
	agent.ok(settings, "Page.navigate", map[string]any{"url": site.URL})
	admin.waitEval(adminSettings, "location.protocol", `"http:"`)
	for _, c := range []struct{ method, why string }{
		{"Runtime.evaluate", "has shown chrome://settings"},
		{"Input.insertText", "has shown chrome://settings"},
		{"Page.addScriptToEvaluateOnNewDocument", "chrome://settings"},
		{"Fetch.enable", "chrome://settings"},
	} {
		m, err := agent.try(settings, c.method, map[string]any{"source": "1", "expression": "history.back()", "text": "x"})
		if err != nil {
			t.Fatal(err)
		}
		wantScryError(t, c.method+" in a tab that has shown chrome://settings", m, settings, c.why)
	}
	agent.ok(settings, "DOM.getDocument", nil) // looking still is
	_, own := agent.openPage(site.URL)
	agent.ok(own, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": "1"})
	agent.ok(own, "Fetch.enable", nil)
	agent.ok(own, "Fetch.disable", nil)
	if m, err := agent.try("", "Fetch.enable", nil); err != nil || m.Error == nil {
		t.Errorf("Fetch.enable on the browser's session (every tab): %s %v, want refused", m, err)
	}
	// ...and back on an internal page (a person's navigation), it is not.
	admin.ok(adminSettings, "Page.navigate", map[string]any{"url": "chrome://settings"})
	waitFor(t, 30*time.Second, "the agent's Runtime.evaluate to be refused again", func() error {
		m, err := agent.try(settings, "Runtime.evaluate", map[string]any{"expression": "1"})
		if err != nil {
			return err
		}
		if m.Error == nil || !strings.Contains(m.Error.Message, "not a web page") {
			return fmt.Errorf("got %s", m)
		}
		return nil
	})

	// Clients that attach to every tab start and drive their own page.
	for _, client := range []string{"playwright", "puppeteer"} {
		res, err := runNode(t, client, s.CDPURL(), tk.agent, "header", site.URL)
		if err != nil || !res.OK || res.Text != "clicked" {
			t.Errorf("%s with a chrome://settings tab open: %+v %v", client, res, err)
		}
	}
}
