package cdpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/scrytest"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/wsframe"
)

const (
	adminTok    = "admin-token-0123456789"
	agentTok    = "agent-token-0123456789"
	observerTok = "observer-token-0123456"
)

// webTargets is the fake browser's tabs as scry's own discovery knows
// them: P1 and P2 show web pages, SETTINGS chrome://settings.
func webTargets(id string) (string, bool) {
	switch id {
	case "P1", "P2":
		return "https://example.com/", true
	case "SETTINGS":
		return "chrome://settings/", true
	}
	return "", false
}

func scopedTokens(t *testing.T) *tokens.Set {
	t.Helper()
	s, err := tokens.Parse(strings.NewReader("ops admin " + adminTok + "\nbot agent " + agentTok + "\nwatch observer " + observerTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// auditLines returns the audit records with message msg.
func auditLines(t *testing.T, s *scrytest.LogBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		var rec map[string]any
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func scopedBridge(t *testing.T, mode string) (*bridge, *scrytest.LogBuffer) {
	t.Helper()
	fc := newFakeChrome(t)
	audit := &scrytest.LogBuffer{}
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Tokens: scopedTokens(t), TargetURL: webTargets,
		Audit: slog.New(slog.NewJSONHandler(audit, nil)), AuditMode: mode, DownloadDir: "/dl"})
	return b, audit
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// call sends one command and returns the next message the client reads.
func call(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read the answer to %s: %v", msg, err)
	}
	return string(got)
}

type cdpError struct {
	ID        int    `json:"id"`
	SessionID string `json:"sessionId"`
	Error     struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestAgentCommandsAreCheckedOneByOne(t *testing.T) {
	b, audit := scopedBridge(t, "summary")
	c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(agentTok))
	if err != nil {
		t.Fatal(err)
	}
	allowed := `{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}`
	if got := call(t, c, allowed); got != allowed {
		t.Fatalf("allowed command: got %s, want it echoed", got)
	}
	got := call(t, c, `{"id":7,"sessionId":"S9","method":"Storage.getCookies","params":{}}`)
	var e cdpError
	if err := json.Unmarshal([]byte(got), &e); err != nil || e.ID != 7 || e.SessionID != "S9" || e.Error.Code != -32000 ||
		!strings.Contains(e.Error.Message, "Storage.getCookies is not allowed for role agent") {
		t.Fatalf("refused command: got %s (%v), want scry's error reply with id 7 and session S9", got, err)
	}
	// The connection goes on.
	if got := call(t, c, `{"id":8,"method":"Page.enable"}`); got != `{"id":8,"method":"Page.enable"}` {
		t.Fatalf("after a refusal: got %s", got)
	}
	if got := b.obs.commands; len(got) != 1 || got[0] != "agent Storage.getCookies" {
		t.Errorf("refused commands counted %q, want [agent Storage.getCookies]", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the summary line", func() bool { return len(auditLines(t, audit, "cdp connection summary")) == 1 })
	sum := auditLines(t, audit, "cdp connection summary")[0]
	if sum["token"] != "bot" || sum["role"] != "agent" || sum["commands"] != 3.0 {
		t.Errorf("summary %v", sum)
	}
	if r, _ := sum["refused"].(map[string]any); r["Storage.getCookies"] != 1.0 {
		t.Errorf("summary refusals %v", sum["refused"])
	}
	if ref := auditLines(t, audit, "cdp command refused"); len(ref) != 1 || ref[0]["method"] != "Storage.getCookies" {
		t.Errorf("refused lines %v", ref)
	}
}

func TestAdminConnectionsAreSplicedNotRead(t *testing.T) {
	b, audit := scopedBridge(t, "summary")
	c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(adminTok))
	if err != nil {
		t.Fatal(err)
	}
	msg := `{"id":7,"method":"Storage.getCookies"}`
	if got := call(t, c, msg); got != msg {
		t.Fatalf("admin's Storage.getCookies: got %s, want it through", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the connection to close", func() bool { return b.p.Open() == 0 })
	if s := audit.String(); s != "" {
		t.Errorf("an admin connection left audit lines in summary mode: %s", s)
	}
}

// In commands mode every command has its line, never its parameters.
func TestAuditCommandsNeverHoldTypedText(t *testing.T) {
	b, audit := scopedBridge(t, "commands")
	for _, tok := range []string{agentTok, adminTok} {
		c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(tok))
		if err != nil {
			t.Fatal(err)
		}
		call(t, c, `{"id":1,"method":"Input.insertText","params":{"text":"hunter2-password"}}`)
		call(t, c, `{"id":2,"method":"Input.dispatchKeyEvent","params":{"type":"char","text":"hunter2-key"}}`)
		call(t, c, `{"id":3,"sessionId":"S1","method":"Page.navigate","params":{"url":"https://example.com/a"}}`)
		c.Close(websocket.StatusNormalClosure, "")
	}
	waitFor(t, "both summaries", func() bool { return len(auditLines(t, audit, "cdp connection summary")) == 2 })
	lines := auditLines(t, audit, "cdp command")
	if len(lines) != 6 {
		t.Fatalf("%d command lines, want 6: %s", len(lines), audit)
	}
	for _, l := range lines {
		if l["token"] != "bot" && l["token"] != "ops" {
			t.Errorf("line without the token's name: %v", l)
		}
	}
	if nav := lines[2]; nav["method"] != "Page.navigate" || nav["url"] != "https://example.com/a" {
		t.Errorf("navigation line %v", nav)
	}
	if lines[2]["session"] != "S1" {
		t.Errorf("the navigation line has no session: %v", lines[2])
	}
	if strings.Contains(audit.String(), "hunter2") {
		t.Errorf("typed text reached the audit trail: %s", audit)
	}
}

func TestObserverIsReadOnly(t *testing.T) {
	b, _ := scopedBridge(t, "off")
	c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(observerTok))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"Runtime.evaluate", "Input.dispatchMouseEvent", "Page.navigate"} {
		var e cdpError
		got := call(t, c, `{"id":3,"method":"`+m+`","params":{"url":"https://example.com"}}`)
		if json.Unmarshal([]byte(got), &e) != nil || !strings.Contains(e.Error.Message, "role observer") {
			t.Errorf("observer's %s: got %s, want a refusal", m, got)
		}
	}
	if got := call(t, c, `{"id":4,"method":"Page.captureScreenshot"}`); got != `{"id":4,"method":"Page.captureScreenshot"}` {
		t.Errorf("observer's screenshot: got %s", got)
	}
	// Over HTTP the observer lists, and opens nothing.
	if code, _ := b.get(t, b.public(), "/json/list", bearerHeader(observerTok)); code != http.StatusOK {
		t.Errorf("observer /json/list = %d", code)
	}
	if code, body := b.get(t, b.public(), "/json/close/P1", bearerHeader(observerTok)); code != http.StatusForbidden {
		t.Errorf("observer /json/close = %d %s", code, body)
	}
}

// The raw-header events an agent receives carry no cookie value.
func TestAgentSeesNoCookieValues(t *testing.T) {
	b, _ := scopedBridge(t, "off")
	for _, tt := range []struct {
		tok       string
		redaction bool
	}{{agentTok, true}, {observerTok, true}, {adminTok, false}} {
		c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(tt.tok))
		if err != nil {
			t.Fatal(err)
		}
		got := call(t, c, `{"id":1,"method":"Page.captureScreenshot","params":{"emitCookieEvent":true}}`)
		if leaked := strings.Contains(got, "fake-session-secret"); leaked == tt.redaction {
			t.Errorf("token %s: the event reads %s", tt.tok[:5], got)
		}
		if !strings.Contains(got, "Network.requestWillBeSentExtraInfo") || !json.Valid([]byte(got)) {
			t.Errorf("token %s: the event did not arrive whole: %s", tt.tok[:5], got)
		}
	}
}

func TestAgentHTTPRequests(t *testing.T) {
	b, _ := scopedBridge(t, "off")
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/json/version", http.StatusOK},
		{"/json/new?https://example.com/", http.StatusMethodNotAllowed}, // let through: the fake, as Chrome, wants PUT
		{"/json/new?file:///data/.scry/cookies.json", http.StatusForbidden},
		{"/json/new?file%3A%2F%2F%2Fetc%2Fpasswd", http.StatusForbidden},
		{"/json/new?chrome://settings", http.StatusForbidden},
		{"/devtools/inspector.html", http.StatusForbidden},
	} {
		if code, body := b.get(t, b.public(), tt.path, bearerHeader(agentTok)); code != tt.want {
			t.Errorf("agent GET %s = %d %s, want %d", tt.path, code, body, tt.want)
		}
	}
	// Each client is handed back its own token, never another's.
	_, body := b.get(t, b.public(), "/json/version", bearerHeader(agentTok))
	if !strings.Contains(string(body), "token="+agentTok) || strings.Contains(string(body), adminTok) {
		t.Errorf("agent's /json/version: %s", body)
	}
}

// rawDial opens a WebSocket by hand, for frames no library sends.
func rawDial(t *testing.T, b *bridge, tok string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET /devtools/page/P1 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: Bearer %s\r\n\r\n", b.public(), tok)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("compression negotiated on a scoped connection: %s", ext)
	}
	return c, br
}

// Fragments with a ping between them: the ping is answered, the message
// checked whole.
func TestAgentFragmentedCommandWithPingBetween(t *testing.T) {
	b, _ := scopedBridge(t, "off")
	c, br := rawDial(t, b, agentTok)
	key := [4]byte{1, 2, 3, 4}
	msg := []byte(`{"id":5,"method":"Storage.getCookies"}`)
	var out []byte
	out = wsframe.AppendFrame(out, wsframe.OpText, false, &key, msg[:10])
	out = wsframe.AppendFrame(out, wsframe.OpPing, true, &key, []byte("hi"))
	out = wsframe.AppendFrame(out, wsframe.OpContinuation, false, &key, msg[10:20])
	out = wsframe.AppendFrame(out, wsframe.OpContinuation, true, &key, msg[20:])
	allowed := []byte(`{"id":6,"method":"Page.enable"}`)
	out = wsframe.AppendFrame(out, wsframe.OpText, true, &key, allowed)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	// Chromium's pong may come before or after scry's reply; scry's reply
	// to the refused command comes before the answer to the next one.
	r := wsframe.NewReader(br, wsframe.ReaderConfig{})
	var got []string
	for i := 0; i < 3; i++ {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		switch m.Opcode {
		case wsframe.OpPong:
			got = append(got, "pong "+string(m.Payload))
		case wsframe.OpText:
			var e cdpError
			if json.Unmarshal(m.Payload, &e) == nil && e.Error.Message != "" {
				got = append(got, fmt.Sprintf("error %d", e.ID))
			} else {
				got = append(got, "text "+string(m.Payload))
			}
		default:
			got = append(got, m.Opcode.String())
		}
	}
	var noPong []string
	for _, g := range got {
		if g != "pong hi" {
			noPong = append(noPong, g)
		}
	}
	if len(noPong) != 2 || noPong[0] != "error 5" || noPong[1] != "text "+string(allowed) {
		t.Errorf("got %q, want a pong, then or before it the refusal of 5, then the echo of 6", got)
	}
}

// A client breaking the protocol gets a Close with the reason.
func TestAgentProtocolErrorCloses(t *testing.T) {
	b, _ := scopedBridge(t, "off")
	c, br := rawDial(t, b, agentTok)
	// An unmasked frame from a client.
	if _, err := c.Write(wsframe.AppendFrame(nil, wsframe.OpText, true, nil, []byte(`{"id":1,"method":"Page.enable"}`))); err != nil {
		t.Fatal(err)
	}
	m, err := wsframe.NewReader(br, wsframe.ReaderConfig{}).Next()
	if err != nil || m.Opcode != wsframe.OpClose || !bytes.Contains(m.Payload, []byte("scry:")) {
		t.Fatalf("got %v %q %v, want a Close from scry", m.Opcode, m.Payload, err)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("after the Close: %v", err)
	}
}

// While a person holds a handoff, an agent's input is refused.
func TestAgentInputWhilePersonHasControl(t *testing.T) {
	fc := newFakeChrome(t)
	var mu sync.Mutex
	active := true
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Tokens: scopedTokens(t), TargetURL: webTargets,
		PersonHasControl: func() (string, bool) { mu.Lock(); defer mu.Unlock(); return "h_123", active }})
	c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/P1", bearerHeader(agentTok))
	if err != nil {
		t.Fatal(err)
	}
	input := `{"id":1,"method":"Input.dispatchMouseEvent","params":{"type":"mousePressed","x":1,"y":1}}`
	var e cdpError
	if got := call(t, c, input); json.Unmarshal([]byte(got), &e) != nil || !strings.Contains(e.Error.Message, "a person has control (handoff h_123)") {
		t.Fatalf("input during a handoff: got %s", got)
	}
	mu.Lock()
	active = false
	mu.Unlock()
	if got := call(t, c, input); got != input {
		t.Fatalf("input after the handoff: got %s", got)
	}
}

// On a page's own WebSocket (/devtools/page/ID) a command without a
// sessionId goes to that page: it is checked as that page's, so an agent
// cannot run code in chrome://settings by connecting to its tab's socket.
func TestAgentOnAPagesOwnWebSocket(t *testing.T) {
	b, _ := scopedBridge(t, "summary")
	dial := func(id string) *websocket.Conn {
		t.Helper()
		c, _, err := b.dial(t, "ws://"+b.public()+"/devtools/page/"+id, bearerHeader(agentTok))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	eval := `{"id":1,"method":"Runtime.evaluate","params":{"expression":"1"}}`
	if got := call(t, dial("P1"), eval); got != eval {
		t.Errorf("Runtime.evaluate on a web page's socket: %s, want it forwarded", got)
	}
	settings := dial("SETTINGS")
	if got := call(t, settings, eval); !strings.Contains(got, "chrome://settings/, which is not a web page") {
		t.Errorf("Runtime.evaluate on chrome://settings's own socket: %s, want scry's refusal", got)
	}
	look := `{"id":2,"method":"DOM.getDocument","params":{}}`
	if got := call(t, settings, look); got != look {
		t.Errorf("DOM.getDocument on chrome://settings's own socket: %s, want it forwarded", got)
	}
	if got := call(t, dial("UNKNOWN"), eval); !strings.Contains(got, "scry does not know") {
		t.Errorf("Runtime.evaluate on an unknown page's socket: %s, want scry's refusal", got)
	}
}
