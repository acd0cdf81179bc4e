package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// probe is one answer from a health endpoint, or the error in its place.
type probe struct {
	at   time.Time // when the answer (or error) arrived
	code int       // 0: no HTTP answer
	err  error
}

// Probe budgets, as a kubelet would enforce them with timeoutSeconds:
// /healthz must answer within Kubernetes' default 1 s; /readyz gives up on
// Chromium after 3 s and must say so, 503, within a second more (the
// manifests advise timeoutSeconds: 5 for it).
var probeTimeout = map[string]time.Duration{
	"/healthz": 1 * time.Second,
	"/readyz":  4 * time.Second,
}

// probeClients never reuse connections, so each probe sees the port's
// state now, and never wait past the path's budget.
var probeClients = map[string]*http.Client{}

func init() {
	for path, d := range probeTimeout {
		probeClients[path] = &http.Client{Timeout: d, Transport: &http.Transport{DisableKeepAlives: true}}
	}
}

func probeOnce(s *Scry, path string) probe {
	resp, err := probeClients[path].Get(s.CDPURL() + path)
	p := probe{at: time.Now(), err: err}
	if err == nil {
		p.code = resp.StatusCode
		resp.Body.Close()
	}
	return p
}

// tcpConn is one socket in /proc/net/tcp{,6}.
type tcpConn struct {
	local, remote int // ports
	state         string
	inode         string
}

// loopbackConns lists every TCP socket with port at either end, in any
// state: a connection closed a moment ago still shows (TIME_WAIT) on the
// side that closed it first.
func loopbackConns(t *testing.T, port int) []tcpConn {
	t.Helper()
	var out []tcpConn
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fl := strings.Fields(line)
			if len(fl) < 10 {
				continue
			}
			hexPort := func(addr string) int {
				i := strings.LastIndexByte(addr, ':')
				n, _ := strconv.ParseInt(addr[i+1:], 16, 32)
				return int(n)
			}
			c := tcpConn{local: hexPort(fl[1]), remote: hexPort(fl[2]), state: fl[3], inode: fl[9]}
			if c.local == port || c.remote == port {
				out = append(out, c)
			}
		}
	}
	return out
}

// socketInodes are the sockets pid has open.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// internalConns returns scry's established connections to Chromium's
// CDP port (by inode) and the client-side ports of every connection to
// that port in any state.
func internalConns(t *testing.T, s *Scry) (established map[string]bool, ports map[int]bool) {
	t.Helper()
	internal, err := strconv.Atoi(s.Env["CDP_INTERNAL_PORT"])
	if err != nil {
		t.Fatal(err)
	}
	mine := socketInodes(t, s.Pid())
	established, ports = map[string]bool{}, map[int]bool{}
	for _, c := range loopbackConns(t, internal) {
		if c.remote == internal {
			ports[c.local] = true
			if c.state == "01" && mine[c.inode] { // TCP_ESTABLISHED
				established[c.inode] = true
			}
		} else {
			ports[c.remote] = true
		}
	}
	return established, ports
}

// recordTime returns the time of the first log record with msg.
func recordTime(t *testing.T, s *Scry, msg string) time.Time {
	t.Helper()
	for _, r := range s.Records() {
		if r["msg"] == msg {
			ts, _ := r["time"].(string)
			tm, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				t.Fatalf("log record %q has time %q: %v", msg, ts, err)
			}
			return tm
		}
	}
	t.Fatalf("no log record %q", msg)
	return time.Time{}
}

func TestHealthStates(t *testing.T) {
	// The agent door's port is named (and held, see freePort), not 0: the
	// starting state is probed before the door opens.
	s := Start(t, Options{NoWait: true, Env: map[string]string{"CDP_PORT": strconv.Itoa(freePort(t))}})

	// Starting: poll both endpoints until scry says it is ready.
	var probes []probe
	for !s.HasLog(`"msg":"scry ready"`) {
		if s.Exited() {
			t.Fatalf("scry exited while starting:\n%s", s.Log())
		}
		if len(probes) > 20000 {
			t.Fatalf("scry not ready after %d probes", len(probes))
		}
		probes = append(probes, probeOnce(s, "/readyz"), probeOnce(s, "/healthz"))
		time.Sleep(10 * time.Millisecond)
	}
	s.WaitReady(time.Second)
	chromiumReady := recordTime(t, s, "chromium ready")
	doorOpen := recordTime(t, s, "agent door open")
	refused, answered := 0, 0
	for _, p := range probes {
		switch {
		case p.code == 0 && errors.Is(p.err, syscall.ECONNREFUSED):
			refused++
		case p.code == 0:
			t.Errorf("while starting: %v, want connection refused", p.err)
		default:
			answered++
			// The door opens only once Chromium answers CDP; scry logs
			// "agent door open" right after it starts serving, so a probe
			// may win that race by a hair, never by more.
			if p.at.Before(chromiumReady) || p.at.Before(doorOpen.Add(-time.Second)) {
				t.Errorf("HTTP %d at %s, before the door opened (chromium ready %s, agent door open %s)",
					p.code, p.at.Format(time.StampMicro), chromiumReady.Format(time.StampMicro), doorOpen.Format(time.StampMicro))
			}
		}
	}
	if refused == 0 {
		t.Errorf("never saw the starting state (connection refused) in %d probes", len(probes))
	}
	t.Logf("starting: %d probes refused, %d answered in the moment between the door opening and the ready line", refused, answered)

	// Ready.
	for _, path := range []string{"/healthz", "/readyz"} {
		if p := probeOnce(s, path); p.code != http.StatusOK {
			t.Errorf("ready: %s = %d %v, want 200", path, p.code, p.err)
		}
	}

	// /readyz rides scry's one persistent connection: 20 probes open no
	// connection to Chromium's port (a dial per probe would leave one
	// socket per probe behind, at least in TIME_WAIT), and the
	// established one is still there.
	est0, ports0 := internalConns(t, s)
	if len(est0) == 0 {
		t.Errorf("ready: scry has no established connection to Chromium's CDP port")
	}
	for i := range 20 {
		if p := probeOnce(s, "/readyz"); p.code != http.StatusOK {
			t.Fatalf("ready: /readyz probe %d = %d %v, want 200", i, p.code, p.err)
		}
	}
	est1, ports1 := internalConns(t, s)
	var opened []int
	for p := range ports1 {
		if !ports0[p] {
			opened = append(opened, p)
		}
	}
	if len(opened) > 0 {
		t.Errorf("20 /readyz probes opened %d connections to Chromium's CDP port (client ports %v), want none", len(opened), opened)
	}
	kept := 0
	for ino := range est0 {
		if est1[ino] {
			kept++
		}
	}
	if kept == 0 {
		t.Errorf("scry's established connections to Chromium changed across 20 probes: %v then %v", est0, est1)
	}
	t.Logf("ready: scry holds %d established connection(s) to Chromium's CDP port (its CDP connection; an idle keep-alive from start-up's discovery may linger); 20 probes opened %d", len(est1), len(opened))

	// Stalled: Chromium stopped. Alive, not ready.
	pid := s.ChromiumPid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var contOnce sync.Once
	cont := func() { contOnce.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(cont) // a stopped Chromium would stall scry's shutdown
	// The stop reaches /readyz at once: its check is a CDP call with a
	// 3 s deadline, answered 503 within the client's 4 s.
	for i := range 3 {
		if p := probeOnce(s, "/readyz"); p.code != http.StatusServiceUnavailable {
			t.Errorf("stopped Chromium: /readyz probe %d = %d %v, want 503 within %s", i, p.code, p.err, probeTimeout["/readyz"])
		}
		if p := probeOnce(s, "/healthz"); p.code != http.StatusOK {
			t.Errorf("stopped Chromium: /healthz = %d %v, want 200 within %s (the process is alive)", p.code, p.err, probeTimeout["/healthz"])
		}
	}
	cont()
	waitFor(t, 30*time.Second, "/readyz 200 again after SIGCONT", func() error {
		if p := probeOnce(s, "/readyz"); p.code != http.StatusOK {
			return fmt.Errorf("%d %v", p.code, p.err)
		}
		return nil
	})
	if p := probeOnce(s, "/healthz"); p.code != http.StatusOK {
		t.Errorf("after SIGCONT: /healthz = %d %v, want 200", p.code, p.err)
	}

	// Dead: Chromium killed. Once the kernel has reaped it neither
	// endpoint says 200 again: /healthz answers 503 (the process is gone)
	// until scry, which exits when Chromium does, closes the port.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "chromium reaped", func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return errors.New("still in /proc")
		}
		return nil
	})
	deadline := time.Now().Add(60 * time.Second)
	counts := map[string]int{}
	for !s.Exited() && time.Now().Before(deadline) {
		for _, path := range []string{"/healthz", "/readyz"} {
			p := probeOnce(s, path)
			switch {
			case p.code == http.StatusOK:
				t.Fatalf("%s answered 200 after Chromium died", path)
			case p.code == http.StatusServiceUnavailable:
				counts[path+" 503"]++
			case p.code != 0:
				t.Errorf("dead Chromium: %s = %d, want 503 or the port closed", path, p.code)
			case errors.Is(p.err, syscall.ECONNREFUSED):
				counts[path+" refused"]++
			default: // the door closing under a request in flight
				counts[path+" cut"]++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := s.Wait(30 * time.Second); code != 128+int(syscall.SIGKILL) {
		t.Errorf("scry exit %d after Chromium's SIGKILL, want %d", code, 128+int(syscall.SIGKILL))
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if p := probeOnce(s, path); !errors.Is(p.err, syscall.ECONNREFUSED) {
			t.Errorf("after scry exited: %s = %d %v, want the port closed", path, p.code, p.err)
		}
	}
	t.Logf("dead: until scry exited, none 200: %v", counts)
}

func TestMetricsCountRealTraffic(t *testing.T) {
	s := Start(t, Options{})
	site := testSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m0, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scry_cdp_connections_open", "scry_cdp_connections_total", "scry_vnc_viewers_open", "scry_vnc_viewers_total",
		`scry_child_restarts_total{proc="x11vnc"}`, `scry_cdp_bytes_total{direction="in"}`, `scry_cdp_bytes_total{direction="out"}`,
		"scry_cdp_connection_duration_seconds_count"} {
		if v, ok := m0[name]; !ok || v != 0 {
			t.Errorf("before any traffic: %s = %v (present %v), want 0", name, v, ok)
		}
	}

	// A real chromedp session: open while it runs, counted once it ends.
	// It fetches a 1 MiB string, so Chromium-to-client bytes ("out") must
	// dwarf the client's commands ("in").
	cctx, ccancel := attach(t, s)
	if err := chromedp.Do(cctx, chromedp.Navigate(site.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		ccancel()
		t.Fatal(err)
	}
	big, err := chromedp.Run(cctx, chromedp.Evaluate[string](`'x'.repeat(1 << 20)`))
	if err != nil {
		ccancel()
		t.Fatal(err)
	}
	if len(big) != 1<<20 {
		t.Fatalf("evaluate returned %d bytes, want 1 MiB", len(big))
	}
	m, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m["scry_cdp_connections_open"] < 1 || m["scry_cdp_connections_total"] < 1 {
		t.Errorf("during a chromedp session: open %v, total %v; want both ≥ 1", m["scry_cdp_connections_open"], m["scry_cdp_connections_total"])
	}
	ccancel()
	// A scrape is not a snapshot: Prometheus gathers each series on its
	// own, so one scrape can see the connection closed and its duration
	// observed but not yet its bytes, added a moment before. Wait on each.
	waitFor(t, 30*time.Second, "the closed session counted", func() error {
		m, err = scrape(ctx, s, nil)
		if err != nil {
			return err
		}
		in, out := m[`scry_cdp_bytes_total{direction="in"}`], m[`scry_cdp_bytes_total{direction="out"}`]
		if m["scry_cdp_connections_open"] != 0 || m["scry_cdp_connection_duration_seconds_count"] < 1 || in <= 0 || out < 1<<20 {
			return fmt.Errorf("open %v, duration count %v, bytes in %v out %v", m["scry_cdp_connections_open"], m["scry_cdp_connection_duration_seconds_count"], in, out)
		}
		return nil
	})
	if in, out := m[`scry_cdp_bytes_total{direction="in"}`], m[`scry_cdp_bytes_total{direction="out"}`]; in > out/4 {
		t.Errorf("bytes in %v out %v: want out (≥ 1 MiB, the evaluated string) far above in", in, out)
	}
	if m["scry_cdp_connection_duration_seconds_sum"] <= 0 {
		t.Errorf("duration sum %v, want > 0", m["scry_cdp_connection_duration_seconds_sum"])
	}

	// A viewer.
	v, err := viewer(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	if m, err = scrape(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if m["scry_vnc_viewers_open"] != 1 || m["scry_vnc_viewers_total"] != 1 {
		t.Errorf("with one viewer: open %v total %v, want 1 and 1", m["scry_vnc_viewers_open"], m["scry_vnc_viewers_total"])
	}
	v.Close()
	waitFor(t, 20*time.Second, "viewer gone from scry_vnc_viewers_open", func() error {
		if m, err = scrape(ctx, s, nil); err != nil {
			return err
		}
		if m["scry_vnc_viewers_open"] != 0 || m["scry_vnc_viewers_total"] != 1 {
			return fmt.Errorf("open %v total %v", m["scry_vnc_viewers_open"], m["scry_vnc_viewers_total"])
		}
		return nil
	})

	// x11vnc killed and restarted.
	if err := syscall.Kill(vncPid(t, s, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "x11vnc restart counted", func() error {
		if m, err = scrape(ctx, s, nil); err != nil {
			return err
		}
		if got := m[`scry_child_restarts_total{proc="x11vnc"}`]; got != 1 {
			return fmt.Errorf("restarts %v", got)
		}
		return nil
	})

	// Refusals, from real requests: a DNS-rebinding Host and a web page's
	// Origin on a WebSocket upgrade.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.CDPURL()+"/json/version", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = fmt.Sprintf("rebind.example:%d", s.CDPPort)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("rebinding Host: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	ws := browserWS(t, ctx, s, "", nil)
	if c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}}); err == nil {
		c.CloseNow()
		t.Error("WebSocket with a foreign Origin accepted")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket with a foreign Origin: %v %v, want 403", resp, err)
	}
	if m, err = scrape(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"host", "origin"} {
		if got := m[`scry_refused_requests_total{door="cdp",reason="`+reason+`"}`]; got != 1 {
			t.Errorf("refused %s: %v, want 1", reason, got)
		}
	}

	// The browser's memory is its whole tree's: well above the browser
	// process alone (renderer, GPU and utility processes, zygotes).
	browserOnly := pssOf(t, s.ChromiumPid)
	if tree := m["scry_chromium_pss_bytes"]; tree < float64(browserOnly+20<<20) {
		t.Errorf("scry_chromium_pss_bytes %.0f MiB, the browser process alone %d MiB: want the whole tree, at least 20 MiB more", tree/(1<<20), browserOnly>>20)
	} else {
		t.Logf("chromium PSS: tree %.0f MiB, browser process alone %d MiB", tree/(1<<20), browserOnly>>20)
	}
	if up := m["scry_chromium_uptime_seconds"]; up <= 0 {
		t.Errorf("scry_chromium_uptime_seconds %v, want > 0", up)
	}
	if k, v, ok := series(m, "scry_build_info{"); !ok || v != 1 || !strings.Contains(k, `goversion="go`) || !strings.Contains(k, `version="`) {
		t.Errorf("scry_build_info: %q %v %v, want a series with version and goversion, value 1", k, v, ok)
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}

	// Cookies: a page that sets one; the navigation's snapshot counts it
	// and the age restarts from that success.
	jar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "metric", Value: "1", Path: "/"})
		fmt.Fprint(w, "<!doctype html><title>cookie</title>set")
	}))
	defer jar.Close()
	cctx, ccancel = attach(t, s)
	err = chromedp.Do(cctx, chromedp.Navigate(jar.URL))
	ccancel()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the cookie in the snapshot's metrics", func() error {
		if m, err = scrape(ctx, s, nil); err != nil {
			return err
		}
		if n, age := m["scry_cookie_snapshot_cookies"], m["scry_cookie_snapshot_age_seconds"]; n < 1 || age > 10 {
			return fmt.Errorf("cookies %v, age %v s", n, age)
		}
		return nil
	})
	if f, ok := m["scry_cookie_snapshot_failures_total"]; !ok || f != 0 {
		t.Errorf("scry_cookie_snapshot_failures_total %v (present %v), want 0", f, ok)
	}
	// Scraping is not a CDP connection, and refused upgrades are not
	// connections either.
	if m["scry_cdp_connections_total"] != 2 {
		t.Errorf("scry_cdp_connections_total %v after two chromedp sessions, refusals and many scrapes, want 2", m["scry_cdp_connections_total"])
	}
}

// pssOf is one process's proportional set size, from smaps_rollup.
func pssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no Pss in /proc/%d/smaps_rollup", pid)
	return 0
}
