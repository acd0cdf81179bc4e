package integration

import (
	"syscall"
	"testing"
	"time"
)

// TestDisplayDeathEndsScry: when Xvfb dies, Chromium goes with it; scry
// exits non-zero saying the display died (not "its last window was
// closed?"), and leaves nothing behind.
func TestDisplayDeathEndsScry(t *testing.T) {
	s := Start(t, Options{})
	pids := processesUsing("Xvfb " + s.Display + " ")
	if len(pids) != 1 {
		t.Fatalf("Xvfb processes for %s: %v, want one", s.Display, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := s.Wait(40 * time.Second); code == 0 {
		t.Errorf("scry exited 0 after its display died")
	}
	if !s.HasLog("the X display (Xvfb on " + s.Display + ") died") {
		t.Errorf("scry's log does not say the display died:\n%s", s.Log())
	}
	if left := processesUsing(s.ProfileDir); len(left) > 0 {
		t.Errorf("processes left using the profile: %v", left)
	}
	if left := processesUsing("x11vnc -display " + s.Display + " "); len(left) > 0 {
		t.Errorf("x11vnc left running: %v", left)
	}
}
