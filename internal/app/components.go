package app

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dataplanelabs/scry/internal/browser"
	"github.com/dataplanelabs/scry/internal/cdpproxy"
	"github.com/dataplanelabs/scry/internal/clipboard"
	"github.com/dataplanelabs/scry/internal/cookies"
	"github.com/dataplanelabs/scry/internal/display"
	"github.com/dataplanelabs/scry/internal/doctor"
	"github.com/dataplanelabs/scry/internal/door"
	"github.com/dataplanelabs/scry/internal/hostpolicy"
	"github.com/dataplanelabs/scry/internal/metrics"
	"github.com/dataplanelabs/scry/internal/novnc"
	"github.com/dataplanelabs/scry/internal/supervise"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/vnc"
)

// navigationSettle is how long after a page navigates (a login's redirect,
// say) scry snapshots the cookies: long enough for redirect chains and the
// landing page's scripts, short enough that a hard kill soon after a login
// keeps it.
const navigationSettle = time.Second

// doorGrace is how long a closing door lets its requests finish.
const doorGrace = 2 * time.Second

// newComponents builds every component; none runs yet.
func (s *scry) newComponents(bin binaries, vncServerPassword string) error {
	cfg := s.cfg
	s.xvfb = &display.Xvfb{
		Display: cfg.Display, Screen: cfg.Screen, Path: bin.xvfb,
		Env: s.env, Credential: s.cred, Logger: s.log, Authority: s.xauth,
	}
	s.clipboard = &clipboard.Service{Display: cfg.Display, Logger: s.log.With("component", "clipboard")}
	if err := s.newX11vnc(bin.x11vnc, vncServerPassword); err != nil {
		return err
	}
	s.chromium = &browser.Chromium{
		Path: bin.chromium, Args: browser.Flags(cfg, s.startup), ExtraFlags: len(cfg.ChromeExtraFlags),
		Env: s.env, Dir: s.runtime, Credential: s.cred, Logger: s.log,
		Addr: s.internalCDP(), SandboxHint: doctor.SandboxHint(),
	}
	s.bconn = &browserConn{addr: s.internalCDP(), log: s.log.With("component", "cdp-client")}
	var targetURL func(string) (string, bool)
	var targetHistory func(string) ([]string, error)
	var targetShown func(string) (string, error)
	if cfg.TokensFile != "" {
		// Scoped tokens are in use, or may be added while scry runs.
		s.targets = newTargetURLs(s.internalCDP())
		s.bconn.WatchTargets(s.targets)
		targetURL, targetHistory, targetShown = s.targets.URL, s.targets.History, s.targets.BrowserPageShown
	}
	if cfg.SessionCookies {
		s.newCookies()
	}
	s.proxy = cdpproxy.New(cdpproxy.Config{
		Backend:   s.internalCDP(),
		Policy:    hostpolicy.Policy{AllowedHosts: cfg.CDPAllowedHosts, AllowedOrigins: cfg.CDPAllowedOrigins, HostsVariable: "CDP_ALLOWED_HOSTS", OriginsVariable: "CDP_ALLOWED_ORIGINS"},
		Logger:    s.log.With("door", "cdp"),
		KeepAlive: s.keepAlive(),
		Observer:  metrics.CDP{M: s.metrics},
		Token:     cfg.CDPToken,
		Tokens:    cfg.Tokens,
		// The audit trail is JSON whatever LOG_FORMAT says, in the
		// same stream, so it can be picked out and shipped as is.
		Audit:            s.auditLog(),
		AuditMode:        cfg.AuditLog,
		DownloadDir:      cfg.DownloadDir,
		PersonHasControl: s.handoffs.reg.Active,
		TargetURL:        targetURL,
		TargetHistory:    targetHistory,
		TargetShown:      targetShown,
		MaxConns:         cfg.CDPMaxConns,
		Health:           s.health(),
		Metrics:          s.metrics.Handler(),
		Routes:           s.handoffs.agentRoutes(),
		// A request's body is bounded like its headers.
		BodyTimeout: cfg.HeaderTimeout,
	})
	s.cdpDoor = s.newDoor("cdp", cfg.CDPPort, s.proxy)
	if cfg.TokensFile != "" {
		s.tokensFile = &tokens.File{
			Path: cfg.TokensFile, Legacy: cfg.CDPToken, Current: cfg.Tokens,
			Changed: s.proxy.SetTokens, Logger: s.log.With("component", "tokens"),
		}
	}
	if cfg.CDPNoAuthPort != 0 {
		// Selenium's door: the same bridge without the token, on
		// loopback only (see cdpproxy.Proxy.NoToken).
		s.cdpNoAuthDoor = s.newDoor("cdp-noauth", cfg.CDPNoAuthPort, s.proxy.NoToken())
		s.cdpNoAuthDoor.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.CDPNoAuthPort))
	}
	s.novncDoor = s.newDoor("novnc", cfg.NoVNCPort, s.novnc)
	return nil
}

// newX11vnc builds the x11vnc keeper. x11vnc's password is always scry's
// random one, never VNC_PASSWORD: only scry's bridge can use x11vnc (see
// package rfbauth). Its file sits in the runtime dir, never the profile.
func (s *scry) newX11vnc(path, vncServerPassword string) error {
	for _, w := range vnc.Warnings(s.cfg.VNCPassword) {
		s.log.Warn(w)
	}
	uid, gid := s.childIDs()
	f, err := vnc.WritePasswordFile(s.runtime, vncServerPassword, uid, gid)
	if err != nil {
		return err
	}
	s.x11vnc = &vnc.Keeper{
		Path:    path,
		Options: vnc.Options{Display: s.cfg.Display, Port: s.cfg.VNCPort, PasswordFile: f},
		Env:     s.env, Credential: s.cred, Logger: s.log,
		Restarted: func() { s.metrics.Restarted("x11vnc") },
	}
	return nil
}

// newCookies builds the cookie snapshots. The store notes the profile's
// cookie database now, before Chromium starts and writes it.
func (s *scry) newCookies() {
	log := s.log.With("component", "cookies")
	uid, gid := s.childIDs()
	store := cookies.New(s.cfg.ProfileDir, log, uid, gid)
	store.NoteDatabase()
	s.cookies = &cookies.Snapshotter{
		Store: store,
		Schedule: cookies.Schedule{
			Interval: s.cfg.CookieInterval,
			Nudge:    s.bconn.Navigations(), Settle: navigationSettle, MaxWait: 5 * navigationSettle,
		},
		Conn:         s.bconn.Caller,
		BrowserAlive: s.chromium.Alive,
		Logger:       log,
	}
	if s.cfg.RestoreTabs {
		s.cookies.Tabs = cookies.NewTabs(store, s.cfg.AllowFileURLs)
		// Chromium lists its targets in no useful order: the tabs'
		// order is the order they were opened in.
		s.bconn.pageCreated = s.cookies.Tabs.Created
	} else if err := cookies.ForgetTabs(store); err != nil {
		log.Warn("could not remove the tab list a run with RESTORE_TABS=on left", "err", err)
	}
}

// newDoor builds a door's server on port, on every interface.
func (s *scry) newDoor(name string, port int, h http.Handler) *door.Server {
	return &door.Server{
		Addr: net.JoinHostPort("", strconv.Itoa(port)), Handler: h,
		KeepAlive: s.keepAlive(), HeaderTimeout: s.cfg.HeaderTimeout, Grace: doorGrace,
		Logger: s.log.With("door", name),
	}
}

// newDoorHandlers builds the human door's handler (it checks its files
// now, before anything starts) and the metrics both doors serve.
func (s *scry) newDoorHandlers(vncServerPassword string) error {
	cfg := s.cfg
	var err error
	s.handoffs = s.newHandoffs()
	s.novnc, err = novnc.New(novnc.Config{
		Routes:         s.handoffs.human.Routes(),
		Admit:          s.handoffs.human.Viewer,
		Password:       cfg.VNCPassword,
		ServerPassword: vncServerPassword,
		OnCutText:      func(text []byte) { s.clipboard.Paste(text) },
		StaticDir:      cfg.NoVNCDir,
		VNCAddr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.VNCPort)),
		Logger:         s.log.With("door", "novnc"),
		MaxViewers:     cfg.VNCMaxViewers,
		KeepAlive:      s.keepAlive(),
		CheckHost:      (&hostpolicy.Policy{AllowedHosts: cfg.NoVNCAllowedHosts, HostsVariable: "NOVNC_ALLOWED_HOSTS"}).CheckHost,

		HandshakeTimeout: cfg.VNCHandshakeTimeout,
		RequestTimeout:   cfg.HeaderTimeout, // a request's body is bounded like its headers
		// s.metrics is made below, before either door opens.
		OnRefused: func(reason string) { s.metrics.NoVNCRefused(reason) },
	})
	if err != nil {
		return err
	}
	s.metrics = s.newMetrics()
	s.metrics.Register(s.handoffs.collectors()...)
	return nil
}

func (s *scry) newMetrics() *metrics.Metrics {
	// No cookie metrics without snapshots: absent, not a misleading 0.
	var cookieStatus func() (time.Time, int, uint64)
	if s.cfg.SessionCookies {
		cookieStatus = func() (time.Time, int, uint64) {
			if s.cookies == nil {
				return time.Time{}, 0, 0
			}
			return s.cookies.Store.Status()
		}
	}
	return metrics.New(Version, metrics.Sources{
		VNCViewers:      s.novnc.Viewers,
		VNCLogins:       s.novnc.Logins,
		VNCViewersTotal: s.novnc.TotalViewers,
		ChromiumPid: func() int {
			if p := s.chromiumProcess(); p != nil && !p.Exited() {
				return p.Pid()
			}
			return 0
		},
		ChromiumStarted: func() time.Time {
			if p := s.chromiumProcess(); p != nil && !p.Exited() {
				return p.Started()
			}
			return time.Time{}
		},
		CookieSnapshot: cookieStatus,
	})
}

// chromiumProcess is Chromium's process, nil before it started.
func (s *scry) chromiumProcess() *supervise.Process {
	if s.chromium == nil {
		return nil
	}
	return s.chromium.Process()
}

func (s *scry) keepAlive() net.KeepAliveConfig {
	k := s.cfg.KeepAlive
	return net.KeepAliveConfig{Enable: true, Idle: k.Idle, Interval: k.Interval, Count: k.Count}
}
