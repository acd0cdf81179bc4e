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
