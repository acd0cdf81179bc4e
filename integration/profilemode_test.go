package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPreflightRefusesWritableProfile: at 0777 another uid planted a
// cookies.json in PROFILE_DIR that scry restored into the browser. scry now
// refuses to start, before anything runs, with the chmod that fixes it.
func TestPreflightRefusesWritableProfile(t *testing.T) {
	dir := filepath.Join(tempDir(t), "profile")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{ProfileDir: dir, NoWait: true})
	if code := s.Wait(30 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"PROFILE_DIR mode: " + dir + " is mode 0777", "chmod go-w " + dir, "scry doctor"} {
		if !s.HasLog(want) {
			t.Errorf("refusal lacks %q:\n%s", want, s.Log())
		}
	}
	if s.HasLog("starting xvfb") {
		t.Error("Xvfb started with a world-writable PROFILE_DIR")
	}
	if _, err := os.Stat(filepath.Join(dir, ".scry")); err == nil {
		t.Error("scry touched the profile before refusing it")
	}
}
