package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatalf("first Acquire: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, StateDir, "lock"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, %v; want this pid", b, err)
	}

	second, err := Acquire(dir)
	if err == nil {
		second.Release()
		t.Fatal("second Acquire on the same profile succeeded")
	}
	want := fmt.Sprintf("in use by scry pid %d", os.Getpid())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "PROFILE_DIR") {
		t.Errorf("second Acquire: %q, want it to say %q and name PROFILE_DIR", err, want)
	}

	first.Release()
	third, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	third.Release()

	var none *Lock
	none.Release() // a nil lock is safe to release
}

func TestAcquireOtherDirsIndependent(t *testing.T) {
	a, err := Acquire(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := Acquire(t.TempDir())
	if err != nil {
		t.Fatalf("Acquire of a second profile: %v", err)
	}
	b.Release()
}

func TestAcquireUnwritable(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(filepath.Join(file, "profile")); err == nil {
		t.Fatal("Acquire under a regular file succeeded")
	}
}

// singleton creates one of Chromium's Singleton* symlinks.
func singleton(t *testing.T, dir, name, target string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestPrepare(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	// A live process that is not Chromium, for a lock naming a reused pid.
	sleeper := exec.Command("sleep", "100")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })

	tests := []struct {
		name string
		lock string // SingletonLock target; "" for none
	}{
		{"no lock", ""},
		{"lock from another host", "otherhost-12345"},
		{"lock from this host, dead pid", host + "-999999999"},
		{"lock from this host, pid reused by a non-chromium", fmt.Sprintf("%s-%d", host, sleeper.Process.Pid)},
		{"lock with no pid", "garbage"},
		{"lock with bad pid", host + "-x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.lock != "" {
				singleton(t, dir, "SingletonLock", tt.lock)
			}
			singleton(t, dir, "SingletonSocket", "/tmp/.org.chromium.Chromium.abc/SingletonSocket")
			singleton(t, dir, "SingletonCookie", "1234567890")
			keep := filepath.Join(dir, "Default", "Cookies")
			if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keep, []byte("jar"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Prepare(discard(), dir, -1, -1); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			for _, name := range singletons {
				if exists(filepath.Join(dir, name)) {
					t.Errorf("%s left behind", name)
				}
			}
			if b, err := os.ReadFile(keep); err != nil || string(b) != "jar" {
				t.Errorf("profile data touched: %q, %v", b, err)
			}
		})
	}
}

func TestPrepareCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "profile")
	if err := Prepare(discard(), dir, -1, -1); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("profile dir not created: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("profile dir mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestPrepareUncreatableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Prepare(discard(), filepath.Join(file, "profile"), -1, -1)
	if err == nil || !strings.Contains(err.Error(), "PROFILE_DIR") {
		t.Fatalf("Prepare = %v, want an error naming PROFILE_DIR", err)
	}
}

// TestPrepareLiveChromium runs a process whose command line says chromium,
// the way a still-running browser would hold the profile.
func TestPrepareLiveChromium(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cmd := startFakeChromium(t)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid

	dir := t.TempDir()
	singleton(t, dir, "SingletonLock", fmt.Sprintf("%s-%d", host, pid))
	singleton(t, dir, "SingletonSocket", "/tmp/x/SingletonSocket")
	err = Prepare(discard(), dir, -1, -1)
	want := fmt.Sprintf("in use by pid %d", pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Prepare = %v, want %q", err, want)
	}
	if !exists(filepath.Join(dir, "SingletonLock")) || !exists(filepath.Join(dir, "SingletonSocket")) {
		t.Error("a live browser's Singleton files were removed")
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	// t.TempDir's own parent is private; uid 1000 must be able to reach
	// the profile.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	files := []string{"Default/Preferences", "Default/Cookies", "Local State"}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink pointing outside the profile: the link is handed over,
	// never its target.
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	singleton(t, dir, "Default/link", outside)

	if err := Prepare(discard(), dir, 1000, 1000); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		if st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s owned by %d:%d, want 1000:1000", path, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(outside, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("symlink target outside the profile was chowned to %d", st.Uid)
	}
}

func TestMarkCleanExitKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Default", "Preferences")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(crashedPrefs), 0o600); err != nil {
		t.Fatal(err)
	}
	// Prepare gave the profile to the child uid.
	for _, p := range []string{dir, filepath.Dir(path), path} {
		if err := os.Chown(p, 1000, 1001); err != nil {
			t.Fatal(err)
		}
	}
	if err := MarkCleanExit(discard(), dir); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("Preferences now owned by %d:%d, want 1000:1001 kept", st.Uid, st.Gid)
	}
}

func TestPrepareUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(private, "profile")
	err := Prepare(discard(), dir, 1000, 1000)
	if err == nil || !strings.Contains(err.Error(), "not reachable by uid 1000") || !strings.Contains(err.Error(), private) {
		t.Fatalf("Prepare = %v, want an error naming %s as unreachable by uid 1000", err, private)
	}
}

const crashedPrefs = `{"browser":{"window_placement":{"left":10}},` +
	`"profile":{"exit_type":"Crashed","exited_cleanly":false,"name":"Person 1","created_by_version":"126.0.6478.126",` +
	`"content_settings":{"exceptions":{"cookies":{}}},"last_engagement_time":"13364170364930284"},` +
	`"big":12345678901234567890,"precise":9007199254740993,"float":1.10,"html":"<a>&amp;</a>"}`

func TestMarkCleanExit(t *testing.T) {
	tests := []struct {
		name      string
		prefs     string // "" means no Preferences file
		mode      os.FileMode
		unchanged bool // the file must be left byte for byte
		wantErr   string
		wantLog   string // the info line's attributes, when it changes the file
	}{
		{name: "missing file"},
		{name: "after a crash", prefs: crashedPrefs, mode: 0o600, wantLog: "was_exit_type=Crashed was_exited_cleanly=false"},
		{name: "keeps mode", prefs: crashedPrefs, mode: 0o644, wantLog: "was_exit_type=Crashed"},
		{name: "no profile section", prefs: `{"browser":{},"n":1}`, mode: 0o600, wantLog: "was_exit_type=unset was_exited_cleanly=unset"},
		{name: "already clean", prefs: `{"profile":{"exit_type":"Normal","exited_cleanly":true}, "x": 1}`, mode: 0o600, unchanged: true},
		{name: "not JSON", prefs: `{"profile":`, mode: 0o600, unchanged: true, wantErr: "parse"},
		{name: "profile not an object", prefs: `{"profile":[]}`, mode: 0o600, unchanged: true, wantErr: "profile section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "Default", "Preferences")
			if tt.prefs != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.prefs), tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			var logged bytes.Buffer
			err := MarkCleanExit(slog.New(slog.NewTextHandler(&logged, nil)), dir)
			if tt.wantLog == "" && logged.Len() > 0 {
				t.Errorf("logged %q, want nothing (the file was not changed)", logged.String())
			}
			if tt.wantLog != "" && (!strings.Contains(logged.String(), "marked the profile's last exit clean") ||
				!strings.Contains(logged.String(), tt.wantLog)) {
				t.Errorf("logged %q, want the marking with %q", logged.String(), tt.wantLog)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("MarkCleanExit = %v, want an error mentioning %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("MarkCleanExit: %v", err)
			}
			if tt.prefs == "" {
				if exists(filepath.Dir(path)) {
					t.Error("MarkCleanExit created a profile that was not there")
				}
				return
			}
			noTempFiles(t, filepath.Dir(path), "Preferences")
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tt.mode {
				t.Errorf("mode after MarkCleanExit = %v, want %v", fi.Mode().Perm(), tt.mode)
			}
			if tt.unchanged {
				if string(got) != tt.prefs {
					t.Errorf("file rewritten:\n got %s\nwant %s", got, tt.prefs)
				}
				return
			}
			checkCleanPrefs(t, []byte(tt.prefs), got)
		})
	}
}

// checkCleanPrefs asserts that after differs from before only in the two
// exit markers, with every number kept exactly as written.
func checkCleanPrefs(t *testing.T, before, after []byte) {
	t.Helper()
	b, a := decodeExact(t, before), decodeExact(t, after)
	prof, _ := a["profile"].(map[string]any)
	if prof["exit_type"] != "Normal" || prof["exited_cleanly"] != true {
		t.Errorf("profile section %v, want exit_type Normal and exited_cleanly true", prof)
	}
	delete(prof, "exit_type")
	delete(prof, "exited_cleanly")
	if bp, ok := b["profile"].(map[string]any); ok {
		delete(bp, "exit_type")
		delete(bp, "exited_cleanly")
	} else {
		b["profile"] = map[string]any{}
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("other preferences changed:\n got %v\nwant %v", a, b)
	}
	for _, n := range []string{"12345678901234567890", "9007199254740993", "1.10"} {
		if bytes.Contains(before, []byte(n)) && !bytes.Contains(after, []byte(n)) {
			t.Errorf("number %s not kept exactly:\n%s", n, after)
		}
	}
}

func decodeExact(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// noTempFiles asserts that dir holds only the named files.
func noTempFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %q, want %q", dir, names, want)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	tests := []struct {
		name     string
		existing string // "" means no file before
		data     string
		mode     os.FileMode
		uid      int // -1 keeps the writer's
	}{
		{"new file", "", "hello", 0o600, -1},
		{"new file, readable", "", "hello", 0o644, -1},
		{"replace", "old contents that are longer", "new", 0o600, -1},
		{"replace with empty", "old", "", 0o640, -1},
		{"owner", "old", "new", 0o600, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid >= 0 && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "Local State")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileAtomic(path, []byte(tt.data), tt.mode, tt.uid, tt.uid); err != nil {
				t.Fatalf("WriteFileAtomic: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.data {
				t.Errorf("file holds %q, %v; want %q", got, err, tt.data)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.mode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.mode)
			}
			wantUID := uint32(os.Geteuid())
			if tt.uid >= 0 {
				wantUID = uint32(tt.uid)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != wantUID {
				t.Errorf("owner uid %d, want %d", st.Uid, wantUID)
			}
			noTempFiles(t, dir, "Local State")
		})
	}
}

// TestWriteFileAtomicFailureCleansUp makes the final rename fail (the path
// is a non-empty directory) and wants no temp file left behind.
func TestWriteFileAtomicFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "Preferences")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(target, []byte("new"), 0o600, -1, -1)
	if err == nil || !strings.Contains(err.Error(), target) {
		t.Fatalf("WriteFileAtomic over a non-empty directory = %v, want an error naming the path", err)
	}
	noTempFiles(t, dir, "Preferences")
	noTempFiles(t, target, "keep")
}

// startFakeChromium runs a sleeping process whose name says chromium.
func startFakeChromium(t *testing.T) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	fake := filepath.Join(t.TempDir(), "chromium-fake")
	copyFile(t, sleep, fake, 0o755)
	cmd := exec.Command(fake, "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}
