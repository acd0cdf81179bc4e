package cdpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// FuzzCheckHost checks that the Host policy never panics, that every
// refusal is classified and tells the user what to set, that it ignores
// ASCII case, that configuring names only ever adds to what is accepted,
// and that with no names configured only IP literals and localhost pass.
func FuzzCheckHost(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"127.0.0.1:9222", ""},
		{"[::1]:9222", ""},
		{"LOCALHOST.", ""},
		{"scry-0.scry:9222", "scry-0.scry"},
		{"scry:9223", "scry:9222"},
		{"evil.example:9222", "scry-0.scry,scry:9222"},
		{"[fe80::1%25eth0]:9222", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, hostport, allowed string) {
		var names []string
		if allowed != "" {
			names = strings.Split(allowed, ",")
		}
		p := &Policy{AllowedHosts: names}
		err := p.CheckHost(hostport)
		if err != nil {
			if !errors.Is(err, ErrHost) || !strings.Contains(err.Error(), "CDP_ALLOWED_HOSTS") {
				t.Fatalf("CheckHost(%q) = %q: not classified or does not name CDP_ALLOWED_HOSTS", hostport, err)
			}
		}
		if isASCII(hostport) && isASCII(allowed) {
			up := (&Policy{AllowedHosts: strings.Split(strings.ToUpper(allowed), ",")}).CheckHost(strings.ToUpper(hostport))
			if (err == nil) != (up == nil) {
				t.Fatalf("CheckHost(%q) = %v but upper case = %v", hostport, err, up)
			}
		}
		base := (&Policy{}).CheckHost(hostport)
		if base == nil && err != nil {
			t.Fatalf("CheckHost(%q) accepted with no names but refused with %q", hostport, names)
		}
		if base == nil && hostport != "" && !loopbackOrIP(hostport) {
			t.Fatalf("CheckHost(%q) accepted a name with no names configured", hostport)
		}
		// A plain DNS name is accepted when listed, on any port, and a
		// name:port entry accepts that port only.
		if dnsName.MatchString(hostport) {
			for _, tc := range []struct {
				entry, host string
				ok          bool
			}{
				{hostport, hostport, true},
				{hostport, hostport + ":9222", true},
				{hostport + ":9222", hostport + ":9222", true},
				{hostport + ":9222", hostport + ":9223", loopbackOrIP(hostport)},
			} {
				err := (&Policy{AllowedHosts: []string{tc.entry}}).CheckHost(tc.host)
				if (err == nil) != tc.ok {
					t.Fatalf("CheckHost(%q) with [%q] = %v, want accepted=%v", tc.host, tc.entry, err, tc.ok)
				}
			}
		}
	})
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// loopbackOrIP is the fuzz oracle for "what Chrome itself accepts": an IP
// literal or localhost, with or without a port and a root dot.
func loopbackOrIP(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return host == "localhost" || net.ParseIP(host) != nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

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
