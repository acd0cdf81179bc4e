package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/rfbclient"
)

// wsUpgrade opens /websockify on a raw TCP connection and returns it once
// scry answered 101, with the reader holding what followed the answer.
func wsUpgrade(t *testing.T, s *Scry) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.NoVNCPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n", s.NoVNCPort)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade /websockify: %v %v", resp, err)
	}
	c.SetReadDeadline(time.Time{})
	return c, br
}

// wsBinary is a masked client frame carrying p (mask key 0: p unchanged).
func wsBinary(p []byte) []byte {
	if len(p) > 125 {
		panic("wsBinary: short frames only")
	}
	return append([]byte{0x82, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
}

// readBanner reads scry's RFB ProtocolVersion, one binary frame.
func readBanner(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	f := make([]byte, 14)
	if _, err := io.ReadFull(br, f); err != nil || f[0] != 0x82 || f[1] != 12 || !strings.HasPrefix(string(f[2:]), "RFB ") {
		t.Fatalf("RFB banner: %q %v", f, err)
	}
}

// closedByScry reads until scry closes the connection or the deadline
// passes, and returns when scry closed it (zero if it did not).
func closedByScry(c net.Conn, br *bufio.Reader, deadline time.Time) time.Time {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, br)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return time.Now()
	}
	return time.Time{}
}

// novncRefusals reads scry_refused_requests_total{door="novnc",reason}.
func novncRefusals(ctx context.Context, t *testing.T, s *Scry, reason string) float64 {
	t.Helper()
	m, err := scrape(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m[`scry_refused_requests_total{door="novnc",reason="`+reason+`"}`]
	if !ok {
		t.Fatalf("/metrics has no novnc refusals for %s", reason)
	}
	return v
}

// TestHostileVNCClients: hostile traffic on the human door is cut within
// its bounds while a logged-in viewer, idle all along, stays connected.
func TestHostileVNCClients(t *testing.T) {
	const (
		headerTimeout = 2 * time.Second
		rfbTimeout    = 2 * time.Second
		margin        = 10 * time.Second // a loaded 2-core machine
		// Under the default VNC_HANDSHAKE_TIMEOUT (10s), so a cut only
		// the default would make fails.
		cutMargin = 5 * time.Second
		password  = "h0stile!"
	)
	s := Start(t, Options{Env: map[string]string{
		"HEADER_TIMEOUT":        headerTimeout.String(),
		"VNC_HANDSHAKE_TIMEOUT": rfbTimeout.String(),
		"VNC_PASSWORD":          password,
		"VNC_MAX_VIEWERS":       "2",
		"LOG_LEVEL":             "debug",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// (d, e) A logged-in viewer, connected and silent throughout: it sends
	// nothing and asks for nothing until the end.
	good, err := viewer(ctx, s, password)
	if err != nil {
		t.Fatalf("the well-behaved viewer: %v", err)
	}
	defer good.Close()
	idleSince := time.Now()
	waitFor(t, 20*time.Second, "the viewer counted", func() error { return metricIs(ctx, s, "scry_vnc_viewers_open", 1) })

	t.Run("garbage after the upgrade", func(t *testing.T) {
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		for name, garbage := range map[string][]byte{
			"64 KiB of random bytes":        junk,
			"a frame claiming 4.7e18 bytes": []byte("\x82\xffAAAAAAAA"),
			"an unmasked frame":             []byte("\x82\x0cRFB 003.008\n"),
			"HTTP":                          []byte("GET / HTTP/1.1\r\n\r\n"),
		} {
			c, br := wsUpgrade(t, s)
			start := time.Now()
			go c.Write(garbage) // scry may cut it before reading everything
			at := closedByScry(c, br, start.Add(rfbTimeout+margin))
			if at.IsZero() {
				t.Errorf("%s after a /websockify upgrade: still open after %s (VNC_HANDSHAKE_TIMEOUT %s)", name, rfbTimeout+margin, rfbTimeout)
				continue
			}
			t.Logf("%s: cut after %s", name, at.Sub(start).Round(time.Millisecond))
		}
	})

	t.Run("RFB client silent mid-handshake", func(t *testing.T) {
		before := novncRefusals(ctx, t, s, "handshake")
		for _, tc := range []struct {
			name string
			play func(c net.Conn, br *bufio.Reader)
		}{
			{"after the banner", func(c net.Conn, br *bufio.Reader) { readBanner(t, c, br) }},
			{"after its version", func(c net.Conn, br *bufio.Reader) {
				readBanner(t, c, br)
				if _, err := c.Write(wsBinary([]byte("RFB 003.008\n"))); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				f := make([]byte, 4) // a binary frame of 2 bytes: one type, VNC auth
				if _, err := io.ReadFull(br, f); err != nil || f[1] != 2 || f[3] != rfbclient.SecurityVNCAuth {
					t.Fatalf("security types frame: %v %v", f, err)
				}
				c.SetReadDeadline(time.Time{})
			}},
		} {
			start := time.Now()
			c, br := wsUpgrade(t, s)
			tc.play(c, br)
			// scry cuts it; the test never closes it. (Not waiting for the
			// logins-in-progress gauge first: on a slow machine the cut can
			// come before a scrape would see the login.)
			at := closedByScry(c, br, start.Add(rfbTimeout+cutMargin))
			switch d := at.Sub(start); {
			case at.IsZero():
				t.Errorf("%s: not cut within %s (VNC_HANDSHAKE_TIMEOUT %s)", tc.name, rfbTimeout+cutMargin, rfbTimeout)
			case d < rfbTimeout:
				t.Errorf("%s: cut after %s, before VNC_HANDSHAKE_TIMEOUT %s", tc.name, d, rfbTimeout)
			default:
				t.Logf("%s: cut by scry after %s", tc.name, d.Round(time.Millisecond))
			}
		}
		waitFor(t, 20*time.Second, "the timeouts counted", func() error {
			if n := novncRefusals(ctx, t, s, "handshake"); n < before+2 {
				return fmt.Errorf("handshake refusals %v, were %v", n, before)
			}
			return nil
		})
		s.WaitLog("viewer cut: RFB handshake timed out", 20*time.Second)
		if err := metricIs(ctx, s, "scry_vnc_logins_in_progress", 0); err != nil {
			t.Error(err)
		}
	})

	t.Run("trickled POST body", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.NoVNCPort), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n", s.NoVNCPort)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(500 * time.Millisecond) // the attack's pace, not synchronisation
			defer tick.Stop()
			for range 1000 {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
		br := bufio.NewReader(c)
		c.SetReadDeadline(start.Add(headerTimeout + margin))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a POST trickling its body: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusMethodNotAllowed || !resp.Close {
			t.Errorf("POST /: %d, Connection: close %v; want 405 and close", resp.StatusCode, resp.Close)
		}
		at := closedByScry(c, br, start.Add(headerTimeout+margin))
		if at.IsZero() {
			t.Fatalf("a POST trickling its body one byte per 500ms is still open after %s", headerTimeout+margin)
		}
		t.Logf("trickled POST answered and cut after %s", at.Sub(start).Round(time.Millisecond))
		waitFor(t, 20*time.Second, "a debug access record for the POST", func() error {
			for _, r := range s.Records() {
				if r["msg"] == "request" && r["method"] == "POST" && r["path"] == "/" && r["status"] == float64(405) {
					return nil
				}
			}
			return errors.New("none in the log")
		})
	})

	t.Run("wrong password counted", func(t *testing.T) {
		before := novncRefusals(ctx, t, s, "password")
		if _, err := viewer(ctx, s, "not-it"); err == nil {
			t.Fatal("a wrong password logged in")
		}
		waitFor(t, 20*time.Second, "the wrong password counted", func() error {
			if n := novncRefusals(ctx, t, s, "password"); n != before+1 {
				return fmt.Errorf("password refusals %v, were %v", n, before)
			}
			return nil
		})
	})

	// (e) Idle for longer than HEADER_TIMEOUT (and VNC_HANDSHAKE_TIMEOUT)
	// at least: the idle period is what is tested, not a synchronisation.
	if idle := 3 * max(headerTimeout, rfbTimeout); time.Since(idleSince) < idle {
		quiet := time.NewTimer(idle - time.Since(idleSince))
		<-quiet.C
	}
	// (d) The viewer is still connected and still gets the screen.
	if err := good.RequestFull(); err != nil {
		t.Fatalf("the viewer, idle %s through the hostile traffic: %v", time.Since(idleSince).Round(time.Second), err)
	}
	uctx, ucancel := context.WithTimeout(ctx, 20*time.Second)
	defer ucancel()
	rects, err := good.ReadUpdate(uctx)
	if err != nil || len(rects) == 0 {
		t.Fatalf("the viewer, idle %s through the hostile traffic: framebuffer update %d rects, %v",
			time.Since(idleSince).Round(time.Second), len(rects), err)
	}
	t.Logf("the viewer, idle %s, got a %d-rectangle update", time.Since(idleSince).Round(time.Second), len(rects))
	if err := metricIs(ctx, s, "scry_vnc_viewers_open", 1); err != nil {
		t.Error(err)
	}
	if s.HasLog(password) {
		t.Error("the VNC password is in scry's log")
	}
}

// TestVNCLoginLockout: with VNC_MAX_VIEWERS=2, four silent /websockify
// connections fill the logins in progress (they used to get the human a
// 503, renewable forever); the human still logs in, each time the attacker
// refills them, and the oldest silent one is cut to make room.
func TestVNCLoginLockout(t *testing.T) {
	const password = "l0ck-0ut"
	// Silent connections are not cut by the clock during the test: only
	// the eviction can cut them.
	s := Start(t, Options{Env: map[string]string{"VNC_PASSWORD": password, "VNC_MAX_VIEWERS": "2", "VNC_HANDSHAKE_TIMEOUT": "5m"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for round := 1; round <= 2; round++ {
		type silent struct {
			c  net.Conn
			br *bufio.Reader
		}
		var conns []silent
		for range 4 {
			c, br := wsUpgrade(t, s)
			readBanner(t, c, br)
			conns = append(conns, silent{c, br})
		}
		waitFor(t, 20*time.Second, "four logins in progress", func() error {
			return metricIs(ctx, s, "scry_vnc_logins_in_progress", 4)
		})
		evicted := novncRefusals(ctx, t, s, "evicted")
		human, err := viewer(ctx, s, password)
		if err != nil {
			t.Fatalf("round %d: the human, behind four silent connections: %v", round, err)
		}
		defer human.Close()
		if err := human.RequestFull(); err != nil {
			t.Fatal(err)
		}
		if _, err := human.ReadUpdate(ctx); err != nil {
			t.Fatalf("round %d: the human's screen: %v", round, err)
		}
		// The oldest silent connection made room: scry cut it.
		if at := closedByScry(conns[0].c, conns[0].br, time.Now().Add(20*time.Second)); at.IsZero() {
			t.Errorf("round %d: the oldest silent connection is still open", round)
		}
		waitFor(t, 20*time.Second, "the eviction counted", func() error {
			if n := novncRefusals(ctx, t, s, "evicted"); n != evicted+1 {
				return fmt.Errorf("evicted %v, were %v", n, evicted)
			}
			return nil
		})
		for _, c := range conns {
			c.c.Close()
		}
		waitFor(t, 20*time.Second, "no login in progress", func() error {
			return metricIs(ctx, s, "scry_vnc_logins_in_progress", 0)
		})
	}
	s.WaitLog("viewer cut: too many logins in progress", 20*time.Second)
}
