package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/browser"
	"github.com/dataplanelabs/scry/internal/cdpproxy"
	"github.com/dataplanelabs/scry/internal/clipboard"
	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/cookies"
	"github.com/dataplanelabs/scry/internal/display"
	"github.com/dataplanelabs/scry/internal/doctor"
	"github.com/dataplanelabs/scry/internal/metrics"
	"github.com/dataplanelabs/scry/internal/novnc"
	"github.com/dataplanelabs/scry/internal/profile"
	"github.com/dataplanelabs/scry/internal/rfbauth"
	"github.com/dataplanelabs/scry/internal/supervise"
)

type scry struct {
	cfg    *config.Config
	log    *slog.Logger
	getenv func(string) string

	cred       *syscall.Credential
	env        []string
	runtime    string // private temp dir: child HOME, VNC password file
	xvfb       *supervise.Process
	chromium   *supervise.Process
	lock       *profile.Lock
	servers    []*server
	proxy      *cdpproxy.Proxy
	novnc      *novnc.Handler
	bconn      *browserConn
	cookies    *cookies.Store
	cookieStop func()
	x11vnc     *vncChild
	// vncServerPassword is x11vnc's own password: random, known only to
	// scry's bridge, never VNC_PASSWORD.
	vncServerPassword string
	clip              atomic.Pointer[clipboard.Owner]
	metrics           *metrics.Metrics
}

func (s *scry) internalCDP() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.CDPInternalPort))
}

func (s *scry) run(ctx context.Context) (err error) {
	s.log.Info("scry starting", "version", Version, "profile_dir", s.cfg.ProfileDir, "display", s.cfg.Display,
		"screen", s.cfg.Screen.String(), "cdp_port", s.cfg.CDPPort, "novnc_port", s.cfg.NoVNCPort)
	defer s.cleanup()

	bootCtx, cancel := context.WithTimeout(ctx, s.cfg.StartupTimeout)
	err = s.start(bootCtx)
	cancel()
	if err != nil {
		s.shutdown()
		if ctx.Err() != nil {
			s.log.Info("start-up interrupted by signal")
			return nil
		}
		code := 1
		if s.chromium != nil && s.chromium.Exited() && s.chromium.ExitCode() > 128 {
			code = s.chromium.ExitCode() // a signal death, as after start-up
		}
		return &ExitError{Code: code, Err: fmt.Errorf("start-up failed: %w", err)}
	}
	s.log.Info("scry ready", "cdp", fmt.Sprintf("http://127.0.0.1:%d/json/version", s.cfg.CDPPort),
		"novnc", fmt.Sprintf("http://127.0.0.1:%d/", s.cfg.NoVNCPort), "chromium_pid", s.chromium.Pid())

	select {
	case <-ctx.Done():
		s.log.Info("shutdown requested")
		s.shutdown()
		return nil
	case <-s.xvfb.Done():
		// Chromium follows its display within moments; say why first.
		cause := fmt.Errorf("the X display (Xvfb on %s) died: %v", s.cfg.Display, s.xvfb.Err())
		s.log.Error("xvfb exited; stopping so the orchestrator restarts the container", "err", cause)
		s.shutdown()
		return &ExitError{Code: 1, Err: cause}
	case <-s.chromium.Done():
		code := s.chromium.ExitCode()
		if code == 0 {
			code = 1 // the browser must never end on its own
		}
		cause := s.chromium.Err()
		switch {
		case s.xvfb.Exited():
			cause = fmt.Errorf("the X display (Xvfb on %s) died under it: %v", s.cfg.Display, s.xvfb.Err())
		case cause == nil:
			cause = errors.New("chromium exited with status 0 (its last window was closed?)")
		}
		s.log.Error("chromium exited; stopping so the orchestrator restarts the container", "err", cause, "exit_code", code)
		s.shutdown()
		return &ExitError{Code: code, Err: fmt.Errorf("chromium ended: %w", cause)}
	}
}

func (s *scry) start(ctx context.Context) error {
	cfg := s.cfg
	// The preflight's fatal checks (binaries, the sandbox's user
	// namespaces, the profile directory, ports free, the display free)
	// refuse in the words of `scry doctor`, before anything starts.
	if err := doctor.Fatal(ctx, doctor.Env{Config: cfg, Getenv: s.getenv}); err != nil {
		return fmt.Errorf("preflight (run `scry doctor` for the full report): %w", err)
	}
	var err error
	if s.cred, err = childCredential(cfg); err != nil {
		return err
	}
	chromiumPath, err := cfg.Lookup(config.Chromium, lookPath)
	if err != nil {
		return err
	}
	xvfbPath, err := cfg.Lookup(config.Xvfb, lookPath)
	if err != nil {
		return err
	}
	x11vncPath, err := cfg.Lookup(config.X11vnc, lookPath)
	if err != nil {
		return err
	}
	// The human door's files are checked before anything starts.
	if s.vncServerPassword, err = rfbauth.NewPassword(); err != nil {
		return err
	}
	s.novnc, err = novnc.New(novnc.Config{
		Password:       cfg.VNCPassword,
		ServerPassword: s.vncServerPassword,
		OnCutText:      s.onCutText,
		StaticDir:      cfg.NoVNCDir,
		VNCAddr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.VNCPort)),
		Logger:         s.log.With("door", "novnc"),
		MaxViewers:     cfg.VNCMaxViewers,
		KeepAlive:      s.keepAlive(),
		CheckHost:      (&cdpproxy.Policy{AllowedHosts: cfg.NoVNCAllowedHosts, HostsVariable: "NOVNC_ALLOWED_HOSTS"}).CheckHost,

		HandshakeTimeout: cfg.VNCHandshakeTimeout,
		RequestTimeout:   cfg.HeaderTimeout, // a request's body is bounded like its headers
		// s.metrics is made below, before either door opens.
		OnRefused: func(reason string) { s.metrics.NoVNCRefused(reason) },
	})
	if err != nil {
		return err
	}
	// No cookie metrics without snapshots: absent, not a misleading 0.
	var cookieStatus func() (time.Time, int, uint64)
	if cfg.SessionCookies {
		cookieStatus = func() (time.Time, int, uint64) {
			if s.cookies == nil {
				return time.Time{}, 0, 0
			}
			return s.cookies.Status()
		}
	}
	s.metrics = metrics.New(Version, metrics.Sources{
		VNCViewers:      s.novnc.Viewers,
		VNCLogins:       s.novnc.Logins,
		VNCViewersTotal: s.novnc.TotalViewers,
		ChromiumPid: func() int {
			if p := s.chromium; p != nil && !p.Exited() {
				return p.Pid()
			}
			return 0
		},
		ChromiumStarted: func() time.Time {
			if p := s.chromium; p != nil && !p.Exited() {
				return p.Started()
			}
			return time.Time{}
		},
		CookieSnapshot: cookieStatus,
	})

	// A private runtime directory for the children: their HOME, and the
	// VNC password file, which must never sit in the profile.
	if s.runtime, err = os.MkdirTemp("", "scry-run-"); err != nil {
		return fmt.Errorf("create runtime dir: %w", err)
	}
	home := ""
	if s.cred != nil {
		home = filepath.Join(s.runtime, "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			return fmt.Errorf("create child home: %w", err)
		}
		for _, d := range []string{s.runtime, home} {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("give %s to uid %d: %w", d, s.cred.Uid, err)
			}
		}
		s.log.Info("running as root: children run as an unprivileged uid so Chromium keeps its sandbox", "uid", s.cred.Uid, "gid", s.cred.Gid)
	}
	s.env = childEnv(s.getenv, cfg.Display, home)

	// The profile: scry's own lock first, so two scrys never share it.
	if s.lock, err = profile.Acquire(cfg.ProfileDir); err != nil {
		return err
	}
	uid, gid := -1, -1
	if s.cred != nil {
		uid, gid = int(s.cred.Uid), int(s.cred.Gid)
	}
	if err := profile.Prepare(s.log, cfg.ProfileDir, uid, gid); err != nil {
		return err
	}
	if err := profile.MarkCleanExit(s.log.With("component", "profile"), cfg.ProfileDir); err != nil {
		s.log.Warn("could not mark the profile's last exit clean; Chromium may offer to restore pages", "err", err)
	}

	// Xvfb.
	if err := display.PrepareSocketDir(); err != nil {
		return err
	}
	if err := display.CheckFree(cfg.Display); err != nil {
		return err
	}
	s.log.Info("starting xvfb", "display", cfg.Display, "screen", cfg.Screen.String())
	s.xvfb, err = supervise.Start(supervise.Spec{
		Name: "xvfb", Path: xvfbPath, Args: display.Args(cfg.Display, cfg.Screen),
		Env: s.env, Credential: s.cred, Logger: s.log,
	})
	if err != nil {
		return err
	}
	if err := display.WaitReady(ctx, cfg.Display, s.xvfb); err != nil {
		return err
	}
	s.log.Info("xvfb ready", "pid", s.xvfb.Pid())
	s.startClipboard()

	// x11vnc mirrors the display from now on, restarted on its own if it
	// dies; it never touches Chromium.
	if err := s.startVNC(x11vncPath); err != nil {
		return err
	}

	// Chromium, once the cookie store has seen the profile's cookie
	// database as the last Chromium left it.
	if cfg.SessionCookies {
		s.prepareCookies(uid, gid)
	}
	var sandboxFailed atomic.Bool
	s.log.Info("starting chromium", "path", chromiumPath, "extra_flags", len(cfg.ChromeExtraFlags))
	s.chromium, err = supervise.Start(supervise.Spec{
		Name: "chromium", Path: chromiumPath, Args: browser.Flags(cfg),
		Env: s.env, Dir: s.runtime, Credential: s.cred, Logger: s.log,
		// If scry dies without a stop, Chromium still gets to flush.
		DeathSignal: syscall.SIGTERM,
		Classify: func(line string) slog.Level {
			if browser.SandboxFailed(line) {
				sandboxFailed.Store(true)
			}
			return browser.ClassifyOutput(line)
		},
	})
	if err != nil {
		return err
	}
	v, err := browser.WaitCDP(ctx, s.internalCDP(), s.chromium)
	if err != nil {
		if sandboxFailed.Load() {
			return errors.New(doctor.SandboxHint())
		}
		return err
	}
	s.log.Info("chromium ready", "pid", s.chromium.Pid(), "browser", v.Browser)
	s.bconn = &browserConn{addr: s.internalCDP(), log: s.log.With("component", "cdp-client")}

	// Session cookies go back in before any agent can look.
	if cfg.SessionCookies {
		if err := s.startCookies(ctx); err != nil {
			return err
		}
	}

	// The agent door.
	s.proxy = cdpproxy.New(cdpproxy.Config{
		Backend:   s.internalCDP(),
		Policy:    cdpproxy.Policy{AllowedHosts: cfg.CDPAllowedHosts, AllowedOrigins: cfg.CDPAllowedOrigins},
		Logger:    s.log.With("door", "cdp"),
		KeepAlive: s.keepAlive(),
		Observer:  metrics.CDP{M: s.metrics},
		Token:     cfg.CDPToken,
		MaxConns:  cfg.CDPMaxConns,
		Health:    s.health(),
		Metrics:   s.metrics.Handler(),
		// A request's body is bounded like its headers.
		BodyTimeout: cfg.HeaderTimeout,
	})
	srv, err := s.listenAndServe(s.log.With("door", "cdp"), "cdp", net.JoinHostPort("", strconv.Itoa(cfg.CDPPort)), s.proxy)
	if err != nil {
		return fmt.Errorf("open the agent door: %w", err)
	}
	s.servers = append(s.servers, srv)
	s.log.Info("agent door open", "addr", srv.Addr(), "allowed_hosts", cfg.CDPAllowedHosts, "allowed_origins", cfg.CDPAllowedOrigins,
		"token_required", cfg.CDPToken != "", "max_conns", cfg.CDPMaxConns)

	// The human door, once x11vnc answers.
	if err := s.x11vnc.waitReady(ctx); err != nil {
		return err
	}
	srv, err = s.listenAndServe(s.log.With("door", "novnc"), "novnc", net.JoinHostPort("", strconv.Itoa(cfg.NoVNCPort)), s.novnc)
	if err != nil {
		return fmt.Errorf("open the human door: %w", err)
	}
	s.servers = append(s.servers, srv)
	s.log.Info("human door open", "addr", srv.Addr(), "vnc_password_set", cfg.VNCPassword != "")
	return nil
}

// shutdown stops everything in order within SHUTDOWN_TIMEOUT: doors first,
// then Chromium through CDP so the profile is flushed, then signals, then
// the display.
func (s *scry) shutdown() {
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Both doors at once: each may wait up to 2 s for its requests.
	var wg sync.WaitGroup
	for _, srv := range s.servers {
		wg.Go(func() { srv.Shutdown(ctx, 2*time.Second) })
	}
	wg.Wait()
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.novnc != nil {
		_ = s.novnc.Close()
	}
	// x11vnc stops alongside Chromium's close, not before it: the
	// shutdown budget belongs to the browser's flush.
	vncDone := make(chan struct{})
	go func() {
		defer close(vncDone)
		if s.x11vnc != nil {
			s.x11vnc.stop()
		}
	}()
	if s.cookieStop != nil {
		s.cookieStop()
		if s.chromium != nil && !s.chromium.Exited() {
			s.finalCookieSnapshot(ctx)
		}
	}
	if s.bconn != nil {
		s.bconn.Close()
	}
	if s.chromium != nil {
		if !s.chromium.Exited() {
			// Leave a third of the budget for signals and the display.
			closeCtx, c := context.WithTimeout(ctx, time.Until(deadline)*2/3)
			err := browser.Close(closeCtx, s.internalCDP(), s.chromium)
			c()
			if err != nil {
				s.log.Warn("graceful close failed; signalling chromium", "err", err)
			} else {
				s.log.Info("chromium closed cleanly")
			}
		}
		if err := s.chromium.Stop(ctx, time.Until(deadline)/2); err != nil {
			s.log.Error("stop chromium", "err", err)
		}
	}
	select {
	case <-vncDone:
	case <-ctx.Done():
	}
	s.stopClipboard()
	if s.xvfb != nil {
		if err := s.xvfb.Stop(ctx, 2*time.Second); err != nil {
			s.log.Error("stop xvfb", "err", err)
		}
	}
	s.log.Info("scry stopped", "took", (s.cfg.ShutdownTimeout - time.Until(deadline)).Round(time.Millisecond))
}

func (s *scry) cleanup() {
	if s.runtime != "" {
		_ = os.RemoveAll(s.runtime)
	}
	s.lock.Release()
}

func (s *scry) keepAlive() net.KeepAliveConfig {
	k := s.cfg.KeepAlive
	return net.KeepAliveConfig{Enable: true, Idle: k.Idle, Interval: k.Interval, Count: k.Count}
}

// server is one door's HTTP server.
type server struct {
	name string
	log  *slog.Logger
	l    net.Listener
	srv  *http.Server
	done chan struct{}
}

// listenAndServe opens a door: TCP keepalive on accepted connections (the
// design's 30 s / 10 s / 3), a bound on reading request headers, and no
// other timeouts, because hijacked WebSocket streams must never idle out.
func (sc *scry) listenAndServe(log *slog.Logger, name, addr string, h http.Handler) (*server, error) {
	lc := net.ListenConfig{KeepAliveConfig: sc.keepAlive()}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &server{
		name: name, log: log, l: l, done: make(chan struct{}),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: sc.cfg.HeaderTimeout,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *server) Addr() string { return s.l.Addr().String() }

// Shutdown stops accepting, lets in-flight requests finish within grace,
// then closes what is left.
func (s *server) Shutdown(ctx context.Context, grace time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}
