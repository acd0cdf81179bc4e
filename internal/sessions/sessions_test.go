package sessions

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSiteOf(t *testing.T) {
	for in, want := range map[string]string{
		".github.com":       "github.com",
		"api.github.com":    "github.com",
		"a.b.example.co.uk": "example.co.uk",
		"127.0.0.1":         "127.0.0.1",
		"[::1]":             "::1",
		"localhost":         "localhost",
		"foo.github.io":     "foo.github.io",
		"WWW.Example.COM.":  "example.com",
	} {
		if got := SiteOf(in); got != want {
			t.Errorf("SiteOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	sites := Summarize([]Cookie{
		{Domain: ".github.com", Expires: in(48 * time.Hour)},
		{Domain: "github.com", Expires: in(time.Hour)},
		{Domain: "api.github.com", Expires: -1, Session: true},
		{Domain: "gone.example.com", Expires: in(-time.Hour)},
		{Domain: "10.0.0.1", Session: true, Expires: -1},
	}, now)
	if len(sites) != 2 || sites[0].Site != "10.0.0.1" || sites[1].Site != "github.com" {
		t.Fatalf("sites %+v", sites)
	}
	gh := sites[1]
	if gh.Cookies != 3 || gh.SessionCookies != 1 || gh.EarliestExpiry == nil || !gh.EarliestExpiry.Equal(now.Add(time.Hour)) {
		t.Errorf("github.com %+v", gh)
	}
	if sites[0].EarliestExpiry != nil {
		t.Errorf("a site with session cookies only has an expiry")
	}
}

func TestReporterFromSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cookies.json")
	r := &Reporter{Source: FileSource(func() ([]byte, error) { return os.ReadFile(path) }), Watch: []string{"github.com", "example.org"}}
	st, err := r.Status(context.Background())
	if err != nil || len(st.Sites) != 0 || st.SnapshotAt != nil {
		t.Fatalf("no snapshot yet: %+v %v", st, err)
	}
	exp := time.Now().Add(2 * time.Hour).Unix()
	body := fmt.Sprintf(`{"version":1,"saved":"2026-01-01T00:00:00Z","cookies":[
	  {"name":"a","value":"SECRET","domain":".github.com","expires":%d,"session":false},
	  {"name":"b","value":"x","domain":"example.org","expires":-1,"session":true}]}`, exp)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = r.Status(context.Background())
	if err != nil || len(st.Sites) != 2 || st.SnapshotAt == nil {
		t.Fatalf("%+v %v", st, err)
	}
	// Only github.com has a persistent cookie: one series.
	if n := testutil.CollectAndCount(r, "scry_site_cookie_expiry_seconds"); n != 1 {
		t.Errorf("%d series, want 1", n)
	}
	if v := testutil.ToFloat64(r); v < 7000 || v > 7200 {
		t.Errorf("expiry in %v s, want about 2 h", v)
	}
}
