package tokens

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataplanelabs/scry/internal/cdprole"
)

const (
	tokA = "aaaaaaaaaaaaaaaaaaaaaaaa"
	tokB = "bbbbbbbbbbbbbbbbbbbbbbbb"
	tokC = "cccccccccccccccccccccccc"
)

func TestParse(t *testing.T) {
	s, err := Parse(strings.NewReader(`
# NAME ROLE TOKEN
ci      agent    ` + tokA + `
  grafana observer ` + tokB + `   

ops admin ` + tokC + "  # the operators\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tok  string
		name string
		role cdprole.Role
	}{{tokA, "ci", cdprole.Agent}, {tokB, "grafana", cdprole.Observer}, {tokC, "ops", cdprole.Admin}} {
		got, ok := s.Match(tt.tok)
		if !ok || got.Name != tt.name || got.Role != tt.role || got.Secret() != tt.tok {
			t.Errorf("Match(%s) = %+v, %v; want %s %s", tt.tok[:3], got, ok, tt.name, tt.role)
		}
	}
	for _, bad := range []string{"", tokA + "x", tokA[1:], strings.ToUpper(tokA)} {
		if got, ok := s.Match(bad); ok {
			t.Errorf("Match(%q) matched %s", bad, got.Name)
		}
	}
	if !s.Scoped() || s.Len() != 3 {
		t.Errorf("Scoped %v Len %d", s.Scoped(), s.Len())
	}
}

// Every error names the line and never repeats a field of it: a token in
// the wrong column must not reach the log.
func TestParseErrorsNameTheLineNotTheToken(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		name, file, want string
	}{
		{"two fields", "ci " + secret, "line 1: 2 fields, want 3"},
		{"four fields", "ci agent " + secret + " extra", "line 1: 4 fields"},
		{"columns swapped", secret + " agent ci", "line 1: the token (third field) is too short"},
		{"role and token swapped", "ci " + secret + " agent", "line 1: the role (second field)"},
		{"bad role", "\n\nci root " + secret, "line 3: the role"},
		{"bad name", "c/i agent " + secret, "line 1: the name (first field)"},
		{"short", "ci agent 0123", "too short"},
		{"control char", "ci agent " + secret + "\x01", "not only letters, digits"},
		{"plus", "ci agent " + secret + "+", "must pass unchanged in a URL"},
		{"name twice", "ci agent " + secret + "\nci observer " + secret + "x", "line 2: the name is used by line 1 too"},
		{"token twice", "ci agent " + secret + "\nbot observer " + secret, "line 2: the same token is used by line 1 too"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			for _, f := range []string{secret, secret[:16], "0123", "c/i"} {
				if strings.Contains(err.Error(), f) {
					t.Errorf("the error repeats %q: %v", f, err)
				}
			}
		})
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	_, err := Parse(strings.NewReader("a agent x\nb agent " + tokA + "\nc nobody " + tokB))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want lines 1 and 3", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing yet\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "no tokens") {
		t.Errorf("Load(empty) = %v, want no tokens", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("Load(missing) succeeded")
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("ci agent "+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(good)
	if err != nil || s.Len() != 1 {
		t.Fatalf("Load(good) = %v, %v", s, err)
	}
}

func TestAddAndRedact(t *testing.T) {
	var s Set
	if err := s.Add(LegacyName, cdprole.Admin, tokA); err != nil {
		t.Fatal(err)
	}
	if s.Scoped() {
		t.Error("one admin token is not scoped")
	}
	if err := s.Add("other", cdprole.Agent, tokA); err == nil || strings.Contains(err.Error(), tokA) {
		t.Errorf("Add of a used token: %v", err)
	}
	if got := s.Redact("/json/" + tokA + "/x"); got != "/json/REDACTED/x" {
		t.Errorf("Redact = %q", got)
	}
	var none *Set
	if _, ok := none.Match(tokA); ok || none.Len() != 0 || none.Scoped() {
		t.Error("a nil Set holds something")
	}
}
