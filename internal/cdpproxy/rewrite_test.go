package cdpproxy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// chromeVersion and chromeList are shaped like Chrome's own answers, with
// the loopback Host Chrome was sent baked into the URLs.
const chromeVersion = `{
   "Browser": "Chrome/126.0.6478.126",
   "Protocol-Version": "1.3",
   "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
   "V8-Version": "12.6.228.21",
   "WebKit-Version": "537.36 (@abc)",
   "webSocketDebuggerUrl": "ws://127.0.0.1:9223/devtools/browser/5c3b1e2a-7f7e-4c43-9a5e-1f0e9d1e2b3c"
}
`

const chromeList = `[ {
   "description": "",
   "devtoolsFrontendUrl": "/devtools/inspector.html?ws=127.0.0.1:9223/devtools/page/AAAA",
   "id": "AAAA",
   "title": "a <b> & c",
   "type": "page",
   "url": "https://example.com/?q=1&r=2",
   "webSocketDebuggerUrl": "ws://127.0.0.1:9223/devtools/page/AAAA"
}, {
   "description": "",
   "devtoolsFrontendUrl": "https://chrome-devtools-frontend.appspot.com/serve_rev/@abc/inspector.html?experiments=true&ws=localhost:9223/devtools/page/BBBB",
   "faviconUrl": "https://example.org/favicon.ico",
   "id": "BBBB",
   "parentId": "AAAA",
   "title": "frame",
   "type": "iframe",
   "url": "https://example.org/",
   "webSocketDebuggerUrl": "ws://localhost:9223/devtools/page/BBBB",
   "extra": {"n": 12345678901234567890, "list": [1, 2.50, "x"]}
}, {
   "description": "attached elsewhere, no socket URL",
   "id": "CCCC",
   "title": "worker",
   "type": "service_worker",
   "url": "https://example.net/sw.js"
} ]
`

func TestRewrite(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		host   string
		scheme string
		query  url.Values
		// want maps each target's id (or "" for /json/version) to its
		// expected webSocketDebuggerUrl and devtoolsFrontendUrl (empty:
		// the field must be absent).
		wantWS       map[string]string
		wantFrontend map[string]string
	}{
		{
			name: "version object", body: chromeVersion,
			host: "scry-0.scry:9222", scheme: "ws",
			wantWS: map[string]string{"": "ws://scry-0.scry:9222/devtools/browser/5c3b1e2a-7f7e-4c43-9a5e-1f0e9d1e2b3c"},
		},
		{
			name: "version object wss", body: chromeVersion,
			host: "cdp.example.com", scheme: "wss",
			wantWS: map[string]string{"": "wss://cdp.example.com/devtools/browser/5c3b1e2a-7f7e-4c43-9a5e-1f0e9d1e2b3c"},
		},
		{
			name: "version object with token", body: chromeVersion,
			host: "scry-0.scry:9222", scheme: "ws", query: url.Values{"token": {"s3cret/+="}},
			wantWS: map[string]string{"": "ws://scry-0.scry:9222/devtools/browser/5c3b1e2a-7f7e-4c43-9a5e-1f0e9d1e2b3c?token=s3cret%2F%2B%3D"},
		},
		{
			name: "target list", body: chromeList,
			host: "scry-0.scry:9222", scheme: "ws",
			wantWS: map[string]string{
				"AAAA": "ws://scry-0.scry:9222/devtools/page/AAAA",
				"BBBB": "ws://scry-0.scry:9222/devtools/page/BBBB",
				"CCCC": "",
			},
			wantFrontend: map[string]string{
				"AAAA": "ws=scry-0.scry:9222/devtools/page/AAAA",
				"BBBB": "ws=scry-0.scry:9222/devtools/page/BBBB",
			},
		},
		{
			name: "target list wss with token", body: chromeList,
			host: "[2001:db8::1]:443", scheme: "wss", query: url.Values{"token": {"t"}},
			wantWS: map[string]string{
				"AAAA": "wss://[2001:db8::1]:443/devtools/page/AAAA?token=t",
				"BBBB": "wss://[2001:db8::1]:443/devtools/page/BBBB?token=t",
				"CCCC": "",
			},
			wantFrontend: map[string]string{
				"AAAA": "wss=[2001:db8::1]:443/devtools/page/AAAA?token=t",
				"BBBB": "wss=[2001:db8::1]:443/devtools/page/BBBB?token=t",
			},
		},
		{
			name:   "existing query kept, wss frontend param becomes ws",
			body:   `{"id":"X","webSocketDebuggerUrl":"ws://127.0.0.1:9223/devtools/page/X?a=1","devtoolsFrontendUrl":"devtools://devtools/bundled/inspector.html?wss=127.0.0.1:9223/devtools/page/X"}`,
			host:   "scry:9222",
			scheme: "ws", query: url.Values{"token": {"t"}},
			wantWS:       map[string]string{"X": "ws://scry:9222/devtools/page/X?a=1&token=t"},
			wantFrontend: map[string]string{"X": "ws=scry:9222/devtools/page/X?token=t"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Rewrite([]byte(tt.body), tt.host, tt.scheme, tt.query)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("Rewrite produced invalid JSON:\n%s", out)
			}
			in, got := decodeTargets(t, []byte(tt.body)), decodeTargets(t, out)
			if len(in) != len(got) {
				t.Fatalf("got %d targets, want %d", len(got), len(in))
			}
			for i := range got {
				id, _ := got[i]["id"].(string)
				wantWS, ok := tt.wantWS[id]
				if !ok {
					t.Fatalf("test table has no expectation for target %q", id)
				}
				gotWS, has := got[i]["webSocketDebuggerUrl"]
				switch {
				case wantWS == "" && has:
					t.Errorf("target %q: webSocketDebuggerUrl %v appeared", id, gotWS)
				case wantWS != "" && gotWS != wantWS:
					t.Errorf("target %q: webSocketDebuggerUrl = %v, want %s", id, gotWS, wantWS)
				}
				if wantParam, ok := tt.wantFrontend[id]; ok {
					checkFrontend(t, in[i]["devtoolsFrontendUrl"].(string), got[i]["devtoolsFrontendUrl"].(string), wantParam)
				}
				// Everything else means exactly what Chrome said.
				for _, m := range []map[string]any{in[i], got[i]} {
					delete(m, "webSocketDebuggerUrl")
					delete(m, "devtoolsFrontendUrl")
				}
				if !reflect.DeepEqual(in[i], got[i]) {
					t.Errorf("target %q: other fields changed:\n got %#v\nwant %#v", id, got[i], in[i])
				}
			}
		})
	}
}

// checkFrontend asserts that a rewritten devtoolsFrontendUrl keeps the
// frontend's own URL and other parameters and carries exactly one socket
// parameter, wantParam ("ws=host/path").
func checkFrontend(t *testing.T, before, after, wantParam string) {
	t.Helper()
	b, err := url.Parse(before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := url.Parse(after)
	if err != nil {
		t.Fatalf("rewritten devtoolsFrontendUrl %q: %v", after, err)
	}
	if a.Scheme != b.Scheme || a.Host != b.Host || a.Path != b.Path {
		t.Errorf("devtoolsFrontendUrl %q: frontend location changed from %q", after, before)
	}
	key, val, _ := strings.Cut(wantParam, "=")
	aq, bq := a.Query(), b.Query()
	if got := aq[key]; len(got) != 1 || got[0] != val {
		t.Errorf("devtoolsFrontendUrl %q: %s = %q, want %q", after, key, got, val)
	}
	for _, k := range []string{"ws", "wss"} {
		if k != key && aq.Has(k) {
			t.Errorf("devtoolsFrontendUrl %q still has %s=", after, k)
		}
	}
	for k, v := range bq {
		if k == "ws" || k == "wss" {
			continue
		}
		if !reflect.DeepEqual(aq[k], v) {
			t.Errorf("devtoolsFrontendUrl %q: parameter %s = %q, want %q", after, k, aq[k], v)
		}
	}
}

// decodeTargets decodes one object or a list of them, keeping numbers
// exactly as written.
func decodeTargets(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	switch v := v.(type) {
	case map[string]any:
		return []map[string]any{v}
	case []any:
		var out []map[string]any
		for _, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("list element %#v is not an object", e)
			}
			out = append(out, m)
		}
		return out
	}
	t.Fatalf("answer %s is neither an object nor a list", b)
	return nil
}

func TestRewriteKeepsNumbersAndHTMLExact(t *testing.T) {
	out, err := Rewrite([]byte(chromeList), "h:1", "ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12345678901234567890", "2.50", `"a <b> & c"`, `"https://example.com/?q=1&r=2"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("rewritten answer lost %s:\n%s", want, out)
		}
	}
}

func TestRewriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"html error page", "<html><body>oops</body></html>"},
		{"plain text", "Host header is specified and is not an IP address or localhost."},
		{"truncated object", `{"webSocketDebuggerUrl": "ws://127.0.0.1:9223/devtools/br`},
		{"truncated list", `[{"id":"A"},`},
		{"list of numbers", `[1, 2]`},
		{"string", `"ws://127.0.0.1:9223/"`},
		{"socket URL not a string", `{"webSocketDebuggerUrl": 5}`},
		{"frontend URL not a string", `{"devtoolsFrontendUrl": {}}`},
		{"unparsable socket URL", `{"webSocketDebuggerUrl": "ws://127.0.0.1:9223/%zz"}`},
		{"trailing garbage", `{"id":"A"} x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Rewrite([]byte(tt.body), "scry:9222", "ws", nil)
			if err == nil {
				t.Fatalf("Rewrite(%q) = %q, want an error", tt.body, out)
			}
		})
	}
}

func TestRewriteEmptyBody(t *testing.T) {
	for _, body := range []string{"", "  \n"} {
		out, err := Rewrite([]byte(body), "scry:9222", "ws", nil)
		if err != nil || string(out) != body {
			t.Errorf("Rewrite(%q) = %q, %v; want it unchanged", body, out, err)
		}
	}
}

func TestRewrittenPaths(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		// As Chromium 156 reads them (checked with curl): the first
		// segment after /json is the command, the rest is ignored.
		{"/json", true},
		{"/json/", false}, // "Unknown command: "
		{"/json/list", true},
		{"/json/list/", true},
		{"/json/list/x", true},
		{"/json/version", true},
		{"/json/version/x", true},
		{"/json/new", true},
		{"/json/new/", true},
		{"/json/new/anything", true},
		{"/json/newx", false},  // "Unknown command: newx"
		{"/json/%6Eew", false}, // the raw path: "Unknown command: %6Eew"
		{"/jsonx", false},      // "Malformed query"
		{"/json/protocol", false},
		{"/json/protocol/x", false},
		{"/json/activate/AAAA", false},
		{"/json/close/AAAA", false},
		{"/devtools/page/AAAA", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := rewritten(tt.path); got != tt.want {
			t.Errorf("rewritten(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
