package app

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dataplanelabs/scry/internal/config"
)

// TestHelpListsEveryVariable: `scry --help` is the documentation a user
// has in a container, so every variable is on it with its default.
func TestHelpListsEveryVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("--help: %v", err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			rows[f[0]] = f
		}
	}
	for _, v := range config.Vars {
		def := v.Default
		if def == "" {
			def = `""`
		}
		row, ok := rows[v.Name]
		if !ok {
			t.Errorf("--help does not list %s", v.Name)
			continue
		}
		if row[1] != def {
			t.Errorf("--help lists %s with default %q, want %q", v.Name, row[1], def)
		}
	}
}

// TestHelpDefaultsAreFromEnvs checks the defaults --help prints against
// what FromEnv does: setting any variable to its documented default
// changes nothing, and FromEnv reads exactly the documented variables.
func TestHelpDefaultsAreFromEnvs(t *testing.T) {
	var read []string
	base, err := config.FromEnv(func(k string) string {
		read = append(read, k)
		return ""
	})
	if err != nil {
		t.Fatalf("FromEnv on an empty environment: %v", err)
	}
	var names []string
	defaults := map[string]string{}
	for _, v := range config.Vars {
		names = append(names, v.Name)
		defaults[v.Name] = v.Default
	}
	slices.Sort(read)
	read = slices.Compact(read)
	slices.Sort(names)
	if !slices.Equal(read, names) {
		t.Errorf("FromEnv reads %q,\nbut --help documents %q", read, names)
	}
	for _, v := range config.Vars {
		val := v.Default
		if other, ok := defaults[val]; ok {
			val = other // CHILD_GID's default is CHILD_UID's value
		}
		c, err := config.FromEnv(func(k string) string {
			if k == v.Name {
				return val
			}
			return ""
		})
		if err != nil {
			t.Errorf("%s=%q (its documented default): %v", v.Name, val, err)
			continue
		}
		if !reflect.DeepEqual(c, base) {
			t.Errorf("%s=%q (its documented default) changes the configuration:\n got %+v\nwant %+v", v.Name, val, *c, *base)
		}
	}
}

func TestSetgroupsAllowed(t *testing.T) {
	tests := []struct {
		name string
		file string
		err  error
		want bool
	}{
		{"initial namespace", "allow\n", nil, true},
		{"user namespace that denies it", "deny\n", nil, false},
		{"kernel without the file", "", fs.ErrNotExist, true},
	}
	for _, tt := range tests {
		read := func(name string) ([]byte, error) {
			if name != "/proc/self/setgroups" {
				return nil, errors.New("unexpected file " + name)
			}
			return []byte(tt.file), tt.err
		}
		if got := setgroupsAllowed(read); got != tt.want {
			t.Errorf("%s: setgroupsAllowed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestChildCredentialDropsGroups: as root, the children get an empty
// supplementary group list, which the kernel applies (NoSetGroups off)
// wherever setgroups is allowed.
func TestChildCredentialDropsGroups(t *testing.T) {
	cfg, err := config.FromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cred, err := childCredential(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if cred != nil {
			t.Errorf("not root: credential %+v, want none", cred)
		}
		return
	}
	if cred.Uid != 1000 || cred.Gid != 1000 || cred.Groups == nil || len(cred.Groups) != 0 {
		t.Errorf("credential %+v, want uid/gid 1000 and an empty group list", cred)
	}
	if cred.NoSetGroups == setgroupsAllowed(os.ReadFile) {
		t.Errorf("NoSetGroups = %v where setgroups is allowed = %v", cred.NoSetGroups, !cred.NoSetGroups)
	}
}

// Where setgroups(2) is denied, the children keep scry's supplementary
// groups: scry says which.
func TestWarnKeptGroups(t *testing.T) {
	groups := func(gids ...int) func() ([]int, error) { return func() ([]int, error) { return gids, nil } }
	tests := []struct {
		name        string
		euid        int
		setgroupsOK bool
		getgroups   func() ([]int, error)
		want        []string // in the log; none: no warning
	}{
		{"root, setgroups denied", 0, false, groups(0, 4, 27), []string{"level=WARN", "supplementary groups", `groups="0(root) 4`, " 27"}},
		{"root, setgroups allowed: the groups are dropped", 0, true, groups(0, 4), nil},
		{"not root: the children run as scry", 1000, false, groups(1000, 27), nil},
		{"root without supplementary groups", 0, false, groups(), nil},
		{"groups unreadable", 0, false, func() ([]int, error) { return nil, errors.New("EPERM") }, []string{"level=WARN", "cannot be listed", "EPERM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			warnKeptGroups(slog.New(slog.NewTextHandler(&buf, nil)), tt.euid, tt.setgroupsOK, tt.getgroups)
			if tt.want == nil && buf.Len() > 0 {
				t.Errorf("unexpected log: %s", buf.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log %q does not contain %q", buf.String(), w)
				}
			}
		})
	}
}
