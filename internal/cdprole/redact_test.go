package cdprole

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The samples in testdata/events come from a real Chromium 156 run
// (testdata/events/capture.mjs: a page that sets HttpOnly cookies and sends
// them, a WebSocket handshake, Fetch interception and an auth challenge, a
// non-flat session); *.hand.json ones are written after the protocol for
// events that run did not produce. Every cookie value in them is
// secretValue or plainValue.
const (
	secretValue = "sEcReT-HttpOnly-4711"
	plainValue  = "plain-cookie-0815"
)

func TestRedactSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/events/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("samples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg = bytes.TrimSpace(msg)
			if !bytes.Contains(msg, []byte(secretValue)) {
				t.Fatalf("sample has no cookie value to redact")
			}
			if !MayCarryCookies(msg[:min(len(msg), 128)]) {
				t.Errorf("MayCarryCookies = false")
			}
			out, err := Redact(msg)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte(secretValue)) || bytes.Contains(out, []byte(plainValue)) ||
				bytes.Contains(out, []byte("4711")) {
				t.Errorf("cookie value survived:\n%s", out)
			}
			if !bytes.Contains(out, []byte(Redacted)) {
				t.Errorf("nothing redacted:\n%s", out)
			}
			var in, got struct {
				ID        *int   `json:"id"`
				Method    string `json:"method"`
				SessionID string `json:"sessionId"`
			}
			if err := json.Unmarshal(msg, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if got != in {
				t.Errorf("id/method/sessionId changed: %+v, want %+v", got, in)
			}
			// Chromium writes the method first: MayCarryCookies relies on it.
			if !bytes.HasPrefix(msg, []byte(`{"method":"`)) || !bytes.HasPrefix(out, []byte(`{"method":"`)) {
				t.Errorf("method is not first")
			}
		})
	}
}

// TestRedactSamplesCoverEveryEvent: each event MayCarryCookies names has a
// sample above.
func TestRedactSamplesCoverEveryEvent(t *testing.T) {
	files, _ := filepath.Glob("testdata/events/*.json")
	kinds := map[string]bool{}
	for _, f := range files {
		kinds[strings.SplitN(filepath.Base(f), ".", 3)[0]+"."+strings.SplitN(filepath.Base(f), ".", 3)[1]] = true
	}
	for m := range cookieEvents {
		if !kinds[m] {
			t.Errorf("no sample of %s in testdata/events", m)
		}
	}
}

func TestRedactKeepsOtherValues(t *testing.T) {
	in := `{"method":"Network.responseReceivedExtraInfo","params":{"requestId":"R","headers":{"Content-Type":"text/html","X-Cookie-Note":"keep","Set-Cookie":"a=1"},` +
		`"headersText":"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nset-cookie:b=2\r\n\r\n","n":1.5e3,"u":"\u00e9<>&","arr":[],"obj":{},"b":true,"z":null}}`
	want := `{"method":"Network.responseReceivedExtraInfo","params":{"requestId":"R","headers":{"Content-Type":"text/html","X-Cookie-Note":"keep","Set-Cookie":"(redacted by scry)"},` +
		`"headersText":"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: (redacted by scry)\r\nset-cookie: (redacted by scry)\r\n\r\n","n":1.5e3,"u":"\u00e9<>&","arr":[],"obj":{},"b":true,"z":null}}`
	out, err := Redact([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("Redact =\n%s\nwant\n%s", out, want)
	}
	for _, tt := range []struct{ in, want string }{
		// name after value
		{`{"method":"Fetch.requestPaused","params":{"responseHeaders":[{"value":"a=1","name":"SET-COOKIE"},{"value":"text/html","name":"Content-Type"}]}}`,
			`{"method":"Fetch.requestPaused","params":{"responseHeaders":[{"value":"(redacted by scry)","name":"SET-COOKIE"},{"value":"text/html","name":"Content-Type"}]}}`},
		// a wrapper's params before its method
		{`{"params":{"sessionId":"S","message":"{\"method\":\"Network.x\",\"params\":{\"headers\":{\"Cookie\":\"a=1\"}}}"},"method":"Target.receivedMessageFromTarget"}`,
			`{"params":{"sessionId":"S","message":"{\"method\":\"Network.x\",\"params\":{\"headers\":{\"Cookie\":\"(redacted by scry)\"}}}"},"method":"Target.receivedMessageFromTarget"}`},
		// "message" elsewhere is text, not a wrapped event
		{`{"method":"Log.entryAdded","params":{"entry":{"message":"{\"Cookie\":\"a\"}"}}}`,
			`{"method":"Log.entryAdded","params":{"entry":{"message":"{\"Cookie\":\"a\"}"}}}`},
		// escaped keys are keys
		{`{"method":"Network.x","params":{"headers":{"\u0043ookie":"a=1"}}}`,
			`{"method":"Network.x","params":{"headers":{"\u0043ookie":"(redacted by scry)"}}}`},
	} {
		out, err := Redact([]byte(tt.in))
		if err != nil || string(out) != tt.want {
			t.Errorf("Redact(%s) =\n%s, %v\nwant\n%s", tt.in, out, err, tt.want)
		}
	}
	if _, err := Redact([]byte(`{"method":"Network.x","params":{`)); err == nil {
		t.Errorf("bad JSON: no error")
	}
}

func TestMayCarryCookies(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		want   bool
	}{
		{`{"id":5,"result":{}}`, false},
		{`{"method":"Page.loadEventFired","params":{}}`, false},
		{`{"method":"Runtime.consoleAPICalled","params":`, false},
		{`{"method":"Network.requestWillBeSentExtraInfo","params":`, true},
		{`{"method":"Fetch.requestPaused","params":`, true},
		{`{"method":"Target.receivedMessageFromTarget","params":`, true},
		{`{"method":"Network.responseReceivedExtra`, true}, // cut off: unsure
		{`{"method":"Network.respons\u0065ReceivedExtraInfo"`, true},
		{` {"method":"Page.loadEventFired"`, true}, // not Chromium's form: unsure
		{`{"params":{},"method":"Network.requestWillBeSent"}`, true},
	} {
		if got := MayCarryCookies([]byte(tt.prefix)); got != tt.want {
			t.Errorf("MayCarryCookies(%s) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	files, _ := filepath.Glob("testdata/events/*.json")
	for _, fn := range files {
		b, _ := os.ReadFile(fn)
		f.Add(b)
	}
	f.Add([]byte(`{"method":"Target.receivedMessageFromTarget","params":{"message":"{\"method\":\"Fetch.requestPaused\",\"params\":{\"responseHeaders\":[{\"name\":\"Cookie\",\"value\":\"x\"}]}}"}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := Redact(msg)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Redact(%q) = %q: not valid JSON", msg, out)
		}
		if !json.Valid(msg) {
			// Redact accepts only what it could parse; encoding/json is a
			// second opinion (it allows invalid UTF-8 too).
			t.Fatalf("Redact accepted invalid JSON %q", msg)
		}
		if again, err := Redact(out); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Redact is not idempotent on %q: %q, %v", out, again, err)
		}
		if strings.Contains(string(msg), "Set-Cookie") && !strings.Contains(string(out), Redacted) {
			var v any
			_ = json.Unmarshal(msg, &v)
			if hasCookieHeaderString(v) {
				t.Fatalf("Set-Cookie value not redacted in %q", out)
			}
		}
	})
}

// hasCookieHeaderString reports whether v has a member "Set-Cookie" with a
// string value anywhere.
func hasCookieHeaderString(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if _, ok := x.(string); ok && k == "Set-Cookie" {
				return true
			}
			if hasCookieHeaderString(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasCookieHeaderString(x) {
				return true
			}
		}
	}
	return false
}
