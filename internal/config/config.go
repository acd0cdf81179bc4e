// Package config reads scry's configuration from the environment.
//
// The names and defaults of the original design are a contract: an existing
// deployment drops scry in where the old image was. Every variable, with its
// default and purpose, is in one table, [Vars]: FromEnv takes its defaults
// from it, `scry --help` prints it, and a test holds the README's
// configuration table to it.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/tokens"
)

// Config is scry's whole configuration, filled from the environment.
type Config struct {
	ProfileDir        string
	Display           string
	CDPPort           int
	CDPInternalPort   int
	NoVNCPort         int
	VNCPort           int
	Screen            Screen
	ChromeExtraFlags  []string
	VNCPassword       string
	CDPAllowedHosts   []string
	CDPAllowedOrigins []string
	NoVNCAllowedHosts []string
	CDPToken          string
	// Tokens holds every token the agent door accepts: CDP_TOKENS_FILE's,
	// and CDP_TOKEN's as one more admin token. Empty: no token is asked.
	Tokens *tokens.Set
	// TokensFile is CDP_TOKENS_FILE: scry reads it again while it runs
	// (tokens.File), so agent and observer tokens may come at any time.
	TokensFile string
	// AuditLog is "off", "summary" or "commands" (AUDIT_LOG, its empty
	// default resolved).
	AuditLog string
	// DownloadDir is DOWNLOAD_DIR, its default resolved.
	DownloadDir     string
	CDPMaxConns     int
	VNCMaxViewers   int
	HeaderTimeout   time.Duration
	ChildUID        int
	ChildGID        int
	ChromiumPath    string
	NoVNCDir        string
	ShutdownTimeout time.Duration
	StartupTimeout  time.Duration
	KeepAlive       KeepAlive
	SessionCookies  bool
	AllowFileURLs   bool
	RestoreTabs     bool
	CookieInterval  time.Duration
	LogFormat       string
	LogLevel        string

	// VNCHandshakeTimeout bounds the machine-paced steps of a viewer's
	// RFB login, before the password prompt.
	VNCHandshakeTimeout time.Duration

	// CDPNoAuthPort, if not 0, is a second agent door on 127.0.0.1 that
	// does not ask for CDPToken (Selenium's debuggerAddress cannot send
	// one).
	CDPNoAuthPort int

	// Handoffs (internal/handoff): HANDOFF_BASE_URL, HANDOFF_WEBHOOK_URL,
	// WATCH_SITES.
	HandoffBaseURL    string
	HandoffWebhookURL string
	WatchSites        []string
}

// Screen is the Xvfb geometry.
type Screen struct {
	Width, Height, Depth int
}

// String renders the screen the way Xvfb's -screen option wants it.
func (s Screen) String() string {
	return fmt.Sprintf("%dx%dx%d", s.Width, s.Height, s.Depth)
}

// Var documents one environment variable for --help.
type Var struct {
	Name, Default, Purpose string
}

// Vars is the one table of the variables scry reads, in --help order: the
// home of every default. A default that names another variable (CHILD_GID's
// CHILD_UID) means that variable's value.
var Vars = []Var{
	{"PROFILE_DIR", "/data", "Chromium profile (--user-data-dir); mount a volume here, writable by no other uid"},
	{"DISPLAY", ":99", "Xvfb display Chromium renders into"},
	{"CDP_PORT", "9222", "agent door: CDP bridge, all interfaces (publish on 127.0.0.1 or a ClusterIP only)"},
	{"CDP_INTERNAL_PORT", "9223", "loopback port Chromium binds CDP to"},
	{"NOVNC_PORT", "6080", "human door: noVNC page and WebSocket-to-VNC bridge"},
	{"VNC_PORT", "5900", "x11vnc RFB port, loopback only"},
	{"SCREEN", "1440x900x24", "Xvfb geometry WxHxDEPTH; the browser window fills it"},
	{"CHROME_EXTRA_FLAGS", "", "extra Chromium flags, split like a shell, appended last; scry warns about those that switch a protection off (--no-sandbox ...)"},
	{"VNC_PASSWORD", "", "VNC password (only 8 characters count); empty leaves the login view open"},
	{"CDP_ALLOWED_HOSTS", "", "comma-separated Host names accepted on CDP_PORT besides IP literals and localhost"},
	{"NOVNC_ALLOWED_HOSTS", "", "comma-separated Host names accepted on NOVNC_PORT besides IP literals and localhost"},
	{"CDP_ALLOWED_ORIGINS", "", "comma-separated Origins allowed on CDP_PORT (\"*\" for any); none by default"},
	{"CDP_TOKEN", "", "if set, every request on CDP_PORT must carry it: Authorization: Bearer TOKEN or ?token=TOKEN"},
	{"CDP_TOKEN_FILE", "", "file holding the token (e.g. a mounted Kubernetes Secret); wins over CDP_TOKEN"},
	{"CDP_TOKENS_FILE", "", "file of named tokens with roles, one NAME ROLE TOKEN per line (admin, agent, observer), read again while scry runs: a change is taken within 6 s, and a revoked token's connections are closed; with CDP_TOKEN, that is one more admin token"},
	{"AUDIT_LOG", "", "off, summary (a JSON line per CDP connection of a scoped token: its commands by method and its refusals) or commands (a JSON line per command, never its parameters); empty: summary if CDP_TOKENS_FILE is set, else off"},
	{"CDP_MAX_CONNS", "128", "cap on concurrent CDP WebSocket connections (0: no cap)"},
	{"CDP_NOAUTH_PORT", "", "if set, a second agent door on 127.0.0.1 only that does not ask for CDP_TOKEN (for Selenium's debuggerAddress)"},
	{"VNC_MAX_VIEWERS", "16", "cap on concurrent noVNC viewers (0: no cap)"},
	{"VNC_HANDSHAKE_TIMEOUT", "10s", "bound on a viewer's machine-paced RFB steps (version, security type); the password prompt gets 2 minutes"},
	{"HEADER_TIMEOUT", "10s", "bound on reading a request's headers, and its body, on both doors (never applies to open WebSockets)"},
	{"CHILD_UID", "1000", "uid the children run as when scry runs as root (the sandbox stays on)"},
	{"CHILD_GID", "CHILD_UID", "gid the children run as when scry runs as root"},
	{"CHROMIUM_PATH", "", "Chromium binary, a path or a name in PATH; empty searches chromium, chromium-browser, google-chrome"},
	{"NOVNC_DIR", "/usr/share/novnc", "noVNC static files (Debian package novnc)"},
	{"SHUTDOWN_TIMEOUT", "20s", "bound on a graceful shutdown (keep below the orchestrator's grace period)"},
	{"STARTUP_TIMEOUT", "120s", "bound on start-up before scry gives up"},
	{"SESSION_COOKIES", "persist", "persist: snapshot cookies into PROFILE_DIR/.scry/cookies.json; restore session cookies (and persistent ones a hard kill lost) at start; off"},
	{"SESSION_COOKIE_INTERVAL", "30s", "how often cookies are snapshotted (only written when they changed)"},
	{"RESTORE_TABS", "off", "on: record the open tabs' URLs with each cookie snapshot (PROFILE_DIR/.scry/tabs.json) and reopen them, in order, after the cookies at start; needs SESSION_COOKIES=persist"},
	{"ALLOW_FILE_URLS", "off", "on: the browser may open file: URLs, which lets an agent read the profile's files; off blocks them (internal pages such as chrome://policy stay blocked)"},
	{"DOWNLOAD_DIR", "", "where agent and observer tokens' downloads land, and the only place an agent's uploads may come from; empty: PROFILE_DIR/Downloads"},
	{"KEEPALIVE", "30s/10s/3", "TCP keepalive on every door connection: idle before probing/interval/probes"},
	{"LOG_FORMAT", "text", "text or json"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"HANDOFF_BASE_URL", "", "address people use to reach NOVNC_PORT (e.g. https://scry.example.com), for handoff links; empty: the agent's host with NOVNC_PORT"},
	{"HANDOFF_WEBHOOK_URL", "", "if set, handoff events are POSTed there as JSON (Slack/Mattermost-compatible); it gets the links: a trusted endpoint only"},
	{"WATCH_SITES", "", "comma-separated sites (eTLD+1, e.g. github.com) exported as scry_site_cookie_expiry_seconds{site}"},
}

// Default returns the default of variable name from Vars ("" for a name
// not in it).
func Default(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// FromEnv builds a Config from getenv (os.Getenv in production) and
// validates it. The error lists every bad variable, not only the first.
func FromEnv(getenv func(string) string) (*Config, error) {
	e := &envReader{getenv: getenv}
	c := &Config{}
	e.readProcess(c)
	e.readDoors(c)
	e.readToken(c)
	e.readBrowser(c)
	e.readHandoffs(c)
	errs := append(e.errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// envReader reads variables, falling back to their defaults in Vars, and keeps
// every error.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func (e *envReader) get(name string) string { return cmp.Or(e.getenv(name), Default(name)) }

func (e *envReader) set(name string) bool { return e.getenv(name) != "" }

func (e *envReader) fail(err error) { e.errs = append(e.errs, err) }

func (e *envReader) port(name string) int {
	v := e.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		e.fail(fmt.Errorf("%s=%q: want a port number 1-65535", name, v))
		return 0
	}
	return n
}

// doorPort is a door's port: 0 means any free port, which scry logs as
// the door opens.
func (e *envReader) doorPort(name string) int {
	if e.getenv(name) == "0" {
		return 0
	}
	return e.port(name)
}

func (e *envReader) duration(name string) time.Duration {
	v := e.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(fmt.Errorf("%s=%q: want a positive duration such as 20s", name, v))
		return 0
	}
	return d
}

func (e *envReader) id(name string) int {
	v := e.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		e.fail(fmt.Errorf("%s=%q: want a numeric id >= 0", name, v))
		return 0
	}
	return n
}

// choice is true for on and false for off, the variable's two words.
func (e *envReader) choice(name, on, off string) bool {
	switch v := e.get(name); v {
	case on:
		return true
	case off:
		return false
	default:
		e.fail(fmt.Errorf("%s=%q: want %s or %s", name, v, on, off))
		return false
	}
}

// readProcess reads what scry itself and its children run with.
func (e *envReader) readProcess(c *Config) {
	c.ProfileDir = e.get("PROFILE_DIR")
	c.Display = e.get("DISPLAY")
	c.ChildUID = e.id("CHILD_UID")
	// CHILD_GID's default is CHILD_UID's value (an invalid CHILD_UID is
	// reported once, under its own name).
	c.ChildGID = c.ChildUID
	if e.set("CHILD_GID") {
		c.ChildGID = e.id("CHILD_GID")
	}
	c.ShutdownTimeout = e.duration("SHUTDOWN_TIMEOUT")
	c.StartupTimeout = e.duration("STARTUP_TIMEOUT")
	c.LogFormat = e.get("LOG_FORMAT")
	c.LogLevel = e.get("LOG_LEVEL")
	c.SessionCookies = e.choice("SESSION_COOKIES", "persist", "off")
	c.CookieInterval = e.duration("SESSION_COOKIE_INTERVAL")
	c.RestoreTabs = e.choice("RESTORE_TABS", "on", "off")
}

// readDoors reads both doors' ports, limits and host policies.
func (e *envReader) readDoors(c *Config) {
	c.CDPPort = e.doorPort("CDP_PORT")
	c.CDPInternalPort = e.port("CDP_INTERNAL_PORT")
	if e.set("CDP_NOAUTH_PORT") {
		c.CDPNoAuthPort = e.port("CDP_NOAUTH_PORT")
	}
	c.NoVNCPort = e.doorPort("NOVNC_PORT")
	c.VNCPort = e.port("VNC_PORT")
	c.VNCPassword = e.get("VNC_PASSWORD")
	c.NoVNCDir = e.get("NOVNC_DIR")
	c.HeaderTimeout = e.duration("HEADER_TIMEOUT")
	c.CDPMaxConns = e.id("CDP_MAX_CONNS")
	c.VNCMaxViewers = e.id("VNC_MAX_VIEWERS")
	c.VNCHandshakeTimeout = e.duration("VNC_HANDSHAKE_TIMEOUT")
	ka := e.get("KEEPALIVE")
	if k, err := ParseKeepAlive(ka); err != nil {
		e.fail(fmt.Errorf("KEEPALIVE=%q: %w", ka, err))
	} else {
		c.KeepAlive = k
	}
	c.CDPAllowedHosts = splitList(e.get("CDP_ALLOWED_HOSTS"))
	c.CDPAllowedOrigins = splitList(e.get("CDP_ALLOWED_ORIGINS"))
	c.NoVNCAllowedHosts = splitList(e.get("NOVNC_ALLOWED_HOSTS"))
}

// readToken reads CDP_TOKEN, or the file CDP_TOKEN_FILE names, and the
// named tokens of CDP_TOKENS_FILE, and AUDIT_LOG, whose default depends on
// them.
func (e *envReader) readToken(c *Config) {
	c.CDPToken = e.get("CDP_TOKEN")
	if f := e.get("CDP_TOKEN_FILE"); f != "" {
		b, err := os.ReadFile(f)
		switch {
		case err != nil:
			e.fail(fmt.Errorf("CDP_TOKEN_FILE=%q: %w", f, err))
		case strings.TrimSpace(string(b)) == "":
			e.fail(fmt.Errorf("CDP_TOKEN_FILE=%q: the file is empty; put the token in it", f))
		default:
			c.CDPToken = strings.TrimSpace(string(b))
		}
	}
	if c.CDPToken != "" && len(c.CDPToken) < tokens.MinLength {
		e.fail(errors.New("CDP_TOKEN: too short (under 16 characters); use a random token, e.g. openssl rand -hex 32"))
	}
	c.Tokens = &tokens.Set{}
	if f := e.get("CDP_TOKENS_FILE"); f != "" {
		c.TokensFile = f
		set, err := tokens.Load(f)
		if err != nil {
			e.fail(fmt.Errorf("CDP_TOKENS_FILE=%q: %w (one NAME ROLE TOKEN per line; the role is admin, agent or observer)", f, err))
		} else {
			c.Tokens = set
		}
	}
	if c.CDPToken != "" && len(c.CDPToken) >= tokens.MinLength {
		if err := c.Tokens.Add(tokens.LegacyName, cdprole.Admin, c.CDPToken); err != nil {
			e.fail(fmt.Errorf("CDP_TOKEN: %w (CDP_TOKENS_FILE has it, or the name %s)", err, tokens.LegacyName))
		}
	}
	c.AuditLog = e.get("AUDIT_LOG")
	switch c.AuditLog {
	case "":
		c.AuditLog = "off"
		if c.TokensFile != "" {
			// Scoped tokens are, or may be added, in use.
			c.AuditLog = "summary"
		}
	case "off", "summary", "commands":
	default:
		e.fail(fmt.Errorf("AUDIT_LOG=%q: want off, summary or commands", c.AuditLog))
	}
}

// readBrowser reads how Chromium and its screen are set up.
func (e *envReader) readBrowser(c *Config) {
	c.ChromiumPath = e.get("CHROMIUM_PATH")
	c.AllowFileURLs = e.choice("ALLOW_FILE_URLS", "on", "off")
	c.DownloadDir = e.get("DOWNLOAD_DIR")
	if c.DownloadDir == "" {
		c.DownloadDir = filepath.Join(c.ProfileDir, "Downloads")
	} else if !filepath.IsAbs(c.DownloadDir) {
		e.fail(fmt.Errorf("DOWNLOAD_DIR=%q: want an absolute path", c.DownloadDir))
	}
	c.DownloadDir = filepath.Clean(c.DownloadDir)
	screen := e.get("SCREEN")
	if s, err := ParseScreen(screen); err != nil {
		e.fail(fmt.Errorf("SCREEN=%q: %w", screen, err))
	} else {
		c.Screen = s
	}
	flags, err := SplitWords(e.get("CHROME_EXTRA_FLAGS"))
	if err != nil {
		e.fail(fmt.Errorf("CHROME_EXTRA_FLAGS=%q: %w", e.get("CHROME_EXTRA_FLAGS"), err))
	}
	c.ChromeExtraFlags = flags
}

// readHandoffs reads where handoff links point, the webhook, and the
// sites whose logins are watched.
func (e *envReader) readHandoffs(c *Config) {
	c.HandoffBaseURL = strings.TrimRight(e.get("HANDOFF_BASE_URL"), "/")
	c.HandoffWebhookURL = e.get("HANDOFF_WEBHOOK_URL")
	if u, err := url.Parse(c.HandoffBaseURL); c.HandoffBaseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "") {
		e.fail(fmt.Errorf("HANDOFF_BASE_URL=%q: want an absolute http or https URL without a query, such as https://scry.example.com", c.HandoffBaseURL))
	}
	// The webhook's URL is itself a secret (Slack's are): never echoed.
	if u, err := url.Parse(c.HandoffWebhookURL); c.HandoffWebhookURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		e.fail(errors.New("HANDOFF_WEBHOOK_URL: want an absolute http or https URL"))
	}
	for _, s := range splitList(e.get("WATCH_SITES")) {
		c.WatchSites = append(c.WatchSites, strings.ToLower(s))
	}
}

func (c *Config) validate() []error {
	var errs []error
	if _, err := ParseDisplay(c.Display); err != nil {
		errs = append(errs, fmt.Errorf("DISPLAY=%q: %w", c.Display, err))
	}
	if c.ProfileDir == "" || !filepath.IsAbs(c.ProfileDir) {
		errs = append(errs, fmt.Errorf("PROFILE_DIR=%q: want an absolute path", c.ProfileDir))
	}
	ports := []struct {
		name string
		n    int
	}{{"CDP_PORT", c.CDPPort}, {"CDP_INTERNAL_PORT", c.CDPInternalPort}, {"NOVNC_PORT", c.NoVNCPort}, {"VNC_PORT", c.VNCPort}, {"CDP_NOAUTH_PORT", c.CDPNoAuthPort}}
	for i := range ports {
		for j := i + 1; j < len(ports); j++ {
			if ports[i].n != 0 && ports[i].n == ports[j].n {
				errs = append(errs, fmt.Errorf("%s=%d and %s=%d: want different ports", ports[i].name, ports[i].n, ports[j].name, ports[j].n))
			}
		}
	}
	if c.RestoreTabs && !c.SessionCookies {
		errs = append(errs, errors.New("RESTORE_TABS=on needs SESSION_COOKIES=persist: the tabs are recorded with the cookie snapshots, "+
			"and reopened without the cookies they would load logged out; set SESSION_COOKIES=persist or RESTORE_TABS=off"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT=%q: want text or json", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	for _, name := range []string{"CDP_ALLOWED_HOSTS", "NOVNC_ALLOWED_HOSTS"} {
		hosts := c.CDPAllowedHosts
		if name == "NOVNC_ALLOWED_HOSTS" {
			hosts = c.NoVNCAllowedHosts
		}
		for _, h := range hosts {
			if err := checkHostEntry(h); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q: %w", name, h, err))
			}
		}
	}
	errs = append(errs, checkExtraFlags(c.ChromeExtraFlags)...)
	for _, o := range c.CDPAllowedOrigins {
		if o != "*" && !strings.Contains(o, "://") {
			errs = append(errs, fmt.Errorf("CDP_ALLOWED_ORIGINS: %q: want an origin such as https://app.example.com, or *", o))
		}
	}
	return errs
}

// checkHostEntry refuses allowed-hosts entries that could never match a
// Host header, so a typo fails at start instead of as a 403 later.
func checkHostEntry(h string) error {
	const want = "want a host name such as scry-0.scry, optionally with :port"
	if strings.Contains(h, "*") {
		// A pattern would also let a rebinding name through if it
		// were too wide; each pod has one name, list it.
		return errors.New("wildcards are not supported: list each name clients use, e.g. scry-0.scry,scry-0.scry.default.svc.cluster.local")
	}
	if strings.ContainsAny(h, "/ @?#") {
		return errors.New(want)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		return nil // no port (or a bare IPv6 literal, always accepted anyway)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New(want + " (the port is not a number 1-65535)")
	}
	if host == "" {
		return errors.New(want)
	}
	return nil
}

// ownFlags are the Chromium switches scry sets itself, with the variable
// to use instead. Overriding them from CHROME_EXTRA_FLAGS would move CDP
// away from where scry waits for it, and scry would wait until
// STARTUP_TIMEOUT for nothing.
var ownFlags = []struct{ name, instead string }{
	{"remote-debugging-port", "set CDP_INTERNAL_PORT instead"},
	{"remote-debugging-address", "scry keeps CDP on loopback behind CDP_PORT; reach it there (CDP_ALLOWED_HOSTS for other hosts' names)"},
	{"remote-debugging-pipe", "scry talks to Chromium over CDP_INTERNAL_PORT; agents use CDP_PORT"},
	{"user-data-dir", "set PROFILE_DIR instead"},
}

// oneIdentity are the Chromium switches that would pick a profile other
// than PROFILE_DIR's Default, where scry keeps the cookie snapshots, reads
// the cookie database and marks the last exit clean: durability would
// silently stop.
var oneIdentity = []string{"profile-directory"}

const oneIdentityWhy = "scry keeps one identity per container, the Default profile in PROFILE_DIR " +
	"(its cookie snapshots and clean-exit marks are made there); for another identity run another scry with its own PROFILE_DIR"

func checkExtraFlags(flags []string) []error {
	var errs []error
	for _, f := range flags {
		if !strings.HasPrefix(f, "-") {
			// A URL to open: it would load before scry restores the
			// session cookies, and send the stale ones to its site.
			errs = append(errs, fmt.Errorf("CHROME_EXTRA_FLAGS: %q is not a flag: pages opened at launch load before scry "+
				"restores the login's cookies; open it through CDP once scry is ready (PUT /json/new?URL)", f))
			continue
		}
		name, _ := flagName(f)
		for _, o := range ownFlags {
			if name == o.name {
				errs = append(errs, fmt.Errorf("CHROME_EXTRA_FLAGS: %q: scry sets --%s itself; %s", f, o.name, o.instead))
			}
		}
		for _, o := range oneIdentity {
			if name == o {
				errs = append(errs, fmt.Errorf("CHROME_EXTRA_FLAGS: %q: --%s is refused: %s", f, o, oneIdentityWhy))
			}
		}
	}
	return errs
}

// flagName returns the switch name and value of a Chromium flag. Chromium
// takes both --switch and -switch, with an optional =value; on Linux switch
// names are case-sensitive.
func flagName(f string) (name, value string) {
	name, value, _ = strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f, "-"), "-"), "=")
	return name, value
}

// HasExtraFlag reports whether CHROME_EXTRA_FLAGS carries switch name.
func (c *Config) HasExtraFlag(name string) bool {
	for _, f := range c.ChromeExtraFlags {
		if n, _ := flagName(f); n == name && strings.HasPrefix(f, "-") {
			return true
		}
	}
	return false
}

// riskyFlags are the Chromium switches CHROME_EXTRA_FLAGS may carry that
// switch off a protection of the logged-in browser. scry starts with them,
// since each has its uses, but warns at start and in `scry doctor`. A
// feature, if set, must be among the switch's comma-separated values. (The
// switches scry refuses outright are ownFlags.)
var riskyFlags = []struct{ name, feature, risk string }{
	{"no-sandbox", "", "Chromium's renderer sandbox is off: a page that exploits a renderer bug runs code as the browser's uid, with every logged-in session and the profile"},
	{"single-process", "", "pages render inside the browser process, outside any sandbox: a renderer bug hands a page every logged-in session"},
	{"disable-web-security", "", "the same-origin policy is off: any page the browser opens can read and drive every site it is logged into"},
	{"remote-allow-origins", "", "web pages of the origins given may open DevTools WebSockets on CDP_INTERNAL_PORT, past scry's CDP_ALLOWED_ORIGINS and CDP_TOKEN; let scry check Origins with CDP_ALLOWED_ORIGINS instead"},
	{"disable-site-isolation-trials", "", "site isolation is off: one renderer may hold several sites, so a renderer bug or a side channel reads another logged-in site's data"},
	{"disable-features", "IsolateOrigins", "site isolation is off: one renderer may hold several sites, so a renderer bug or a side channel reads another logged-in site's data"},
	{"disable-features", "site-per-process", "site isolation is off: one renderer may hold several sites, so a renderer bug or a side channel reads another logged-in site's data"},
	{"allow-running-insecure-content", "", "HTTPS pages may run scripts fetched over plain HTTP, which anyone on the network path can replace"},
	{"ignore-certificate-errors", "", "any TLS certificate is accepted: anyone on the network path can read and change the logged-in sessions"},
	{"allow-file-access-from-files", "", "file: pages may read any file the browser's uid can, the profile's cookies included"},
}

// RiskyFlag is a flag of CHROME_EXTRA_FLAGS that switches a protection off.
type RiskyFlag struct {
	Flag string // as given
	Risk string // what it puts at risk
}

// RiskyFlags returns the flags of CHROME_EXTRA_FLAGS that switch off one of
// the browser's protections, with what each puts at risk, in the order
// given: the one list behind the warnings at start and in `scry doctor`.
func (c *Config) RiskyFlags() []RiskyFlag {
	var out []RiskyFlag
	for _, f := range c.ChromeExtraFlags {
		if !strings.HasPrefix(f, "-") {
			continue
		}
		name, value := flagName(f)
		for _, r := range riskyFlags {
			if name == r.name && (r.feature == "" || slices.Contains(strings.Split(value, ","), r.feature)) {
				out = append(out, RiskyFlag{Flag: f, Risk: r.risk})
				break
			}
		}
	}
	return out
}

// DisplayNumber returns N of DISPLAY=:N.
func (c *Config) DisplayNumber() int {
	n, _ := ParseDisplay(c.Display)
	return n
}

// ParseDisplay returns N of ":N", a local display: the only kind scry runs.
func ParseDisplay(d string) (int, error) {
	rest, ok := strings.CutPrefix(d, ":")
	n, err := strconv.Atoi(rest)
	if !ok || err != nil || n < 0 || n >= 65536-6000 || strconv.Itoa(n) != rest {
		return 0, errors.New("want :N, a local display number such as :99")
	}
	return n, nil
}

// ParseScreen parses WxHxDEPTH.
func ParseScreen(s string) (Screen, error) {
	parts := strings.Split(s, "x")
	if len(parts) != 3 {
		return Screen{}, errors.New("want WxHxDEPTH such as 1440x900x24")
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return Screen{}, errors.New("want WxHxDEPTH such as 1440x900x24")
		}
		n[i] = v
	}
	scr := Screen{Width: n[0], Height: n[1], Depth: n[2]}
	if scr.Width < 320 || scr.Height < 240 || scr.Width > 8192 || scr.Height > 8192 {
		return Screen{}, errors.New("want a width and height between 320x240 and 8192x8192")
	}
	switch scr.Depth {
	case 16, 24:
	default:
		return Screen{}, errors.New("want DEPTH 16 or 24")
	}
	return scr, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Binary is a program scry runs.
type Binary string

// The programs scry runs, by the name it looks up in PATH.
const (
	Chromium Binary = "chromium"
	Xvfb     Binary = "Xvfb"
	X11vnc   Binary = "x11vnc"
)

// debianPackage names the Debian package that ships each binary.
var debianPackage = map[Binary]string{Chromium: "chromium", Xvfb: "xvfb", X11vnc: "x11vnc"}

// chromiumNames are searched in PATH, in order, when CHROMIUM_PATH is unset.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// LookupError says which binary cannot be run and, apart, what to do.
type LookupError struct {
	Detail string
	Remedy string
}

func (e *LookupError) Error() string { return e.Detail + ": " + e.Remedy }

// Problem and Fix are what `scry doctor` prints.
func (e *LookupError) Problem() string { return e.Detail }
func (e *LookupError) Fix() string     { return e.Remedy }

// Lookup finds binary b with lookPath (exec.LookPath): Chromium from
// CHROMIUM_PATH if set, else the first of its usual names; the others by
// name. The error is a *LookupError.
func (c *Config) Lookup(b Binary, lookPath func(string) (string, error)) (string, error) {
	install := "apt-get install " + debianPackage[b] + " (Debian package " + debianPackage[b] + ")"
	if b != Chromium {
		p, err := lookPath(string(b))
		if err != nil {
			return "", &LookupError{string(b) + " not found in PATH", install}
		}
		return p, nil
	}
	const setPath = "set CHROMIUM_PATH to the Chromium binary, or unset it to use chromium from PATH"
	var path string
	switch {
	case c.ChromiumPath == "":
		for _, name := range chromiumNames {
			if p, err := lookPath(name); err == nil {
				path = p
				break
			}
		}
		if path == "" {
			return "", &LookupError{"chromium not found in PATH (nor " + strings.Join(chromiumNames[1:], ", ") + ")",
				install + ", or set CHROMIUM_PATH to the browser binary"}
		}
	case !strings.ContainsRune(c.ChromiumPath, '/'):
		p, err := lookPath(c.ChromiumPath)
		if err != nil {
			return "", &LookupError{fmt.Sprintf("CHROMIUM_PATH=%q: not found in PATH", c.ChromiumPath),
				"give an absolute path, or " + install + " and unset CHROMIUM_PATH"}
		}
		path = p
	default:
		if _, err := os.Stat(c.ChromiumPath); err != nil {
			return "", &LookupError{fmt.Sprintf("CHROMIUM_PATH=%q: %v", c.ChromiumPath, errors.Unwrap(err)), setPath}
		}
		path = c.ChromiumPath
	}
	if fi, err := os.Stat(path); err == nil && (fi.IsDir() || fi.Mode().Perm()&0o111 == 0) {
		return "", &LookupError{path + " is not an executable file", setPath}
	}
	return path, nil
}

// KeepAlive is a TCP keepalive setting: probe after Idle without traffic,
// every Interval, drop after Count unanswered probes. It never cuts a
// quiet connection whose peer is alive.
type KeepAlive struct {
	Idle, Interval time.Duration
	Count          int
}

// ParseKeepAlive parses IDLE/INTERVAL/COUNT, e.g. 30s/10s/3.
func ParseKeepAlive(s string) (KeepAlive, error) {
	const want = "want IDLE/INTERVAL/COUNT such as 30s/10s/3"
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return KeepAlive{}, errors.New(want)
	}
	idle, err1 := time.ParseDuration(parts[0])
	intv, err2 := time.ParseDuration(parts[1])
	n, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || idle < time.Second || intv < time.Second || n < 1 {
		return KeepAlive{}, errors.New(want + " (at least 1s/1s/1)")
	}
	return KeepAlive{Idle: idle, Interval: intv, Count: n}, nil
}
