package app

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/dataplanelabs/scry/internal/config"
)

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
