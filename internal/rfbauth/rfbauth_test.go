package rfbauth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pipe returns two connected ends with a deadline, so a stuck test fails.
func pipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	d := time.Now().Add(10 * time.Second)
	a.SetDeadline(d)
	b.SetDeadline(d)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func serve(t *testing.T, cfg ServerConfig) (net.Conn, <-chan error) {
	t.Helper()
	viewer, server := pipe(t)
	errc := make(chan error, 1)
	go func() { errc <- Serve(server, cfg) }()
	return viewer, errc
}

func read(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func write(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// viewerAuth plays a 3.8 viewer with VNC authentication keyed by key and
// returns the SecurityResult and the reason.
func viewerAuth(t *testing.T, c net.Conn, key []byte) (uint32, string) {
	t.Helper()
	if v := string(read(t, c, 12)); v != "RFB 003.008\n" {
		t.Fatalf("server version %q", v)
	}
	write(t, c, []byte("RFB 003.008\n"))
	if types := read(t, c, 2); !bytes.Equal(types, []byte{1, SecurityVNCAuth}) {
		t.Fatalf("security types %v, want [1 2] (one type: VNC auth)", types)
	}
	write(t, c, []byte{SecurityVNCAuth})
	var ch [16]byte
	copy(ch[:], read(t, c, 16))
	resp := DESResponse(key, ch)
	write(t, c, resp[:])
	res := binary.BigEndian.Uint32(read(t, c, 4))
	if res == 0 {
		return 0, ""
	}
	n := binary.BigEndian.Uint32(read(t, c, 4))
	return res, string(read(t, c, int(n)))
}

func TestServeVNCAuth(t *testing.T) {
	tests := []struct {
		name     string
		password string
		key      []byte
		wantOK   bool
	}{
		{"right", "s3cret", []byte("s3cret"), true},
		{"wrong", "s3cret", []byte("s3cre7"), false},
		{"only 8 bytes count", "s3cret-pw", []byte("s3cret-p"), true},
		{"empty answer", "s3cret", nil, false},
		{"non-ASCII as UTF-8 bytes", "pässwort", []byte("pässwort"), true},
		{"non-ASCII as noVNC sends it (low byte of each UTF-16 unit)", "pässwort", []byte{'p', 0xe4, 's', 's', 'w', 'o', 'r', 't'}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errc := serve(t, ServerConfig{Password: tt.password})
			res, reason := viewerAuth(t, c, tt.key)
			err := <-errc
			if tt.wantOK {
				if res != 0 || err != nil {
					t.Fatalf("result %d %q, Serve: %v; want success", res, reason, err)
				}
				return
			}
			if res == 0 || reason != "wrong password" || !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("result %d %q, Serve: %v; want failure \"wrong password\" and ErrWrongPassword", res, reason, err)
			}
		})
	}
}

func TestServeNone(t *testing.T) {
	for _, tt := range []struct {
		version    string
		types      []byte // what the server sends after the version
		choose     bool   // whether the viewer sends a type
		wantResult bool   // whether a SecurityResult follows
	}{
		{"RFB 003.008\n", []byte{1, SecurityNone}, true, true},
		{"RFB 003.007\n", []byte{1, SecurityNone}, true, false},
		{"RFB 003.003\n", []byte{0, 0, 0, SecurityNone}, false, false},
		{"RFB 003.005\n", []byte{0, 0, 0, SecurityNone}, false, false}, // unknown 3.x is 3.3
	} {
		t.Run(strings.TrimSpace(tt.version), func(t *testing.T) {
			ready := 0
			c, errc := serve(t, ServerConfig{Ready: func() error { ready++; return nil }})
			read(t, c, 12)
			write(t, c, []byte(tt.version))
			if got := read(t, c, len(tt.types)); !bytes.Equal(got, tt.types) {
				t.Fatalf("security %v, want %v", got, tt.types)
			}
			if tt.choose {
				write(t, c, []byte{SecurityNone})
			}
			if tt.wantResult {
				if r := read(t, c, 4); !bytes.Equal(r, []byte{0, 0, 0, 0}) {
					t.Fatalf("result %v, want OK", r)
				}
			}
			if err := <-errc; err != nil || ready != 1 {
				t.Fatalf("Serve: %v, Ready called %d times; want nil and once", err, ready)
			}
		})
	}
}

func TestServeVNCAuthRFB33(t *testing.T) {
	c, errc := serve(t, ServerConfig{Password: "pw"})
	read(t, c, 12)
	write(t, c, []byte("RFB 003.003\n"))
	if got := read(t, c, 4); !bytes.Equal(got, []byte{0, 0, 0, SecurityVNCAuth}) {
		t.Fatalf("security %v, want VNC auth as a u32", got)
	}
	var ch [16]byte
	copy(ch[:], read(t, c, 16))
	resp := DESResponse([]byte("pw"), ch)
	write(t, c, resp[:])
	if r := read(t, c, 4); !bytes.Equal(r, []byte{0, 0, 0, 0}) {
		t.Fatalf("result %v, want OK", r)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesOtherTypesAndVersions(t *testing.T) {
	t.Run("None chosen when a password is set", func(t *testing.T) {
		c, errc := serve(t, ServerConfig{Password: "pw", Ready: func() error { t.Error("Ready called"); return nil }})
		read(t, c, 12)
		write(t, c, []byte("RFB 003.008\n"))
		read(t, c, 2)
		write(t, c, []byte{SecurityNone})
		if r := binary.BigEndian.Uint32(read(t, c, 4)); r == 0 {
			t.Fatal("security result OK for a type that was not offered")
		}
		reason := read(t, c, int(binary.BigEndian.Uint32(read(t, c, 4))))
		if !strings.Contains(string(reason), "offered only 2") {
			t.Errorf("reason %q", reason)
		}
		if err := <-errc; err == nil {
			t.Fatal("Serve accepted")
		}
	})
	t.Run("RFB 4", func(t *testing.T) {
		c, errc := serve(t, ServerConfig{})
		read(t, c, 12)
		write(t, c, []byte("RFB 004.000\n"))
		if err := <-errc; err == nil || !strings.Contains(err.Error(), "RFB 004.000") {
			t.Fatalf("Serve: %v, want a version error", err)
		}
	})
	t.Run("not RFB", func(t *testing.T) {
		c, errc := serve(t, ServerConfig{})
		read(t, c, 12)
		write(t, c, []byte("GET / HTTP/1"))
		if err := <-errc; err == nil {
			t.Fatal("Serve accepted")
		}
	})
}

func TestServeReadyFailure(t *testing.T) {
	boom := errors.New("connection refused")
	c, errc := serve(t, ServerConfig{Password: "pw", Ready: func() error { return boom }})
	read(t, c, 12)
	write(t, c, []byte("RFB 003.008\n"))
	read(t, c, 2)
	write(t, c, []byte{SecurityVNCAuth})
	var ch [16]byte
	copy(ch[:], read(t, c, 16))
	resp := DESResponse([]byte("pw"), ch)
	write(t, c, resp[:])
	err := <-errc
	var re *ReadyError
	if !errors.As(err, &re) || !errors.Is(err, boom) {
		t.Fatalf("Serve: %v, want a ReadyError wrapping %v", err, boom)
	}
}

// TestClientAgainstServe: scry's two halves agree, with and without a
// password, and Client stops right before ClientInit.
func TestClientAgainstServe(t *testing.T) {
	for _, pw := range []string{"", "x11-Only"} {
		c, errc := serve(t, ServerConfig{Password: pw})
		cerr := make(chan error, 1)
		go func() { cerr <- Client(c, pw) }()
		if err := <-cerr; err != nil {
			t.Fatalf("password %q: Client: %v", pw, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("password %q: Serve: %v", pw, err)
		}
	}
	c, errc := serve(t, ServerConfig{Password: "right"})
	err := Client(c, "wrong")
	if err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("Client with a wrong password: %v, want the server's reason", err)
	}
	if err := <-errc; !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("Serve: %v", err)
	}
}

func TestClientNeedsTheOfferedType(t *testing.T) {
	a, b := pipe(t)
	go func() {
		b.Write([]byte("RFB 003.008\n"))
		io.ReadFull(b, make([]byte, 12))
		b.Write([]byte{1, SecurityVNCAuth})
	}()
	err := Client(a, "")
	if err == nil || !strings.Contains(err.Error(), "not 1") {
		t.Fatalf("Client without a password against a VNC-auth server: %v", err)
	}
}

func TestWrongPasswordWaitsForFailWait(t *testing.T) {
	var released atomic.Bool
	c, errc := serve(t, ServerConfig{Password: "right", FailWait: func() {
		time.Sleep(50 * time.Millisecond) // the pacing under test, not synchronisation
		released.Store(true)
	}})
	if r, _ := viewerAuth(t, c, []byte("wrong")); r == 0 {
		t.Fatal("wrong password accepted")
	}
	if !released.Load() {
		t.Fatal("the failure was answered before FailWait returned")
	}
	<-errc
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, err := NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != MaxPasswordLen {
			t.Fatalf("%d bytes, want %d", len(p), MaxPasswordLen)
		}
		for _, c := range []byte(p) {
			if c <= ' ' || c > '~' {
				t.Fatalf("byte %#x is not printable ASCII", c)
			}
		}
		if seen[p] {
			t.Fatal("the same password twice")
		}
		seen[p] = true
	}
}

// TestAwaitPassword: the hook runs after the challenge is sent and before
// the answer is read (the viewer below answers only once it ran), and never
// with security type None.
func TestAwaitPassword(t *testing.T) {
	for _, version := range []string{"RFB 003.008\n", "RFB 003.003\n"} {
		t.Run(strings.TrimSpace(version), func(t *testing.T) {
			awaiting := make(chan struct{})
			c, errc := serve(t, ServerConfig{Password: "pw", AwaitPassword: func() { close(awaiting) }})
			read(t, c, 12)
			write(t, c, []byte(version))
			if version == "RFB 003.008\n" {
				read(t, c, 2)
				select {
				case <-awaiting:
					t.Fatal("AwaitPassword ran before the security type was chosen")
				default:
				}
				write(t, c, []byte{SecurityVNCAuth})
			} else {
				read(t, c, 4)
			}
			var ch [16]byte
			copy(ch[:], read(t, c, 16))
			select {
			case <-awaiting:
			case <-time.After(5 * time.Second):
				t.Fatal("AwaitPassword did not run once the challenge was sent")
			}
			resp := DESResponse([]byte("pw"), ch)
			write(t, c, resp[:])
			if r := read(t, c, 4); !bytes.Equal(r, []byte{0, 0, 0, 0}) {
				t.Fatalf("result %v, want OK", r)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("None", func(t *testing.T) {
		c, errc := serve(t, ServerConfig{AwaitPassword: func() { t.Error("AwaitPassword ran with security type None") }})
		read(t, c, 12)
		write(t, c, []byte("RFB 003.008\n"))
		read(t, c, 2)
		write(t, c, []byte{SecurityNone})
		read(t, c, 4)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckWait: the answer is checked only once CheckWait returns; its
// error ends Serve unchecked, and the viewer is told why.
func TestCheckWait(t *testing.T) {
	t.Run("held, then checked", func(t *testing.T) {
		var released atomic.Bool
		c, errc := serve(t, ServerConfig{Password: "right",
			CheckWait: func() error { released.Store(true); return nil },
			Ready: func() error {
				if !released.Load() {
					t.Error("the answer was checked before CheckWait returned")
				}
				return nil
			}})
		if r, _ := viewerAuth(t, c, []byte("right")); r != 0 {
			t.Fatal("right password refused")
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("error", func(t *testing.T) {
		busy := errors.New("too many wrong passwords; try later")
		c, errc := serve(t, ServerConfig{Password: "right",
			CheckWait: func() error { return busy },
			Ready:     func() error { t.Error("Ready called"); return nil },
			FailWait:  func() { t.Error("FailWait called") }})
		r, reason := viewerAuth(t, c, []byte("right"))
		if r == 0 || !strings.Contains(reason, busy.Error()) {
			t.Errorf("result %d, reason %q; want a failure that says %q", r, reason, busy)
		}
		if err := <-errc; !errors.Is(err, busy) || errors.Is(err, ErrWrongPassword) {
			t.Errorf("Serve: %v, want CheckWait's error", err)
		}
	})
}
