package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestNoVNCRefusals: every human-door reason is exported from the start
// (at 0, so a rate() sees the first one) and counts apart from the CDP
// door's.
func TestNoVNCRefusals(t *testing.T) {
	m := New("test", Sources{})
	out := scrape(t, m)
	for _, r := range NoVNCRefusals {
		if line := `scry_refused_requests_total{door="novnc",reason="` + r + `"} 0`; !strings.Contains(out, line) {
			t.Errorf("before any refusal, /metrics lacks %s", line)
		}
	}
	for _, r := range CDPRefusals {
		if line := `scry_refused_requests_total{door="cdp",reason="` + r + `"} 0`; !strings.Contains(out, line) {
			t.Errorf("before any refusal, /metrics lacks %s", line)
		}
	}
	m.NoVNCRefused("password")
	m.NoVNCRefused("password")
	m.NoVNCRefused("host")
	m.Refused("cdp", "host")
	out = scrape(t, m)
	for _, line := range []string{
		`scry_refused_requests_total{door="novnc",reason="password"} 2`,
		`scry_refused_requests_total{door="novnc",reason="host"} 1`,
		`scry_refused_requests_total{door="cdp",reason="host"} 1`,
		`scry_refused_requests_total{door="novnc",reason="handshake"} 0`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
