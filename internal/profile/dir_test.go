package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const childUID, childGID = 1000, 1000

// rootProfile is a profile as scry running as root sees it after
// Prepare: the directory and everything in it belong to the child uid.
// Beside it, a directory and a file only root may read.
func rootProfile(t *testing.T) (dir, secretDir, secretFile string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attack is the child uid's links against scry running as root")
	}
	base := t.TempDir()
	// The child must be able to reach the profile.
	for _, p := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(base, "profile")
	secretDir = filepath.Join(base, "root-only")
	for _, d := range []string{dir, filepath.Join(dir, "Default"), secretDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	secretFile = filepath.Join(secretDir, "secret.json")
	if err := os.WriteFile(secretFile, []byte(`{"profile":{"exit_type":"Crashed"},"secret":"root only"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "Default")} {
		if err := os.Chown(p, childUID, childGID); err != nil {
			t.Fatal(err)
		}
	}
	return dir, secretDir, secretFile
}

// plant makes a link at name in the profile as the child would, owned by
// the child.
func plant(t *testing.T, dir, name, target string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, childUID, childGID); err != nil {
		t.Fatal(err)
	}
}

func unsafeErr(t *testing.T, what string, err error) {
	t.Helper()
	var u *UnsafeError
	if !errors.As(err, &u) {
		t.Errorf("%s: %v, want a refusal (UnsafeError)", what, err)
		return
	}
	if !strings.Contains(err.Error(), "rm ") && !strings.Contains(err.Error(), "chown ") {
		t.Errorf("%s: %q does not say what to do", what, err)
	}
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 1 || (len(ents) == 1 && ents[0].Name() != "secret.json") {
		t.Errorf("scry wrote into the root-only directory %s: %v", dir, ents)
	}
}

// The child moves .scry away and puts a link to a root-only directory in
// its place: nothing may be written there.
func TestDirRefusesLinkedDirectory(t *testing.T) {
	dir, secretDir, _ := rootProfile(t)
	plant(t, dir, StateDir, secretDir)
	d, err := OpenDir(dir, childUID, childGID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	unsafeErr(t, "MkdirAll", d.MkdirAll(StateDir, 0o700))
	unsafeErr(t, "WriteFileAtomic", d.WriteFileAtomic(StateDir+"/cookies.json", []byte("{}"), 0o600, -1, -1))
	_, err = d.OpenFile(StateDir+"/lock", os.O_RDWR|os.O_CREATE, 0o600)
	unsafeErr(t, "OpenFile", err)
	emptyDir(t, secretDir)

	// A link that stays inside the profile is refused too.
	if err := os.Remove(filepath.Join(dir, StateDir)); err != nil {
		t.Fatal(err)
	}
	plant(t, dir, StateDir, "Default")
	unsafeErr(t, "WriteFileAtomic through a link inside the profile",
		d.WriteFileAtomic(StateDir+"/cookies.json", []byte("{}"), 0o600, -1, -1))
	if _, err := os.Lstat(filepath.Join(dir, "Default", "cookies.json")); err == nil {
		t.Error("a file was written through the link inside the profile")
	}
}

// A link to a root-only file is never read, and never written through.
func TestDirRefusesLinkedFile(t *testing.T) {
	dir, _, secretFile := rootProfile(t)
	plant(t, dir, "Default/Preferences", secretFile)
	d, err := OpenDir(dir, childUID, childGID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.ReadFile("Default/Preferences", 1<<20)
	unsafeErr(t, "ReadFile", err)
	_, err = d.OpenFile("Default/Preferences", os.O_RDWR|os.O_CREATE, 0o600)
	unsafeErr(t, "OpenFile with O_CREATE", err)
	if b, _ := os.ReadFile(secretFile); !strings.Contains(string(b), "root only") {
		t.Errorf("the root-only file changed: %q", b)
	}
}

// MarkCleanExit neither reads a root-only file linked as Preferences nor
// rewrites it.
func TestMarkCleanExitRefusesLinkedPreferences(t *testing.T) {
	dir, _, secretFile := rootProfile(t)
	plant(t, dir, "Default/Preferences", secretFile)
	if err := MarkCleanExit(discard(), dir); err == nil {
		t.Error("MarkCleanExit read a linked Preferences")
	}
	if b, _ := os.ReadFile(secretFile); !strings.Contains(string(b), `"Crashed"`) {
		t.Errorf("MarkCleanExit rewrote the root-only file: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "Default", "Preferences")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link was replaced: %v %v", fi, err)
	}
}

// A hard link (to a file the child may read and write, since
// protected_hardlinks lets it link no other) and a file of another uid
// are refused: scry opens only what the profile's owner could.
func TestDirRefusesHardLinksAndStrangers(t *testing.T) {
	dir, _, _ := rootProfile(t)
	other := filepath.Join(filepath.Dir(dir), "elsewhere")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, childUID, childGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(other, filepath.Join(dir, "Default", "Cookies")); err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(dir, "Default", "Preferences")
	if err := os.WriteFile(stranger, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(stranger, 2345, 2345); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir, childUID, childGID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.ReadFile("Default/Cookies", 1<<20)
	unsafeErr(t, "hard link", err)
	_, err = d.ReadFile("Default/Preferences", 1<<20)
	unsafeErr(t, "another uid's file", err)
}

// Prepare never gives the child a file that has another link, which may
// lie outside the profile (here root's, linked in as a host without
// protected_hardlinks would let the child do).
func TestPrepareRefusesHardLinkedRootFile(t *testing.T) {
	dir, _, secretFile := rootProfile(t)
	if err := os.Link(secretFile, filepath.Join(dir, "Default", "Cookies")); err != nil {
		t.Fatal(err)
	}
	err := Prepare(discard(), dir, childUID, childGID)
	unsafeErr(t, "Prepare", err)
	var st syscall.Stat_t
	if err := syscall.Stat(secretFile, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("the root-only file outside the profile now belongs to uid %d", st.Uid)
	}
}

// What scry creates in the profile belongs to the child uid, and a plain
// profile works.
func TestDirCreatesForTheChild(t *testing.T) {
	dir, _, _ := rootProfile(t)
	d, err := OpenDir(dir, childUID, childGID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.MkdirAll(StateDir+"/sub", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFileAtomic(StateDir+"/cookies.json", []byte(`{"a":1}`), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenFile(StateDir+"/lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, name := range []string{StateDir, StateDir + "/sub", StateDir + "/cookies.json", StateDir + "/lock"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != childUID || st.Gid != childGID {
			t.Errorf("%s belongs to %d:%d, want the child's %d:%d", name, st.Uid, st.Gid, childUID, childGID)
		}
	}
	if b, err := d.ReadFile(StateDir+"/cookies.json", 1<<20); err != nil || string(b) != `{"a":1}` {
		t.Errorf("read back %q, %v", b, err)
	}
	if _, err := d.ReadFile(StateDir+"/cookies.json", 3); err == nil {
		t.Error("ReadFile read past its limit")
	}
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		if _, err := d.ReadFile(bad, 10); err == nil {
			t.Errorf("ReadFile(%q) succeeded", bad)
		}
	}
}

// The lock: a .scry linked to a root-only directory is refused with a
// message that says what to remove.
func TestAcquireRefusesLinkedStateDir(t *testing.T) {
	dir, secretDir, _ := rootProfile(t)
	plant(t, dir, StateDir, secretDir)
	l, err := Acquire(dir)
	if err == nil {
		l.Release()
		t.Fatal("Acquire followed a linked .scry")
	}
	unsafeErr(t, "Acquire", err)
	emptyDir(t, secretDir)
}

// Prepare's stale Singleton* clean-up and chown never act on a link's
// target.
func TestPrepareLeavesLinkTargetsAlone(t *testing.T) {
	dir, secretDir, secretFile := rootProfile(t)
	plant(t, dir, "SingletonCookie", secretFile)
	plant(t, dir, "Default/Linked", secretDir)
	if err := Prepare(discard(), dir, childUID, childGID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "SingletonCookie")); !os.IsNotExist(err) {
		t.Errorf("stale SingletonCookie link not removed: %v", err)
	}
	for _, p := range []string{secretDir, secretFile} {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 {
			t.Errorf("%s, outside the profile, now belongs to uid %d", p, st.Uid)
		}
	}
}
