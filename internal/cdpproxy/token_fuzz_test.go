package cdpproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequestToken: extracting the token from any header and query never
// panics, a token presented in the Bearer header is found exactly, and a
// token only matches itself.
func FuzzRequestToken(f *testing.F) {
	f.Add("Bearer 0123456789abcdef", "", "0123456789abcdef")
	f.Add("", "token=0123456789abcdef", "0123456789abcdef")
	f.Add("bearer   spaced  ", "token=other", "spaced")
	f.Add("Basic dXNlcjpwYXNz", "token=%zz", "x")
	f.Fuzz(func(t *testing.T, auth, rawQuery, want string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: rawQuery}}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		got := RequestToken(r)
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && strings.TrimSpace(tok) != "" && got != strings.TrimSpace(tok) {
			t.Fatalf("Bearer %q extracted as %q", tok, got)
		}
		if want != "" && TokenMatches(want, got) != (want == got) {
			t.Fatalf("TokenMatches(%q, %q) disagrees with ==", want, got)
		}
		if TokenMatches(want, "") {
			t.Fatal("an empty token matched")
		}
	})
}

// FuzzCheckOrigin: no Origin is always fine, "*" allows everything, and
// without a list every non-empty Origin is refused.
func FuzzCheckOrigin(f *testing.F) {
	f.Add("https://app.example", "https://app.example/")
	f.Add("null", "")
	f.Add("HTTPS://APP.EXAMPLE", "https://app.example")
	f.Fuzz(func(t *testing.T, origin, allowed string) {
		if err := (&Policy{}).CheckOrigin(""); err != nil {
			t.Fatal("no Origin refused")
		}
		if err := (&Policy{AllowedOrigins: []string{"*"}}).CheckOrigin(origin); err != nil {
			t.Fatalf("* refused %q", origin)
		}
		if origin != "" {
			if err := (&Policy{}).CheckOrigin(origin); err == nil {
				t.Fatalf("%q allowed by an empty list", origin)
			}
		}
		p := &Policy{AllowedOrigins: []string{allowed}}
		if err := p.CheckOrigin(origin); err == nil && origin != "" && allowed != "*" &&
			!strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			t.Fatalf("%q allowed by %q", origin, allowed)
		}
	})
}
