//go:build soak

package soak

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
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

// startScry builds scry and runs it with the soak's settings.
func startScry(t *testing.T, cs settings) *scrytest.Scry {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := scrytest.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scrytest.Run(ctx, scrytest.Options{Bin: bin, Env: map[string]string{
		"KEEPALIVE": cs.keepalive,
		// Room for every soak connection; the default cap is 128.
		"CDP_MAX_CONNS": strconv.Itoa(cs.idle + cs.active + 16),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(60 * time.Second) })
	return s
}

func url(s *scrytest.Scry, path string) string { return "http://" + s.CDPAddr() + path }

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
func metrics(ctx context.Context, s *scrytest.Scry) map[string]float64 {
	m := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url(s, "/metrics"), nil)
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

// dropped reports whether a call's error ended its connection (the
// client's one-call-at-a-time reader gives up the socket on any error
// but the browser's own answer).
func dropped(err error) bool {
	var ce *scrytest.CDPError
	return err != nil && !errors.As(err, &ce)
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
	resp, err := http.Get(url(s, "/json/version"))
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	scryRSS0 := rss(s.Pid())
	// The tree's PSS (see docs/soak.md); missing would read as 0.
	const chromeMem = "scry_chromium_pss_bytes"
	chromePSS0, ok := metrics(ctx, s)[chromeMem]
	if !ok {
		t.Fatalf("%s missing from /metrics", chromeMem)
	}

	// The idle crowd: browser-level WebSockets that say nothing for the
	// whole run, so only keepalive probes cross them.
	idle := make([]*scrytest.CDP, 0, cs.idle)
	for i := range cs.idle {
		c, err := scrytest.Dial(ctx, nil, v.WS)
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
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url(s, "/json/new?about:blank"), nil)
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
		c, err := scrytest.Dial(ctx, nil, tb.WS)
		if err != nil {
			t.Fatalf("active client %d: dial its tab: %v", i, err)
		}
		st := &stats{}
		results[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				_ = c.Close()
				if r, err := http.Get(url(s, "/json/close/"+tb.ID)); err == nil {
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
				err := c.Call(cctx, "", "Runtime.evaluate", map[string]any{"expression": fmt.Sprintf("%d + %d", i, n), "returnByValue": true}, &r)
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
					if dropped(err) {
						st.dropped = true
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
				m := metrics(ctx, s)
				t.Logf("%6s: %d calls, %v CDP connections open, scry RSS %d MiB, chromium tree PSS %.0f MiB",
					time.Since(start).Round(time.Second), calls.Load(), m["scry_cdp_connections_open"], rss(s.Pid())>>20, m[chromeMem]/(1<<20))
			}
		}
	}()
	wg.Wait()
	close(progressDone)

	// Every idle connection must still be there and still work.
	m := metrics(ctx, s)
	scryRSS1 := rss(s.Pid())
	chromePSS1 := m[chromeMem]
	idleDrops, idleErrs := 0, 0
	var firstIdleErr error
	for _, c := range idle {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		var ver struct {
			Product string `json:"product"`
		}
		err := c.Call(cctx, "", "Browser.getVersion", nil, &ver)
		ccancel()
		if dropped(err) {
			idleDrops++
			if firstIdleErr == nil {
				firstIdleErr = fmt.Errorf("the connection ended: %v", err)
			}
			continue
		}
		if err != nil || ver.Product == "" {
			idleErrs++
			if firstIdleErr == nil {
				firstIdleErr = fmt.Errorf("Browser.getVersion after the soak: %v", err)
			}
		}
	}
	closedDuring := s.Count(`"msg":"cdp connection closed"`)
	for _, c := range idle {
		_ = c.Close()
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

	s.Signal(syscall.SIGTERM)
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if code, err := s.Wait(wctx); err != nil {
		t.Error(err)
	} else if code != 0 {
		t.Errorf("scry exited %d after SIGTERM, want 0", code)
	}
	if t.Failed() {
		t.Logf("scry log:\n%s", s.Log())
	}
}
