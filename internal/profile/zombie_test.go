package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrepareZombieIsNotALiveBrowser: a Chromium killed a moment ago can
// linger as a zombie until its parent reaps it; its lock is stale.
func TestPrepareZombieIsNotALiveBrowser(t *testing.T) {
	host, _ := os.Hostname()
	cmd := startFakeChromium(t)
	pid := cmd.Process.Pid
	defer cmd.Wait()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: wait until the kernel shows it as a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie: %q", pid, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dir := t.TempDir()
	singleton(t, dir, "SingletonLock", fmt.Sprintf("%s-%d", host, pid))
	if err := Prepare(discard(), dir, -1, -1); err != nil {
		t.Fatalf("a zombie's lock refused the profile: %v", err)
	}
	if exists(filepath.Join(dir, "SingletonLock")) {
		t.Error("stale lock kept")
	}
}

// TestDying reads stat lines as the kernel writes them. The exiting one was
// seen on this machine for a headful Chromium a moment after SIGKILL: state
// R, then D, flags 0x40050c (PF_EXITING set), command line already empty.
func TestDying(t *testing.T) {
	own, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		stat string
		want bool
	}{
		{"this test process", string(own), false},
		{"running browser", "978 (chromium) S 1 978 978 0 -1 4194560 9000 0 0 0 5 3 0 0 20 0 30 0", false},
		{"exiting, running", "978 (chromium) R 1 978 978 0 -1 4195596 9000 0 0 0 5 3 0 0 20 0 30 0", true},
		{"exiting, in the kernel", "978 (chromium) D 1 978 978 0 -1 4195596 9000 0 0 0 5 3 0 0 20 0 30 0", true},
		{"zombie", "978 (chromium) Z 1 978 978 0 -1 4228364 9000 0 0 0 5 3 0 0 20 0 30 0", true},
		{"dead", "978 (chromium) X 1 978 978 0 -1 4228364", true},
		{"name with ') ' in it", "978 (a) Z (b) S 1 978 978 0 -1 4194560 0", false},
		{"truncated", "978 (chromium) S 1", false},
		{"garbage flags", "978 (chromium) S 1 978 978 0 -1 lots 0", false},
		{"empty", "", false},
	} {
		if got := dying([]byte(tc.stat)); got != tc.want {
			t.Errorf("%s: dying(%q) = %v, want %v", tc.name, tc.stat, got, tc.want)
		}
	}
}
