package cdpproxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"slices"
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

// fuzzPaths are the discovery paths whose queries scry reads differently:
// /json/new (and /json/new/ANYTHING, which Chrome reads alike) takes the
// URL to open in its query, so only the trailing segments can be scry's.
var fuzzPaths = []string{"/json/version", "/json/new", "/json/new/x", "/devtools/page/X"}

// FuzzForwardedQuery: when a request is let in on its query token, the
// query Chrome is sent holds no segment that reads as the token (on
// /json/new none at its end: a "token=" segment before the URL's end
// belongs to the URL), and every other segment is there byte for byte,
// in order.
func FuzzForwardedQuery(f *testing.F) {
	const tok = "0123456789abcdef"
	f.Add(uint8(0), "token="+tok, tok)
	f.Add(uint8(0), "x=1&token="+tok+"&y=%zz&token="+tok, tok)
	f.Add(uint8(0), "token=other&token="+tok, tok)
	f.Add(uint8(1), "https%3A%2F%2Fexample.com%2F%3Fa%3D1%26token%3Dtheirs&token="+tok, tok)
	f.Add(uint8(1), "https://example.com/?token="+tok+"&a=b&token="+tok+"&token=01234%356789abcdef", tok)
	f.Add(uint8(2), "token="+tok+"&https://example.com/&token="+tok, tok)
	f.Add(uint8(2), "&&token="+tok, tok)
	f.Add(uint8(3), "token=a%2Bb+c&token=a%2Bb+c", "a+b c")
	f.Fuzz(func(t *testing.T, which uint8, rawQuery, token string) {
		if token == "" {
			return
		}
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		// As given, and with the token appended the way a client adds it,
		// so that most inputs are let in.
		checkForwardedQuery(t, path, rawQuery, token)
		checkForwardedQuery(t, path, rawQuery+"&token="+url.QueryEscape(token), token)
	})
}

// checkForwardedQuery checks FuzzForwardedQuery's invariant for one request.
func checkForwardedQuery(t *testing.T, path, rawQuery, token string) {
	t.Helper()
	r := &http.Request{Method: http.MethodPut, Header: http.Header{}, Host: "127.0.0.1:9222",
		URL: &url.URL{Path: path, RawQuery: rawQuery}}
	if !TokenMatches(token, RequestToken(r)) {
		return // refused: nothing is forwarded
	}
	p := New(Config{Backend: "127.0.0.1:9223", Token: token, Logger: slog.New(slog.DiscardHandler)})
	out := p.outgoing(r)
	if out.URL.Path != path {
		t.Fatalf("%s forwarded as %s", path, out.URL.Path)
	}
	fwd := out.URL.RawQuery
	readsAsToken := func(seg string) bool {
		v, ok := strings.CutPrefix(seg, "token=")
		got, err := url.QueryUnescape(v)
		return ok && err == nil && got == token
	}
	orig, kept := strings.Split(rawQuery, "&"), strings.Split(fwd, "&")
	allToken := func(segs []string) bool {
		for _, s := range segs {
			if !readsAsToken(s) {
				return false
			}
		}
		return true
	}
	if strings.HasPrefix(path, "/json/new") {
		// The kept segments are the query's first ones; the rest, all
		// the token, went; the last kept one is not the token.
		switch {
		case fwd == "" && allToken(orig):
		case len(kept) <= len(orig) && slices.Equal(kept, orig[:len(kept)]) && allToken(orig[len(kept):]):
		default:
			t.Fatalf("%s?%s forwarded as ?%s: not the query less a trailing run of its token", path, rawQuery, fwd)
		}
		if readsAsToken(kept[len(kept)-1]) {
			t.Fatalf("%s?%s forwarded as ?%s: the token is still last", path, rawQuery, fwd)
		}
		return
	}
	for _, s := range kept {
		if readsAsToken(s) {
			t.Fatalf("%s?%s forwarded as ?%s: the token is still there", path, rawQuery, fwd)
		}
	}
	// kept is orig with some token segments left out: match greedily.
	j := 0
	for _, s := range orig {
		switch {
		case j < len(kept) && kept[j] == s:
			j++
		case !readsAsToken(s):
			t.Fatalf("%s?%s forwarded as ?%s: segment %q lost or changed", path, rawQuery, fwd, s)
		}
	}
	if j != len(kept) && !(fwd == "" && allToken(orig)) {
		t.Fatalf("%s?%s forwarded as ?%s: segments %q added", path, rawQuery, fwd, kept[j:])
	}
}
