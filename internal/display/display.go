// Package display runs the Xvfb virtual display Chromium renders into and
// x11vnc mirrors.
package display

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// SocketDir is where X servers put their Unix sockets.
const SocketDir = "/tmp/.X11-unix"

// Args returns Xvfb's arguments: the display, one screen of the configured
// geometry, no TCP, and no server reset when the last client leaves (a
// reset would drop the browser's window state between VNC viewers).
func Args(display string, screen config.Screen) []string {
	return []string{
		display,
		"-screen", "0", screen.String(),
		"-nolisten", "tcp",
		"-noreset",
		"-dpi", "96",
	}
}

// SocketPath returns the Unix socket of display ":N".
func SocketPath(display string) string {
	return filepath.Join(SocketDir, "X"+strings.TrimPrefix(display, ":"))
}

// PrepareSocketDir makes sure the shared socket directory exists with the
// sticky, world-writable mode X servers expect, so an unprivileged Xvfb can
// create its socket there.
func PrepareSocketDir() error {
	if err := os.MkdirAll(SocketDir, 0o1777); err != nil {
		return fmt.Errorf("create %s: %w", SocketDir, err)
	}
	fi, err := os.Stat(SocketDir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", SocketDir, err)
	}
	if fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		if os.Geteuid() == 0 {
			if err := os.Chmod(SocketDir, 0o1777|os.ModeSticky); err != nil {
				return fmt.Errorf("chmod %s: %w", SocketDir, err)
			}
		}
	}
	return nil
}

// CheckFree fails with a *BusyError when something already serves display:
// an X server, or anything else accepting connections on its socket. So
// scry never mistakes someone else's server for its own. A stale socket
// nobody answers is free: Xvfb replaces it.
func CheckFree(display string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sock := SocketPath(display)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil
	}
	c.Close()
	owner := lockOwner(display)
	if owner == "" {
		owner = " (" + sock + " answers)"
	}
	return &BusyError{Display: display, Owner: owner}
}

// BusyError says that a display is already served.
type BusyError struct {
	Display string
	Owner   string // " (pid N)" from the server's lock file, or the socket that answered
}

func (e *BusyError) Error() string { return e.Problem() + ": " + e.Fix() }

// Problem and Fix are what `scry doctor` prints.
func (e *BusyError) Problem() string {
	return fmt.Sprintf("DISPLAY=%s is already served by another X server%s", e.Display, e.Owner)
}

func (e *BusyError) Fix() string {
	n, _ := config.ParseDisplay(e.Display)
	return fmt.Sprintf("stop it or set DISPLAY to a free display such as :%d", n+1)
}

func lockOwner(display string) string {
	b, err := os.ReadFile(fmt.Sprintf("/tmp/.X%s-lock", strings.TrimPrefix(display, ":")))
	if err != nil {
		return ""
	}
	return " (pid " + strings.TrimSpace(string(b)) + ")"
}

// Probe connects to the display's socket and performs the X11 connection
// setup, presenting cookie (nil: none); it succeeds only when the server
// really accepts the client.
func Probe(ctx context.Context, display string, cookie []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(display))
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(setupRequest(cookie)); err != nil {
		return fmt.Errorf("x11 setup: %w", err)
	}
	var head [8]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return fmt.Errorf("x11 setup reply: %w", err)
	}
	switch head[0] {
	case 1:
		return nil
	case 0:
		reason := make([]byte, head[1])
		_, _ = io.ReadFull(c, reason)
		return fmt.Errorf("%w: %s", errRefused, reason)
	default:
		return fmt.Errorf("%w: it wants more authentication", errRefused)
	}
}

// errRefused marks a Probe that an X server answered with a refusal.
var errRefused = errors.New("x11 server refused the connection")

// WaitReady probes the display, presenting cookie, until it accepts
// clients, the Xvfb process exits, or ctx ends.
func WaitReady(ctx context.Context, display string, cookie []byte, p *supervise.Process) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = Probe(pctx, display, cookie)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("xvfb on %s not ready: %w (last probe: %v)", display, ctx.Err(), last)
		case <-p.Done():
			return fmt.Errorf("xvfb exited before accepting clients: %w", p.Err())
		case <-tick.C:
		}
	}
}
