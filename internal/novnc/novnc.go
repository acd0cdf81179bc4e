// Package novnc is scry's human door: one http.Handler for NOVNC_PORT.
//
//	/            scry's viewer page (connects, scales, asks for the password,
//	             reconnects; works under a path prefix and through TLS)
//	/websockify  WebSocket frames <-> x11vnc's RFB port; viewers authenticate
//	             to scry, scry to x11vnc with a password only it knows
//	             (package rfbauth)
//	/vnc.html    noVNC's own UI; of noVNC's other files only those the pages
//	             load (pageFile)
//
// Logins are bounded by HandshakeTimeout and PasswordTimeout and capped
// (logins); password guesses per address and in total (guesses). The
// bridge itself never times out: TCP keepalive finds dead peers. Passwords
// and pasted text are never logged.
package novnc

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/ratelog"
	"github.com/dataplanelabs/scry/internal/relay"
	"github.com/dataplanelabs/scry/internal/rfbauth"
)

// Defaults for Config's zero values.
const (
	DefaultStaticDir   = "/usr/share/novnc"
	DefaultVNCAddr     = "127.0.0.1:5900"
	DefaultDialTimeout = 5 * time.Second
	DefaultFailDelay   = time.Second

	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPasswordTimeout  = 2 * time.Minute
	DefaultRequestTimeout   = 10 * time.Second
)

// keepAlive is the TCP keepalive on both legs of the bridge: start probing
// after 30s idle, probe every 10s, give up after 3 misses.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}

// copyBufSize caps each WebSocket message sent to a viewer. A read returns
// what x11vnc has sent so far, so small updates are not delayed; a large
// cap lets a full-screen update go in few messages, and the per-message cost
// (syscalls, wakeups) dominates the bridge's CPU: in BenchmarkFramebuffer,
// 32 KiB cost 1.3 ms/MB, 256 KiB 0.65 and 1 MiB 0.5. Pooled, so one per
// active copy.
var copyBufSize = 1 << 20

//go:embed index.html
var indexHTML []byte

// Config configures a Handler.
type Config struct {
	// StaticDir holds noVNC's files (vnc.html, core/rfb.js, ...); empty
	// means DefaultStaticDir. Set from NOVNC_DIR.
	StaticDir string
	// VNCAddr is x11vnc's RFB address; empty means DefaultVNCAddr.
	VNCAddr string
	// Logger receives connect, disconnect and refusal records (info and
	// warn), and access records (debug): one per request, one per viewer;
	// nil discards them.
	Logger *slog.Logger
	// MaxViewers caps concurrent viewers; 0 or negative means no cap.
	MaxViewers int
	// DialTimeout bounds connecting to x11vnc; 0 or negative means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the machine-paced steps of a viewer's RFB
	// login: from scry's ProtocolVersion to the viewer's choice of
	// security type (with type None, the whole login). 0 or negative
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// PasswordTimeout bounds the password prompt: from the VNC
	// authentication challenge to the viewer's answer, while a human
	// types. 0 or negative means DefaultPasswordTimeout.
	PasswordTimeout time.Duration
	// RequestTimeout bounds reading a request once its headers are in,
	// except a WebSocket upgrade once it is done. 0 or negative means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// OnRefused, if not nil, is told the reason of every refusal: "host"
	// (Host header), "origin" (cross-origin WebSocket), "upgrade" (a bad
	// WebSocket upgrade), "limit" (too many viewers), "password" (a wrong
	// VNC password), "throttled" (a password not checked: its address's
	// turn would come too late), "handshake" (a broken or stalled RFB
	// handshake) or "evicted" (a login in progress cut to make room for a
	// newer one).
	OnRefused func(reason string)
	// KeepAlive applies to both legs of every bridge; the zero value
	// means 30 s idle, 10 s interval, 3 probes.
	KeepAlive net.KeepAliveConfig
	// CheckHost, if not nil, vets every request's Host header, so that a
	// web page cannot DNS-rebind onto the login view. nil accepts any.
	CheckHost func(hostport string) error
	// Password is what viewers must answer VNC authentication with
	// (VNC_PASSWORD); empty offers security type None.
	Password string
	// ServerPassword is x11vnc's own password, which only scry knows, so
	// that nothing but this bridge can use x11vnc; empty expects x11vnc
	// to offer None (tests and benchmarks only).
	ServerPassword string
	// FailDelay paces password guessing (see guesses): after a wrong
	// password, that address's next answer is checked no sooner than
	// FailDelay later, doubling with each further failure up to 60 times
	// FailDelay, and all addresses together get at most 60 wrong answers
	// per 60 times FailDelay (a minute by default). A right answer never
	// waits for other addresses' failures. 0 means DefaultFailDelay,
	// negative no pacing.
	FailDelay time.Duration
	// OnCutText, if not nil, receives the Latin-1 text of every paste a
	// viewer sends (RFB ClientCutText, up to 256 KiB), so that scry can
	// put it on the remote X clipboard; see package clipboard. It runs on
	// the viewer's input path: keep it short.
	OnCutText func(text []byte)
	// Routes are more pages on this door (http.ServeMux patterns, e.g.
	// "GET /h/{secret}"), behind the Host check: handoff links.
	Routes map[string]http.Handler
	// Admit, if not nil, may let a /websockify viewer in without the VNC
	// password (a handoff's cookie): it returns true and a context whose
	// end cuts that viewer. Such a viewer is offered security type None;
	// scry still authenticates to x11vnc with ServerPassword.
	Admit func(r *http.Request) (context.Context, bool)
}

// maxCutText is the largest paste handed to OnCutText.
const maxCutText = 256 << 10

// Handler serves the human door. Its zero value is not usable; call New.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	dialer net.Dialer

	open    slots         // authenticated viewers connected now
	logins  logins        // viewers still logging in
	total   atomic.Uint64 // viewers accepted since start
	guesses *guesses      // bounds wrong passwords; nil with FailDelay < 0

	refusalLog *ratelog.Limiter // keeps a refusal flood out of the log

	ctx    context.Context // canceled by Close: ends every bridge
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add before Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// New checks that StaticDir holds noVNC and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.StaticDir == "" {
		cfg.StaticDir = DefaultStaticDir
	}
	if cfg.VNCAddr == "" {
		cfg.VNCAddr = DefaultVNCAddr
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxViewers < 0 {
		cfg.MaxViewers = 0
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.PasswordTimeout <= 0 {
		cfg.PasswordTimeout = DefaultPasswordTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	switch {
	case cfg.FailDelay == 0:
		cfg.FailDelay = DefaultFailDelay
	case cfg.FailDelay < 0:
		cfg.FailDelay = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive == (net.KeepAliveConfig{}) {
		cfg.KeepAlive = keepAlive
	}
	if err := checkStaticDir(cfg.StaticDir); err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg,
		log: log,
		dialer: net.Dialer{
			Timeout:         cfg.DialTimeout,
			KeepAliveConfig: cfg.KeepAlive,
		},

		refusalLog: ratelog.New(refusalBurst, time.Second),
	}
	if cfg.FailDelay > 0 {
		h.guesses = newGuesses(cfg.FailDelay)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /{$}", h.serveIndex)
	h.mux.HandleFunc("GET /websockify", h.serveWebsockify)
	h.mux.Handle("GET /", staticHandler(cfg.StaticDir))
	for pattern, rh := range cfg.Routes {
		h.mux.Handle(pattern, rh)
	}
	return h, nil
}

func checkStaticDir(dir string) error {
	for _, name := range []string{"core/rfb.js", "vnc.html"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("noVNC files not found in %s (%w): install the Debian package novnc "+
				"(apt-get install novnc) or set NOVNC_DIR to a noVNC 1.x directory", dir, err)
		}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &respWriter{ResponseWriter: w, ka: h.cfg.KeepAlive}
	// An upgrade's record is written once it is done; the viewer's
	// session gets its own close record.
	rw.onHijack = func() { logAccess(h.log, r, rw, start) }
	// Bound reading the rest of the request; the upgrade clears it. The
	// error is only that the server cannot (not HTTP/1): ignore it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(start.Add(h.cfg.RequestTimeout))
	body := r.ContentLength != 0 // no route reads one
	if body {
		rw.Header().Set("Connection", "close")
	}
	defer func() {
		if rw.hijacked {
			return
		}
		if body {
			// Answered: the server must not drain the unread body,
			// which a client can trickle.
			_ = rc.SetReadDeadline(time.Now())
		}
		logAccess(h.log, r, rw, start)
	}()
	if h.cfg.CheckHost != nil {
		if err := h.cfg.CheckHost(r.Host); err != nil {
			h.refused(h.log, slog.LevelWarn, "host", "refused", "reason", "host", "client", r.RemoteAddr, "path", logPath(r.URL.Path), "err", err)
			http.Error(rw, err.Error(), http.StatusForbidden)
			return
		}
	}
	h.mux.ServeHTTP(rw, r)
}

// logPath is a request's path for the log: a handoff link's secret
// (/h/<secret>) is blanked.
func logPath(p string) string {
	if strings.HasPrefix(p, "/h/") && len(p) > 3 {
		return "/h/REDACTED"
	}
	return p
}

// refused reports a refusal to Config.OnRefused.
// refused counts a refusal and logs it with msg and attrs at level, unless
// too many of that reason were logged just now (anyone who reaches the door
// can make it refuse as fast as the network allows): each reason logs a
// burst, then one a second, saying how many were not logged.
func (h *Handler) refused(log *slog.Logger, level slog.Level, reason, msg string, attrs ...any) {
	if h.cfg.OnRefused != nil {
		h.cfg.OnRefused(reason)
	}
	ok, held := h.refusalLog.Allow(reason)
	if !ok {
		return
	}
	if held > 0 {
		attrs = append(attrs, "not_logged_before", held)
	}
	log.Log(context.Background(), level, msg, attrs...)
}

// refusalBurst refusals of one reason are logged at once; past them, one
// a second.
const refusalBurst = 10

// Viewers returns the number of logged-in viewers connected now.
func (h *Handler) Viewers() int { return int(h.open.n.Load()) }

// Logins returns the number of viewers connected but still in the RFB
// handshake (at noVNC's password prompt, say).
func (h *Handler) Logins() int { return int(h.logins.n.Load()) }

// TotalViewers returns the number of viewers accepted since New.
func (h *Handler) TotalViewers() uint64 { return h.total.Load() }

// Close ends every open bridge and waits for them. http.Server.Shutdown
// does not see hijacked WebSocket connections, so call Close after it.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// track registers a bridge with Close; false once Close has begun.
func (h *Handler) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	securityHeaders(hdr)
	w.Write(indexHTML)
}

// securityHeaders keep the page, which controls a logged-in browser, out of
// other sites' frames and referrers.
func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
}

// staticHandler serves the noVNC files the pages load (see pageFile),
// without directory listings. HTML, scripts and styles are revalidated on
// every load (a package upgrade must not leave a browser mixing versions of
// ES modules); images and sounds are cached for an hour.
func staticHandler(dir string) http.Handler {
	fsrv := http.FileServer(noDirs{http.Dir(dir)})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		if !pageFile(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		switch path.Ext(r.URL.Path) {
		case ".html", ".js", ".css", ".json", "":
			w.Header().Set("Cache-Control", "no-cache")
		default:
			w.Header().Set("Cache-Control", "public, max-age=3600")
		}
		fsrv.ServeHTTP(w, r)
	})
}

// pageFile reports whether p is one of the noVNC files scry's page,
// vnc.html or vnc_lite.html may load: the two pages, the ES modules of
// core/ and of pako's zlib, and app/'s scripts, styles, fonts, images,
// sounds and translations. Everything else in the package (utils/ with its
// novnc_proxy, validate and u2x11 scripts, READMEs, Makefiles, credits)
// is not served.
func pageFile(p string) bool {
	if p != path.Clean(p) {
		return false
	}
	ext := path.Ext(p)
	switch {
	case p == "/vnc.html", p == "/vnc_lite.html":
		return true
	case strings.HasPrefix(p, "/core/"), strings.HasPrefix(p, "/vendor/pako/lib/"):
		return ext == ".js"
	case strings.HasPrefix(p, "/app/"):
		switch ext {
		case ".js", ".css", ".svg", ".png", ".ttf", ".woff", ".mp3", ".oga", ".json":
			return true
		}
	}
	return false
}

// noDirs hides directories so http.FileServer cannot list them.
type noDirs struct{ fs http.FileSystem }

func (n noDirs) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}

func (h *Handler) serveWebsockify(w http.ResponseWriter, r *http.Request) {
	if !h.track() {
		http.Error(w, "scry is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()
	log := h.log.With("client", r.RemoteAddr)
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		log = log.With("forwarded_for", fwd)
	}
	// A viewer holds a viewer slot only once it has authenticated, so that
	// connections which never log in cannot lock the human out; those are
	// capped on their own (logins) and time out.
	if h.full() {
		h.refuseFull(w, log)
		return
	}
	ws, ok := h.acceptViewer(w, r, log)
	if !ok {
		return
	}

	// Not r.Context(): the connection is hijacked now. Close ends h.ctx;
	// an eviction ends ctx.
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	password := h.cfg.Password
	if h.cfg.Admit != nil {
		if admitted, ok := h.cfg.Admit(r); ok {
			// Let in by a handoff: no password, and cut when it ends.
			password = ""
			stop := context.AfterFunc(admitted, cancel)
			defer stop()
			log = log.With("handoff", true)
		}
	}
	v := &viewerLogin{
		h: h, ctx: ctx, viewer: websocket.NetConn(ctx, ws, websocket.MessageBinary), src: sourceAddr(r.RemoteAddr),
	}
	v.l = &login{start: time.Now(), addr: v.src, end: cancel}
	if old := h.logins.add(v.l, h.maxLogins()); old != nil {
		old.end()
	}
	defer func() { v.guess.abandon() }()
	err := v.run(password)
	evicted := h.logins.remove(v.l) // (a no-op once Ready took it off)
	if err != nil && v.vnc != nil { // authenticated, but the viewer left before hearing so
		v.vnc.Close()
		h.open.release()
	}
	if err != nil {
		h.loginFailed(log, ws, v, err, evicted)
		return
	}
	v.viewer.SetDeadline(time.Time{})
	defer h.open.release()

	h.total.Add(1)
	start := time.Now()
	log.Info("viewer connected", "viewers", h.Viewers())
	st := h.bridge(ctx, log, v.viewer, v.vnc)
	dur := time.Since(start)
	log.Info("viewer disconnected", "viewers", h.Viewers()-1, "duration", dur.Round(time.Millisecond), "reason", st.reason)
	log.Debug("viewer access", "duration", dur, "bytes_to_viewer", st.toViewer,
		"bytes_from_viewer", st.fromViewer, "reason", st.reason)
}

// acceptViewer upgrades the request to a WebSocket, or refuses it.
func (h *Handler) acceptViewer(w http.ResponseWriter, r *http.Request, log *slog.Logger) (*websocket.Conn, bool) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// noVNC may ask for "binary"; a client asking for nothing gets
		// binary frames anyway.
		Subprotocols: []string{"binary"},
		// RFB raw pixels: compressing them costs CPU for little gain.
		CompressionMode: websocket.CompressionDisabled,
		// OriginPatterns empty: only pages from this host may connect.
	})
	if err != nil {
		reason := "upgrade"
		if rw, ok := w.(*respWriter); ok && rw.code == http.StatusForbidden {
			reason = "origin"
		}
		h.refused(log, slog.LevelInfo, reason, "viewer refused: websocket handshake failed", "reason", reason, "err", err)
		return nil, false
	}
	return ws, true
}

// viewerLogin is one viewer's RFB login: the viewer authenticates to scry,
// and only then does scry connect and authenticate to x11vnc, whose
// password only scry knows.
type viewerLogin struct {
	h        *Handler
	ctx      context.Context
	viewer   net.Conn
	src      string
	l        *login
	vnc      *net.TCPConn // x11vnc, once the password was right
	guess    *guess       // the password check under way, if guesses are bounded
	deadline time.Time
}

func (v *viewerLogin) run(password string) error {
	v.deadline = v.l.start.Add(v.h.cfg.HandshakeTimeout)
	v.viewer.SetDeadline(v.deadline)
	return rfbauth.Serve(v.viewer, rfbauth.ServerConfig{
		Password:      password,
		CheckWait:     v.checkWait,
		FailWait:      v.failWait,
		AwaitPassword: v.awaitPassword,
		Ready:         v.ready,
	})
}

func (v *viewerLogin) checkWait() (err error) {
	if v.h.guesses == nil {
		return nil
	}
	// Its turn must come while its connection may still answer.
	wctx, stop := context.WithDeadline(v.ctx, v.deadline)
	defer stop()
	v.guess, err = v.h.guesses.check(wctx, v.src)
	if err != nil && v.ctx.Err() != nil {
		return errLoginCut // the viewer is told this, not ctx's error
	}
	return err
}

func (v *viewerLogin) failWait() {
	if v.guess != nil {
		v.guess.wrong(v.ctx)
	}
}

func (v *viewerLogin) awaitPassword() {
	v.h.logins.awaitPassword(v.l)
	v.deadline = time.Now().Add(v.h.cfg.PasswordTimeout)
	v.viewer.SetDeadline(v.deadline)
}

func (v *viewerLogin) ready() (err error) {
	h := v.h
	if v.guess != nil {
		v.guess.right()
	}
	// The password is right: from here on the login cannot be evicted
	// (unless it was just now).
	if h.logins.remove(v.l) {
		return errEvicted
	}
	if !h.open.acquire(int64(h.cfg.MaxViewers)) {
		return errTooManyViewers
	}
	if v.vnc, err = h.dialVNC(v.ctx); err != nil {
		h.open.release()
		return err
	}
	// Only the SecurityResult is left to send.
	v.deadline = time.Now().Add(h.cfg.HandshakeTimeout)
	v.viewer.SetDeadline(v.deadline)
	return nil
}

// loginFailed logs and counts a login that failed, and closes the viewer.
func (h *Handler) loginFailed(log *slog.Logger, ws *websocket.Conn, v *viewerLogin, err error, evicted bool) {
	l := v.l
	stage := l.stage()
	var re *rfbauth.ReadyError
	switch {
	case errors.Is(err, rfbauth.ErrWrongPassword):
		h.refused(log, slog.LevelWarn, "password", "viewer refused: wrong VNC password")
	case errors.Is(err, errThrottled):
		h.refused(log, slog.LevelWarn, "throttled", "viewer refused: too many wrong VNC passwords from its address; "+
			"its next try was due after its password timeout", "source", v.src)
	case errors.Is(err, errTooManyViewers):
		h.refused(log, slog.LevelWarn, "limit", "viewer refused: too many viewers", "max_viewers", h.cfg.MaxViewers)
		ws.Close(websocket.StatusTryAgainLater, "too many viewers; close another viewer and retry")
		return
	case evicted:
		h.refused(log, slog.LevelInfo, "evicted", "viewer cut: too many logins in progress, it made room for a newer one",
			"stage", stage, "after", time.Since(l.start).Round(time.Millisecond), "max_logins", h.maxLogins())
	case h.ctx.Err() != nil:
		log.Info("viewer cut during the RFB handshake: scry is shutting down", "stage", stage)
	case errors.As(err, &re):
		log.Error("viewer refused: cannot reach x11vnc", "vnc_addr", h.cfg.VNCAddr, "err", re.Err)
		ws.Close(websocket.StatusTryAgainLater, "VNC server unavailable")
		return
	case !time.Now().Before(v.deadline):
		timeout := h.cfg.HandshakeTimeout
		if l.password {
			timeout = h.cfg.PasswordTimeout
		}
		h.refused(log, slog.LevelInfo, "handshake", "viewer cut: RFB handshake timed out", "stage", stage, "timeout", timeout)
	case viewerLeft(err):
		log.Info("viewer left during the RFB handshake", "stage", stage)
	default:
		h.refused(log, slog.LevelInfo, "handshake", "viewer refused: RFB handshake failed", "stage", stage, "err", err)
	}
	// RFB has said why, where it could; a polite WebSocket close would
	// wait up to 5 s for a reply a broken or hostile client never sends.
	ws.CloseNow()
}

// viewerLeft tells a viewer that went away from one that broke the
// protocol.
func viewerLeft(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || websocket.CloseStatus(err) != -1
}

var errEvicted = errors.New("login evicted")

var errLoginCut = errors.New("login cut: too many logins in progress, or scry is shutting down; try again")

var errTooManyViewers = errors.New("too many viewers")

func (h *Handler) full() bool {
	return h.cfg.MaxViewers > 0 && h.open.n.Load() >= int64(h.cfg.MaxViewers)
}

func (h *Handler) refuseFull(w http.ResponseWriter, log *slog.Logger) {
	h.refused(log, slog.LevelWarn, "limit", "viewer refused: too many viewers", "max_viewers", h.cfg.MaxViewers)
	http.Error(w, fmt.Sprintf("too many viewers: this screen allows %d at a time; close another viewer and retry",
		h.cfg.MaxViewers), http.StatusServiceUnavailable)
}

// maxLogins caps logins in progress: as many as viewers, at least 4.
func (h *Handler) maxLogins() int {
	if h.cfg.MaxViewers <= 0 {
		return 64
	}
	return max(h.cfg.MaxViewers, 4)
}

// slots counts holders of a capped resource.
type slots struct{ n atomic.Int64 }

// acquire takes a slot unless max (> 0) are taken; max <= 0 means no cap.
func (s *slots) acquire(max int64) bool {
	for {
		n := s.n.Load()
		if max > 0 && n >= max {
			return false
		}
		if s.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *slots) release() { s.n.Add(-1) }

// dialVNC connects to x11vnc and authenticates with the server password.
func (h *Handler) dialVNC(ctx context.Context) (*net.TCPConn, error) {
	dctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	defer cancel()
	c, err := h.dialer.DialContext(dctx, "tcp", h.cfg.VNCAddr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	err = rfbauth.Client(c, h.cfg.ServerPassword)
	if !stop() {
		err = errors.Join(err, dctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("authenticate to x11vnc: %w", err)
	}
	c.SetDeadline(time.Time{})
	return c.(*net.TCPConn), nil
}

type bridgeStats struct {
	toViewer, fromViewer int64
	reason               string
}

// halfCloseGrace is how long the bridge waits, after one direction ended,
// for the other to end on its own before closing both.
const halfCloseGrace = 5 * time.Second

// bridge copies between the viewer's WebSocket and x11vnc until either side
// ends, then closes both. It never touches any other connection.
func (h *Handler) bridge(ctx context.Context, log *slog.Logger, viewer net.Conn, vnc *net.TCPConn) bridgeStats {
	from := relay.End{Conn: viewer}
	if h.cfg.OnCutText != nil {
		// Pastes are seen on their way to x11vnc, which passes them on
		// too (see Config.OnCutText).
		from.Reader = io.TeeReader(viewer, &cutWatcher{
			max:   maxCutText,
			onCut: h.cfg.OnCutText,
			onLost: func(t byte) {
				log.Warn("viewer sent an RFB message scry does not follow; its pastes no longer reach the remote clipboard", "type", t)
			},
		})
	}
	// What x11vnc sends goes in messages of up to copyBufSize (see there);
	// the viewer's input goes to x11vnc's socket as it comes.
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	res := relay.Copy(ctx, from, relay.End{Conn: vnc, Buf: *bp}, halfCloseGrace)
	st := bridgeStats{fromViewer: res.AtoB, toViewer: res.BtoA}
	switch res.First {
	case relay.AtoB:
		st.reason = closeReason("viewer", res.Err)
	case relay.BtoA:
		st.reason = closeReason("vnc server", res.Err)
	default:
		st.reason = "server shutting down"
		if h.ctx.Err() == nil {
			st.reason = "cut by scry (its handoff ended)"
		}
	}
	return st
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func closeReason(side string, err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return side + " closed"
	}
	if s := websocket.CloseStatus(err); s != -1 {
		return fmt.Sprintf("%s closed: %v", side, s)
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
		return side + " closed by bridge"
	}
	return fmt.Sprintf("%s: %v", side, strings.TrimSpace(err.Error()))
}
