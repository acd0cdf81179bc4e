// Package browser knows how scry runs Chromium: its flags, how to tell it is
// ready, and how to close it without losing the profile's last writes.
package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/cdp"
	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// DesignFlags are the original design's flags for a headful browser that is
// never in the foreground and has no GPU. They are part of the contract.
var DesignFlags = []string{
	"--disable-dev-shm-usage",
	"--disable-gpu",
	"--disable-background-timer-throttling",
	"--disable-backgrounding-occluded-windows",
	"--disable-renderer-backgrounding",
}

// Flags returns Chromium's command line (without the binary): the design's
// flags, the profile and loopback CDP port, no first-run UI, a window that
// fills the Xvfb screen exactly (there is no window manager to maximise it),
// and the user's extra flags last so they win (config refuses the ones that
// would move CDP or the profile away from where scry looks for them).
//
// A profile that opens a new tab at launch opens StartURL instead (after
// the extra flags, as Chromium reads a URL): the new-tab page is one of
// the browser's own pages, where an agent token may not run scripts, so
// an agent that takes the first tab (Playwright MCP does) would find it
// unusable. A profile set to restore its pages or open listed ones (or
// CHROME_EXTRA_FLAGS with --restore-last-session) is left to do so,
// without one more blank tab at every start.
func Flags(c *config.Config, startup Startup) []string {
	flags := append([]string{}, DesignFlags...)
	flags = append(flags,
		"--user-data-dir="+c.ProfileDir,
		// Always the Default profile, where scry snapshots cookies and
		// marks clean exits: otherwise Chromium opens Local State's
		// last-used profile, which a human can change through VNC.
		"--profile-directory=Default",
		"--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port="+strconv.Itoa(c.CDPInternalPort),
		"--no-first-run",
		"--no-default-browser-check",
		// A stable cookie encryption key whatever desktop keyring the
		// environment has or lacks, so cookies decrypt after a restart.
		"--password-store=basic",
		// The profile's last exit is marked clean before launch; this is
		// the belt to that: never ask to restore pages after a crash.
		"--hide-crash-restore-bubble",
		// Without it Chromium drops input that arrives before a new
		// document's first frame is committed: an agent's click right
		// after a navigation reports success and does nothing (seen as
		// a flaky click shortly after start-up, when the first commit
		// is slow). Puppeteer passes it for the same reason.
		"--allow-pre-commit-input",
		"--window-position=0,0",
		// Without a window manager Chromium shrinks a window that is
		// exactly the screen's size by a pixel each way (so that window
		// managers don't take it for fullscreen). One extra row keeps
		// the width exact and pushes the bottom edge just off screen,
		// so the window covers the whole display.
		fmt.Sprintf("--window-size=%d,%d", c.Screen.Width, c.Screen.Height+1),
	)
	flags = append(flags, c.ChromeExtraFlags...)
	if startup == StartupNewTab && !c.HasExtraFlag("restore-last-session") {
		flags = append(flags, StartURL)
	}
	return flags
}

// StartURL is the page of the tab Chromium opens at launch.
const StartURL = "about:blank"

// WaitCDP polls Chromium's loopback DevTools endpoint until it answers, the
// process exits, or ctx ends.
func WaitCDP(ctx context.Context, addr string, p *supervise.Process) (*cdp.Version, error) {
	// No keep-alive: a start-up probe must not leave an idle socket to
	// Chromium behind for the transport's idle timeout.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		v, err := cdp.GetVersion(ctx, client, addr)
		if err == nil {
			return v, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("chromium's CDP on %s did not answer: %w (last: %v)", addr, ctx.Err(), last)
		case <-p.Done():
			return nil, fmt.Errorf("chromium exited during start-up: %w", p.Err())
		case <-tick.C:
		}
	}
}

// Close asks Chromium to close through CDP (Browser.close), which flushes
// cookies and storage to the profile like a user quitting, and waits for the
// process to exit. The caller falls back to signals if this fails.
func Close(ctx context.Context, addr string, p *supervise.Process) error {
	if p.Exited() {
		return nil
	}
	v, err := cdp.GetVersion(ctx, &http.Client{Timeout: 3 * time.Second}, addr)
	if err != nil {
		return fmt.Errorf("browser.close: %w", err)
	}
	conn, err := cdp.Dial(ctx, v.WebSocketDebuggerURL)
	if err != nil {
		return fmt.Errorf("browser.close: %w", err)
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = conn.Call(callCtx, "Browser.close", nil, nil)
	cancel()
	if err != nil {
		// Chrome may drop the socket before answering; the exit below
		// is the real confirmation.
		select {
		case <-p.Done():
			return nil
		default:
		}
	}
	select {
	case <-p.Done():
		return nil
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("chromium still running after Browser.close: %w", ctx.Err()))
	}
}

// ClassifyOutput sorts Chromium's stderr: its complaints about the missing
// desktop bus and similar container facts go to debug, fatal lines to
// error, the rest to info.
func ClassifyOutput(line string) slog.Level {
	switch {
	case strings.Contains(line, "FATAL") || strings.Contains(line, "Failed To Create Data Directory"):
		return slog.LevelError
	case strings.Contains(line, "dbus") || strings.Contains(line, "D-Bus") ||
		strings.Contains(line, "Fontconfig") || strings.Contains(line, "unexpected operator"):
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// SandboxFailed reports whether a line of Chromium's output says its
// namespace sandbox could not start.
func SandboxFailed(line string) bool {
	return strings.Contains(line, "No usable sandbox") ||
		strings.Contains(line, "Failed to move to new namespace") ||
		strings.Contains(line, "setuid sandbox") && strings.Contains(line, "FATAL")
}
