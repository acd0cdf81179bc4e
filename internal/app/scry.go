package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dataplanelabs/scry/internal/browser"
	"github.com/dataplanelabs/scry/internal/cdpproxy"
	"github.com/dataplanelabs/scry/internal/clipboard"
	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/cookies"
	"github.com/dataplanelabs/scry/internal/display"
	"github.com/dataplanelabs/scry/internal/door"
	"github.com/dataplanelabs/scry/internal/metrics"
	"github.com/dataplanelabs/scry/internal/novnc"
	"github.com/dataplanelabs/scry/internal/profile"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/vnc"
)

// scry is one run: what start-up prepares, and the components in the order
// they start. Each component runs in group under runCtx; failed ends with
// the first one's failure as its cause.
type scry struct {
	cfg    *config.Config
	log    *slog.Logger
	logOut io.Writer // where log (and the audit trail) write
	getenv func(string) string

	// Prepared before anything starts (prepare.go).
	cred     *syscall.Credential
	env      []string
	runtime  string // private temp dir: child HOME, VNC password file, X cookie
	xauth    *display.Authority
	lock     *profile.Lock
	startup  browser.Startup // what the profile opens at launch
	metrics  *metrics.Metrics
	proxy    *cdpproxy.Proxy // the agent door's handler
	novnc    *novnc.Handler  // the human door's handler
	handoffs *handoffs       // asking for a person (handoff.go)
	bconn    *browserConn    // scry's own CDP connection
	targets  *targetURLs     // every tab's URL, for scoped tokens (nil without)

	// The components, in start order (components.go).
	xvfb      *display.Xvfb
	clipboard *clipboard.Service
	x11vnc    *vnc.Keeper
	chromium  *browser.Chromium
	cookies   *cookies.Snapshotter // nil with SESSION_COOKIES=off
	cdpDoor   *door.Server
	novncDoor *door.Server
	// tokensFile reads CDP_TOKENS_FILE again when it changes (nil when
	// unset).
	tokensFile *tokens.File
	// cdpNoAuthDoor is CDP_NOAUTH_PORT's door (nil when unset): the
	// agent door without the token, on loopback only, for Selenium.
	cdpNoAuthDoor *door.Server

	runCtx context.Context
	group  *errgroup.Group
	failed context.Context
}

// boundPort is the port door listens on once it is open (CDP_PORT or
// NOVNC_PORT 0 picks one), else the configured one.
func (s *scry) boundPort(d *door.Server, configured int) int {
	if d == nil {
		return configured
	}
	select {
	case <-d.Ready():
	default:
		return configured
	}
	if ap, err := netip.ParseAddrPort(d.Address()); err == nil {
		return int(ap.Port())
	}
	return configured
}

func (s *scry) internalCDP() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.CDPInternalPort))
}

func (s *scry) run(ctx context.Context) (err error) {
	s.log.Info("scry starting", "version", Version, "profile_dir", s.cfg.ProfileDir, "display", s.cfg.Display,
		"screen", s.cfg.Screen.String(), "cdp_port", s.cfg.CDPPort, "novnc_port", s.cfg.NoVNCPort)
	// The components live under runCtx, which ends only once shutdown has
	// stopped them in order: a signal starts that shutdown rather than
	// cancelling every component at once.
	runCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	s.group, s.failed = errgroup.WithContext(runCtx)
	s.runCtx = runCtx
	defer func() {
		stopAll()
		_ = s.group.Wait()
		s.cleanup()
	}()

	bootCtx, cancel := context.WithTimeout(ctx, s.cfg.StartupTimeout)
	err = s.startAll(bootCtx)
	cancel()
	if err != nil {
		s.shutdown()
		if ctx.Err() != nil {
			s.log.Info("start-up interrupted by signal")
			return nil
		}
		code := 1
		if p := s.chromiumProcess(); p != nil && p.Exited() && p.ExitCode() > 128 {
			code = p.ExitCode() // a signal death, as after start-up
		}
		return &ExitError{Code: code, Err: fmt.Errorf("start-up failed: %w", err)}
	}
	s.log.Info("scry ready", "cdp", fmt.Sprintf("http://127.0.0.1:%d/json/version", s.boundPort(s.cdpDoor, s.cfg.CDPPort)),
		"novnc", fmt.Sprintf("http://127.0.0.1:%d/", s.boundPort(s.novncDoor, s.cfg.NoVNCPort)), "chromium_pid", s.chromiumProcess().Pid())

	select {
	case <-ctx.Done():
		s.log.Info("shutdown requested")
		s.shutdown()
		return nil
	case <-s.failed.Done():
		err := s.failure(context.Cause(s.failed))
		s.shutdown()
		return err
	}
}

// failure says why a component's failure ends scry, and with which exit
// code.
func (s *scry) failure(cause error) error {
	var f *failure
	if !errors.As(cause, &f) {
		return &ExitError{Code: 1, Err: cause}
	}
	switch f.name {
	case "xvfb":
		// Chromium follows its display within moments; say why first.
		cause := fmt.Errorf("the X display (Xvfb on %s) died: %v", s.cfg.Display, f.err)
		s.log.Error("xvfb exited; stopping so the orchestrator restarts the container", "err", cause)
		return &ExitError{Code: 1, Err: cause}
	case "chromium":
		p := s.chromiumProcess()
		code := p.ExitCode()
		if code == 0 {
			code = 1 // the browser must never end on its own
		}
		cause := p.Err()
		switch {
		case s.xvfb.Process().Exited():
			cause = fmt.Errorf("the X display (Xvfb on %s) died under it: %v", s.cfg.Display, s.xvfb.Process().Err())
		case cause == nil:
			cause = errors.New("chromium exited with status 0 (its last window was closed?)")
		}
		s.log.Error("chromium exited; stopping so the orchestrator restarts the container", "err", cause, "exit_code", code)
		return &ExitError{Code: code, Err: fmt.Errorf("chromium ended: %w", cause)}
	default:
		s.log.Error(f.name+" failed; stopping so the orchestrator restarts the container", "err", f.err)
		return &ExitError{Code: 1, Err: f}
	}
}

// startAll starts the components in order, each once the ones it needs
// are ready.
func (s *scry) startAll(ctx context.Context) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if err := s.start(ctx, "xvfb", s.xvfb); err != nil {
		return err
	}
	s.startOptional(ctx, s.clipboard,
		"text pasted in noVNC cannot reach the remote browser's clipboard (typing still works)",
		"clipboard stopped; pastes from noVNC no longer reach the remote browser")
	// x11vnc mirrors the display from now on, restarted on its own if it
	// dies; it never touches Chromium. The human door waits for it.
	x11vnc := s.launch("x11vnc", s.x11vnc)
	if err := s.start(ctx, "chromium", s.chromium); err != nil {
		return err
	}
	// Session cookies go back in before any agent can look.
	if s.cookies != nil {
		if err := s.start(ctx, "cookie snapshots", s.cookies); err != nil {
			return err
		}
	}
	if s.targets != nil {
		// Every tab's URL is known before an agent can act on one. The
		// watch is retried at each later Get (readiness probes) if this
		// one fails.
		if _, err := s.bconn.Get(ctx); err != nil {
			s.log.Warn("cannot watch the browser's tabs yet; agents' commands on pages are checked by what their own connections report", "err", err)
		}
	}
	if err := s.start(ctx, "agent door", s.cdpDoor); err != nil {
		return fmt.Errorf("open the agent door: %w", err)
	}
	s.log.Info("agent door open", "addr", s.cdpDoor.Address(), "allowed_hosts", s.cfg.CDPAllowedHosts,
		"allowed_origins", s.cfg.CDPAllowedOrigins, "token_required", s.cfg.Tokens.Len() > 0, "tokens", s.cfg.Tokens.Names(),
		"audit_log", s.cfg.AuditLog, "max_conns", s.cfg.CDPMaxConns)
	if s.tokensFile != nil {
		// Tokens added, rotated or revoked in the file take effect
		// from now on, without a restart.
		if err := s.start(ctx, "tokens file", s.tokensFile); err != nil {
			return err
		}
	}
	if s.cdpNoAuthDoor != nil {
		if err := s.start(ctx, "agent door without the token", s.cdpNoAuthDoor); err != nil {
			return fmt.Errorf("open the agent door without the token (CDP_NOAUTH_PORT): %w", err)
		}
		s.log.Info("agent door without the token open: any process that can reach this loopback port drives the browser",
			"addr", s.cdpNoAuthDoor.Address())
	}
	if err := s.await(ctx, x11vnc); err != nil {
		return err
	}
	if err := s.start(ctx, "human door", s.novncDoor); err != nil {
		return fmt.Errorf("open the human door: %w", err)
	}
	s.log.Info("human door open", "addr", s.novncDoor.Address(), "vnc_password_set", s.cfg.VNCPassword != "")
	return nil
}

// shutdown stops the components in order within SHUTDOWN_TIMEOUT: both
// doors at once, the final cookie snapshot, Chromium through CDP so the
// profile is flushed (x11vnc alongside), the clipboard, the display last.
// A component that never started is skipped.
func (s *scry) shutdown() {
	deadline := time.Now().Add(s.cfg.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	s.closeDoors(ctx)
	// x11vnc stops alongside Chromium's close, not before it: the
	// shutdown budget belongs to the browser's flush.
	vncDone := make(chan struct{})
	go func() {
		defer close(vncDone)
		if s.x11vnc != nil {
			s.x11vnc.Close(ctx)
		}
	}()
	if s.cookies != nil {
		s.cookies.Close(ctx)
	}
	if s.bconn != nil {
		s.bconn.Close()
	}
	if s.chromium != nil {
		s.chromium.Close(ctx)
	}
	select {
	case <-vncDone:
	case <-ctx.Done():
	}
	if s.clipboard != nil {
		s.clipboard.Close(ctx)
	}
	if s.xvfb != nil {
		s.xvfb.Close(ctx)
	}
	s.log.Info("scry stopped", "took", (s.cfg.ShutdownTimeout - time.Until(deadline)).Round(time.Millisecond))
}

// closeDoors closes both doors at once (each may wait up to 2 s for its
// requests), then their handlers.
func (s *scry) closeDoors(ctx context.Context) {
	var wg sync.WaitGroup
	for _, d := range []*door.Server{s.cdpDoor, s.novncDoor, s.cdpNoAuthDoor} {
		if d != nil {
			wg.Go(func() { d.Close(ctx) })
		}
	}
	wg.Wait()
	if s.tokensFile != nil {
		s.tokensFile.Close(ctx)
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.handoffs != nil {
		s.handoffs.close()
	}
	if s.novnc != nil {
		_ = s.novnc.Close()
	}
}
