package cdprole

import (
	"strings"
	"testing"
)

func TestPeek(t *testing.T) {
	tests := []struct {
		name, msg string
		id        string // raw id; "" for none
		method    string
		session   string
		url       string
		target    string
		inner     string // inner method
		innerURL  string
		err       string // substring; "" means no error
	}{
		{name: "plain", msg: `{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}`, id: "1", method: "Runtime.evaluate"},
		{name: "keys in any order", msg: `{"params":{"url":"https://x/"},"sessionId":"S1","method":"Page.navigate","id":7}`, id: "7", method: "Page.navigate", session: "S1", url: "https://x/"},
		{name: "whitespace", msg: " \n{ \"id\" : 2 , \"method\" : \"Page.enable\" }\n", id: "2", method: "Page.enable"},
		{name: "no params", msg: `{"id":3,"method":"Page.enable"}`, id: "3", method: "Page.enable"},
		{name: "null params", msg: `{"id":3,"method":"Page.enable","params":null}`, id: "3", method: "Page.enable"},
		{name: "no id", msg: `{"method":"Page.enable"}`, method: "Page.enable"},
		{name: "big id", msg: `{"id":123456789012345678901234567890,"method":"Page.enable"}`, id: "123456789012345678901234567890", method: "Page.enable"},
		{name: "negative id", msg: `{"id":-5,"method":"Page.enable"}`, id: "-5", method: "Page.enable"},
		{name: "escaped method", msg: `{"id":1,"method":"Storage.get\u0043ookies"}`, id: "1", method: "Storage.getCookies"},
		{name: "escaped key", msg: `{"id":1,"\u006dethod":"Storage.getCookies"}`, id: "1", method: "Storage.getCookies"},
		{name: "upper-case key is not method", msg: `{"id":1,"METHOD":"Storage.getCookies","method":"Page.enable"}`, id: "1", method: "Page.enable"},
		{name: "only upper-case key", msg: `{"id":1,"Method":"Storage.getCookies"}`, id: "1", err: "no method"},
		{name: "targetId kept", msg: `{"id":1,"method":"Target.attachToTarget","params":{"targetId":"T1","flatten":true}}`, id: "1", method: "Target.attachToTarget", target: "T1"},
		{name: "url of other methods not kept", msg: `{"id":1,"method":"Network.setBlockedURLs","params":{"url":"x","urls":[]}}`, id: "1", method: "Network.setBlockedURLs"},
		{name: "createTarget", msg: `{"id":1,"method":"Target.createTarget","params":{"url":"file:///etc/passwd"}}`, id: "1", method: "Target.createTarget", url: "file:///etc/passwd"},
		{name: "nested", msg: `{"id":9,"method":"Target.sendMessageToTarget","params":{"sessionId":"S","message":"{\"id\":1,\"method\":\"Page.navigate\",\"params\":{\"url\":\"file:///x\"}}"}}`, id: "9", method: "Target.sendMessageToTarget", inner: "Page.navigate", innerURL: "file:///x"},

		{name: "duplicate method", id: "1", msg: `{"id":1,"method":"Page.enable","method":"Storage.getCookies"}`, err: "duplicate key"},
		{name: "duplicate via escape", id: "1", msg: `{"id":1,"method":"Page.enable","\u006dethod":"Storage.getCookies"}`, err: "duplicate key"},
		{name: "duplicate id", id: "1", msg: `{"id":1,"id":2,"method":"Page.enable"}`, err: "duplicate key"},
		{name: "duplicate sessionId", id: "1", msg: `{"id":1,"method":"Page.enable","sessionId":"a","sessionId":"b"}`, err: "duplicate key"},
		{name: "duplicate params", id: "1", msg: `{"id":1,"method":"Page.navigate","params":{"url":"https://x"},"params":{"url":"file:///x"}}`, err: "duplicate key"},
		{name: "duplicate url", msg: `{"id":1,"method":"Page.navigate","params":{"url":"https://x","url":"file:///x"}}`, id: "1", err: "duplicate key"},
		{name: "duplicate in inner", msg: `{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"{\"id\":1,\"method\":\"Page.enable\",\"method\":\"Browser.close\"}"}}`, id: "1", err: "duplicate key"},
		{name: "float id", msg: `{"id":1.5,"method":"Page.enable"}`, err: "not an integer"},
		{name: "exponent id", msg: `{"id":1e3,"method":"Page.enable"}`, err: "not an integer"},
		{name: "string id", msg: `{"id":"1","method":"Page.enable"}`, err: "id is not a number"},
		{name: "method not a string", msg: `{"id":1,"method":5}`, id: "1", err: "method is not a UTF-8 string"},
		{name: "sessionId not a string", msg: `{"id":1,"method":"Page.enable","sessionId":1}`, id: "1", err: "sessionId is not a UTF-8 string"},
		{name: "params not an object", msg: `{"id":1,"method":"Page.enable","params":[1]}`, id: "1", err: "params is not an object"},
		{name: "navigate url not a string", msg: `{"id":1,"method":"Page.navigate","params":{"url":["file:///x"]}}`, id: "1", err: "params.url is not a UTF-8 string"},
		{name: "message not a string", msg: `{"id":1,"method":"Target.sendMessageToTarget","params":{"message":{"method":"Browser.close"}}}`, id: "1", err: "params.message is not a UTF-8 string"},
		{name: "inner garbage", msg: `{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"nope"}}`, id: "1", err: "inside Target.sendMessageToTarget"},
		{name: "method not UTF-8", msg: "{\"id\":1,\"method\":\"Page.navigat\x80\"}", id: "1", err: "method is not a UTF-8 string"},
		{name: "url not UTF-8", msg: "{\"id\":1,\"method\":\"Page.navigate\",\"params\":{\"url\":\"\xc0file:///x\"}}", id: "1", err: "params.url is not a UTF-8 string"},
		{name: "array", msg: `[{"id":1,"method":"Page.enable"}]`, err: "must be a JSON object"},
		{name: "string", msg: `"Page.enable"`, err: "must be a JSON object"},
		{name: "empty", msg: ``, err: "must be a JSON object"},
		{name: "garbage", id: "1", msg: `{"id":1,"method":"Page.enable"`, err: "bad CDP command"},
		{name: "trailing", id: "1", msg: `{"id":1,"method":"Page.enable"}{"id":2,"method":"Browser.close"}`, err: "trailing data"},
		{name: "bad escape", id: "1", msg: `{"id":1,"method":"Page.\x"}`, err: "bad CDP command"},
		{name: "control char", id: "1", msg: "{\"id\":1,\"method\":\"Page.\nenable\"}", err: "control character"},
		{name: "deep", id: "1", msg: `{"id":1,"method":"Page.enable","params":{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}}`, err: "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := Peek([]byte(tt.msg))
			if string(cmd.ID) != tt.id {
				t.Errorf("ID = %q, want %q", cmd.ID, tt.id)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "scry: ") {
					t.Fatalf("err = %v, want one starting scry: and containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if cmd.Method != tt.method || cmd.SessionID != tt.session || cmd.URL != tt.url || cmd.TargetID != tt.target {
				t.Errorf("got method %q session %q url %q target %q, want %q %q %q %q",
					cmd.Method, cmd.SessionID, cmd.URL, cmd.TargetID, tt.method, tt.session, tt.url, tt.target)
			}
			switch {
			case tt.inner == "" && cmd.Inner != nil:
				t.Errorf("Inner = %+v, want nil", cmd.Inner)
			case tt.inner != "" && cmd.Inner == nil:
				t.Errorf("Inner = nil, want %s", tt.inner)
			case tt.inner != "" && (cmd.Inner.Method != tt.inner || cmd.Inner.URL != tt.innerURL):
				t.Errorf("Inner = %s %q, want %s %q", cmd.Inner.Method, cmd.Inner.URL, tt.inner, tt.innerURL)
			}
		})
	}
}

func TestErrorReply(t *testing.T) {
	tests := []struct {
		msg  string
		want string
	}{
		{`{"id":7,"method":"Storage.getCookies","sessionId":"AB\"C"}`,
			`{"id":7,"sessionId":"AB\"C","error":{"code":-32000,"message":"scry: no \u003cb\u003e"}}`},
		{`{"id":-12345678901234567890,"method":"Browser.close"}`,
			`{"id":-12345678901234567890,"error":{"code":-32000,"message":"scry: no \u003cb\u003e"}}`},
		{`{"method":"Browser.close"}`,
			`{"error":{"code":-32000,"message":"scry: no \u003cb\u003e"}}`},
	}
	for _, tt := range tests {
		cmd, err := Peek([]byte(tt.msg))
		if err != nil {
			t.Fatal(err)
		}
		got := ErrorReply(cmd, "scry: no <b>")
		if string(got) != tt.want {
			t.Errorf("ErrorReply(%s) = %s, want %s", tt.msg, got, tt.want)
		}
		var v map[string]any
		if err := jsonUnmarshalExact(got, &v); err != nil {
			t.Errorf("reply %s is not valid JSON: %v", got, err)
		}
	}
}
