package browser

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readPolicy(t *testing.T, dir string) (map[string]json.RawMessage, map[string][]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Default", "Preferences"))
	if err != nil {
		t.Fatal(err)
	}
	var prefs map[string]json.RawMessage
	if err := json.Unmarshal(b, &prefs); err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(prefs["policy"], &raw); err != nil {
		t.Fatalf("policy section %s: %v", prefs["policy"], err)
	}
	policy := map[string][]string{}
	for _, k := range []string{"url_blocklist", "url_allowlist"} {
		var l []string
		if err := json.Unmarshal(raw[k], &l); err != nil {
			t.Fatalf("policy.%s = %s: %v", k, raw[k], err)
		}
		policy[k] = l
	}
	return prefs, policy
}

func TestURLBlocklist(t *testing.T) {
	if l := URLBlocklist(false); !slices.Contains(l, "file://*") || !slices.Contains(l, "chrome://policy") {
		t.Errorf("URLBlocklist(false) = %q, want file: and chrome://policy blocked", l)
	}
	if l := URLBlocklist(true); slices.Contains(l, "file://*") || !slices.Contains(l, "devtools://*") {
		t.Errorf("URLBlocklist(true) = %q, want file: allowed and devtools: still blocked", l)
	}
	if slices.ContainsFunc(URLBlocklist(false), func(s string) bool { return strings.HasPrefix(s, "chrome://settings") }) {
		t.Error("chrome://settings is blocked; the human needs it")
	}
}

func TestSetURLBlocklistFreshProfile(t *testing.T) {
	dir := t.TempDir()
	st, err := SetURLBlocklist(dir, URLBlocklist(false), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if st != StartupNewTab {
		t.Errorf("a fresh profile starts with %d, want StartupNewTab", st)
	}
	_, policy := readPolicy(t, dir)
	if !slices.Equal(policy["url_blocklist"], URLBlocklist(false)) || len(policy["url_allowlist"]) != 0 {
		t.Errorf("policy = %v", policy)
	}
	fi, err := os.Stat(filepath.Join(dir, "Default", "Preferences"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("Preferences: %v, mode %v; want 0600", err, fi.Mode())
	}
}

// A planted allowlist (it would override the blocklist) is emptied, a
// previous blocklist replaced, and every other preference kept as it was.
func TestSetURLBlocklistKeepsOtherPreferences(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	orig := `{"profile":{"exit_type":"Normal","big":12345678901234567890},"policy":{"url_allowlist":["file://*"],"url_blocklist":["x"],"other":1},"intl":{"accept_languages":"ja"}}`
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := SetURLBlocklist(dir, URLBlocklist(true), -1, -1); err != nil {
		t.Fatal(err)
	}
	prefs, _ := readPolicy(t, dir)
	var policy map[string]json.RawMessage
	_ = json.Unmarshal(prefs["policy"], &policy)
	if string(policy["url_allowlist"]) != "[]" || string(policy["other"]) != "1" {
		t.Errorf("policy section = %s", prefs["policy"])
	}
	if string(prefs["profile"]) != `{"exit_type":"Normal","big":12345678901234567890}` || string(prefs["intl"]) != `{"accept_languages":"ja"}` {
		t.Errorf("other preferences changed: %v", prefs)
	}
	fi, _ := os.Stat(filepath.Join(dir, "Default", "Preferences"))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "Default", "*tmp*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// The profile's "On startup" setting is read from the preferences it
// rewrites: the person may have chosen it through chrome://settings.
func TestSetURLBlocklistReadsTheStartupSetting(t *testing.T) {
	for _, tc := range []struct {
		prefs string
		want  Startup
	}{
		{`{}`, StartupNewTab},
		{`{"session":{"restore_on_startup":5}}`, StartupNewTab},
		{`{"session":{"restore_on_startup":1,"startup_urls":[]}}`, StartupRestore},
		{`{"session":{"restore_on_startup":4,"startup_urls":["https://a.example/"]}}`, StartupURLs},
		{`{"session":{"restore_on_startup":6,"startup_urls":["https://a.example/"]}}`, StartupRestore},
		{`{"session":"odd"}`, StartupNewTab},
	} {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(tc.prefs), 0o600); err != nil {
			t.Fatal(err)
		}
		if st, err := SetURLBlocklist(dir, URLBlocklist(false), -1, -1); err != nil || st != tc.want {
			t.Errorf("%s: SetURLBlocklist = %d, %v; want %d", tc.prefs, st, err, tc.want)
		}
	}
}

// A link planted as Default/Preferences is refused, and what it points
// at is never written.
func TestSetURLBlocklistRefusesALink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "Default", "Preferences")); err != nil {
		t.Fatal(err)
	}
	_, err := SetURLBlocklist(dir, URLBlocklist(false), -1, -1)
	if err == nil || !strings.Contains(err.Error(), "link") {
		t.Errorf("SetURLBlocklist = %v, want a refusal of the link", err)
	}
	if b, _ := os.ReadFile(outside); string(b) != `{}` {
		t.Errorf("the link's target was written: %s", b)
	}
}

func TestSetURLBlocklistBadJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(`{"trunc`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := SetURLBlocklist(dir, URLBlocklist(false), -1, -1)
	if err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Errorf("SetURLBlocklist = %v, want an error that says what to do", err)
	}
}
