// Package metrics exposes scry's Prometheus metrics: both doors' traffic,
// refusals, child restarts, Chromium's uptime and memory, and the cookie
// snapshots' health.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources are read at scrape time.
type Sources struct {
	VNCViewers      func() int
	VNCLogins       func() int
	VNCViewersTotal func() uint64
	// ChromiumPid returns the browser's pid, 0 if it is not running.
	ChromiumPid     func() int
	ChromiumStarted func() time.Time
	// CookieSnapshot, nil when scry keeps no snapshots
	// (SESSION_COOKIES=off), returns when a snapshot last succeeded (the
	// jar read, and written if it changed; before the first, when the
	// store started), how many cookies the snapshot holds and how many
	// snapshots failed.
	CookieSnapshot func() (last time.Time, cookies int, failures uint64)
}

// Metrics holds the collectors scry updates as things happen.
type Metrics struct {
	reg         *prometheus.Registry
	cdpOpen     prometheus.Gauge
	cdpTotal    prometheus.Counter
	cdpBytes    *prometheus.CounterVec
	cdpDuration prometheus.Histogram
	refused     *prometheus.CounterVec
	refusedCmds *prometheus.CounterVec
	restarts    *prometheus.CounterVec
}

// New builds the registry. version is scry's build version.
func New(version string, src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.cdpOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: "scry_cdp_connections_open", Help: "CDP WebSocket connections open through the bridge."})
	m.cdpTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "scry_cdp_connections_total", Help: "CDP WebSocket connections accepted since start."})
	m.cdpBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_cdp_bytes_total", Help: "Bytes spliced through the CDP bridge, by direction (in: client to Chromium, out: Chromium to client). Added when a connection closes, so a long-lived connection's bytes appear only at its end; discovery requests are not counted."}, []string{"direction"})
	m.cdpDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "scry_cdp_connection_duration_seconds", Help: "How long CDP connections lasted.",
		Buckets: []float64{0.1, 1, 10, 60, 600, 3600, 6 * 3600, 24 * 3600}})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_refused_requests_total", Help: "Requests refused, by door and reason (cdp: host, origin, token, role, limit, bad_request; novnc: host, origin, upgrade, limit, password, handshake, evicted)."}, []string{"door", "reason"})
	m.refusedCmds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_cdp_refused_commands_total", Help: "CDP commands scry refused and answered itself, by the token's role and the method (one scry knows, or \"other\")."}, []string{"role", "method"})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scry_child_restarts_total", Help: "Child process restarts, by process."}, []string{"proc"})
	for _, r := range CDPRefusals {
		m.refused.WithLabelValues("cdp", r)
	}
	for _, r := range NoVNCRefusals {
		m.refused.WithLabelValues("novnc", r)
	}
	m.restarts.WithLabelValues("x11vnc")
	m.cdpBytes.WithLabelValues("in")
	m.cdpBytes.WithLabelValues("out")

	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "scry_build_info", Help: "scry's version.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	build.Set(1)

	m.reg.MustRegister(m.cdpOpen, m.cdpTotal, m.cdpBytes, m.cdpDuration, m.refused, m.refusedCmds, m.restarts, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.VNCViewers != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_vnc_viewers_open", Help: "noVNC viewers logged in and connected now."},
			func() float64 { return float64(src.VNCViewers()) }))
	}
	if src.VNCLogins != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_vnc_logins_in_progress", Help: "noVNC viewers connected but not yet logged in (RFB handshake in progress)."},
			func() float64 { return float64(src.VNCLogins()) }))
	}
	if src.VNCViewersTotal != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "scry_vnc_viewers_total", Help: "noVNC viewers accepted since start."},
			func() float64 { return float64(src.VNCViewersTotal()) }))
	}
	if src.ChromiumStarted != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_chromium_uptime_seconds", Help: "Seconds since Chromium started."},
			func() float64 {
				t := src.ChromiumStarted()
				if t.IsZero() {
					return 0
				}
				return time.Since(t).Seconds()
			}))
	}
	if src.ChromiumPid != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_chromium_pss_bytes",
			Help: "Memory of Chromium's whole process tree (the browser and every descendant: zygotes, renderers, GPU and utility processes), " +
				"as the sum of their proportional set sizes (PSS), so a page shared between processes counts once. Not RSS, which would count shared pages once per process."},
			func() float64 { return float64(TreePSS(src.ChromiumPid())) }))
	}
	if src.CookieSnapshot != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_cookie_snapshot_age_seconds",
				Help: "Seconds since a cookie snapshot last succeeded (the jar read over CDP, and written if it changed), counted from start until the first; " +
					"it grows while snapshots fail. Snapshots run every SESSION_COOKIE_INTERVAL and after navigations."},
				func() float64 {
					t, _, _ := src.CookieSnapshot()
					if t.IsZero() {
						return 0
					}
					return time.Since(t).Seconds()
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scry_cookie_snapshot_cookies", Help: "Cookies (session and persistent) in the last snapshot written or restored."},
				func() float64 { _, n, _ := src.CookieSnapshot(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "scry_cookie_snapshot_failures_total", Help: "Cookie snapshots that failed (Chromium unreachable or the file not written)."},
				func() float64 { _, _, f := src.CookieSnapshot(); return float64(f) }))
	}
	return m
}

// Register adds another package's collectors (the handoffs', say).
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Refused counts a refused request.
func (m *Metrics) Refused(door, reason string) { m.refused.WithLabelValues(door, reason).Inc() }

// CDPRefusals are the agent door's refusal reasons (cdpproxy.Observer).
var CDPRefusals = []string{"host", "origin", "token", "role", "limit", "bad_request"}

// NoVNCRefusals are the human door's refusal reasons (novnc.Config.OnRefused):
// a wrong VNC password is "password", one not checked because its address
// guessed too often "throttled", a login in progress cut to make room for a
// newer one "evicted".
var NoVNCRefusals = []string{"host", "origin", "upgrade", "limit", "password", "throttled", "handshake", "evicted"}

// NoVNCRefused counts a refusal on the human door.
func (m *Metrics) NoVNCRefused(reason string) { m.Refused("novnc", reason) }

// Restarted counts a child restart.
func (m *Metrics) Restarted(proc string) { m.restarts.WithLabelValues(proc).Inc() }

// CDP adapts Metrics to the CDP bridge's observer.
type CDP struct{ M *Metrics }

// Refused implements cdpproxy.Observer.
func (c CDP) Refused(reason string) { c.M.Refused("cdp", reason) }

// RefusedCommand implements cdpproxy.Observer: method is already bounded
// (cdprole.MethodLabel).
func (c CDP) RefusedCommand(role, method string) { c.M.refusedCmds.WithLabelValues(role, method).Inc() }

// ConnOpened implements cdpproxy.Observer.
func (c CDP) ConnOpened() { c.M.cdpOpen.Inc(); c.M.cdpTotal.Inc() }

// ConnClosed implements cdpproxy.Observer.
func (c CDP) ConnClosed(d time.Duration, in, out int64) {
	// Bytes and duration first, the open gauge last: a scrape that sees
	// the connection gone also sees everything it carried.
	c.M.cdpBytes.WithLabelValues("in").Add(float64(in))
	c.M.cdpBytes.WithLabelValues("out").Add(float64(out))
	c.M.cdpDuration.Observe(d.Seconds())
	c.M.cdpOpen.Dec()
}
