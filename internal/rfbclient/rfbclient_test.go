package rfbclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// vncFixedKey is the key VNC's storepasswd encrypts password files with.
var vncFixedKey = string([]byte{23, 82, 107, 6, 35, 78, 88, 7})

// TestDESResponse checks the DES step against files written by the real
// x11vnc 0.9.16 (`x11vnc -storepasswd PASSWORD FILE`): a password file is the
// password's first 8 bytes encrypted with VNC's DES under the fixed key,
// which is the same operation as answering a challenge with that key.
func TestDESResponse(t *testing.T) {
	tests := []struct {
		password string // what x11vnc -storepasswd was given
		want     string // hex of the file it wrote
	}{
		{"password", "dbd83cfd727a1458"},
		{"Tr0ub4dor&3", "20455e1add9035b0"}, // only "Tr0ub4do" counts
	}
	for _, tt := range tests {
		t.Run(tt.password, func(t *testing.T) {
			var challenge [16]byte
			copy(challenge[:8], tt.password)
			copy(challenge[8:], tt.password)
			got := DESResponse(vncFixedKey, challenge)
			want, _ := hex.DecodeString(tt.want)
			if !bytes.Equal(got[:8], want) || !bytes.Equal(got[8:], want) {
				t.Errorf("DESResponse = %x, want %x twice", got, want)
			}
		})
	}
}

func TestDESResponseUsesFirstEightBytes(t *testing.T) {
	challenge := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if DESResponse("12345678", challenge) != DESResponse("123456789abc", challenge) {
		t.Error("a password longer than 8 bytes changed the response")
	}
	if DESResponse("1234567", challenge) == DESResponse("12345678", challenge) {
		t.Error("short password not zero-padded distinctly")
	}
}

func TestKeysym(t *testing.T) {
	tests := []struct {
		r    rune
		want uint32
	}{
		{'a', 0x61}, {'Z', 0x5a}, {'@', 0x40}, {' ', 0x20},
		{'\n', 0xff0d}, {'\t', 0xff09}, {'é', 0xe9}, {'€', 0x010020ac},
	}
	for _, tt := range tests {
		if got := Keysym(tt.r); got != tt.want {
			t.Errorf("Keysym(%q) = %#x, want %#x", tt.r, got, tt.want)
		}
	}
}

// TestHandshakeScript drives the client against a scripted server on a real
// loopback connection, to cover paths x11vnc does not take (pseudo-encodings,
// a failure reason). The real server is covered in internal/novnc.
func TestHandshakeScript(t *testing.T) {
	tests := []struct {
		name     string
		password string
		types    []byte
		result   uint32
		reason   string
		wantErr  error
	}{
		{name: "none", types: []byte{SecurityNone}},
		{name: "vnc auth", password: "secret", types: []byte{SecurityVNCAuth}},
		{name: "vnc auth refused", password: "wrong", types: []byte{SecurityVNCAuth}, result: 1, reason: "bad password", wantErr: &AuthError{}},
		{name: "password missing", types: []byte{SecurityVNCAuth}, wantErr: ErrPasswordRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			challenge := [16]byte{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6}
			srvErr := make(chan error, 1)
			go func() {
				srvErr <- func() error {
					c, err := ln.Accept()
					if err != nil {
						return err
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					io.WriteString(c, "RFB 003.008\n")
					v := make([]byte, 12)
					if _, err := io.ReadFull(c, v); err != nil {
						return err
					}
					c.Write(append([]byte{byte(len(tt.types))}, tt.types...))
					sel := make([]byte, 1)
					if _, err := io.ReadFull(c, sel); err != nil {
						return nil // the client gave up, as expected for ErrPasswordRequired
					}
					if sel[0] == SecurityVNCAuth {
						c.Write(challenge[:])
						resp := make([]byte, 16)
						if _, err := io.ReadFull(c, resp); err != nil {
							return err
						}
						want := DESResponse("secret", challenge)
						if tt.result == 0 && !bytes.Equal(resp, want[:]) {
							return errors.New("wrong response")
						}
					}
					binary.Write(c, binary.BigEndian, tt.result)
					if tt.result != 0 {
						binary.Write(c, binary.BigEndian, uint32(len(tt.reason)))
						io.WriteString(c, tt.reason)
						return nil
					}
					if _, err := io.ReadFull(c, sel); err != nil { // ClientInit
						return err
					}
					init := make([]byte, 24)
					binary.BigEndian.PutUint16(init[0:], 4)
					binary.BigEndian.PutUint16(init[2:], 2)
					copy(init[4:], []byte{32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0})
					binary.BigEndian.PutUint32(init[20:], 4)
					c.Write(append(init, "test"...))
					req := make([]byte, 10)
					if _, err := io.ReadFull(c, req); err != nil {
						return err
					}
					// Bell, then an update: cursor pseudo-rect, raw 4x2, desktop size.
					var u bytes.Buffer
					u.Write([]byte{2, 0, 0, 0, 3})
					binary.Write(&u, binary.BigEndian, []uint16{0, 0, 2, 1})
					binary.Write(&u, binary.BigEndian, EncodingCursor)
					u.Write(make([]byte, 2*1*4+1))
					binary.Write(&u, binary.BigEndian, []uint16{0, 0, 4, 2})
					binary.Write(&u, binary.BigEndian, EncodingRaw)
					u.Write(bytes.Repeat([]byte{0xab}, 4*2*4))
					binary.Write(&u, binary.BigEndian, []uint16{0, 0, 8, 6})
					binary.Write(&u, binary.BigEndian, EncodingDesktopSize)
					_, err = c.Write(u.Bytes())
					return err
				}()
			}()

			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := Handshake(ctx, conn, Config{Password: tt.password})
			if tt.wantErr != nil {
				var ae *AuthError
				switch {
				case errors.As(tt.wantErr, &ae):
					if !errors.As(err, &ae) || ae.Reason != tt.reason {
						t.Fatalf("Handshake error = %v, want AuthError with reason %q", err, tt.reason)
					}
				case !errors.Is(err, tt.wantErr):
					t.Fatalf("Handshake error = %v, want %v", err, tt.wantErr)
				}
				conn.Close()
				if err := <-srvErr; err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Handshake: %v", err)
			}
			if c.Width != 4 || c.Height != 2 || c.Name != "test" || c.PixelFormat.BitsPerPixel != 32 {
				t.Fatalf("server init = %dx%d %q %+v", c.Width, c.Height, c.Name, c.PixelFormat)
			}
			if err := c.RequestFull(); err != nil {
				t.Fatal(err)
			}
			rects, err := c.ReadUpdate(ctx)
			if err != nil {
				t.Fatalf("ReadUpdate: %v", err)
			}
			if len(rects) != 3 || rects[1].Encoding != EncodingRaw || len(rects[1].Data) != 32 || rects[1].Data[31] != 0xab {
				t.Fatalf("rects = %+v", rects)
			}
			if c.Width != 8 || c.Height != 6 {
				t.Errorf("after DesktopSize: %dx%d, want 8x6", c.Width, c.Height)
			}
			if err := <-srvErr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReadUpdateHonoursContext(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &Client{conn: a, br: nil}
	c.br = newReader(a)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := c.ReadUpdate(ctx); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadUpdate error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadUpdate did not return after cancel")
	}
}
