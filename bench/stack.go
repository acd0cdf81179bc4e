// Package bench measures the agent door against the alternatives on one
// Chromium: direct to Chromium's loopback DevTools port, through scry's CDP
// bridge, and through socat configured as in the seed's shell design.
//
// All paths are measured in one run, interleaved round-robin per iteration,
// so that noise on a shared machine hits every path alike. The figures are a
// report, never a pass/fail test: run
//
//	go test -run '^$' -bench . -benchtime=1x ./bench/
//
// or `go run ./bench/cmd/cdpbench`. docs/benchmarks.md explains the numbers.
//
// Environment (the command also takes flags of the same meaning):
//
//	SCRY_BENCH_N       1000   base iteration count: evals=N, conns=N/5, shots=max(N/33,10)
//	SCRY_BENCH_CONNS   N/5    fresh connections per path
//	SCRY_BENCH_EVALS   N      Runtime.evaluate round-trips per path
//	SCRY_BENCH_SHOTS   N/33   screenshots per path (at least 10)
//	SCRY_BIN           (build) a prebuilt scry binary instead of building ./cmd/scry
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUnavailable wraps the reasons the bench cannot run here (no Chromium,
// no Xvfb, scry does not build); the benchmark skips on it.
var ErrUnavailable = errors.New("bench unavailable")

// CheckTools reports which of the programs the bench needs are missing.
func CheckTools() error {
	var missing []string
	for _, bin := range []string{"chromium", "Xvfb", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in PATH (apt-get install -y chromium xvfb socat)", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// BuildScry builds ./cmd/scry into dir, or returns $SCRY_BIN if set.
func BuildScry(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("SCRY_BIN"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "scry")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dataplanelabs/scry/cmd/scry")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: build scry: %v\n%s", ErrUnavailable, err, out)
	}
	return bin, nil
}

// Stack is one scry (Xvfb, Chromium, the CDP bridge) and, beside it, a
// socat relay to the same Chromium, all on ports of their own.
type Stack struct {
	Direct string // Chromium's loopback DevTools port, host:port
	Scry   string // scry's CDP_PORT
	Socat  string // socat's port; empty when socat is not installed

	dir       string
	scry      *exec.Cmd
	scryDone  chan struct{}
	socat     *exec.Cmd
	socatDone chan struct{}

	mu      sync.Mutex
	logTail []string
}

// freePorts reserves n distinct free loopback ports at once.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// freeDisplay picks an X display number with no socket and no lock file.
func freeDisplay() (string, error) {
	start := 171 + rand.IntN(300)
	for n := start; n < start+500; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		return ":" + strconv.Itoa(n), nil
	}
	return "", errors.New("no free X display")
}

// StartStack runs scry on free ports, a temporary profile and a free
// display, waits for "scry ready", and starts socat beside it. On error
// everything started is stopped again.
func StartStack(ctx context.Context, scryBin string) (_ *Stack, err error) {
	dir, err := os.MkdirTemp("", "scry-bench-")
	if err != nil {
		return nil, err
	}
	s := &Stack{dir: dir}
	// scry running as root hands the profile to an unprivileged uid, which
	// must be able to traverse the temporary directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return nil, fmt.Errorf("free ports: %w", err)
	}
	display, err := freeDisplay()
	if err != nil {
		return nil, err
	}
	cdpPort, internal, novnc, vnc, socatPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	s.Direct = net.JoinHostPort("127.0.0.1", strconv.Itoa(internal))
	s.Scry = net.JoinHostPort("127.0.0.1", strconv.Itoa(cdpPort))

	env := map[string]string{
		"PROFILE_DIR":        filepath.Join(dir, "profile"),
		"DISPLAY":            display,
		"CDP_PORT":           strconv.Itoa(cdpPort),
		"CDP_INTERNAL_PORT":  strconv.Itoa(internal),
		"NOVNC_PORT":         strconv.Itoa(novnc),
		"VNC_PORT":           strconv.Itoa(vnc),
		"LOG_FORMAT":         "json",
		"CHROME_EXTRA_FLAGS": "--disable-background-networking --disable-component-update --disable-sync --no-pings",
	}
	s.scry = exec.Command(scryBin)
	s.scry.Env = os.Environ()
	for k, v := range env {
		s.scry.Env = append(s.scry.Env, k+"="+v)
	}
	s.scry.Stdout = io.Discard
	// Own process group so cleanup can signal it; SIGTERM if the bench dies.
	s.scry.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stderr, err := s.scry.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.scry.Start(); err != nil {
		return nil, fmt.Errorf("start scry: %w", err)
	}
	s.scryDone = make(chan struct{})
	ready := make(chan struct{})
	go s.readLog(stderr, ready)

	wait := time.NewTimer(120 * time.Second)
	defer wait.Stop()
	select {
	case <-ready:
	case <-s.scryDone:
		return nil, fmt.Errorf("scry exited before ready: %v\n%s", s.scry.ProcessState, s.LogTail())
	case <-wait.C:
		return nil, fmt.Errorf("scry not ready after 120s\n%s", s.LogTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	if _, err := exec.LookPath("socat"); err == nil {
		if err := s.startSocat(ctx, socatPort, internal); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readLog keeps scry's stderr drained (a full pipe would stall scry) and
// keeps the last lines for error messages.
func (s *Stack) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.logTail = append(s.logTail, line)
		if len(s.logTail) > 60 {
			s.logTail = s.logTail[len(s.logTail)-60:]
		}
		s.mu.Unlock()
		if !signalled && strings.Contains(line, `"scry ready"`) {
			var m struct{ Msg string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "scry ready" {
				signalled = true
				close(ready)
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
	_ = s.scry.Wait()
	close(s.scryDone)
}

// LogTail is the end of scry's log.
func (s *Stack) LogTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logTail, "\n")
}

// startSocat runs the design's relay and waits until Chromium answers
// through it. Chrome accepts the IP Host the client sends through it.
func (s *Stack) startSocat(ctx context.Context, port, internal int) error {
	ka := "keepalive,keepidle=30,keepintvl=10,keepcnt=3"
	s.socat = exec.Command("socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,%s", port, ka),
		fmt.Sprintf("TCP:127.0.0.1:%d,%s", internal, ka))
	s.socat.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.socat.Stderr = os.Stderr
	if err := s.socat.Start(); err != nil {
		return fmt.Errorf("start socat: %w", err)
	}
	s.socatDone = make(chan struct{})
	go func() { _ = s.socat.Wait(); close(s.socatDone) }()
	s.Socat = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get("http://" + s.Socat + "/json/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-s.socatDone:
			return fmt.Errorf("socat exited: %v", s.socat.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socat relay not answering: %w", err)
		}
	}
}

// Close stops socat and scry (SIGTERM, then SIGKILL after a grace period)
// and removes the temporary profile. It is safe to call more than once.
func (s *Stack) Close() {
	stop := func(cmd *exec.Cmd, done chan struct{}, grace time.Duration) {
		if cmd == nil || cmd.Process == nil || done == nil {
			return
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	stop(s.socat, s.socatDone, 2*time.Second)
	stop(s.scry, s.scryDone, 30*time.Second)
	s.socat, s.scry = nil, nil
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}
