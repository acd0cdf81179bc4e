package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// probe is one answer from a health endpoint, or the error in its place.
type probe struct {
	at   time.Time // when the answer (or error) arrived
	code int       // 0: no HTTP answer
	err  error
}

// healthClient never reuses connections, so each probe sees the port's
// state now, and never waits long.
var healthClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

func probeOnce(s *Scry, path string) probe {
	resp, err := healthClient.Get(s.CDPURL() + path)
	p := probe{at: time.Now(), err: err}
	if err == nil {
		p.code = resp.StatusCode
		resp.Body.Close()
	}
	return p
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
	s := Start(t, Options{NoWait: true})

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

	// Stalled: Chromium stopped. Alive, not ready.
	pid := s.ChromiumPid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var contOnce sync.Once
	cont := func() { contOnce.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(cont) // a stopped Chromium would stall scry's shutdown
	waitFor(t, 30*time.Second, "/readyz 503 while Chromium is stopped", func() error {
		if p := probeOnce(s, "/readyz"); p.code != http.StatusServiceUnavailable {
			return fmt.Errorf("%d %v", p.code, p.err)
		}
		return nil
	})
	if p := probeOnce(s, "/healthz"); p.code != http.StatusOK {
		t.Errorf("stopped Chromium: /healthz = %d %v, want 200 (the process is alive)", p.code, p.err)
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

	// Dead: Chromium killed. Once the kernel has reaped it, /healthz never
	// says 200 again; scry closes its doors and exits.
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
	n := 0
	for !s.Exited() && time.Now().Before(deadline) {
		p := probeOnce(s, "/healthz")
		n++
		if p.code == http.StatusOK {
			t.Fatalf("/healthz answered 200 after Chromium died")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := s.Wait(30 * time.Second); code != 128+int(syscall.SIGKILL) {
		t.Errorf("scry exit %d after Chromium's SIGKILL, want %d", code, 128+int(syscall.SIGKILL))
	}
	t.Logf("dead: %d /healthz probes until scry exited, none 200", n)
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
	cctx, ccancel := attach(t, s)
	if err := chromedp.Do(cctx, chromedp.Navigate(site.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		ccancel()
		t.Fatal(err)
	}
	m, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m["scry_cdp_connections_open"] < 1 || m["scry_cdp_connections_total"] < 1 {
		t.Errorf("during a chromedp session: open %v, total %v; want both ≥ 1", m["scry_cdp_connections_open"], m["scry_cdp_connections_total"])
	}
	ccancel()
	waitFor(t, 30*time.Second, "the closed session counted", func() error {
		m, err = scrape(ctx, s, nil)
		if err != nil {
			return err
		}
		if m["scry_cdp_connections_open"] != 0 || m["scry_cdp_connection_duration_seconds_count"] < 1 {
			return fmt.Errorf("open %v, duration count %v", m["scry_cdp_connections_open"], m["scry_cdp_connection_duration_seconds_count"])
		}
		return nil
	})
	if in, out := m[`scry_cdp_bytes_total{direction="in"}`], m[`scry_cdp_bytes_total{direction="out"}`]; in <= 0 || out <= 0 {
		t.Errorf("bytes in %v out %v: want both > 0", in, out)
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

	// The browser and the build.
	if rss := m["scry_chromium_resident_memory_bytes"]; rss < 50<<20 {
		t.Errorf("scry_chromium_resident_memory_bytes %v, want > 50 MiB (the whole process tree)", rss)
	}
	if up := m["scry_chromium_uptime_seconds"]; up <= 0 {
		t.Errorf("scry_chromium_uptime_seconds %v, want > 0", up)
	}
	if k, v, ok := series(m, "scry_build_info{"); !ok || v != 1 || !strings.Contains(k, `goversion="go`) || !strings.Contains(k, `version="`) {
		t.Errorf("scry_build_info: %q %v %v, want a series with version and goversion, value 1", k, v, ok)
	}
	for _, name := range []string{"scry_cookie_snapshot_age_seconds", "scry_cookie_snapshot_cookies", "process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	// Scraping is not a CDP connection.
	if m["scry_cdp_connections_total"] != 1 {
		t.Errorf("scry_cdp_connections_total %v after one chromedp session and many scrapes, want 1", m["scry_cdp_connections_total"])
	}
}
