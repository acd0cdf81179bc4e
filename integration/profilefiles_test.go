package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childUID is the uid scry runs its children as when it runs as root.
const childUID = 1000

// needRoot skips a test of what the child uid can do to scry running as
// root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("scry runs its children as another uid only when it runs as root")
	}
}

// asChild runs a shell command as the child uid in dir, as a process
// that has taken Chromium over could.
func asChild(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: childUID, Gid: childUID}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as uid %d: %s: %v\n%s", childUID, script, err, out)
	}
}

// rootOnlyDir is a directory only root may enter.
func rootOnlyDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(tempDir(t), "root-only")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// Issue 14, item 2: while scry (root) runs, the child uid moves .scry
// away and links a root-only directory in its place. The next snapshot,
// session cookies and all, must not land there; scry says what to fix,
// and a restart with the link in place refuses to start.
func TestCookieSnapshotRefusesLinkPlantedByChild(t *testing.T) {
	needRoot(t)
	secret := rootOnlyDir(t)
	site := cookieSite(t)
	s := Start(t, Options{Env: fastCookies})
	visit(t, s, site.URL+"/set?n=scry_before&v=1")
	waitSnapshotted(t, s, "snapshot before the attack", func(b string) bool { return strings.Contains(b, `"scry_before"`) })

	asChild(t, s.ProfileDir, "mv .scry .scry-moved && ln -s "+secret+" .scry")
	visit(t, s, site.URL+"/set?n=scry_after&v=2")
	s.WaitLog("is a symbolic link", 30*time.Second)
	if ents, _ := os.ReadDir(secret); len(ents) > 0 {
		t.Errorf("scry wrote into the root-only directory the child linked as .scry: %v", ents)
	}
	s.Stop()
	if ents, _ := os.ReadDir(secret); len(ents) > 0 {
		t.Errorf("the final snapshot went into the root-only directory: %v", ents)
	}

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies, NoWait: true})
	if code := s2.Wait(60 * time.Second); code == 0 {
		t.Fatal("scry started with .scry linked to a root-only directory")
	}
	if !s2.HasLog("is a symbolic link") || !s2.HasLog("remove the link (rm ") {
		t.Errorf("the refusal does not name the link and say how to remove it:\n%s", s2.Log())
	}
}

// Issue 14, item 2: .scry/cookies.json linked by the child to a root-only
// file in snapshot format; the restart must not restore its cookies.
func TestCookieRestoreRefusesLinkedSnapshot(t *testing.T) {
	needRoot(t)
	secret := filepath.Join(rootOnlyDir(t), "cookies.json")
	if err := os.WriteFile(secret, []byte(`{"version":1,"saved":"2026-12-01T00:00:00Z","cookies":[`+
		`{"name":"scry_planted","value":"root-only","domain":"example.test","path":"/","session":true,"expires":-1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{})
	s.Stop()
	asChild(t, filepath.Join(s.ProfileDir, ".scry"), "rm -f cookies.json && ln -s "+secret+" cookies.json")

	s2 := Start(t, Options{ProfileDir: s.ProfileDir})
	if c := browserCookies(t, s2)["scry_planted"]; c != nil {
		t.Errorf("the root-only file's cookie was restored into the browser: %+v", c)
	}
	if !s2.HasLog("is a symbolic link") {
		t.Errorf("scry did not say it refused the linked snapshot:\n%s", s2.Log())
	}
}

// snapshotNames are the names of the cookies in a snapshot file, and how
// many values it records as gone (deleted or replaced while scry watched;
// kept as hashes).
func snapshotNames(t *testing.T, snapshot string) (in map[string]bool, gone int) {
	t.Helper()
	var f struct {
		Cookies []struct{ Name string }
		Gone    []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(snapshot), &f); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	in = map[string]bool{}
	for _, c := range f.Cookies {
		in[c.Name] = true
	}
	return in, len(f.Gone)
}

// smallDisk mounts a tmpfs of size (mount(8) syntax) for the test and
// returns it. Without the privilege to mount it skips, or fails under
// CI=true, where the privilege is expected.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(tempDir(t), "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		msg := "cannot mount a small tmpfs to fill (needs root with CAP_SYS_ADMIN): " + strings.TrimSpace(string(out)) + ": " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// fillDisk writes a file in dir until the filesystem is full and returns
// a function that frees the space.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	p := filepath.Join(dir, "fill")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	// Whatever was left is smaller than a block of the buffer; take it.
	for n := 1 << 19; n >= 512; n /= 2 {
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			_, _ = f.Write(buf[:n])
			f.Close()
		}
	}
	return func() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// inCookieDB reports whether Chromium's cookie database holds a cookie
// named name (names are stored in clear).
func inCookieDB(t *testing.T, dir, name string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Default", "Cookies"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(name))
}

// Issue 14, item 4: a persistent cookie is snapshotted; the disk fills
// before Chromium commits it; SIGTERM (the final snapshot fails, and so
// does Chromium's commit, which still touches the database); space is
// freed; the restart must bring the cookie back, though the touched
// database looks newer than the snapshot.
func TestDurabilityFullDiskKeepsLogin(t *testing.T) {
	needRoot(t)
	disk := smallDisk(t, "128m")
	site := cookieSite(t)
	s := Start(t, Options{ProfileDir: filepath.Join(disk, "profile"), Env: fastCookies})
	visit(t, s, site.URL+"/set?n=scry_login&v=yes")
	waitSnapshotted(t, s, "snapshot of the login", func(b string) bool { return strings.Contains(b, `"scry_login"`) })
	free := fillDisk(t, disk)
	if inCookieDB(t, s.ProfileDir, "scry_login") {
		free()
		t.Skip("Chromium committed the login to its cookie database before the disk filled: this run cannot show the snapshot bringing it back")
	}
	// A change the final snapshot must write, and cannot.
	visit(t, s, site.URL+"/set?n=scry_late&v=1")
	s.Stop()
	if !s.HasLog("final cookie snapshot failed") {
		t.Errorf("the final snapshot did not fail on the full disk:\n%s", s.Log())
	}
	if inCookieDB(t, s.ProfileDir, "scry_login") {
		t.Logf("Chromium committed the login at close despite the full disk")
	}
	free()

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if c := browserCookies(t, s2)["scry_login"]; c == nil || c.Value != "yes" || c.Session {
		t.Errorf("after the full disk and a restart the browser has scry_login %+v, want the persistent value yes\n%s", c, s2.Log())
	}
	if got := visit(t, s2, site.URL+"/seen?n=scry_login"); got != "yes" {
		t.Errorf("the site got scry_login=%q, want yes", got)
	}
}

// Issue 14, item 4, the other way: a logout that a snapshot saw stays a
// logout when the disk fills before Chromium commits it, though the
// database still holds the login and looks newer than the snapshot.
func TestDurabilityFullDiskKeepsLogout(t *testing.T) {
	needRoot(t)
	disk := smallDisk(t, "128m")
	site := cookieSite(t)
	s := Start(t, Options{ProfileDir: filepath.Join(disk, "profile"), Env: fastCookies})
	visit(t, s, site.URL+"/set?n=scry_login&v=yes")
	waitFor(t, 90*time.Second, "Chromium commits scry_login to its cookie database", func() error {
		if !inCookieDB(t, s.ProfileDir, "scry_login") {
			return errors.New("not in the database yet")
		}
		return nil
	})
	visit(t, s, site.URL+"/set?n=scry_login&v=")
	visit(t, s, site.URL+"/set?n=scry_marker&v=out")
	waitSnapshotted(t, s, "snapshot after the logout", func(b string) bool {
		in, gone := snapshotNames(t, b)
		return in["scry_marker"] && !in["scry_login"] && gone > 0
	})
	free := fillDisk(t, disk)
	s.Stop()
	free()

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if got := visit(t, s2, site.URL+"/seen?n=scry_login"); got != "" {
		t.Errorf("after the full disk and a restart the logged-out cookie is back: scry_login=%q\n%s", got, s2.Log())
	}
	if got := visit(t, s2, site.URL+"/seen?n=scry_marker"); got != "out" {
		t.Errorf("scry_marker=%q, want out", got)
	}
}
