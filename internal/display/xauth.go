package display

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// cookieName is the only X authorization protocol scry uses.
const cookieName = "MIT-MAGIC-COOKIE-1"

// familyWild is the Xauthority family that matches any address, so one
// entry serves the Unix socket and the abstract one alike.
const familyWild = 0xffff

// Authority is the display's access cookie. Xvfb runs with -auth on its
// file, so only a client that presents the cookie may connect: without it,
// any local process (another uid on the host, a sidecar in the pod) could
// read the screen and type into the logged-in browser.
type Authority struct {
	Path   string // an Xauthority file, mode 0600; XAUTHORITY for clients
	Cookie []byte // 16 random bytes
}

// NewAuthority writes a fresh random cookie for display into dir/Xauthority,
// mode 0600 and owned by uid:gid (-1 leaves the owner), and returns it. dir
// must be private to scry and the children, never the profile.
func NewAuthority(dir, display string, uid, gid int) (*Authority, error) {
	cookie := make([]byte, 16)
	if _, err := rand.Read(cookie); err != nil {
		return nil, fmt.Errorf("make the display's cookie: %w", err)
	}
	a := &Authority{Path: filepath.Join(dir, "Xauthority"), Cookie: cookie}
	f, err := os.OpenFile(a.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write the display's cookie: %w", err)
	}
	_, err = f.Write(authorityEntry(display, cookie))
	if err == nil && (uid >= 0 || gid >= 0) {
		err = f.Chown(uid, gid)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(a.Path)
		return nil, fmt.Errorf("write the display's cookie %s: %w", a.Path, err)
	}
	return a, nil
}

// authorityEntry is one Xauthority record (Xau's format: big-endian
// lengths): any address, this display number, the cookie.
func authorityEntry(display string, cookie []byte) []byte {
	var b bytes.Buffer
	field := func(s []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint16(len(s)))
		b.Write(s)
	}
	_ = binary.Write(&b, binary.BigEndian, uint16(familyWild))
	field(nil)
	field([]byte(strings.TrimPrefix(display, ":")))
	field([]byte(cookieName))
	field(cookie)
	return b.Bytes()
}

// setupRequest is the X11 connection setup (little-endian, protocol 11.0),
// carrying the cookie when there is one.
func setupRequest(cookie []byte) []byte {
	name := []byte(cookieName)
	if len(cookie) == 0 {
		name = nil
	}
	req := make([]byte, 12+pad4(len(name))+pad4(len(cookie)))
	req[0] = 'l'
	binary.LittleEndian.PutUint16(req[2:], 11)
	binary.LittleEndian.PutUint16(req[6:], uint16(len(name)))
	binary.LittleEndian.PutUint16(req[8:], uint16(len(cookie)))
	copy(req[12:], name)
	copy(req[12+pad4(len(name)):], cookie)
	return req
}

func pad4(n int) int { return (n + 3) &^ 3 }

// Environ returns env with XAUTHORITY pointing at the cookie.
func (a *Authority) Environ(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "XAUTHORITY=") {
			out = append(out, kv)
		}
	}
	return append(out, "XAUTHORITY="+a.Path)
}
