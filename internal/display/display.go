// Package display runs the Xvfb virtual display Chromium renders into and
// x11vnc mirrors.
package display

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
// create its socket there. scry fixes the mode of a directory it may chmod
// (as root, or its own), which is how the image works: /tmp stays empty and
// may be a tmpfs or an emptyDir under a read-only root. Someone else's
// directory that scry's uid cannot write fails at once with what to do,
// instead of an Xvfb that never listens.
func PrepareSocketDir() error { return prepareSocketDir(SocketDir) }

func prepareSocketDir(dir string) error {
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w (scry needs a writable /tmp: a tmpfs or an emptyDir under a read-only root)", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%s): remove it so scry can create the X socket directory", dir, fi.Mode().Type())
	}
	if socketDirModeOK(fi.Mode()) {
		return nil
	}
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid = int(st.Uid)
	}
	if euid := os.Geteuid(); euid == 0 || uid == euid {
		if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
			return fmt.Errorf("chmod 1777 %s: %w", dir, err)
		}
		return nil
	}
	// Not ours and not 1777: fine only if Xvfb, which runs as scry's uid
	// here, can still create its socket (Xvfb warns and carries on).
	if syscall.Access(dir, 2|1) == nil { // W_OK|X_OK
		return nil
	}
	return fmt.Errorf("%s is mode %s owned by uid %d, so Xvfb (uid %d) cannot create its socket there: "+
		"make it mode 1777 (as root: chmod 1777 %s), or give scry an empty /tmp (a tmpfs or emptyDir with nothing copied into it from the image)",
		dir, modeString(fi.Mode()), uid, os.Geteuid(), dir)
}

func socketDirModeOK(m fs.FileMode) bool {
	return m.Perm() == 0o777 && m&os.ModeSticky != 0
}

// modeString prints a mode the way chmod takes it: 1755.
func modeString(m fs.FileMode) string {
	o := uint32(m.Perm())
	if m&os.ModeSticky != 0 {
		o |= 0o1000
	}
	if m&os.ModeSetgid != 0 {
		o |= 0o2000
	}
	if m&os.ModeSetuid != 0 {
		o |= 0o4000
	}
	return fmt.Sprintf("%04o", o)
}

// ListenerFailed reports whether a line of Xvfb's output says it could not
// create its Unix socket. Xvfb keeps running then (on Linux it still has
// the abstract socket), so without this scry would wait for a socket file
// that never comes.
func ListenerFailed(line string) bool {
	return strings.Contains(line, "failed to create listener")
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
// clients, the Xvfb process exits, Xvfb says it cannot listen (see
// ListenerFailed), or ctx ends.
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
		if out := p.LastOutput(); slices.ContainsFunc(out, ListenerFailed) {
			return fmt.Errorf("xvfb cannot listen on %s (%s): %s", SocketPath(display), socketDirState(), strings.Join(out, " | "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("xvfb on %s not ready: %w (last probe: %v)", display, ctx.Err(), last)
		case <-p.Done():
			return fmt.Errorf("xvfb exited before accepting clients: %w (last output: %s)", p.Err(), strings.Join(p.LastOutput(), " | "))
		case <-tick.C:
		}
	}
}

// socketDirState describes SocketDir for an error: its mode and owner, and
// the fix when the mode is wrong.
func socketDirState() string {
	fi, err := os.Lstat(SocketDir)
	if err != nil {
		return err.Error()
	}
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid = int(st.Uid)
	}
	s := fmt.Sprintf("%s is mode %s owned by uid %d", SocketDir, modeString(fi.Mode()), uid)
	if !socketDirModeOK(fi.Mode()) {
		s += "; it must be mode 1777: as root, chmod 1777 " + SocketDir + ", or give scry an empty /tmp"
	}
	return s
}
