package integration

import (
	"os"
	"path/filepath"
	"strings"
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

// TestPreflightWarnsRiskyFlags: flags that switch a browser protection off
// used to start with nothing but extra_flags=N in the log. scry now warns
// at start, one WARN record per flag, naming it and its risk. (Here the
// start is refused by a missing noVNC, after the warnings: no browser is
// needed to see them.)
func TestPreflightWarnsRiskyFlags(t *testing.T) {
	s := Start(t, Options{NoWait: true, Env: map[string]string{
		"NOVNC_DIR":          t.TempDir(),
		"CHROME_EXTRA_FLAGS": quietChromium + " --no-sandbox --disable-web-security '--remote-allow-origins=*'",
	}})
	if code := s.Wait(30 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1 (no noVNC)", code)
	}
	want := map[string]string{
		"--no-sandbox":             "sandbox is off",
		"--disable-web-security":   "same-origin policy is off",
		"--remote-allow-origins=*": "CDP_ALLOWED_ORIGINS",
	}
	for _, r := range s.Records() {
		flag, _ := r["flag"].(string)
		risk, _ := r["risk"].(string)
		if sub, ok := want[flag]; ok && r["level"] == "WARN" && strings.Contains(risk, sub) {
			delete(want, flag)
		}
	}
	for flag := range want {
		t.Errorf("no WARN record naming %s and its risk:\n%s", flag, s.Log())
	}
}
