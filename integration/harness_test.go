// Package integration runs the real scry binary with real Xvfb, Chromium and
// x11vnc, and drives it with real clients.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dataplanelabs/scry/internal/scrytest"
)

var scryBin string

func TestMain(m *testing.M) {
	code := func() int {
		if err := scrytest.CheckTools("Xvfb", "chromium", "x11vnc"); err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			return 1
		}
		dir, err := os.MkdirTemp("", "scry-it-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if scryBin, err = scrytest.Build(context.Background(), dir); err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Scry is one running scry process, failing its test where the harness
// would return an error.
type Scry struct {
	*scrytest.Scry
	t           *testing.T
	CDPPort     int // the agent door's port, once open
	NoVNCPort   int // the human door's port, once open
	ChromiumPid int // once ready
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

// freePort holds a free loopback port for the rest of the test (see
// scrytest.Reserve): whoever binds it with SO_REUSEADDR gets it, nobody
// else does.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := scrytest.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.N
}

func freeDisplay(t *testing.T) string {
	t.Helper()
	d, err := scrytest.FreeDisplay()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// quietChromium is the tests' CHROME_EXTRA_FLAGS; a test that sets its own
// flags starts from these.
const quietChromium = scrytest.QuietChromium

// Start runs scry on a temporary profile (or o.ProfileDir), with the agent
// door on port 0 (see scrytest.Start), and waits until it is ready unless
// o.NoWait.
func Start(t *testing.T, o Options) *Scry {
	t.Helper()
	so := scrytest.Options{Bin: scryBin, Env: o.Env, ProfileDir: o.ProfileDir}
	if so.ProfileDir == "" {
		so.Dir = tempDir(t)
	}
	var ss *scrytest.Scry
	var err error
	if o.NoWait {
		ss, err = scrytest.Start(so)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		ss, err = scrytest.Run(ctx, so)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &Scry{Scry: ss, t: t}
	// A port given in the environment is known before the door opens.
	s.CDPPort, _ = strconv.Atoi(ss.Env["CDP_PORT"])
	s.NoVNCPort, _ = strconv.Atoi(ss.Env["NOVNC_PORT"])
	t.Cleanup(s.cleanup)
	if !o.NoWait {
		s.noteReady()
	}
	return s
}

// noteReady copies what the log told about the doors and Chromium.
func (s *Scry) noteReady() {
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	s.CDPPort, s.NoVNCPort, s.ChromiumPid = port(s.CDPAddr()), port(s.NoVNCAddr()), s.ChromiumPID()
}

// WaitReady waits for "scry ready" or fails the test with scry's log.
func (s *Scry) WaitReady(d time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Scry.WaitReady(ctx); err != nil {
		s.t.Fatalf("%v\n%s", err, s.Log())
	}
	s.noteReady()
}

// WaitLog waits until a log line containing sub appears.
func (s *Scry) WaitLog(sub string, d time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Scry.WaitLog(ctx, sub); err != nil {
		s.t.Fatalf("%v\n%s", err, s.Log())
	}
}

// CDPURL is the agent door's base URL.
func (s *Scry) CDPURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.CDPPort) }

// NoVNCURL is the human door's base URL.
func (s *Scry) NoVNCURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.NoVNCPort) }

// Wait waits for scry to exit and returns its exit code.
func (s *Scry) Wait(d time.Duration) int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	code, err := s.Scry.Wait(ctx)
	if err != nil {
		s.t.Fatalf("%v\n%s", err, s.Log())
	}
	return code
}

// Stop ends scry gracefully and checks it exits 0.
func (s *Scry) Stop() {
	s.t.Helper()
	s.Signal(syscall.SIGTERM)
	if code := s.Wait(40 * time.Second); code != 0 {
		s.t.Fatalf("scry exited %d after SIGTERM, want 0\n%s", code, s.Log())
	}
}

func (s *Scry) cleanup() {
	s.Close(40 * time.Second)
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

// waitFor checks cond until it holds, failing the test if it still does
// not after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := scrytest.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: not true after %s: %v", what, d, err)
	}
}

// wsCall makes one CDP call on c and returns its result. params is a JSON
// object or empty.
func wsCall(ctx context.Context, c *websocket.Conn, method, params string) (string, error) {
	var p any
	if params != "" {
		p = json.RawMessage(params)
	}
	res, err := scrytest.NewCDP(c).CallRaw(ctx, "", method, p)
	return string(res), err
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
