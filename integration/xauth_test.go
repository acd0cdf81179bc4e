package integration

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDisplayRefusesClientsWithoutTheCookie: a local process that is not
// one of scry's (another uid on the host, a sidecar in the pod) cannot
// connect to the X display, through its Unix socket or the abstract one,
// and so cannot read the screen or type into the browser. Before the
// display had a cookie, a plain X client run as uid 65534 typed into the
// focused input and took a screenshot.
func TestDisplayRefusesClientsWithoutTheCookie(t *testing.T) {
	s := Start(t, Options{})
	n := strings.TrimPrefix(s.Display, ":")
	for _, addr := range []string{"/tmp/.X11-unix/X" + n, "@/tmp/.X11-unix/X" + n} {
		c, err := net.DialTimeout("unix", addr, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v (want a refusal from the X server, not no server)", addr, err)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		setup := make([]byte, 12) // little-endian, X11.0, no authorization
		setup[0] = 'l'
		binary.LittleEndian.PutUint16(setup[2:], 11)
		if _, err := c.Write(setup); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		var head [8]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			t.Fatalf("%s: read the setup reply: %v", addr, err)
		}
		c.Close()
		if head[0] == 1 {
			t.Errorf("%s: the X server accepted a client without the cookie", addr)
		}
	}
}
