package cdprole

import (
	"encoding/json"
	"testing"
)

// FuzzPeek: Peek never panics, and whatever it accepts, encoding/json read
// with exact (case-sensitive) keys agrees on method and sessionId, and the
// command inside sendMessageToTarget too.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}`,
		`{"id":1,"method":"Storage.get\u0043ookies"}`,
		`{"id":1,"METHOD":"Storage.getCookies","method":"Page.enable"}`,
		`{"id":1,"method":"Page.navigate","params":{"url":"file:///etc/passwd"},"sessionId":"S"}`,
		`{"id":9,"method":"Target.sendMessageToTarget","params":{"sessionId":"S","message":"{\"id\":1,\"method\":\"Page.navigate\",\"params\":{\"url\":\"file:///x\"}}"}}`,
		`{"id":1,"method":"Page.enable","method":"Browser.close"}`,
		`{"id":1.5,"method":"Page.enable"}`,
		`[1,2]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cmd, err := Peek(msg)
		_ = ErrorReply(cmd, "x")
		if err != nil {
			return
		}
		agree(t, msg, cmd)
		if cmd.Inner != nil {
			agree(t, innerMessage(msg), *cmd.Inner)
		}
		p := Policy{Role: Agent, DownloadDir: "/dl"}
		v := p.Check(cmd, msg)
		if v.Rewritten != nil {
			c2, err := Peek(v.Rewritten)
			if err != nil || c2.Method != cmd.Method || string(c2.ID) != string(cmd.ID) || c2.SessionID != cmd.SessionID {
				t.Fatalf("rewritten %q does not read back: %+v %v", v.Rewritten, c2, err)
			}
		}
		if reply := ErrorReply(cmd, v.Reason); !json.Valid(reply) {
			t.Fatalf("ErrorReply not JSON: %q", reply)
		}
	})
}

func agree(t *testing.T, msg []byte, cmd Command) {
	t.Helper()
	var m map[string]json.RawMessage // exact keys; a repeated key would keep the last
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("Peek accepted %q, encoding/json did not: %v", msg, err)
	}
	var method, session string
	if err := json.Unmarshal(m["method"], &method); err != nil {
		t.Fatalf("Peek accepted %q, method: %v", msg, err)
	}
	if raw, ok := m["sessionId"]; ok {
		if err := json.Unmarshal(raw, &session); err != nil {
			t.Fatalf("Peek accepted %q, sessionId: %v", msg, err)
		}
	}
	if method != cmd.Method || session != cmd.SessionID {
		t.Fatalf("Peek(%q) read method %q session %q, encoding/json %q %q", msg, cmd.Method, cmd.SessionID, method, session)
	}
	if raw, ok := m["id"]; ok {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil || string(raw) != string(cmd.ID) {
			t.Fatalf("Peek(%q) id %q, encoding/json %q %v", msg, cmd.ID, raw, err)
		}
	}
}
