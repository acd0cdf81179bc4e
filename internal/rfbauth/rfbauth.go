// Package rfbauth terminates VNC security on both legs of scry's noVNC
// bridge, so that x11vnc is never open to whoever can reach its port.
//
// Why: x11vnc's libvncserver answers WebSocket upgrades on its RFB port
// itself, with no Origin check. A web page open in the product's own
// Chromium could run new WebSocket("ws://127.0.0.1:5900") and, with x11vnc
// started -nopw, watch the screen and type into it. So x11vnc always runs
// with a random password only scry knows (Client answers its challenge),
// and scry asks the viewer for VNC_PASSWORD itself (Serve), offering
// security type None only when VNC_PASSWORD is empty, as the design says.
//
// Both sides stop right before ClientInit; from there the bridge copies
// bytes untouched (ClientInit and ServerInit are the same in RFB 3.3, 3.7
// and 3.8).
package rfbauth

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"unicode/utf16"
)

// Security types (RFC 6143 section 7.2).
const (
	SecurityNone    uint8 = 1
	SecurityVNCAuth uint8 = 2
)

// MaxPasswordLen is the number of password bytes VNC authentication uses.
const MaxPasswordLen = 8

// maxReasonLen bounds a failure reason read from a server.
const maxReasonLen = 64 << 10

// ErrWrongPassword is Serve's error when the viewer answered the challenge
// with another password.
var ErrWrongPassword = errors.New("wrong VNC password")

// NewCipher returns VNC's DES: keyed by the first 8 bytes of key
// (zero-padded), each byte's bits reversed, since VNC's d3des reads key
// bits least significant first. VNC authentication and the storepasswd
// file format both use it.
func NewCipher(key []byte) cipher.Block {
	var k [8]byte
	copy(k[:], key)
	for i, b := range k {
		k[i] = bits.Reverse8(b)
	}
	// des.NewCipher fails only for a key that is not 8 bytes long.
	block, _ := des.NewCipher(k[:])
	return block
}

// DESResponse answers a VNC authentication challenge: the challenge
// encrypted in ECB mode with NewCipher(key).
func DESResponse(key []byte, challenge [16]byte) [16]byte {
	var out [16]byte
	block := NewCipher(key)
	block.Encrypt(out[:8], challenge[:8])
	block.Encrypt(out[8:], challenge[8:])
	return out
}

// passwordKeys returns the keys a viewer may derive from password: its
// UTF-8 bytes (TigerVNC, rfbclient) and, when it differs, the low byte of
// each UTF-16 unit, which is what noVNC's genDES uses (charCodeAt), so a
// non-ASCII password works from the browser too.
func passwordKeys(password string) [][]byte {
	keys := [][]byte{[]byte(password)}
	units := utf16.Encode([]rune(password))
	low := make([]byte, len(units))
	for i, u := range units {
		low[i] = byte(u)
	}
	if !samePrefix(low, keys[0], MaxPasswordLen) {
		keys = append(keys, low)
	}
	return keys
}

func samePrefix(a, b []byte, n int) bool {
	var x, y [MaxPasswordLen]byte
	copy(x[:], a[:min(len(a), n)])
	copy(y[:], b[:min(len(b), n)])
	return x == y
}

// Client authenticates to a VNC server over rw with VNC authentication and
// password (security type None when password is empty), speaking RFB 3.8. It returns when the server accepted, leaving
// rw right before ClientInit. rw must not be buffered ahead of the server's
// messages: nothing past the SecurityResult is read.
func Client(rw io.ReadWriter, password string) error {
	var v [12]byte
	if _, err := io.ReadFull(rw, v[:]); err != nil {
		return fmt.Errorf("read server protocol version: %w", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(v[:]), "RFB %03d.%03d\n", &major, &minor); err != nil || major != 3 || minor < 8 {
		return fmt.Errorf("server speaks %q, want RFB 003.008 or later", v[:])
	}
	if _, err := io.WriteString(rw, "RFB 003.008\n"); err != nil {
		return fmt.Errorf("write protocol version: %w", err)
	}
	var n [1]byte
	if _, err := io.ReadFull(rw, n[:]); err != nil {
		return fmt.Errorf("read security types: %w", err)
	}
	if n[0] == 0 {
		return fmt.Errorf("server refused: %s", readReason(rw))
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(rw, types); err != nil {
		return fmt.Errorf("read security types: %w", err)
	}
	want := SecurityVNCAuth
	if password == "" {
		want = SecurityNone
	}
	if !slices.Contains(types, want) {
		return fmt.Errorf("server offers security types %v, not %d", types, want)
	}
	if _, err := rw.Write([]byte{want}); err != nil {
		return fmt.Errorf("write security type: %w", err)
	}
	if want == SecurityVNCAuth {
		var challenge [16]byte
		if _, err := io.ReadFull(rw, challenge[:]); err != nil {
			return fmt.Errorf("read challenge: %w", err)
		}
		resp := DESResponse([]byte(password), challenge)
		if _, err := rw.Write(resp[:]); err != nil {
			return fmt.Errorf("write challenge response: %w", err)
		}
	}
	var result [4]byte
	if _, err := io.ReadFull(rw, result[:]); err != nil {
		return fmt.Errorf("read security result: %w", err)
	}
	if binary.BigEndian.Uint32(result[:]) != 0 {
		return fmt.Errorf("server refused the password: %s", readReason(rw))
	}
	return nil
}

func readReason(r io.Reader) string {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Sprintf("(no reason: %v)", err)
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > maxReasonLen {
		return fmt.Sprintf("(a %d-byte reason)", l)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Sprintf("(no reason: %v)", err)
	}
	return string(b)
}

// ServerConfig configures Serve.
type ServerConfig struct {
	// Password is what the viewer must answer VNC authentication with;
	// empty offers security type None.
	Password string
	// Ready runs once the viewer has authenticated, before it is told so:
	// the bridge connects to the real server here. Its error is Serve's
	// (as a *ReadyError), and nothing more is sent to the viewer. nil
	// means nothing to do.
	Ready func() error
	// Rand makes challenges; nil means crypto/rand.
	Rand io.Reader
	// CheckWait, if not nil, runs once the viewer's answer is read and
	// before it is checked: it may hold the check back, to slow down
	// guessing (a guesser learns a wrong answer from the missing success,
	// so holding only failures would not). Its error ends Serve unchecked.
	CheckWait func() error
	// FailWait, if not nil, runs before a wrong password is answered: it
	// holds the answer back to slow down guessing. nil answers at once.
	FailWait func()
	// AwaitPassword, if not nil, runs once the challenge is sent, before
	// the viewer's answer is read. Until then every step is machine-paced
	// (a viewer answers in milliseconds); from here a human may be typing
	// the password, so the caller can give the connection a longer
	// deadline. It never runs with security type None.
	AwaitPassword func()
}

// ReadyError wraps the error of ServerConfig.Ready, to tell it from a
// viewer's failure.
type ReadyError struct{ Err error }

func (e *ReadyError) Error() string { return e.Err.Error() }
func (e *ReadyError) Unwrap() error { return e.Err }

// Serve is the server side of the RFB handshake with a viewer over rw, up to
// and including the SecurityResult. It accepts RFB 3.3, 3.7 and 3.8
// viewers. It returns nil when the viewer may go on to ClientInit,
// ErrWrongPassword (wrapped) for a wrong password, a *ReadyError when
// Ready failed, or the protocol error.
func Serve(rw io.ReadWriter, cfg ServerConfig) error {
	if _, err := io.WriteString(rw, "RFB 003.008\n"); err != nil {
		return fmt.Errorf("write protocol version: %w", err)
	}
	var v [12]byte
	if _, err := io.ReadFull(rw, v[:]); err != nil {
		return fmt.Errorf("read viewer protocol version: %w", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(v[:]), "RFB %03d.%03d\n", &major, &minor); err != nil || major != 3 {
		return fmt.Errorf("viewer speaks %q, want RFB 003.00x", v[:])
	}
	switch {
	case minor >= 8:
		minor = 8
	case minor == 7:
	default:
		minor = 3 // RFC 6143: any other 3.x is treated as 3.3
	}
	sec := SecurityVNCAuth
	if cfg.Password == "" {
		sec = SecurityNone
	}
	if minor == 3 {
		// 3.3: the server decides and sends the type as a u32.
		if err := binary.Write(rw, binary.BigEndian, uint32(sec)); err != nil {
			return fmt.Errorf("write security type: %w", err)
		}
	} else {
		if _, err := rw.Write([]byte{1, sec}); err != nil {
			return fmt.Errorf("write security types: %w", err)
		}
		var chosen [1]byte
		if _, err := io.ReadFull(rw, chosen[:]); err != nil {
			return fmt.Errorf("read chosen security type: %w", err)
		}
		if chosen[0] != sec {
			err := fmt.Errorf("viewer chose security type %d, offered only %d", chosen[0], sec)
			fail(rw, minor, err.Error())
			return err
		}
	}

	if sec == SecurityVNCAuth {
		if err := checkPassword(rw, cfg); err != nil {
			reason := "authentication failed"
			var we *waitError
			if errors.As(err, &we) {
				reason = we.err.Error() // the viewer shows it: why, and what to do
			}
			if errors.Is(err, ErrWrongPassword) {
				reason = "wrong password"
				if cfg.FailWait != nil {
					cfg.FailWait()
				}
			}
			fail(rw, minor, reason)
			return err
		}
	}
	if cfg.Ready != nil {
		// No failed SecurityResult here: viewers take that for a wrong
		// password. The caller closes the connection instead, which a
		// viewer retries.
		if err := cfg.Ready(); err != nil {
			return &ReadyError{Err: err}
		}
	}
	// RFB 3.8 sends a SecurityResult for every type; 3.3 and 3.7 only
	// after VNC authentication.
	if minor == 8 || sec == SecurityVNCAuth {
		if _, err := rw.Write([]byte{0, 0, 0, 0}); err != nil {
			return fmt.Errorf("write security result: %w", err)
		}
	}
	return nil
}

func checkPassword(rw io.ReadWriter, cfg ServerConfig) error {
	rnd := cfg.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var challenge [16]byte
	if _, err := io.ReadFull(rnd, challenge[:]); err != nil {
		return fmt.Errorf("make challenge: %w", err)
	}
	if _, err := rw.Write(challenge[:]); err != nil {
		return fmt.Errorf("write challenge: %w", err)
	}
	if cfg.AwaitPassword != nil {
		cfg.AwaitPassword()
	}
	var resp [16]byte
	if _, err := io.ReadFull(rw, resp[:]); err != nil {
		return fmt.Errorf("read challenge response: %w", err)
	}
	if cfg.CheckWait != nil {
		if err := cfg.CheckWait(); err != nil {
			return &waitError{err}
		}
	}
	ok := 0
	for _, k := range passwordKeys(cfg.Password) {
		want := DESResponse(k, challenge)
		ok |= subtle.ConstantTimeCompare(want[:], resp[:])
	}
	if ok != 1 {
		return ErrWrongPassword
	}
	return nil
}

// waitError is CheckWait's error, as Serve returns it.
type waitError struct{ err error }

func (e *waitError) Error() string { return "wait to check the password: " + e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// fail sends a failed SecurityResult, with its reason in RFB 3.8. Write
// errors are ignored: the connection is closed next anyway.
func fail(w io.Writer, minor int, reason string) {
	b := binary.BigEndian.AppendUint32(nil, 1)
	if minor == 8 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(reason)))
		b = append(b, reason...)
	}
	w.Write(b)
}

// NewPassword returns a random password for the VNC server's own file: 8
// printable ASCII characters (VNC keys are 8 bytes; libvncserver reads the
// file as a C string, so no NUL), from crypto/rand.
func NewPassword() (string, error) {
	const alphabet = "!#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|}~"
	b := make([]byte, MaxPasswordLen)
	for i := range b {
		var r [1]byte
		for {
			if _, err := io.ReadFull(rand.Reader, r[:]); err != nil {
				return "", fmt.Errorf("make vnc server password: %w", err)
			}
			if int(r[0]) < 256-256%len(alphabet) { // no modulo bias
				break
			}
		}
		b[i] = alphabet[int(r[0])%len(alphabet)]
	}
	return string(b), nil
}
