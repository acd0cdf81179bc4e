package cookies

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// rootStore is a cookie store for a profile that belongs to the child
// uid, as scry running as root keeps it, and a directory beside it only
// root may read.
func rootStore(t *testing.T) (s *Store, dir, secretDir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attack is the child uid's links against scry running as root")
	}
	base := t.TempDir()
	dir, secretDir = filepath.Join(base, "profile"), filepath.Join(base, "root-only")
	for _, d := range []string{dir, secretDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return New(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), 1000, 1000), dir, secretDir
}

func plantLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 1000, 1000); err != nil {
		t.Fatal(err)
	}
}

// The child moves .scry away and links a root-only directory in its
// place while scry runs: the snapshot, session cookies and all, must not
// land there.
func TestSnapshotRefusesLinkedStateDir(t *testing.T) {
	s, dir, secretDir := rootStore(t)
	j := &jar{cookies: []Cookie{cookie(t, `{"name":"sid","value":"secret","domain":"a.example","path":"/","session":true,"expires":-1}`)}}
	if _, err := s.Snapshot(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".scry"), filepath.Join(dir, ".scry-moved")); err != nil {
		t.Fatal(err)
	}
	plantLink(t, secretDir, filepath.Join(dir, ".scry"))
	j.cookies[0]["value"] = []byte(`"secret2"`)
	_, err := s.Snapshot(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "rm ") {
		t.Errorf("snapshot through a linked .scry: %v, want a refusal that names the link and says to remove it", err)
	}
	if ents, _ := os.ReadDir(secretDir); len(ents) > 0 {
		t.Errorf("the snapshot landed in the root-only directory: %v", ents)
	}
}

// A snapshot-format file only root may read, linked as cookies.json, is
// never restored into the browser.
func TestRestoreRefusesLinkedSnapshot(t *testing.T) {
	s, dir, secretDir := rootStore(t)
	secret := filepath.Join(secretDir, "cookies.json")
	writeSnapshot(t, secret, s.checked, nil, []Cookie{
		cookie(t, `{"name":"planted","value":"x","domain":"a.example","path":"/","session":true,"expires":-1}`)})
	state := filepath.Join(dir, ".scry")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	plantLink(t, secret, filepath.Join(state, "cookies.json"))
	j := &jar{}
	if _, err := s.Restore(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if len(j.cookies) > 0 {
		t.Errorf("the root-only file's cookies were restored: %v", j.cookies)
	}
	if fi, err := os.Lstat(filepath.Join(state, "cookies.json")); err == nil {
		t.Errorf("the link is still where the next start would read it: %v", fi.Mode())
	}
	if b, err := os.ReadFile(secret); err != nil || !strings.Contains(string(b), "planted") {
		t.Errorf("the root-only file changed: %v", err)
	}
}

// Snapshots scry writes as root belong to the child uid.
func TestSnapshotBelongsToTheChild(t *testing.T) {
	s, dir, _ := rootStore(t)
	j := &jar{cookies: []Cookie{cookie(t, `{"name":"sid","value":"1","domain":"a.example","path":"/","session":true,"expires":-1}`)}}
	if _, err := s.Snapshot(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, ".scry"), s.Path()} {
		if uid := statUID(t, p); uid != 1000 {
			t.Errorf("%s belongs to uid %d, want 1000", p, uid)
		}
	}
}

func statUID(t *testing.T, p string) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}
