package metrics

import (
	"os"
	"testing"
	"time"
)

// gather returns every series as name{label="v",...} → value.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			if len(s.GetLabel()) > 0 {
				key += "{"
				for i, l := range s.GetLabel() {
					if i > 0 {
						key += ","
					}
					key += l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "}"
			}
			switch {
			case s.Gauge != nil:
				out[key] = s.GetGauge().GetValue()
			case s.Counter != nil:
				out[key] = s.GetCounter().GetValue()
			case s.Histogram != nil:
				out[key] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Without cookie snapshots (SESSION_COOKIES=off) the cookie series are
// absent rather than a 0 that reads as "just snapshotted".
func TestCookieMetricsAbsentWithoutSnapshots(t *testing.T) {
	got := gather(t, New("test", Sources{}))
	for _, name := range []string{"scry_cookie_snapshot_age_seconds", "scry_cookie_snapshot_cookies", "scry_cookie_snapshot_failures_total"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s exported with no cookie snapshots", name)
		}
	}
}

func TestCookieMetrics(t *testing.T) {
	last := time.Now().Add(-90 * time.Second)
	got := gather(t, New("test", Sources{CookieSnapshot: func() (time.Time, int, uint64) { return last, 3, 2 }}))
	if age := got["scry_cookie_snapshot_age_seconds"]; age < 90 || age > 600 {
		t.Errorf("age %v, want about 90 s since the last success", age)
	}
	if n := got["scry_cookie_snapshot_cookies"]; n != 3 {
		t.Errorf("cookies %v, want 3", n)
	}
	if f := got["scry_cookie_snapshot_failures_total"]; f != 2 {
		t.Errorf("failures %v, want 2", f)
	}
}

// A closed connection's bytes land under the right direction, and the
// open gauge follows opens and closes.
func TestCDPConnectionCounted(t *testing.T) {
	m := New("test", Sources{})
	o := CDP{M: m}
	o.ConnOpened()
	o.ConnOpened()
	got := gather(t, m)
	if got["scry_cdp_connections_open"] != 2 || got[`scry_cdp_bytes_total{direction="in"}`] != 0 {
		t.Errorf("two open: %v open, %v bytes in; want 2 and nothing counted before a close", got["scry_cdp_connections_open"], got[`scry_cdp_bytes_total{direction="in"}`])
	}
	o.ConnClosed(2*time.Second, 10, 2000)
	got = gather(t, m)
	for k, want := range map[string]float64{
		"scry_cdp_connections_open":                             1,
		"scry_cdp_connections_total":                            2,
		`scry_cdp_bytes_total{direction="in"}`:                  10,
		`scry_cdp_bytes_total{direction="out"}`:                 2000,
		"scry_cdp_connection_duration_seconds":                  1,
		`scry_refused_requests_total{door="cdp",reason="host"}`: 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

func TestChromiumMemoryIsTheTreesPSS(t *testing.T) {
	got := gather(t, New("test", Sources{ChromiumPid: os.Getpid}))
	if v := got["scry_chromium_pss_bytes"]; v <= 0 {
		t.Errorf("scry_chromium_pss_bytes = %v for this process, want > 0", v)
	}
	if _, ok := got["scry_chromium_resident_memory_bytes"]; ok {
		t.Error("the old name is still exported")
	}
}
