// Package bench measures the agent door against the alternatives on one
// Chromium: direct to Chromium's loopback DevTools port, through scry's CDP
// bridge with an admin token (spliced) and with an agent token (read
// command by command), and through socat configured as in the seed's
// shell design.
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
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// ErrUnavailable wraps the reasons the bench cannot run here (no Chromium,
// no Xvfb, scry does not build); the benchmark skips on it.
var ErrUnavailable = scrytest.ErrUnavailable

// Stack is one scry (Xvfb, Chromium, the CDP bridge) and, beside it, a
// socat relay to the same Chromium. scry runs with a CDP_TOKENS_FILE of
// one admin and one agent token, so that both kinds of connection are
// measured on the same bridge: the admin's spliced byte for byte, the
// agent's read command by command (issue 15).
type Stack struct {
	Direct     string // Chromium's loopback DevTools port, host:port
	Scry       string // scry's agent door, host:port
	Socat      string // socat's port; empty when socat is not installed
	AdminToken string // scry's admin token
	AgentToken string // scry's agent token

	scry      *scrytest.Scry
	socat     *exec.Cmd
	socatPort *scrytest.Port
	socatDone chan struct{}
	tokensDir string // holds the tokens file; removed by Close
}

// StartStack runs scry through the test harness (a temporary profile, a
// free display, its own ports), waits for it, and starts socat beside it.
// On error everything started is stopped again.
func StartStack(ctx context.Context, scryBin string) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	tokens, err := s.writeTokens()
	if err != nil {
		return nil, err
	}
	ctx2, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if s.scry, err = scrytest.Run(ctx2, scrytest.Options{Bin: scryBin, Env: map[string]string{"CDP_TOKENS_FILE": tokens}}); err != nil {
		return nil, err
	}
	s.Direct = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.scry.InternalPort))
	s.Scry = s.scry.CDPAddr()
	if _, err := exec.LookPath("socat"); err == nil {
		if err := s.startSocat(ctx, s.scry.InternalPort); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// writeTokens makes the run's two tokens and writes them as a
// CDP_TOKENS_FILE, returning its path.
func (s *Stack) writeTokens() (string, error) {
	var err error
	if s.tokensDir, err = os.MkdirTemp("", "scry-bench-tokens-"); err != nil {
		return "", err
	}
	token := func() string {
		b := make([]byte, 20)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
		return hex.EncodeToString(b)
	}
	s.AdminToken, s.AgentToken = token(), token()
	p := filepath.Join(s.tokensDir, "tokens")
	body := fmt.Sprintf("bench-admin admin %s\nbench-agent agent %s\n", s.AdminToken, s.AgentToken)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// LogTail is the end of scry's log.
func (s *Stack) LogTail() string {
	if s.scry == nil {
		return ""
	}
	log := s.scry.Log()
	if len(log) > 16<<10 {
		log = log[len(log)-16<<10:]
	}
	return log
}

// startSocat runs the design's relay on a held port and waits until
// Chromium answers through it. Chrome accepts the IP Host the client
// sends through it.
func (s *Stack) startSocat(ctx context.Context, internal int) error {
	p, err := scrytest.Reserve()
	if err != nil {
		return err
	}
	s.socatPort = p
	ka := "keepalive,keepidle=30,keepintvl=10,keepcnt=3"
	s.socat = exec.Command("socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,%s", p.N, ka),
		fmt.Sprintf("TCP:127.0.0.1:%d,%s", internal, ka))
	s.socat.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.socat.Stderr = os.Stderr
	if err := s.socat.Start(); err != nil {
		return fmt.Errorf("start socat: %w", err)
	}
	s.socatDone = make(chan struct{})
	go func() { _ = s.socat.Wait(); close(s.socatDone) }()
	s.Socat = net.JoinHostPort("127.0.0.1", p.String())
	hc := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = scrytest.WaitFor(ctx, func() error {
		select {
		case <-s.socatDone:
			return fmt.Errorf("socat exited: %v", s.socat.ProcessState)
		default:
		}
		resp, err := hc.Get("http://" + s.Socat + "/json/version")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("socat relay not answering: %w", err)
	}
	return nil
}

// Close stops socat and scry and removes the temporary profile. It is safe
// to call more than once.
func (s *Stack) Close() {
	if s.socat != nil && s.socat.Process != nil {
		_ = syscall.Kill(-s.socat.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.socatDone:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-s.socat.Process.Pid, syscall.SIGKILL)
			<-s.socatDone
		}
		s.socat = nil
	}
	_ = s.socatPort.Close()
	if s.scry != nil {
		s.scry.Close(30 * time.Second)
		s.scry = nil
	}
	if s.tokensDir != "" {
		_ = os.RemoveAll(s.tokensDir)
		s.tokensDir = ""
	}
}
