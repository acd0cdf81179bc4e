package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
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

// TestBusyPortRefusedInDoctorsWords: a port in use stops scry before
// anything starts, with the line `scry doctor` prints for it.
func TestBusyPortRefusedInDoctorsWords(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	s := Start(t, Options{Env: map[string]string{"NOVNC_PORT": port}, NoWait: true})
	if code := s.Wait(30 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "NOVNC_PORT: " + port + " cannot be bound on all interfaces"
	if !s.HasLog(want) || !s.HasLog("set NOVNC_PORT to a free port") {
		t.Errorf("refusal lacks doctor's words %q:\n%s", want, s.Log())
	}
	if s.HasLog("starting xvfb") {
		t.Error("Xvfb started although NOVNC_PORT is taken")
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
	ports := func(names ...string) (env []string) {
		for _, n := range names {
			env = append(env, fmt.Sprintf("%s=%d", n, freePort(t)))
		}
		return env
	}
	out, code := run(append(ports("CDP_PORT", "CDP_INTERNAL_PORT", "NOVNC_PORT", "VNC_PORT"),
		"PROFILE_DIR="+dir+"/profile", "DISPLAY="+freeDisplay(t))...)
	if code != 0 || !strings.Contains(out, "PASS  sandbox") || !strings.Contains(out, "WARN  VNC_PASSWORD") {
		t.Errorf("doctor on this machine, free ports: exit %d, want 0 (warnings do not fail)\n%s", code, out)
	}
	out, code = run("PROFILE_DIR="+dir+"/profile", "NOVNC_DIR=/nonexistent", "VNC_PASSWORD=s3cret-value")
	if code == 0 || !strings.Contains(out, "FAIL  noVNC") || !strings.Contains(out, "fix: apt-get install novnc") {
		t.Errorf("doctor with a missing noVNC: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cret-value") {
		t.Error("password printed")
	}
}
