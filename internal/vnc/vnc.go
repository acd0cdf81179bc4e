// Package vnc configures x11vnc, the VNC server that mirrors scry's Xvfb
// display for the human door (noVNC). It builds x11vnc's command line,
// writes its password file and probes it for readiness; starting and
// restarting the process is the supervisor's job.
//
// The password never appears on a command line or in a log: it goes into a
// file in VNC's storepasswd format, given to x11vnc with -rfbauth. In scry
// that password is a random one only scry's bridge knows, never
// VNC_PASSWORD (see package rfbauth): x11vnc also answers WebSockets on its
// port, so it must never be open.
//
// Why -rfbauth and not -passwdfile: -passwdfile reads plain text and gives
// meaning to some of its content (comment lines, "__BEGIN_VIEWONLY__" and
// other markers), so a password could be misread; -rfbauth reads exactly 8
// bytes in the format `x11vnc -storepasswd` writes, which is also what the
// design documents. The format's DES "encryption" uses a fixed, public key:
// it keeps the password from being read at a glance, nothing more, which is
// why the file is still mode 0600 and lives outside the profile.
package vnc

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dataplanelabs/scry/internal/rfbauth"
)

// PasswordFileName is the name WritePasswordFile gives the file in its dir.
const PasswordFileName = "vncpasswd"

// MaxPasswordLen is the number of password bytes VNC authentication uses.
const MaxPasswordLen = rfbauth.MaxPasswordLen

// Options are x11vnc's settings.
type Options struct {
	// Display is the X display to mirror, e.g. ":99".
	Display string
	// Port is the RFB port, bound on 127.0.0.1 only.
	Port int
	// PasswordFile is a file written by WritePasswordFile; empty runs
	// x11vnc with -nopw, which leaves the screen open to anyone who can
	// reach the port.
	PasswordFile string
	// DesktopName is shown by viewers; empty means "scry".
	DesktopName string
	// XDamage lets x11vnc use the X DAMAGE extension as a hint for what
	// changed. Off by default: with Chromium's rendering it can miss
	// updates, and polling a single Xvfb screen is cheap.
	XDamage bool
}

// Args returns x11vnc's arguments (without the program name) for o.
// They never contain the password.
func Args(o Options) []string {
	args := []string{
		"-display", o.Display,
		"-rfbport", strconv.Itoa(o.Port),
		"-localhost",           // only 127.0.0.1 may connect ...
		"-listen", "127.0.0.1", // ... and only on the IPv4 loopback
		"-noipv6",  // (Debian's x11vnc also listens on [::1] otherwise)
		"-shared",  // several viewers at once
		"-forever", // keep serving after the last viewer leaves
		"-norc",    // ignore ~/.x11vncrc: the arguments are the whole config
		"-desktop", cmp.Or(o.DesktopName, "scry"),
		"-nossl",
		"-nocmds",   // never run external commands
		"-noremote", // ignore remote-control requests from other X clients
		// Pasted text goes on the X clipboard through scry (package
		// clipboard): x11vnc would take the selections and answer nothing.
		"-nosetclipboard", "-nosetprimary",
	}
	if !o.XDamage {
		args = append(args, "-noxdamage")
	}
	if o.PasswordFile != "" {
		args = append(args, "-rfbauth", o.PasswordFile)
	} else {
		args = append(args, "-nopw")
	}
	return args
}

// vncFixedKey is the public key VNC's storepasswd obfuscates passwords with.
var vncFixedKey = [8]byte{23, 82, 107, 6, 35, 78, 88, 7}

// EncodePassword returns password in VNC's storepasswd format: its first 8
// bytes, zero-padded, encrypted with VNC's DES and fixed key.
func EncodePassword(password string) [8]byte {
	var in, out [8]byte
	copy(in[:], password)
	rfbauth.NewCipher(vncFixedKey[:]).Encrypt(out[:], in[:])
	return out
}

// WritePasswordFile writes password for x11vnc's -rfbauth into dir and
// returns the file's path. The file is mode 0600 and owned by uid:gid (pass
// -1 to keep the current owner), so x11vnc running as that user can read
// it and nobody else can. dir must exist and must not be the browser
// profile. The file is replaced atomically.
func WritePasswordFile(dir, password string, uid, gid int) (string, error) {
	if password == "" {
		return "", errors.New("write vnc password file: empty password")
	}
	f, err := os.CreateTemp(dir, "."+PasswordFileName+"-*")
	if err != nil {
		return "", fmt.Errorf("write vnc password file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	enc := EncodePassword(password)
	err = errors.Join(
		f.Chmod(0o600),
		chown(f, uid, gid),
		write(f, enc[:]),
		f.Sync(),
	)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write vnc password file: %w", err)
	}
	path := filepath.Join(dir, PasswordFileName)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write vnc password file: %w", err)
	}
	return path, nil
}

func chown(f *os.File, uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	return f.Chown(uid, gid)
}

func write(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// Warnings returns what scry should log loudly at start about password.
// It never includes the password.
func Warnings(password string) []string {
	if password == "" {
		return []string{"VNC_PASSWORD is empty: the noVNC login screen is open to anyone who can reach NOVNC_PORT, " +
			"and with it the logged-in browser; set VNC_PASSWORD"}
	}
	if n := len(password); n > MaxPasswordLen {
		return []string{fmt.Sprintf("VNC_PASSWORD is %d bytes long but VNC authentication uses only the first %d; "+
			"the rest is ignored, so the effective password is shorter than it looks", n, MaxPasswordLen)}
	}
	return nil
}

// WaitReady waits until an RFB server answers at addr with its
// ProtocolVersion banner ("RFB 003.008\n"), retrying until ctx ends.
func WaitReady(ctx context.Context, addr string) error {
	var d net.Dialer
	backoff := 10 * time.Millisecond
	var last error
	for {
		last = probe(ctx, &d, addr)
		if last == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for vnc server at %s: %w (last error: %v)", addr, ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

func probe(ctx context.Context, d *net.Dialer, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read banner: %w", err)
	}
	if !strings.HasPrefix(line, "RFB 003.") || len(line) != 12 {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}
