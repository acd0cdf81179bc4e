package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// Options sizes a run. Zero values take the defaults of OptionsFromEnv.
type Options struct {
	Conns int // fresh connections per path
	Evals int // Runtime.evaluate round-trips per path
	Shots int // screenshots per path
	// Progress, if not nil, is told what the bench is doing.
	Progress io.Writer
}

// OptionsFromEnv reads SCRY_BENCH_N, SCRY_BENCH_CONNS, SCRY_BENCH_EVALS and
// SCRY_BENCH_SHOTS; see the package doc.
func OptionsFromEnv() (Options, error) {
	n := 1000
	get := func(name string, def int) (int, error) {
		v := os.Getenv(name)
		if v == "" {
			return def, nil
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
		}
		return i, nil
	}
	var o Options
	var err error
	if n, err = get("SCRY_BENCH_N", n); err != nil {
		return o, err
	}
	d := Defaults(n)
	if o.Conns, err = get("SCRY_BENCH_CONNS", d.Conns); err != nil {
		return o, err
	}
	if o.Evals, err = get("SCRY_BENCH_EVALS", d.Evals); err != nil {
		return o, err
	}
	if o.Shots, err = get("SCRY_BENCH_SHOTS", d.Shots); err != nil {
		return o, err
	}
	return o, nil
}

// Defaults derives the three iteration counts from one base count n.
func Defaults(n int) Options {
	return Options{Conns: max(n/5, 10), Evals: n, Shots: max(n/33, 10)}
}

// Path is one way to Chromium's DevTools.
type Path struct {
	Name  string
	Addr  string // host:port, an IP so Chrome's Host check passes
	Token string // sent as "Authorization: Bearer" on discovery and the WebSocket; empty: none
}

// client is hc, adding the path's token to every request.
func (p Path) client(hc *http.Client) *http.Client {
	if p.Token == "" {
		return hc
	}
	c := *hc
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = bearer{token: p.Token, next: next}
	return &c
}

// bearer adds a token to each request, as a client configured with the
// Authorization header does.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Result holds one path's raw samples.
type Result struct {
	Path     Path
	Fresh    []time.Duration // discovery + WebSocket + Browser.getVersion + close
	Eval     []time.Duration // Runtime.evaluate("1+1") on a page session
	Shot     []time.Duration // Page.captureScreenshot, send to last byte read
	ShotPNG  int             // bytes of one PNG
	ShotWire int             // bytes of one reply message on the wire
}

// Summary is what the table prints for one path.
type Summary struct {
	FreshP50, FreshP99        time.Duration
	EvalP50, EvalP95, EvalP99 time.Duration
	ShotP50                   time.Duration
	ShotMBps                  float64 // PNG megabytes (1e6) per second of capturing, all shots
	ShotsPerSec               float64 // shots / total capture time (slow outliers count)
}

// Summary computes the path's figures.
func (r *Result) Summary() Summary {
	var total time.Duration
	for _, d := range r.Shot {
		total += d
	}
	s := Summary{
		FreshP50: percentile(r.Fresh, 0.50), FreshP99: percentile(r.Fresh, 0.99),
		EvalP50: percentile(r.Eval, 0.50), EvalP95: percentile(r.Eval, 0.95), EvalP99: percentile(r.Eval, 0.99),
		ShotP50: percentile(r.Shot, 0.50),
	}
	if total > 0 {
		s.ShotsPerSec = float64(len(r.Shot)) / total.Seconds()
		s.ShotMBps = s.ShotsPerSec * float64(r.ShotPNG) / 1e6
	}
	return s
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Report is one run's results, direct first.
type Report struct {
	Browser string
	Options Options
	Results []*Result
	Elapsed time.Duration
}

// Result returns the named path's result, or nil.
func (r *Report) Result(name string) *Result {
	for _, res := range r.Results {
		if res.Path.Name == name {
			return res
		}
	}
	return nil
}

// Run builds scry, starts the stack, measures every path and stops the
// stack again, whatever happens. Errors wrapping ErrUnavailable mean this
// machine cannot run the bench.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := scrytest.CheckTools("chromium", "Xvfb", "x11vnc", "go"); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "scry-bench-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	progress(o, "building scry")
	bin, err := scrytest.Build(ctx, tmp)
	if err != nil {
		return nil, err
	}
	progress(o, "starting scry (Xvfb + Chromium) and socat")
	st, err := StartStack(ctx, bin)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	paths := []Path{{Name: "direct", Addr: st.Direct}, {Name: "scry", Addr: st.Scry, Token: st.AdminToken},
		{Name: "agent", Addr: st.Scry, Token: st.AgentToken}}
	if st.Socat != "" {
		paths = append(paths, Path{Name: "socat", Addr: st.Socat})
	} else {
		progress(o, "socat not installed: measuring direct and scry (admin and agent tokens) only")
	}
	rep, err := Measure(ctx, paths, o)
	if err != nil {
		return nil, fmt.Errorf("%w\nscry's log:\n%s", err, st.LogTail())
	}
	return rep, nil
}

func progress(o Options, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "cdpbench: "+format+"\n", args...)
	}
}

// heavyPage fills the viewport with a canvas: gradients plus 4 bits of
// pseudo-random noise per channel, so the PNG is a few megabytes and
// Chrome cannot compress it away. The title turns "ready" when drawn.
const heavyPage = `<!doctype html><html><head><title>drawing</title></head>
<body style="margin:0;overflow:hidden"><canvas id=c style="display:block"></canvas><script>
const c=document.getElementById('c'),w=innerWidth,h=innerHeight;c.width=w;c.height=h;
const x=c.getContext('2d'),im=x.createImageData(w,h),d=im.data;let s=12345;
for(let y=0;y<h;y++)for(let i=0;i<w;i++){const k=(y*w+i)*4;s=(Math.imul(s,1103515245)+12345)>>>0;
d[k]=((i*255/w)|0)^(s&15);d[k+1]=((y*255/h)|0)^((s>>>8)&15);d[k+2]=((i+y)&255)^((s>>>16)&15);d[k+3]=255}
x.putImageData(im,0,0);requestAnimationFrame(()=>requestAnimationFrame(()=>{document.title='ready'}));
</script></body></html>`

// client is one path's long-lived connection: the browser socket with a
// flat session on the bench's page.
type client struct {
	c       *scrytest.CDP
	session string
}

// Measure runs the three measurements over paths, interleaved: in each
// iteration every path takes one turn, and the starting path rotates so
// none is always first. paths[0] is the baseline the ratios divide by.
func Measure(ctx context.Context, paths []Path, o Options) (*Report, error) {
	d := Defaults(1000)
	o.Conns, o.Evals, o.Shots = cmpOr(o.Conns, d.Conns), cmpOr(o.Evals, d.Evals), cmpOr(o.Shots, d.Shots)
	start := time.Now()
	m := &measurement{ctx: ctx, paths: paths, o: o, rep: &Report{Options: o}}
	hc := scrytest.NewHTTPClient()
	for _, p := range paths {
		m.rep.Results = append(m.rep.Results, &Result{Path: p})
		m.hcs = append(m.hcs, p.client(hc))
	}
	setup, target, err := m.openPage()
	if setup != nil {
		defer setup.Close()
	}
	if err != nil {
		return nil, err
	}
	defer setup.Call(context.WithoutCancel(ctx), "", "Target.closeTarget", map[string]any{"targetId": target}, nil)
	defer m.closeClients()
	if err := m.dialClients(target); err != nil {
		return nil, err
	}
	for _, step := range []func() error{m.fresh, m.evals, m.shots} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	m.rep.Elapsed = time.Since(start)
	return m.rep, nil
}

// measurement is one Measure run.
type measurement struct {
	ctx     context.Context
	paths   []Path
	o       Options
	rep     *Report
	hcs     []*http.Client // per path: fresh TCP connections, the path's token
	clients []*client
}

// openPage opens a page of the bench's own, in front, drawn once through
// the baseline, and returns the connection that opened it (to close it
// with) and its target.
func (m *measurement) openPage() (setup *scrytest.CDP, target string, err error) {
	ctx := m.ctx
	setup, err = scrytest.DialBrowser(ctx, m.hcs[0], m.paths[0].Addr)
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", m.paths[0].Name, err)
	}
	var ver struct{ Product string }
	if err := setup.Call(ctx, "", "Browser.getVersion", nil, &ver); err != nil {
		return setup, "", err
	}
	m.rep.Browser = ver.Product
	var created struct{ TargetID string }
	if err := setup.Call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
		return setup, "", err
	}
	_ = setup.Call(ctx, "", "Target.activateTarget", map[string]any{"targetId": created.TargetID}, nil)
	var att struct{ SessionID string }
	if err := setup.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &att); err != nil {
		return setup, created.TargetID, err
	}
	url := "data:text/html;base64," + base64.StdEncoding.EncodeToString([]byte(heavyPage))
	if err := setup.Call(ctx, att.SessionID, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		return setup, created.TargetID, err
	}
	if err := waitTitle(ctx, setup, att.SessionID, "ready", 30*time.Second); err != nil {
		return setup, created.TargetID, err
	}
	return setup, created.TargetID, nil
}

// dialClients opens each path's long-lived connection, attached to target.
func (m *measurement) dialClients(target string) error {
	m.clients = make([]*client, len(m.paths))
	for i, p := range m.paths {
		c, err := scrytest.DialBrowser(m.ctx, m.hcs[i], p.Addr)
		if err != nil {
			return fmt.Errorf("connect through %s: %w", p.Name, err)
		}
		m.clients[i] = &client{c: c}
		var a struct{ SessionID string }
		if err := c.Call(m.ctx, "", "Target.attachToTarget", map[string]any{"targetId": target, "flatten": true}, &a); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		m.clients[i].session = a.SessionID
	}
	return nil
}

func (m *measurement) closeClients() {
	for _, cl := range m.clients {
		if cl != nil {
			_ = cl.c.Close()
		}
	}
}

// interleave runs one turn per path per iteration, rotating the order:
// warm untimed iterations first, then n kept ones.
func (m *measurement) interleave(warm, n int, turn func(i int, keep bool) error) error {
	for it := range warm + n {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		for k := range m.paths {
			i := (it + k) % len(m.paths)
			if err := turn(i, it >= warm); err != nil {
				return fmt.Errorf("%s: %w", m.paths[i].Name, err)
			}
		}
	}
	return nil
}

// fresh measures fresh connections (discovery, WebSocket, one call).
func (m *measurement) fresh() error {
	progress(m.o, "fresh connections: %d per path", m.o.Conns)
	err := m.interleave(5, m.o.Conns, func(i int, keep bool) error {
		d, err := freshConn(m.ctx, m.hcs[i], m.paths[i].Addr)
		if err == nil && keep {
			m.rep.Results[i].Fresh = append(m.rep.Results[i].Fresh, d)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("fresh connection: %w", err)
	}
	return nil
}

// evals measures Runtime.evaluate round-trips on each path's page session.
func (m *measurement) evals() error {
	progress(m.o, "Runtime.evaluate round-trips: %d per path", m.o.Evals)
	params := map[string]any{"expression": "1+1", "returnByValue": true}
	err := m.interleave(50, m.o.Evals, func(i int, keep bool) error {
		cl := m.clients[i]
		id, msg, err := cl.c.Encode(cl.session, "Runtime.evaluate", params)
		if err != nil {
			return err
		}
		res, d, _, err := cl.c.RoundTrip(m.ctx, id, msg)
		if err != nil {
			return err
		}
		if !strings.Contains(string(res), `"value":2`) {
			return fmt.Errorf("evaluating 1+1 returned %s", res)
		}
		if keep {
			m.rep.Results[i].Eval = append(m.rep.Results[i].Eval, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// shots measures screenshots of the heavy page.
func (m *measurement) shots() error {
	progress(m.o, "screenshots: %d per path", m.o.Shots)
	params := map[string]any{"format": "png"}
	err := m.interleave(2, m.o.Shots, func(i int, keep bool) error {
		cl := m.clients[i]
		id, msg, err := cl.c.Encode(cl.session, "Page.captureScreenshot", params)
		if err != nil {
			return err
		}
		res, d, wire, err := cl.c.RoundTrip(m.ctx, id, msg)
		if err != nil {
			return err
		}
		var s struct{ Data string }
		if err := json.Unmarshal(res, &s); err != nil {
			return fmt.Errorf("decode screenshot: %w", err)
		}
		png, err := base64.StdEncoding.DecodeString(s.Data)
		if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
			return fmt.Errorf("screenshot is not a PNG (%d bytes, %v)", len(png), err)
		}
		r := m.rep.Results[i]
		r.ShotPNG, r.ShotWire = len(png), wire
		if keep {
			r.Shot = append(r.Shot, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// freshConn is what an agent does to start: discovery, WebSocket, one
// call, and a clean close.
func freshConn(ctx context.Context, hc *http.Client, addr string) (time.Duration, error) {
	start := time.Now()
	c, err := scrytest.DialBrowser(ctx, hc, addr)
	if err != nil {
		return 0, err
	}
	if err := c.Call(ctx, "", "Browser.getVersion", nil, nil); err != nil {
		_ = c.WS.CloseNow()
		return 0, err
	}
	if err := c.Close(); err != nil {
		return 0, fmt.Errorf("close: %w", err)
	}
	return time.Since(start), nil
}

func waitTitle(ctx context.Context, c *scrytest.CDP, session, want string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := scrytest.WaitFor(ctx, func() error {
		var r struct {
			Result struct{ Value string }
		}
		if err := c.Call(ctx, session, "Runtime.evaluate", map[string]any{"expression": "document.title", "returnByValue": true}, &r); err != nil {
			return err
		}
		if r.Result.Value != want {
			return fmt.Errorf("page title %q, want %q", r.Result.Value, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("page not drawn within %s: %w", limit, err)
	}
	return nil
}

// Targets are the goals of issue 2, as ratios to direct.
const (
	TargetEvalP50  = 1.10 // round-trip p50 through scry at most this × direct
	TargetFreshP50 = 1.5  // fresh connection p50 through scry at most this × direct
	TargetShot     = 0.95 // screenshot throughput through scry at least this × direct
)

// TargetAgent is issue 15's goal: a round trip on an agent-token
// connection (read command by command) at most this × one on an
// admin-token connection (spliced), in the same run.
const TargetAgent = 1.10

// WriteTable prints the comparison: absolute figures per path, ratios to
// the first path, and whether scry meets each target.
func (r *Report) WriteTable(w io.Writer) {
	if len(r.Results) == 0 {
		return
	}
	base := r.Results[0].Summary()
	o := r.Options
	fmt.Fprintf(w, "\n%s, %d paths interleaved: %d fresh connections, %d evals, %d screenshots per path (PNG %.2f MB, %.2f MB on the wire); %s\n\n",
		r.Browser, len(r.Results), o.Conns, o.Evals, o.Shots,
		float64(r.Results[0].ShotPNG)/1e6, float64(r.Results[0].ShotWire)/1e6, r.Elapsed.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tfresh p50\tfresh p99\teval p50\teval p99\tshot p50\tshot MB/s\tshots/s\t")
	for _, res := range r.Results {
		s := res.Summary()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t\n", res.Path.Name,
			ms(s.FreshP50), ms(s.FreshP99), us(s.EvalP50), us(s.EvalP99), ms(s.ShotP50), s.ShotMBps, s.ShotsPerSec)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t")
	fmt.Fprintf(tw, "× %s\tfresh p50\tfresh p99\teval p50\teval p99\tshot p50\tshot MB/s\t\t\n", r.Results[0].Path.Name)
	for _, res := range r.Results[1:] {
		s := res.Summary()
		fmt.Fprintf(tw, "%s\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t\t\n", res.Path.Name,
			ratio(s.FreshP50, base.FreshP50), ratio(s.FreshP99, base.FreshP99),
			ratio(s.EvalP50, base.EvalP50), ratio(s.EvalP99, base.EvalP99),
			ratio(s.ShotP50, base.ShotP50), s.ShotMBps/base.ShotMBps)
	}
	tw.Flush()
	if sc := r.Result("scry"); sc != nil {
		s := sc.Summary()
		fmt.Fprintf(w, "\nissue 2 targets for scry (a report, not a test):\n")
		check := func(name string, got, target float64, atMost bool) {
			ok := got <= target
			op := "≤"
			if !atMost {
				ok, op = got >= target, "≥"
			}
			verdict := "meets"
			if !ok {
				verdict = "MISSES"
			}
			fmt.Fprintf(w, "  %-28s %.2f× direct (target %s %.2f×): %s\n", name, got, op, target, verdict)
		}
		check("round-trip p50", ratio(s.EvalP50, base.EvalP50), TargetEvalP50, true)
		check("fresh connection p50", ratio(s.FreshP50, base.FreshP50), TargetFreshP50, true)
		check("screenshot throughput", s.ShotMBps/base.ShotMBps, TargetShot, false)
	}
	r.writeAgent(w)
	fmt.Fprintln(w)
}

// writeAgent compares the agent-token path with the admin-token one
// ("scry"), both through scry's bridge in the same run.
func (r *Report) writeAgent(w io.Writer) {
	admin, agent := r.Result("scry"), r.Result("agent")
	if admin == nil || agent == nil {
		return
	}
	ad, ag := admin.Summary(), agent.Summary()
	fmt.Fprintf(w, "\nissue 15 target, agent token × admin token (a report, not a test):\n")
	line := func(name string, a, b time.Duration, target bool) {
		unit := us
		if b >= 10*time.Millisecond {
			unit = ms
		}
		x := ratio(a, b)
		verdict := ""
		if target {
			verdict = fmt.Sprintf(" (target ≤ %.2f×): meets", TargetAgent)
			if !(x <= TargetAgent) {
				verdict = fmt.Sprintf(" (target ≤ %.2f×): MISSES by %.0f µs", TargetAgent, float64(a-time.Duration(float64(b)*TargetAgent))/1e3)
			}
		}
		fmt.Fprintf(w, "  %-22s agent %9s, admin %9s: %.2f×%s\n", name, unit(a), unit(b), x, verdict)
	}
	line("round-trip p50", ag.EvalP50, ad.EvalP50, true)
	line("round-trip p95", ag.EvalP95, ad.EvalP95, true)
	line("round-trip p99", ag.EvalP99, ad.EvalP99, false)
	line("screenshot p50", ag.ShotP50, ad.ShotP50, false)
	line("fresh connection p50", ag.FreshP50, ad.FreshP50, false)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }
func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + " µs" }
