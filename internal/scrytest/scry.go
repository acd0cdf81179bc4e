package scrytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// QuietChromium is the harness's CHROME_EXTRA_FLAGS: these machines have no
// internet, so Chromium must not phone home. A caller that sets its own
// flags starts from these.
const QuietChromium = "--disable-background-networking --disable-component-update --disable-sync --no-pings"

// Options adjusts one scry.
type Options struct {
	Bin        string            // the scry binary (see Build); required
	Env        map[string]string // added to, and winning over, the harness's environment
	ProfileDir string            // reuse a profile (restarts); empty: a new one under Dir
	Dir        string            // where a new profile goes; empty: a temporary directory Close removes
}

// Scry is one running scry process. Its exported fields are set by Start
// and never change.
type Scry struct {
	Env          map[string]string // the variables scry was given on top of the harness's own environment
	ProfileDir   string
	Display      string
	InternalPort int // CDP_INTERNAL_PORT, Chromium's loopback DevTools port
	VNCPort      int // x11vnc's loopback port

	cmd  *exec.Cmd
	held []*Port
	tmp  string // removed by Close

	mu      sync.Mutex
	raw     []string
	records []map[string]any
	cdpAddr string // from "agent door open"
	vncAddr string // from "human door open"
	pid     int    // Chromium's, from "scry ready"
	ready   chan struct{}
	grew    chan struct{} // closed and replaced whenever a line arrives
	done    chan struct{}
	err     error
}

// Start runs scry with a profile, reserved ports for Chromium, x11vnc and
// the human door, a free display and the agent door on port 0 (unless
// o.Env says otherwise), and returns at once; WaitReady waits for it.
func Start(o Options) (_ *Scry, err error) {
	s := &Scry{ProfileDir: o.ProfileDir, ready: make(chan struct{}), grew: make(chan struct{}), done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	if s.ProfileDir == "" {
		dir := o.Dir
		if dir == "" {
			if s.tmp, err = os.MkdirTemp("", "scry-test-"); err != nil {
				return nil, err
			}
			dir = s.tmp
		}
		// scry running as root hands the profile to an unprivileged uid,
		// which must be able to traverse the directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		s.ProfileDir = filepath.Join(dir, "profile")
	}
	if s.Display, err = FreeDisplay(); err != nil {
		return nil, err
	}
	internal, err := s.reserve()
	if err != nil {
		return nil, err
	}
	vnc, err := s.reserve()
	if err != nil {
		return nil, err
	}
	// The human door's port is named, not 0: the handoff links scry hands
	// out are built from NOVNC_PORT.
	human, err := s.reserve()
	if err != nil {
		return nil, err
	}
	s.Env = map[string]string{
		"PROFILE_DIR":        s.ProfileDir,
		"DISPLAY":            s.Display,
		"CDP_PORT":           "0",
		"NOVNC_PORT":         human.String(),
		"CDP_INTERNAL_PORT":  internal.String(),
		"VNC_PORT":           vnc.String(),
		"LOG_FORMAT":         "json",
		"LOG_LEVEL":          "info",
		"CHROME_EXTRA_FLAGS": QuietChromium,
	}
	maps.Copy(s.Env, o.Env)
	s.Display, s.ProfileDir = s.Env["DISPLAY"], s.Env["PROFILE_DIR"]
	s.InternalPort, _ = strconv.Atoi(s.Env["CDP_INTERNAL_PORT"])
	s.VNCPort, _ = strconv.Atoi(s.Env["VNC_PORT"])

	s.cmd = exec.Command(o.Bin)
	s.cmd.Env = os.Environ()
	for k, v := range s.Env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout = io.Discard
	// Should the harness die without stopping scry, scry stops itself.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start scry: %w", err)
	}
	go s.readLog(stderr)
	return s, nil
}

func (s *Scry) reserve() (*Port, error) {
	p, err := Reserve()
	if err == nil {
		s.held = append(s.held, p)
	}
	return p, err
}

// Run starts scry and waits until it is ready. When the display it picked
// was taken by someone else in the meantime, it starts again on another.
func Run(ctx context.Context, o Options) (*Scry, error) {
	for attempt := 1; ; attempt++ {
		s, err := Start(o)
		if err != nil {
			return nil, err
		}
		err = s.WaitReady(ctx)
		if err == nil {
			return s, nil
		}
		s.Close(10 * time.Second)
		if attempt < 3 && s.lostDisplay() {
			continue
		}
		return nil, fmt.Errorf("%w\nscry's log:\n%s", err, s.Log())
	}
}

// lostDisplay reports whether scry failed because another X server took
// its display.
func (s *Scry) lostDisplay() bool {
	return s.HasLog("is already served by another X server") || s.HasLog("Server is already active for display")
}

func (s *Scry) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		s.mu.Lock()
		s.raw = append(s.raw, line)
		if m != nil {
			s.records = append(s.records, m)
			s.note(m)
		}
		close(s.grew)
		s.grew = make(chan struct{})
		s.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
	s.err = s.cmd.Wait()
	close(s.done)
}

// note keeps what the harness needs from a record; s.mu is held.
func (s *Scry) note(m map[string]any) {
	addr, _ := m["addr"].(string)
	switch m["msg"] {
	case "agent door open":
		s.cdpAddr = loopback(addr)
	case "human door open":
		s.vncAddr = loopback(addr)
	case "scry ready":
		if pid, ok := m["chromium_pid"].(float64); ok && s.pid == 0 {
			s.pid = int(pid)
			close(s.ready)
		}
	}
}

// loopback turns a listener's address ("[::]:41234") into the loopback
// address a client dials.
func loopback(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// WaitReady waits for "scry ready".
func (s *Scry) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		return fmt.Errorf("scry exited before ready: %v", s.err)
	case <-ctx.Done():
		return fmt.Errorf("scry not ready: %w", context.Cause(ctx))
	}
}

// CDPAddr is the agent door's loopback address, once it is open.
func (s *Scry) CDPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cdpAddr
}

// NoVNCAddr is the human door's loopback address, once it is open.
func (s *Scry) NoVNCAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vncAddr
}

// ChromiumPID is Chromium's pid, once scry is ready.
func (s *Scry) ChromiumPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Log is scry's output so far.
func (s *Scry) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.raw, "\n")
}

// Count is the number of lines so far that contain sub.
func (s *Scry) Count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.raw {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// HasLog reports whether a line containing sub was written.
func (s *Scry) HasLog(sub string) bool { return s.Count(sub) > 0 }

// WaitLog waits until a line containing sub is written.
func (s *Scry) WaitLog(ctx context.Context, sub string) error {
	for {
		s.mu.Lock()
		grew := s.grew
		s.mu.Unlock()
		if s.HasLog(sub) {
			return nil
		}
		select {
		case <-grew:
		case <-s.done:
			if s.HasLog(sub) {
				return nil
			}
			return fmt.Errorf("scry exited (%v) without logging %q", s.err, sub)
		case <-ctx.Done():
			return fmt.Errorf("no log line containing %q: %w", sub, context.Cause(ctx))
		}
	}
}

// Records are the JSON log records so far.
func (s *Scry) Records() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.records...)
}

// Pid is scry's pid.
func (s *Scry) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to scry.
func (s *Scry) Signal(sig syscall.Signal) { _ = s.cmd.Process.Signal(sig) }

// Done is closed once scry has exited and its output is read.
func (s *Scry) Done() <-chan struct{} { return s.done }

// Exited reports whether scry has exited.
func (s *Scry) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ExitCode is scry's exit code once it has exited (128+signal when a
// signal ended it), or -1.
func (s *Scry) ExitCode() int {
	if !s.Exited() || s.cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return s.cmd.ProcessState.ExitCode()
}

// Wait waits for scry to exit and returns its exit code.
func (s *Scry) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.done:
		return s.ExitCode(), nil
	case <-ctx.Done():
		return -1, fmt.Errorf("scry still running: %w", context.Cause(ctx))
	}
}

// Close stops scry if it runs (SIGTERM, then SIGKILL after grace), lets
// its ports go and removes the temporary directory Start made. It is safe
// to call more than once.
func (s *Scry) Close(grace time.Duration) {
	if !s.Exited() {
		s.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-s.done:
		case <-t.C:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		t.Stop()
	}
	s.release()
}

func (s *Scry) release() {
	for _, p := range s.held {
		_ = p.Close()
	}
	s.held = nil
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
		s.tmp = ""
	}
}
