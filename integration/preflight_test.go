package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPreflightRefusesBeforeStarting(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"NOVNC_DIR": t.TempDir()}, NoWait: true})
	if code := s.Wait(30 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !s.HasLog("apt-get install novnc") || !s.HasLog("scry doctor") {
		t.Errorf("refusal does not say what to do:\n%s", s.Log())
	}
	if s.HasLog("starting xvfb") {
		t.Error("Xvfb started despite a failed preflight")
	}
}

func TestDoctorCommand(t *testing.T) {
	run := func(env ...string) (string, int) {
		cmd := exec.Command(scryBin, "doctor")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	dir := tempDir(t)
	out, code := run("PROFILE_DIR="+dir+"/profile", "CDP_PORT=1", "CDP_INTERNAL_PORT=2", "NOVNC_PORT=3", "VNC_PORT=4", "DISPLAY=:4999")
	if !strings.Contains(out, "PASS  sandbox") || !strings.Contains(out, "WARN  VNC_PASSWORD") {
		t.Errorf("doctor on this machine:\n%s", out)
	}
	_ = code // ports 1-4 may need privileges here; the point is the report
	out, code = run("PROFILE_DIR="+dir+"/profile", "NOVNC_DIR=/nonexistent", "VNC_PASSWORD=s3cret-value")
	if code == 0 || !strings.Contains(out, "FAIL  noVNC") || !strings.Contains(out, "fix: apt-get install novnc") {
		t.Errorf("doctor with a missing noVNC: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cret-value") {
		t.Error("password printed")
	}
}
