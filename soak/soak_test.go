//go:build soak

package soak

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// settings are the soak's knobs, from the environment.
type settings struct {
	duration time.Duration // SOAK_DURATION, default 2m
	idle     int           // SOAK_IDLE: idle browser WebSockets, default 200
	active   int           // SOAK_ACTIVE: clients looping Runtime.evaluate on their own tab, default 50
	pace     time.Duration // SOAK_PACE: pause between one client's calls, default 10ms
	report   time.Duration // SOAK_REPORT: progress line interval, default 30s
	// keepalive is scry's KEEPALIVE (SOAK_KEEPALIVE), default 5s/2s/2: a
	// quiet connection sees a probe every few seconds instead of every 30.
	keepalive string
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	dur := func(name, def string) time.Duration {
		v := os.Getenv(name)
		if v == "" {
			v = def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("%s=%q: want a duration such as %s", name, v, def)
		}
		return d
	}
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a count", name, v)
		}
		return n
	}
	return settings{
		duration:  dur("SOAK_DURATION", "2m"),
		idle:      num("SOAK_IDLE", 200),
		active:    num("SOAK_ACTIVE", 50),
		pace:      dur("SOAK_PACE", "10ms"),
		report:    dur("SOAK_REPORT", "30s"),
		keepalive: cmp.Or(os.Getenv("SOAK_KEEPALIVE"), "5s/2s/2"),
	}
}

// scry is the one scry process under soak.
type scry struct {
	cmd     *exec.Cmd
	cdpPort int
	mu      sync.Mutex
	log     []string
	ready   chan struct{}
	done    chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeDisplay() string {
	for n := 700 + os.Getpid()%200; ; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		return ":" + strconv.Itoa(n)
	}
}

// startScry builds scry and runs it with the soak's settings.
func startScry(t *testing.T, cs settings) *scry {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil { // scry's unprivileged children must traverse it
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "scry")
	build := exec.Command("go", "build", "-o", bin, "../cmd/scry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build scry: %v", err)
	}
	s := &scry{cdpPort: freePort(t), ready: make(chan struct{}), done: make(chan struct{})}
	env := map[string]string{
		"PROFILE_DIR":       filepath.Join(dir, "profile"),
		"DISPLAY":           freeDisplay(),
		"CDP_PORT":          strconv.Itoa(s.cdpPort),
		"CDP_INTERNAL_PORT": strconv.Itoa(freePort(t)),
		"NOVNC_PORT":        strconv.Itoa(freePort(t)),
		"VNC_PORT":          strconv.Itoa(freePort(t)),
		"LOG_FORMAT":        "json",
		"KEEPALIVE":         cs.keepalive,
		// Room for every soak connection; the default cap is 128.
		"CDP_MAX_CONNS":      strconv.Itoa(cs.idle + cs.active + 16),
		"CHROME_EXTRA_FLAGS": "--disable-background-networking --disable-component-update --disable-sync --no-pings",
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = os.Environ()
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log = append(s.log, line)
			s.mu.Unlock()
			if strings.Contains(line, `"msg":"scry ready"`) {
				once.Do(func() { close(s.ready) })
			}
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case <-s.ready:
	case <-s.done:
		t.Fatalf("scry exited before ready:\n%s", s.logText())
	case <-time.After(2 * time.Minute):
		t.Fatalf("scry not ready after 2m:\n%s", s.logText())
	}
	return s
}

func (s *scry) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

func (s *scry) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.log {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func (s *scry) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.cdpPort, path) }

// rss is a process's resident memory in bytes, from /proc.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metrics scrapes scry's /metrics into series → value.
func (s *scry) metrics(ctx context.Context) map[string]float64 {
	m := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/metrics"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				m[line[:i]] = v
			}
		}
	}
	return m
}

// cdpClient is one CDP WebSocket with a reader that hands answers back.
type cdpClient struct {
	ws      *websocket.Conn
	answers chan []byte
	id      int
	dropped atomic.Pointer[error] // set when the connection ended on its own
	closing atomic.Bool
	ended   chan struct{}
}

func dial(ctx context.Context, url string) (*cdpClient, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(16 << 20)
	c := &cdpClient{ws: ws, answers: make(chan []byte, 16), ended: make(chan struct{})}
	go func() {
		defer close(c.ended)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				if !c.closing.Load() {
					c.dropped.Store(&err)
				}
				return
			}
			if strings.HasPrefix(string(b), `{"id":`) {
				select {
				case c.answers <- b:
				default: // nobody waiting: an answer to a call that timed out
				}
			}
		}
	}()
	return c, nil
}

// call sends one command and waits for its answer's result.
func (c *cdpClient) call(ctx context.Context, method string, params any, result any) error {
	c.id++
	msg := map[string]any{"id": c.id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	b, _ := json.Marshal(msg)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	for {
		select {
		case a := <-c.answers:
			var r struct {
				ID     int             `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(a, &r); err != nil {
				return err
			}
			if r.ID != c.id {
				continue // a late answer to an earlier call
			}
			if r.Error != nil {
				return fmt.Errorf("%s: %s", method, r.Error.Message)
			}
			if result != nil {
				return json.Unmarshal(r.Result, result)
			}
			return nil
		case <-c.ended:
			return errors.New("connection ended")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *cdpClient) close() {
	c.closing.Store(true)
	c.ws.Close(websocket.StatusNormalClosure, "")
}

// stats is one active client's record.
type stats struct {
	calls, errors int
	dropped       bool // the connection ended under the client
	firstErr      error
	lat           []time.Duration
}

func TestSoak(t *testing.T) {
	cs := loadSettings(t)
	t.Logf("soak: %s, %d idle WebSockets, %d active clients pacing %s", cs.duration, cs.idle, cs.active, cs.pace)
	s := startScry(t, cs)
	ctx, cancel := context.WithTimeout(context.Background(), cs.duration+10*time.Minute)
	defer cancel()

	var v struct {
		WS string `json:"webSocketDebuggerUrl"`
	}
	resp, err := http.Get(s.url("/json/version"))
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	scryRSS0 := rss(s.cmd.Process.Pid)
	// The tree's PSS (see docs/soak.md); missing would read as 0.
	const chromeMem = "scry_chromium_pss_bytes"
	chromePSS0, ok := s.metrics(ctx)[chromeMem]
	if !ok {
		t.Fatalf("%s missing from /metrics", chromeMem)
	}

	// The idle crowd: browser-level WebSockets that say nothing for the
	// whole run, so only keepalive probes cross them.
	idle := make([]*cdpClient, 0, cs.idle)
	for i := range cs.idle {
		c, err := dial(ctx, v.WS)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}

	// The active clients: each opens its own tab and evaluates in it in a
	// loop until the soak ends.
	type tab struct {
		ID string `json:"id"`
		WS string `json:"webSocketDebuggerUrl"`
	}
	var calls atomic.Int64
	results := make([]*stats, cs.active)
	stop := time.Now().Add(cs.duration)
	var wg sync.WaitGroup
	for i := range cs.active {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.url("/json/new?about:blank"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("active client %d: new tab: %v", i, err)
		}
		var tb tab
		err = json.NewDecoder(resp.Body).Decode(&tb)
		resp.Body.Close()
		if err != nil || tb.WS == "" {
			t.Fatalf("active client %d: new tab: %v %+v", i, err, tb)
		}
		c, err := dial(ctx, tb.WS)
		if err != nil {
			t.Fatalf("active client %d: dial its tab: %v", i, err)
		}
		st := &stats{}
		results[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				st.dropped = c.dropped.Load() != nil
				c.close()
				if r, err := http.Get(s.url("/json/close/" + tb.ID)); err == nil {
					r.Body.Close()
				}
			}()
			for n := 0; time.Now().Before(stop); n++ {
				var r struct {
					Result struct {
						Value int `json:"value"`
					} `json:"result"`
				}
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				err := c.call(cctx, "Runtime.evaluate", map[string]any{"expression": fmt.Sprintf("%d + %d", i, n), "returnByValue": true}, &r)
				d := time.Since(t0)
				ccancel()
				st.calls++
				calls.Add(1)
				if err == nil && r.Result.Value != i+n {
					err = fmt.Errorf("Runtime.evaluate %d + %d = %d", i, n, r.Result.Value)
				}
				if err != nil {
					st.errors++
					if st.firstErr == nil {
						st.firstErr = err
					}
					if c.dropped.Load() != nil {
						return
					}
					continue
				}
				st.lat = append(st.lat, d)
				if cs.pace > 0 {
					time.Sleep(cs.pace) // the client's pace, not synchronisation
				}
			}
		}()
	}
	t.Logf("%d idle and %d active CDP WebSockets open; soaking until %s", len(idle), cs.active, stop.Format(time.TimeOnly))

	// Progress while the clients run.
	progressDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(cs.report)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				m := s.metrics(ctx)
				t.Logf("%6s: %d calls, %v CDP connections open, scry RSS %d MiB, chromium tree PSS %.0f MiB",
					time.Since(start).Round(time.Second), calls.Load(), m["scry_cdp_connections_open"], rss(s.cmd.Process.Pid)>>20, m[chromeMem]/(1<<20))
			}
		}
	}()
	wg.Wait()
	close(progressDone)

	// Every idle connection must still be there and still work.
	m := s.metrics(ctx)
	scryRSS1 := rss(s.cmd.Process.Pid)
	chromePSS1 := m[chromeMem]
	idleDrops, idleErrs := 0, 0
	var firstIdleErr error
	for _, c := range idle {
		if p := c.dropped.Load(); p != nil {
			idleDrops++
			if firstIdleErr == nil {
				firstIdleErr = *p
			}
			continue
		}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		var ver struct {
			Product string `json:"product"`
		}
		err := c.call(cctx, "Browser.getVersion", nil, &ver)
		ccancel()
		if err != nil || ver.Product == "" {
			idleErrs++
			if firstIdleErr == nil {
				firstIdleErr = fmt.Errorf("Browser.getVersion after the soak: %v", err)
			}
		}
	}
	closedDuring := s.count(`"msg":"cdp connection closed"`)
	for _, c := range idle {
		c.close()
	}

	var total, errs, drops int
	var lat []time.Duration
	var firstErr error
	for _, st := range results {
		total += st.calls
		errs += st.errors
		lat = append(lat, st.lat...)
		if st.firstErr != nil && firstErr == nil {
			firstErr = st.firstErr
		}
	}
	for _, st := range results {
		if st.dropped {
			drops++
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	mib := func(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
	report := fmt.Sprintf(`soak report
  duration                 %s (KEEPALIVE=%s)
  idle WebSockets          %d: %d dropped, %d failed Browser.getVersion at the end
  active clients           %d: %d dropped, %d Runtime.evaluate calls (%.0f/s), %d errors
  evaluate latency         p50 %s, p99 %s, max %s
  cdp connections closed   %d during the soak (want the %d active ones closing at the end, no others)
  scry RSS                 %s at start, %s at end
  chromium tree PSS        %s at start (1 tab), %s at end
  scry goroutines at end   %.0f`,
		cs.duration, cs.keepalive, cs.idle, idleDrops, idleErrs,
		cs.active, drops, total, float64(total)/cs.duration.Seconds(), errs,
		pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond),
		closedDuring, cs.active,
		mib(float64(scryRSS0)), mib(float64(scryRSS1)), mib(chromePSS0), mib(chromePSS1), m["go_goroutines"])
	t.Log(report)
	fmt.Println(report)

	if idleDrops > 0 || idleErrs > 0 {
		t.Errorf("idle WebSockets: %d dropped, %d broken; first: %v", idleDrops, idleErrs, firstIdleErr)
	}
	if errs > 0 || drops > 0 {
		t.Errorf("active clients: %d errors, %d connections dropped; first: %v", errs, drops, firstErr)
	}
	if closedDuring > cs.active {
		t.Errorf("%d CDP connections closed during the soak, want at most the %d active clients' own", closedDuring, cs.active)
	}

	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("scry exited %d after SIGTERM, want 0", code)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("scry still running 60s after SIGTERM")
	}
	if t.Failed() {
		t.Logf("scry log:\n%s", s.logText())
	}
}
