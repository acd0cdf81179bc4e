package cdpproxy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// FuzzRewrite checks that rewriting a discovery answer never panics, that
// what it returns is valid JSON whose socket URLs point at the requested
// host with the requested scheme (and token), and that it leaves every other
// field meaning what it meant.
func FuzzRewrite(f *testing.F) {
	f.Add([]byte(chromeVersion), "scry-0.scry:9222", false, "")
	f.Add([]byte(chromeList), "scry-0.scry:9222", true, "tok")
	f.Add([]byte(`[null]`), "[::1]:9222", false, "")
	f.Add([]byte(`{"devtoolsFrontendUrl":"/i.html?ws=h"}`), "h:1", false, "t")
	f.Fuzz(func(t *testing.T, body []byte, host string, wss bool, token string) {
		// The bridge passes r.Host, which net/http has already checked;
		// only hosts a URL can carry are meaningful.
		if u, err := url.Parse("ws://" + host + "/"); host == "" || err != nil || u.Host != host {
			return
		}
		scheme := "ws"
		if wss {
			scheme = "wss"
		}
		var q url.Values
		if token != "" {
			q = url.Values{"token": {token}}
		}
		out, err := Rewrite(body, host, scheme, q)
		if err != nil {
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if !bytes.Equal(out, body) {
				t.Fatalf("blank body %q became %q", body, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Rewrite(%q) returned invalid JSON %q", body, out)
		}
		in, got := targets(t, body), targets(t, out)
		if len(in) != len(got) {
			t.Fatalf("Rewrite(%q) = %q: %d targets became %d", body, out, len(in), len(got))
		}
		for i := range got {
			if raw, ok := got[i]["webSocketDebuggerUrl"]; ok {
				s, isString := raw.(string)
				if !isString {
					t.Fatalf("Rewrite(%q) = %q: webSocketDebuggerUrl is %T", body, out, raw)
				}
				u, err := url.Parse(s)
				if err != nil {
					t.Fatalf("Rewrite(%q) = %q: webSocketDebuggerUrl: %v", body, out, err)
				}
				if u.Scheme != scheme || u.Host != host {
					t.Fatalf("Rewrite(%q, %q, %q) = %q: webSocketDebuggerUrl %q points at %s://%s",
						body, host, scheme, out, s, u.Scheme, u.Host)
				}
				if token != "" && u.Query().Get("token") != token {
					t.Fatalf("Rewrite(%q) = %q: webSocketDebuggerUrl %q lost token %q", body, out, s, token)
				}
			}
			if raw, ok := got[i]["devtoolsFrontendUrl"]; ok && raw != in[i]["devtoolsFrontendUrl"] {
				checkFuzzedFrontend(t, raw, host, scheme)
			}
			if in[i] == nil {
				continue
			}
			for _, m := range []map[string]any{in[i], got[i]} {
				delete(m, "webSocketDebuggerUrl")
				delete(m, "devtoolsFrontendUrl")
			}
			if !reflect.DeepEqual(in[i], got[i]) {
				t.Fatalf("Rewrite(%q) = %q: other fields changed", body, out)
			}
		}
	})
}

// checkFuzzedFrontend asserts that a devtoolsFrontendUrl Rewrite changed
// carries exactly one socket parameter, named for scheme, on host.
func checkFuzzedFrontend(t *testing.T, raw any, host, scheme string) {
	t.Helper()
	s, ok := raw.(string)
	if !ok {
		t.Fatalf("devtoolsFrontendUrl became %T", raw)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("rewritten devtoolsFrontendUrl %q: %v", s, err)
	}
	q := u.Query()
	other := map[string]string{"ws": "wss", "wss": "ws"}[scheme]
	if v := q[scheme]; len(v) != 1 || !strings.HasPrefix(v[0], host) || q.Has(other) {
		t.Fatalf("rewritten devtoolsFrontendUrl %q: want one %s= parameter on %s and no %s=", s, scheme, host, other)
	}
}

// targets decodes an answer Rewrite accepted into its objects (nil for a
// JSON null).
func targets(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	switch v := v.(type) {
	case nil:
		return []map[string]any{nil}
	case map[string]any:
		return []map[string]any{v}
	case []any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			m, ok := e.(map[string]any)
			if e != nil && !ok {
				t.Fatalf("Rewrite accepted %q whose element %d is %T", b, i, e)
			}
			out[i] = m
		}
		return out
	}
	t.Fatalf("Rewrite accepted %q, which is %T", b, v)
	return nil
}
