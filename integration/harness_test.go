// Package integration runs the real scry binary with real Xvfb, Chromium and
// x11vnc, and drives it with real clients.
package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var scryBin string

func TestMain(m *testing.M) {
	code := func() int {
		for _, bin := range []string{"Xvfb", "chromium", "x11vnc"} {
			if _, err := exec.LookPath(bin); err != nil {
				fmt.Fprintf(os.Stderr, "integration: %s not found: run `make deps` (or .ci/run) to install the browser stack\n", bin)
				return 1
			}
		}
		dir, err := os.MkdirTemp("", "scry-it-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		scryBin = filepath.Join(dir, "scry")
		build := exec.Command("go", "build", "-o", scryBin, "../cmd/scry")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: build scry:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Scry is one running scry process.
type Scry struct {
	t           *testing.T
	cmd         *exec.Cmd
	Env         map[string]string
	ProfileDir  string
	CDPPort     int
	NoVNCPort   int
	VNCPort     int
	Display     string
	ChromiumPid int

	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	ready chan struct{}
	done  chan struct{}
	err   error
}

// Options adjusts a test's scry.
type Options struct {
	Env        map[string]string
	ProfileDir string // reuse a profile (restart tests)
	NoWait     bool   // don't wait for "scry ready"
}

// tempDir is a t.TempDir that scry's unprivileged children can traverse.
func tempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// freePort asks the kernel for a free loopback port, never handing out the
// same one twice in this test binary (the kernel may, once it is closed).
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
}

var displayMu sync.Mutex
var nextDisplay = 140 + os.Getpid()%300

// freeDisplay picks a display number nobody uses.
func freeDisplay() string {
	displayMu.Lock()
	defer displayMu.Unlock()
	for {
		nextDisplay++
		n := nextDisplay
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		return ":" + strconv.Itoa(n)
	}
}

// quietChromium is the tests' CHROME_EXTRA_FLAGS: this machine has no
// internet, so keep Chromium from phoning home. A test that sets its own
// flags starts from these.
const quietChromium = "--disable-background-networking --disable-component-update --disable-sync --no-pings"

// Start runs scry on free ports and a temporary profile and waits until it
// logs that it is ready.
func Start(t *testing.T, o Options) *Scry {
	t.Helper()
	s := &Scry{
		t:          t,
		ProfileDir: o.ProfileDir,
		CDPPort:    freePort(t),
		NoVNCPort:  freePort(t),
		VNCPort:    freePort(t),
		Display:    freeDisplay(),
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
	}
	if s.ProfileDir == "" {
		s.ProfileDir = filepath.Join(tempDir(t), "profile")
	}
	env := map[string]string{
		"PROFILE_DIR":        s.ProfileDir,
		"DISPLAY":            s.Display,
		"CDP_PORT":           strconv.Itoa(s.CDPPort),
		"CDP_INTERNAL_PORT":  strconv.Itoa(freePort(t)),
		"NOVNC_PORT":         strconv.Itoa(s.NoVNCPort),
		"VNC_PORT":           strconv.Itoa(s.VNCPort),
		"LOG_FORMAT":         "json",
		"LOG_LEVEL":          "info",
		"CHROME_EXTRA_FLAGS": quietChromium,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	s.Env = env
	s.cmd = exec.Command(scryBin)
	s.cmd.Env = os.Environ()
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readLog(stderr)
	t.Cleanup(s.cleanup)
	if !o.NoWait {
		s.WaitReady(90 * time.Second)
	}
	return s
}

func (s *Scry) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	readyClosed := false
	for sc.Scan() {
		line := sc.Text()
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		s.mu.Lock()
		s.raw = append(s.raw, line)
		if m != nil {
			s.lines = append(s.lines, m)
			if m["msg"] == "scry ready" && !readyClosed {
				if pid, ok := m["chromium_pid"].(float64); ok {
					s.ChromiumPid = int(pid)
				}
				readyClosed = true
				close(s.ready)
			}
		}
		s.mu.Unlock()
	}
	s.err = s.cmd.Wait()
	close(s.done)
}

// WaitReady waits for "scry ready" or fails the test with scry's log.
func (s *Scry) WaitReady(d time.Duration) {
	s.t.Helper()
	select {
	case <-s.ready:
	case <-s.done:
		s.t.Fatalf("scry exited before ready: %v\n%s", s.err, s.Log())
	case <-time.After(d):
		s.t.Fatalf("scry not ready after %s\n%s", d, s.Log())
	}
}

// Log returns scry's output so far.
func (s *Scry) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.raw, "\n")
}

// HasLog reports whether a log record with msg containing sub was written.
func (s *Scry) HasLog(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.raw {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// WaitLog waits until a log line containing sub appears.
func (s *Scry) WaitLog(sub string, d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for !s.HasLog(sub) {
		if time.Now().After(deadline) {
			s.t.Fatalf("no log line containing %q after %s\n%s", sub, d, s.Log())
		}
		select {
		case <-s.done:
			if !s.HasLog(sub) {
				s.t.Fatalf("scry exited without logging %q\n%s", sub, s.Log())
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Records returns the parsed JSON log records.
func (s *Scry) Records() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.lines...)
}

// CDPURL is the bridge's base URL.
func (s *Scry) CDPURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.CDPPort) }

// NoVNCURL is the noVNC server's base URL.
func (s *Scry) NoVNCURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.NoVNCPort) }

// Pid is scry's pid.
func (s *Scry) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to scry.
func (s *Scry) Signal(sig syscall.Signal) {
	_ = s.cmd.Process.Signal(sig)
}

// Wait waits for scry to exit and returns its exit code.
func (s *Scry) Wait(d time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		s.t.Fatalf("scry still running after %s\n%s", d, s.Log())
	}
	if s.cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return s.cmd.ProcessState.ExitCode()
}

// Stop ends scry gracefully and checks it exits 0.
func (s *Scry) Stop() {
	s.t.Helper()
	s.Signal(syscall.SIGTERM)
	if code := s.Wait(40 * time.Second); code != 0 {
		s.t.Fatalf("scry exited %d after SIGTERM, want 0\n%s", code, s.Log())
	}
}

// Exited reports whether scry has exited.
func (s *Scry) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Scry) cleanup() {
	if s.Exited() {
		return
	}
	s.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("scry log:\n%s", s.Log())
	}
}

// processesUsing lists live pids whose command line mentions sub, with
// the arguments joined by single spaces and a trailing space ("Xvfb :99 ").
func processesUsing(sub string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), sub) {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
				continue // a zombie is already dead
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getJSON fetches url and decodes JSON into v.
func getJSON(ctx context.Context, url string, host string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, errors.New(strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, json.Unmarshal(b, v)
}

// pageTarget is a page opened through /json/new.
type pageTarget struct {
	ID string `json:"id"`
	WS string `json:"webSocketDebuggerUrl"`
}

// newPage opens a page with PUT base+path?query (path is /json/new or
// under it), with extra headers, and closes it through closeBase at the
// test's end.
func newPage(t *testing.T, base, path, query, closeBase string, h http.Header) pageTarget {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+path+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tg pageTarget
	err = json.NewDecoder(resp.Body).Decode(&tg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || tg.WS == "" {
		t.Fatalf("PUT %s%s?%s: %d %v %+v", base, path, query, resp.StatusCode, err, tg)
	}
	t.Cleanup(func() {
		r, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, closeBase+"/json/close/"+tg.ID, nil)
		if resp, err := http.DefaultClient.Do(r); err == nil {
			resp.Body.Close()
		}
	})
	return tg
}
