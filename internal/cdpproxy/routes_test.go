package cdpproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRoutesBehindTheDoorsChecks: scry's own endpoints (the handoff API,
// /mcp) get the Host, token and Origin checks, the longest prefix wins,
// and an answer that outlives BodyTimeout once the body is read (an MCP
// wait_for_human) is not cut.
func TestRoutesBehindTheDoorsChecks(t *testing.T) {
	const token = "0123456789abcdef0123"
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if string(b) == "linger" {
				// Outlive BodyTimeout: the request must not be cut.
				select {
				case <-r.Context().Done():
					http.Error(w, "cut", 500)
					return
				case <-time.After(5 * 100 * time.Millisecond):
				}
			}
			io.WriteString(w, name)
		})
	}
	p := New(Config{Backend: "127.0.0.1:1", Token: token, BodyTimeout: 100 * time.Millisecond,
		Routes: map[string]http.Handler{"/scry/": named("scry"), "/scry/v1/handoffs/": named("handoffs"), "/mcp": named("mcp")}})
	srv := httptest.NewServer(p)
	defer srv.Close()
	do := func(method, path, origin, body string, withToken bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if withToken {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, origin, body string
		token                      bool
		code                       int
		want                       string
	}{
		{"GET", "/scry/v1/handoffs/h_1", "", "", false, 401, ""},
		{"POST", "/mcp", "", "{}", false, 401, ""},
		{"GET", "/scry/v1/handoffs/h_1", "", "", true, 200, "handoffs"},
		{"GET", "/scry/v1/sessions", "", "", true, 200, "scry"},
		{"POST", "/mcp", "", "{}", true, 200, "mcp"},
		{"POST", "/mcp", "https://evil.example", "{}", true, 403, ""},
		{"POST", "/mcp", "", "linger", true, 200, "mcp"},
	} {
		code, body := do(tc.method, tc.path, tc.origin, tc.body, tc.token)
		if code != tc.code || (tc.want != "" && body != tc.want) {
			t.Errorf("%s %s (token %v, origin %q): %d %q, want %d %q", tc.method, tc.path, tc.token, tc.origin, code, body, tc.code, tc.want)
		}
	}
}
