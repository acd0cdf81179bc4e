// Package cdpproxy is the agent door: a CDP bridge in front of Chromium's
// loopback DevTools port.
//
// A plain TCP relay cannot serve agents on other hosts: Chrome refuses Host
// headers that are not an IP or localhost, and it builds webSocketDebuggerUrl
// from the Host it was sent. The bridge sends Chrome the Host it accepts,
// rewrites the discovery answers to the address the client used, and keeps
// Chrome's protections (Host allow-list against DNS rebinding, Origin check
// against web pages) in front. WebSocket streams are then spliced through
// byte for byte, with TCP keepalive on both legs and no idle timeout: a CDP
// socket that sits quiet for hours is healthy.
package cdpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/dataplanelabs/scry/internal/hostpolicy"
	"github.com/dataplanelabs/scry/internal/ratelog"
	"github.com/dataplanelabs/scry/internal/relay"
	"github.com/dataplanelabs/scry/internal/tokens"
)

// KeepAlive is the design's socat setting: probe after 30 s idle, every
// 10 s, give up after 3 missed probes.
var KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}

// maxDiscoveryBody bounds a discovery answer scry buffers to rewrite.
const maxDiscoveryBody = 32 << 20

// maxRequestBody bounds a request body scry accepts to forward: Chrome's
// discovery endpoints read none (/json/new takes its URL in the query).
const maxRequestBody = 4 << 10

// Config configures a Proxy.
type Config struct {
	// Backend is Chromium's loopback DevTools address, "127.0.0.1:9223".
	Backend string
	// Policy is the Host and Origin check; its refusals name the settings
	// the caller says change it (CDP_ALLOWED_HOSTS, CDP_ALLOWED_ORIGINS).
	Policy hostpolicy.Policy
	Logger *slog.Logger
	// KeepAlive applies to both legs of every spliced WebSocket, the
	// client's (set once it is hijacked, whatever the listener did) and
	// Chromium's. Zero value means the design's KeepAlive.
	KeepAlive net.KeepAliveConfig
	// DialTimeout bounds connecting to Chromium; zero means 5 s.
	DialTimeout time.Duration
	// BodyTimeout bounds reading the body of a request that carries one,
	// counted from when its headers were read, so a client trickling a
	// body cannot hold a connection; zero means 10 s. WebSocket upgrades
	// carry no body, and their spliced streams never time out.
	BodyTimeout time.Duration
	// Observer, if not nil, is told about connections and refusals.
	Observer Observer
	// Token, if not empty, must accompany every request, as
	// "Authorization: Bearer TOKEN" or a "token=TOKEN" query segment (see
	// RequestToken for which segment counts). Chrome never sees it. It is
	// one more admin token in Tokens (CDP_TOKEN).
	Token string
	// Tokens are the named tokens with roles (CDP_TOKENS_FILE). If it and
	// Token are empty, no token is asked and every client is admin. A
	// connection of an admin token is spliced byte for byte; one of an
	// agent or observer token is read command by command (see filter.go).
	Tokens *tokens.Set
	// Audit receives the audit trail of scoped connections (and, with
	// AuditCommands, of admin ones too): JSON lines, never parameter
	// values. nil means Logger.
	Audit *slog.Logger
	// AuditMode is "off", "summary" or "commands" (AUDIT_LOG). Refused
	// commands are logged whatever it says.
	AuditMode string
	// DownloadDir is where scoped tokens' downloads go, and where an
	// agent's uploads must come from (DOWNLOAD_DIR).
	DownloadDir string
	// PersonHasControl, if not nil, reports an active handoff, during
	// which an agent's Input commands are refused.
	PersonHasControl func() (handoffID string, ok bool)
	// TargetURL, if not nil, returns a target's current URL as the browser
	// last reported it (scry's own discovery): an agent may not act on a
	// page that is not a web page (cdprole.Policy.PageURL).
	TargetURL func(targetID string) (string, bool)
	// TargetHistory, if not nil, returns the URLs in a tab's history
	// (cdprole.Policy.TabHistory).
	TargetHistory func(targetID string) ([]string, error)
	// TargetShown, if not nil, returns a browser page a tab has shown
	// ("" if none): an agent may not act there either
	// (cdprole.Policy.ShownBrowserPage).
	TargetShown func(targetID string) (string, error)
	// MaxConns caps concurrent CDP WebSocket connections; 0 means no cap.
	MaxConns int
	// CommandMemory bounds the memory the connections of agent and
	// observer tokens hold, all together, for the commands being read
	// (each up to maxCommand, held twice while read); 0 means
	// DefaultCommandMemory. Past it a command waits for memory, or, when
	// its connection already holds some for it (a fragmented command),
	// ends the connection (close code 1013).
	CommandMemory int64
	// Health serves /healthz and /readyz without a token (they reveal
	// nothing); Metrics serves /metrics behind the token. Both are
	// answered by scry, never forwarded to Chromium.
	Health, Metrics http.Handler
	// Routes are scry's own endpoints on this door (the handoff API,
	// /mcp), behind the Host, token and Origin checks, never forwarded to
	// Chromium. A key ending in "/" matches that subtree, any other key
	// its exact path. The handler reads its own body; BodyTimeout bounds
	// it, and is lifted once the body is read, so an answer may take its
	// time (a long-poll). The longest matching key wins.
	Routes map[string]http.Handler
}

// Observer receives events for metrics and access logs.
type Observer interface {
	Refused(reason string)
	// RefusedCommand counts a CDP command refused for a role; method is
	// bounded by cdprole.MethodLabel.
	RefusedCommand(role, method string)
	ConnOpened()
	ConnClosed(d time.Duration, fromClient, toClient int64)
}

type nopObserver struct{}

func (nopObserver) Refused(string)                         {}
func (nopObserver) RefusedCommand(string, string)          {}
func (nopObserver) ConnOpened()                            {}
func (nopObserver) ConnClosed(time.Duration, int64, int64) {}

// Proxy is an http.Handler serving the agent door.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	obs       Observer
	dialer    net.Dialer
	transport *http.Transport

	// version caches Chromium's /json/version answer: it does not change
	// for the life of the browser process, and Chromium takes a couple of
	// milliseconds to build it.
	version atomic.Pointer[cachedAnswer]

	// refusalLog keeps a flood of refused requests from flooding the log
	// (each is still counted, and logged at debug by the access log).
	refusalLog *ratelog.Limiter
	// refusedLog does the same for refused CDP commands, per token.
	refusedLog *ratelog.Limiter

	// tokens is the door's token set: cfg.Tokens until SetTokens
	// replaces it. retired are the sets it replaced, whose tokens the log
	// still blanks.
	tokens  atomic.Pointer[tokens.Set]
	retired []*tokens.Set

	// cmdMem is CommandMemory's budget.
	cmdMem *semaphore.Weighted

	mu     sync.Mutex
	conns  map[net.Conn]connInfo
	closed bool
	active int // upgrades admitted and not yet finished
	nextID atomic.Uint64
}

// New returns a Proxy for cfg.
func New(cfg Config) *Proxy {
	if cfg.KeepAlive == (net.KeepAliveConfig{}) {
		cfg.KeepAlive = KeepAlive
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Audit == nil {
		cfg.Audit = cfg.Logger
	}
	p := &Proxy{
		cfg:    cfg,
		log:    cfg.Logger,
		obs:    cfg.Observer,
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAliveConfig: cfg.KeepAlive},
		conns:  map[net.Conn]connInfo{},

		refusalLog: ratelog.New(refusalBurst, time.Second),
		refusedLog: newRefusedLog(),
	}
	p.tokens.Store(withLegacy(cfg.Tokens, cfg.Token))
	if p.cfg.CommandMemory <= 0 {
		p.cfg.CommandMemory = DefaultCommandMemory
	}
	p.cmdMem = semaphore.NewWeighted(p.cfg.CommandMemory)
	if p.obs == nil {
		p.obs = nopObserver{}
	}
	p.transport = &http.Transport{
		DialContext:           p.dialer.DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}
	return p
}

// ServeHTTP applies the policy, then forwards discovery requests or splices
// WebSocket upgrades through to Chromium. Every answer but a spliced
// WebSocket (which logs its own line when it closes) gets one debug record.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	aw := &accessWriter{ResponseWriter: w}
	if hasBody(r) {
		// Bound the rest of the request's read, whatever the answer: a
		// body scry reads (serveHTTP lifts the bound once it has it) or
		// the one net/http drains after a refusal or scry's own answers.
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(p.cfg.BodyTimeout))
	}
	var body *eofBody
	if hasBody(r) {
		body = &eofBody{ReadCloser: r.Body}
		r.Body = body
	}
	p.serve(aw, r)
	if body != nil && !body.eof && !aw.hijacked {
		// Answered (refused, or scry's own answer) with the body unread:
		// net/http would now read the rest until the deadline above, so a
		// trickler would keep its connection. End the read at once.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if !aw.hijacked {
		p.log.Debug("request", "client", r.RemoteAddr, "method", r.Method, "path", p.logPath(r),
			"status", aw.status(), "duration", time.Since(start).Round(time.Microsecond), "bytes", aw.bytes)
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if err := p.cfg.Policy.CheckHost(r.Host); err != nil {
		p.refuse(w, r, "host", http.StatusForbidden, err)
		return
	}
	switch r.URL.Path {
	case "/healthz", "/readyz":
		if p.cfg.Health != nil {
			p.cfg.Health.ServeHTTP(w, r)
			return
		}
	}
	// One request sees one token set, even if SetTokens swaps it while
	// the request is served: a token revoked meanwhile is still scry's,
	// stripped from what reaches Chromium.
	r = r.WithContext(context.WithValue(r.Context(), tokenSetKey{}, p.tokenSet()))
	who, ok := p.identify(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scry"`)
		p.refuse(w, r, "token", http.StatusUnauthorized, errors.New(
			"missing or wrong CDP token: send Authorization: Bearer <token> or add ?token=<token> to the URL (CDP_TOKEN, CDP_TOKENS_FILE)"))
		return
	}
	if r.URL.Path == "/metrics" && p.cfg.Metrics != nil {
		p.cfg.Metrics.ServeHTTP(w, r)
		return
	}
	if err := p.cfg.Policy.CheckOrigin(r.Header.Get("Origin")); err != nil {
		p.refuse(w, r, "origin", http.StatusForbidden, err)
		return
	}
	if err := mayRequest(who, r); err != nil {
		p.refuse(w, r, "role", http.StatusForbidden, err)
		return
	}
	if h := p.route(r.URL.Path); h != nil {
		// scry's own endpoints learn the caller's role from the door,
		// never from the client.
		r.Header.Set(tokens.RoleHeader, who.Role.String())
		if b, ok := r.Body.(*eofBody); ok {
			b.onEOF = func() { _ = http.NewResponseController(w).SetReadDeadline(time.Time{}) }
		}
		h.ServeHTTP(w, r)
		return
	}
	if isUpgrade(r) {
		// Chromium accepts any key and any version; hold the handshake
		// to RFC 6455 before it takes a slot or reaches Chromium.
		if code, err := checkUpgrade(r); err != nil {
			switch code {
			case http.StatusUpgradeRequired:
				w.Header().Set("Sec-WebSocket-Version", "13")
				w.Header().Set("Upgrade", "websocket")
			case http.StatusMethodNotAllowed:
				w.Header().Set("Allow", http.MethodGet)
			}
			p.refuse(w, r, "bad_request", code, err)
			return
		}
		if !p.admit() {
			p.refuse(w, r, "limit", http.StatusServiceUnavailable, fmt.Errorf(
				"too many CDP connections (CDP_MAX_CONNS=%d): close idle clients or raise the limit", p.cfg.MaxConns))
			return
		}
		defer p.leave()
		p.serveWebSocket(w, r, who)
		return
	}
	p.serveHTTP(w, r)
}

// refusalBurst refusals of one reason are logged at once; past them, one a
// second, the next logged line saying how many were not.
const refusalBurst = 10

// refuse answers a refused request and closes the connection after the
// answer ("Connection: close"); ServeHTTP then ends the read of a body the
// refusal left unread, which net/http would otherwise drain.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, reason string, code int, err error) {
	p.obs.Refused(reason)
	if ok, held := p.refusalLog.Allow(reason); ok {
		attrs := []any{"reason", reason, "client", r.RemoteAddr, "path", p.logPath(r), "err", err}
		if held > 0 {
			attrs = append(attrs, "not_logged_before", held)
		}
		p.log.Warn("refused", attrs...)
	}
	w.Header().Set("Connection", "close")
	http.Error(w, err.Error(), code)
}

// logPath is the request's path for the log, with scry's token, should a
// client put it there, blanked. The query, where the token belongs, is
// never logged.
func (p *Proxy) logPath(r *http.Request) string {
	p.mu.Lock()
	retired := p.retired
	p.mu.Unlock()
	path := p.tokenSet().Redact(r.URL.Path)
	for _, set := range retired {
		path = set.Redact(path)
	}
	return path
}

// route returns the Routes handler for path, if any.
func (p *Proxy) route(path string) http.Handler {
	if h, ok := p.cfg.Routes[path]; ok {
		return h
	}
	var best string
	var found http.Handler
	for k, h := range p.cfg.Routes {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(path, k) && len(k) > len(best) {
			best, found = k, h
		}
	}
	return found
}

// eofBody notes whether a request body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof   bool
	onEOF func() // if not nil, runs once at the end of the body
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof {
		b.eof = true
		if b.onEOF != nil {
			b.onEOF()
		}
	}
	return n, err
}

// hasBody reports whether a request carries a body (a Content-Length
// above 0, or chunked).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody
}

// checkUpgrade checks a WebSocket upgrade against RFC 6455's opening
// handshake and returns the status to refuse it with, if it fails.
func checkUpgrade(r *http.Request) (int, error) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, fmt.Errorf("a WebSocket upgrade is a GET, not %s", r.Method)
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusBadRequest, fmt.Errorf("a WebSocket upgrade needs HTTP/1.1, not %s", r.Proto)
	}
	if hasBody(r) {
		return http.StatusBadRequest, errors.New("a WebSocket upgrade carries no body")
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return http.StatusUpgradeRequired, errors.New("unsupported WebSocket version: send Sec-WebSocket-Version: 13")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, errors.New("a WebSocket upgrade needs one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return http.StatusBadRequest, errors.New("bad Sec-WebSocket-Key: want 16 random bytes in base64")
	}
	return 0, nil
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// publicHost is the host:port the client used to reach scry, for the URLs
// handed back to it. A bare IPv6 literal ("Host: ::1", which clients should
// not send but the policy accepts) gets its brackets: ws://::1/ is no URL.
func publicHost(r *http.Request) string {
	if r.Host != "" {
		if strings.Contains(r.Host, ":") && net.ParseIP(r.Host) != nil {
			return "[" + r.Host + "]"
		}
		return r.Host
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return "127.0.0.1"
}

func wsScheme(r *http.Request) string {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return "wss"
	}
	return "ws"
}

// hopHeaders are per-connection headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outgoing prepares the request Chrome sees: its own loopback Host, no
// Origin (already checked here; Chrome would refuse it), no credentials
// meant for scry.
func (p *Proxy) outgoing(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.URL.Scheme = "http"
	out.URL.Host = p.cfg.Backend
	out.Host = p.cfg.Backend
	out.RequestURI = ""
	// The client's Connection: close is about its own leg; keep the
	// pooled connection to Chromium.
	out.Close = false
	out.Header.Del("Origin")
	out.Header.Del("Authorization")
	out.Header.Del("X-Forwarded-Proto")
	// Only scry's own segments go, and the rest stays byte for byte:
	// /json/new's query is the URL of the page to open, which Chrome reads
	// raw. A token parameter that is not scry's (no CDP_TOKEN, or another
	// value) belongs to that URL and is left alone.
	if set := p.tokensOf(r); set.Len() > 0 {
		out.URL.RawQuery = withoutToken(discoveryCommand(r.URL.EscapedPath()), r.URL.RawQuery, set)
	}
	return out
}

// withoutToken returns rawQuery without scry's token: every "token=TOKEN"
// segment, or on /json/new (cmd "new") only the trailing run of them, the
// ones a client appends (see queryToken). Everything else is unchanged.
func withoutToken(cmd, rawQuery string, set *tokens.Set) string {
	segs := strings.Split(rawQuery, "&")
	isToken := func(seg string) bool {
		v, found := strings.CutPrefix(seg, "token=")
		if !found {
			return false
		}
		tok, err := url.QueryUnescape(v)
		if err != nil {
			return false
		}
		_, ok := set.Match(tok)
		return ok
	}
	var kept []string
	if cmd == "new" {
		n := len(segs)
		for n > 0 && isToken(segs[n-1]) {
			n--
		}
		kept = segs[:n]
	} else {
		for _, seg := range segs {
			if !isToken(seg) {
				kept = append(kept, seg)
			}
		}
	}
	if len(kept) == len(segs) {
		return rawQuery
	}
	return strings.Join(kept, "&")
}

type cachedAnswer struct {
	header http.Header
	body   []byte
	// target is the browser target's escaped path parsed from body
	// ("" if it names none), for the stable endpoint (stable.go).
	target string
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The body first, whole: a client's malformed, oversized or trickled
	// body is its own fault, answered here, never blamed on Chromium.
	body, code, err := p.readBody(w, r)
	if err != nil {
		p.refuse(w, r, "bad_request", code, err)
		return
	}
	if hasBody(r) {
		// All read: a slow answer from Chromium must not trip the bound.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	isVersion := r.Method == http.MethodGet && discoveryCommand(r.URL.EscapedPath()) == "version"
	if c := p.version.Load(); isVersion && c != nil {
		p.writeDiscovery(w, r, c.header, http.StatusOK, c.body)
		return
	}
	out := p.outgoing(r)
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if hasBody(r) {
		// Chromium gets what was read, with its length (its HTTP server
		// does not take chunked bodies).
		out.TransferEncoding = nil
		out.ContentLength = int64(len(body))
		out.Body = http.NoBody
		if len(body) > 0 {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		p.log.Warn("chromium did not answer", "path", p.logPath(r), "err", err)
		http.Error(w, "chromium's DevTools endpoint did not answer; scry's log says why", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	if rewritten(r.URL.EscapedPath()) && resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody))
		if err != nil {
			http.Error(w, "reading chromium's answer failed", http.StatusBadGateway)
			return
		}
		if isVersion {
			p.version.Store(newVersionAnswer(resp.Header.Clone(), body))
		}
		p.writeDiscovery(w, r, resp.Header, resp.StatusCode, body)
		return
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// writeDiscovery rewrites a discovery answer for this client and sends it.
func (p *Proxy) writeDiscovery(w http.ResponseWriter, r *http.Request, h http.Header, code int, body []byte) {
	if nb, err := Rewrite(body, publicHost(r), wsScheme(r), p.tokenQuery(r)); err != nil {
		p.log.Warn("cannot rewrite discovery answer; passing it through", "path", p.logPath(r), "err", err)
	} else {
		body = nb
	}
	copyHeader(w.Header(), h)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// readBody reads a request's body, within BodyTimeout (ServeHTTP set the
// deadline) and maxRequestBody. On failure it returns the status to refuse
// the request with.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if !hasBody(r) {
		return nil, 0, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case err == nil:
		return b, 0, nil
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes: CDP discovery requests carry none", maxRequestBody)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return nil, http.StatusRequestTimeout, fmt.Errorf("request body not received within %s", p.cfg.BodyTimeout)
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("malformed request body: %w", err)
	}
}

// tokenQuery returns the query to add to rewritten WebSocket URLs: the
// token this client has just presented, so a client that only knows the
// HTTP URL can follow the WebSocket URL it is handed. Each client gets its
// own token back, never another (an agent never learns the admin's).
func (p *Proxy) tokenQuery(r *http.Request) url.Values {
	set := p.tokensOf(r)
	if set.Len() == 0 || noToken(r) {
		// The door without the token never hands one out: it would
		// open CDP_PORT to whoever can reach this one.
		return nil
	}
	tok, ok := set.Match(RequestToken(r))
	if !ok {
		return nil
	}
	return url.Values{"token": {tok.Secret()}}
}

// RequestToken extracts the token a request carries: the Authorization
// Bearer header if there is one, else scry's token segment of the query
// (see queryToken).
func RequestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return queryToken(discoveryCommand(r.URL.EscapedPath()), r.URL.RawQuery)
}

// queryToken finds scry's token in a raw query: a "token=VALUE" segment
// between '&'s, the first one. On /json/new (cmd "new": Chrome reads
// /json/new/ANYTHING the same way) the query is the URL of the page to
// open and may carry a token parameter of its own, so there only the last
// segment can be scry's, the one a client appends:
//
//	/json/new?https://example.com/?token=theirs&token=SCRY
//
// It returns the unescaped value, "" if there is none.
func queryToken(cmd, rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	segs := strings.Split(rawQuery, "&")
	if cmd == "new" {
		segs = segs[len(segs)-1:]
	}
	for _, seg := range segs {
		v, found := strings.CutPrefix(seg, "token=")
		if !found {
			continue
		}
		tok, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return tok
	}
	return ""
}

// TokenMatches compares in constant time; hashing first hides the length.
func TokenMatches(want, got string) bool {
	if got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append(dst[k][:0:0], vs...)
	}
}

// serveWebSocket hands the upgrade to Chromium and, once it agrees, splices
// the two TCP connections together byte for byte.
func (p *Proxy) serveWebSocket(w http.ResponseWriter, r *http.Request, who tokens.Token) {
	id := p.nextID.Add(1)
	log := p.log.With("conn", id, "client", r.RemoteAddr, "path", p.logPath(r))
	if who.Name != "" {
		log = log.With("token", who.Name, "role", who.Role.String())
	}
	out := p.outgoing(r)
	out.Body, out.ContentLength = nil, 0
	filtered := p.filtered(who)
	if filtered {
		// No permessage-deflate: scry must read the frames.
		out.Header.Del("Sec-WebSocket-Extensions")
	}
	if !p.retarget(w, r, out, log) {
		return
	}
	backend, err := p.dialer.DialContext(r.Context(), "tcp", p.cfg.Backend)
	if err != nil {
		log.Warn("dial chromium failed", "err", err)
		http.Error(w, "chromium's DevTools endpoint is not reachable; scry's log says why", http.StatusBadGateway)
		return
	}
	_ = backend.SetDeadline(time.Now().Add(30 * time.Second))
	if err := out.Write(backend); err != nil {
		backend.Close()
		log.Warn("forward upgrade failed", "err", err)
		http.Error(w, "forwarding the upgrade to chromium failed", http.StatusBadGateway)
		return
	}
	br := bufio.NewReader(backend)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		backend.Close()
		log.Warn("chromium did not answer the upgrade", "err", err)
		http.Error(w, "chromium did not answer the WebSocket upgrade", http.StatusBadGateway)
		return
	}
	_ = backend.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer backend.Close()
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		log.Info("chromium refused the upgrade", "status", resp.StatusCode, "body", strings.TrimSpace(string(body)))
		copyHeader(w.Header(), resp.Header)
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	client, crw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		backend.Close()
		log.Error("hijack failed", "err", err)
		return
	}
	// A spliced stream never times out, whatever the server left set.
	_ = client.SetDeadline(time.Time{})
	// The listener may have set other keepalive values, or none.
	if kc, ok := client.(interface {
		SetKeepAliveConfig(net.KeepAliveConfig) error
	}); ok {
		if err := kc.SetKeepAliveConfig(p.cfg.KeepAlive); err != nil {
			log.Warn("set keepalive on the client connection", "err", err)
		}
	}
	err = resp.Write(crw)
	if err == nil {
		err = crw.Flush()
	}
	if err != nil {
		log.Info("could not send the 101 to the agent", "err", err)
		client.Close()
		backend.Close()
		return
	}
	if !p.track(connInfo{id: id, who: who}, client, backend) {
		client.Close()
		backend.Close()
		return
	}
	defer p.untrack(client, backend)

	start := time.Now()
	p.obs.ConnOpened()
	log.Debug("cdp connection opened")
	var up, down int64
	var reason string
	if filtered {
		up, down, reason = p.filter(conn{id: id, who: who, log: log, page: pageTarget(out.URL.EscapedPath())}, client, crw.Reader, backend, br)
	} else {
		up, down, reason = splice(client, crw.Reader, backend, br)
	}
	d := time.Since(start)
	p.obs.ConnClosed(d, up, down)
	log.Info("cdp connection closed", "duration", d.Round(time.Millisecond), "bytes_in", up, "bytes_out", down, "reason", reason)
}

// pageTarget is the target of a page's own WebSocket path, as Chromium
// reads it (what follows /devtools/page/ in the path it is sent), "" for
// any other path (the browser's; Chromium refuses the rest).
func pageTarget(escapedPath string) string {
	id, _ := strings.CutPrefix(escapedPath, "/devtools/page/")
	if id == escapedPath {
		return ""
	}
	return id
}

// spliceGrace bounds how long one direction may go on after the other
// ended: the peer normally follows the half-close at once.
const spliceGrace = 30 * time.Second

// splice copies both ways until both directions are done (see relay.Copy),
// bytes already buffered by the HTTP readers first. It returns the byte
// counts and why it ended.
func splice(client net.Conn, clientBuf *bufio.Reader, backend net.Conn, backendBuf *bufio.Reader) (up, down int64, reason string) {
	res := relay.Copy(context.Background(),
		relay.End{Conn: client, Buffered: buffered(clientBuf)},
		relay.End{Conn: backend, Buffered: buffered(backendBuf)},
		spliceGrace)
	dir := "client->chromium"
	if res.First == relay.BtoA {
		dir = "chromium->client"
	}
	reason = dir + " ended"
	if res.Err != nil && !errors.Is(res.Err, net.ErrClosed) {
		reason = dir + ": " + res.Err.Error()
	}
	return res.AtoB, res.BtoA, reason
}

// buffered returns what r has read ahead and not handed out.
func buffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return b
}

// accessWriter notes what was answered, for the access log.
type accessWriter struct {
	http.ResponseWriter
	code     int
	bytes    int64
	hijacked bool
}

func (a *accessWriter) WriteHeader(code int) {
	if a.code == 0 && code >= 200 {
		a.code = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessWriter) Write(b []byte) (int, error) {
	if a.code == 0 {
		a.code = http.StatusOK
	}
	n, err := a.ResponseWriter.Write(b)
	a.bytes += int64(n)
	return n, err
}

func (a *accessWriter) Flush() {
	if a.code == 0 {
		a.code = http.StatusOK
	}
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}

func (a *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(a.ResponseWriter).Hijack()
	if err == nil {
		a.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (a *accessWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *accessWriter) status() int {
	if a.code == 0 {
		return http.StatusOK
	}
	return a.code
}

// connInfo is who holds a tracked connection.
type connInfo struct {
	id  uint64
	who tokens.Token
}

// track registers a connection's two legs, unless the door is closed or
// its token was revoked since the request was checked (SetTokens holds
// p.mu while it swaps the set and closes what it revokes).
func (p *Proxy) track(ci connInfo, cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.stillValid(ci.who) {
		return false
	}
	for _, c := range cs {
		p.conns[c] = ci
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// admit reserves a place for one more WebSocket under MaxConns; the check
// and the reservation are one step so racing upgrades cannot overshoot.
func (p *Proxy) admit() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.MaxConns > 0 && p.active >= p.cfg.MaxConns {
		return false
	}
	p.active++
	return true
}

func (p *Proxy) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active--
}

// Open returns the number of WebSocket connections being spliced.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// tokenSet is the door's current token set.
func (p *Proxy) tokenSet() *tokens.Set { return p.tokens.Load() }

// tokenSetKey keys the token set a request was checked against in its
// context.
type tokenSetKey struct{}

// tokensOf is the token set r was checked against (serve puts it in r's
// context), else the current one.
func (p *Proxy) tokensOf(r *http.Request) *tokens.Set {
	if set, ok := r.Context().Value(tokenSetKey{}).(*tokens.Set); ok {
		return set
	}
	return p.tokenSet()
}

// SetTokens replaces the door's tokens (CDP_TOKENS_FILE read again, with
// CDP_TOKEN's added as at start). Requests from now on are checked
// against set, and every open connection whose token set lacks (revoked,
// rotated, or given another role) is closed, so a revoked token loses the
// browser at once, not at its client's next connect.
func (p *Proxy) SetTokens(set *tokens.Set) {
	set = withLegacy(set, p.cfg.Token)
	if set.Len() == 0 {
		// No token would open the door to everyone: never from a reload.
		p.log.Error("a reload left no token; the tokens in use stay")
		return
	}
	p.mu.Lock()
	old := p.tokens.Swap(set)
	p.retired = append(p.retired, old)
	if len(p.retired) > maxRetired {
		p.retired = slices.Delete(p.retired, 0, len(p.retired)-maxRetired)
	}
	var revoked []net.Conn
	seen := map[uint64]bool{}
	for c, ci := range p.conns {
		if p.stillValid(ci.who) {
			continue
		}
		revoked = append(revoked, c)
		if !seen[ci.id] {
			seen[ci.id] = true
			p.log.Info("closing a cdp connection: its token was revoked or changed", "conn", ci.id, "token", ci.who.Name, "role", ci.who.Role.String())
		}
	}
	p.mu.Unlock()
	for _, c := range revoked {
		c.Close()
	}
}

// stillValid reports whether who's token is in the current set (always,
// for the door without tokens and CDP_NOAUTH_PORT).
func (p *Proxy) stillValid(who tokens.Token) bool {
	return who == anyone || who == noAuth || p.tokenSet().Has(who)
}

// maxRetired bounds the replaced token sets kept for blanking the log:
// the latest ones.
const maxRetired = 64

// Close ends every spliced WebSocket connection and refuses new ones.
// http.Server.Shutdown does not see hijacked connections; this does.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]connInfo{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	p.transport.CloseIdleConnections()
}
