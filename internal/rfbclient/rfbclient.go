// Package rfbclient is a minimal RFB 3.8 (VNC) client for scry's tests and
// benchmarks. It speaks over any net.Conn, so the same code measures a direct
// TCP connection to x11vnc and one tunnelled through a WebSocket bridge
// (websocket.NetConn).
//
// It implements only what the tests need: the handshake with security types
// None and VNC authentication, ServerInit, raw framebuffer updates (skipping
// the pseudo-encodings a server may send), key and pointer events.
package rfbclient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/coder/websocket"

	"github.com/dataplanelabs/scry/internal/rfbauth"
)

// Security types (RFC 6143 section 7.2).
const (
	SecurityNone    uint8 = 1
	SecurityVNCAuth uint8 = 2
)

// Encodings (RFC 6143 section 7.7 and the pseudo-encodings servers commonly send).
const (
	EncodingRaw                 int32 = 0
	EncodingCopyRect            int32 = 1
	EncodingDesktopSize         int32 = -223
	EncodingLastRect            int32 = -224
	EncodingCursor              int32 = -239
	EncodingXCursor             int32 = -240
	EncodingExtendedDesktopSize int32 = -308
)

// maxStringLen bounds the strings a server may send (reason, name) so a
// broken peer cannot make the client allocate gigabytes.
const maxStringLen = 1 << 20

// ErrPasswordRequired is returned by Handshake when the server offers only
// password authentication and Config.Password is empty.
var ErrPasswordRequired = errors.New("server requires a password")

// AuthError is a security failure reported by the server, with its reason.
type AuthError struct {
	Reason string
}

func (e *AuthError) Error() string {
	if e.Reason == "" {
		return "authentication failed"
	}
	return "authentication failed: " + e.Reason
}

// Config says how to authenticate and whether to share the desktop.
type Config struct {
	// Password for VNC authentication; empty means security type None.
	// VNC uses only its first 8 bytes.
	Password string
	// Exclusive asks the server to disconnect other viewers (ClientInit
	// shared-flag 0). The zero value shares, like every viewer scry expects.
	Exclusive bool
}

// PixelFormat is the server's pixel format from ServerInit.
type PixelFormat struct {
	BitsPerPixel, Depth             uint8
	BigEndian, TrueColour           bool
	RedMax, GreenMax, BlueMax       uint16
	RedShift, GreenShift, BlueShift uint8
}

// BytesPerPixel is BitsPerPixel/8.
func (p PixelFormat) BytesPerPixel() int { return int(p.BitsPerPixel) / 8 }

// Rect is one rectangle of a framebuffer update. For raw rectangles Data
// holds W*H pixels; it aliases a buffer reused by the next ReadUpdate.
type Rect struct {
	X, Y, W, H uint16
	Encoding   int32
	Data       []byte
}

// Client is an RFB session after a successful handshake.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	buf  []byte

	// Version is the server's ProtocolVersion line without the newline,
	// e.g. "RFB 003.008".
	Version string
	// SecurityTypes lists the types the server offered.
	SecurityTypes []uint8
	// Security is the type used.
	Security uint8
	// Width and Height of the framebuffer; DesktopSize updates change them.
	Width, Height uint16
	PixelFormat   PixelFormat
	// Name is the desktop name from ServerInit.
	Name string
	// CutText is the last ServerCutText received, if any.
	CutText string
}

// Handshake runs the RFB handshake on conn up to ServerInit. The context
// bounds the whole handshake; on failure conn is left for the caller to close.
func Handshake(ctx context.Context, conn net.Conn, cfg Config) (*Client, error) {
	c := &Client{conn: conn, br: newReader(conn)}
	err := c.withContext(ctx, func() error { return c.handshake(cfg) })
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialWebSocket connects to a websockify-style endpoint (scry's
// /websockify) the way noVNC does, binary frames with no read limit, and
// runs Handshake over it.
func DialWebSocket(ctx context.Context, url string, cfg Config) (*Client, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(-1)
	conn := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	c, err := Handshake(ctx, conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func newReader(conn net.Conn) *bufio.Reader { return bufio.NewReaderSize(conn, 64<<10) }

// withContext applies ctx's deadline and cancellation to the connection
// for the duration of f.
func (c *Client) withContext(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() {
		// The context ended while f ran: report that rather than a timeout.
		if cerr := ctx.Err(); cerr != nil && err != nil {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
	}
	c.conn.SetDeadline(time.Time{})
	return err
}

// handshake runs RFB's opening: version, security, client and server init.
func (c *Client) handshake(cfg Config) error {
	minor, err := c.negotiateVersion()
	if err != nil {
		return err
	}
	if err := c.chooseSecurity(cfg, minor); err != nil {
		return err
	}
	if err := c.authenticate(cfg, minor); err != nil {
		return err
	}
	return c.initialise(cfg)
}

// negotiateVersion reads the server's version and answers with the minor
// version both speak (3, 7 or 8).
func (c *Client) negotiateVersion() (int, error) {
	var v [12]byte
	if _, err := io.ReadFull(c.br, v[:]); err != nil {
		return 0, fmt.Errorf("read protocol version: %w", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(v[:]), "RFB %03d.%03d\n", &major, &minor); err != nil {
		return 0, fmt.Errorf("bad protocol version %q", v[:])
	}
	c.Version = string(v[:11])
	if major != 3 {
		return 0, fmt.Errorf("unsupported protocol version %q", c.Version)
	}
	switch {
	case minor >= 8:
		minor = 8
	case minor == 7:
	default:
		minor = 3
	}
	if _, err := fmt.Fprintf(c.conn, "RFB 003.%03d\n", minor); err != nil {
		return 0, fmt.Errorf("write protocol version: %w", err)
	}
	return minor, nil
}

// chooseSecurity reads the security type (3.3: the server picks) or types
// (3.7, 3.8: the client picks: None when it has no password, else VNC
// authentication).
func (c *Client) chooseSecurity(cfg Config, minor int) error {
	if minor == 3 {
		var t uint32
		if err := binary.Read(c.br, binary.BigEndian, &t); err != nil {
			return fmt.Errorf("read security type: %w", err)
		}
		if t == 0 {
			return &AuthError{Reason: c.readReason()}
		}
		c.SecurityTypes = []uint8{uint8(t)}
		c.Security = uint8(t)
		return nil
	}
	n, err := c.br.ReadByte()
	if err != nil {
		return fmt.Errorf("read security types: %w", err)
	}
	if n == 0 {
		return &AuthError{Reason: c.readReason()}
	}
	c.SecurityTypes = make([]uint8, n)
	if _, err := io.ReadFull(c.br, c.SecurityTypes); err != nil {
		return fmt.Errorf("read security types: %w", err)
	}
	switch {
	case cfg.Password == "" && slices.Contains(c.SecurityTypes, SecurityNone):
		c.Security = SecurityNone
	case slices.Contains(c.SecurityTypes, SecurityVNCAuth):
		if cfg.Password == "" {
			return ErrPasswordRequired
		}
		c.Security = SecurityVNCAuth
	case slices.Contains(c.SecurityTypes, SecurityNone):
		c.Security = SecurityNone
	default:
		return fmt.Errorf("no supported security type in %v", c.SecurityTypes)
	}
	if _, err := c.conn.Write([]byte{c.Security}); err != nil {
		return fmt.Errorf("write security type: %w", err)
	}
	return nil
}

// authenticate answers VNC authentication's challenge and reads the
// security result where the version sends one.
func (c *Client) authenticate(cfg Config, minor int) error {
	switch c.Security {
	case SecurityNone:
	case SecurityVNCAuth:
		if cfg.Password == "" {
			return ErrPasswordRequired
		}
		var challenge [16]byte
		if _, err := io.ReadFull(c.br, challenge[:]); err != nil {
			return fmt.Errorf("read vnc auth challenge: %w", err)
		}
		resp := DESResponse(cfg.Password, challenge)
		if _, err := c.conn.Write(resp[:]); err != nil {
			return fmt.Errorf("write vnc auth response: %w", err)
		}
	default:
		return fmt.Errorf("unsupported security type %d", c.Security)
	}
	// RFB 3.8 sends SecurityResult for every type; 3.3 and 3.7 only after
	// VNC authentication.
	if minor != 8 && c.Security != SecurityVNCAuth {
		return nil
	}
	var result uint32
	if err := binary.Read(c.br, binary.BigEndian, &result); err != nil {
		return fmt.Errorf("read security result: %w", err)
	}
	if result != 0 {
		e := &AuthError{}
		if minor == 8 {
			e.Reason = c.readReason()
		}
		return e
	}
	return nil
}

// initialise sends ClientInit and reads ServerInit: the screen's size,
// pixel format and name.
func (c *Client) initialise(cfg Config) error {
	shared := byte(1)
	if cfg.Exclusive {
		shared = 0
	}
	if _, err := c.conn.Write([]byte{shared}); err != nil {
		return fmt.Errorf("write client init: %w", err)
	}
	var init [24]byte
	if _, err := io.ReadFull(c.br, init[:]); err != nil {
		return fmt.Errorf("read server init: %w", err)
	}
	c.Width = binary.BigEndian.Uint16(init[0:])
	c.Height = binary.BigEndian.Uint16(init[2:])
	pf := init[4:20]
	c.PixelFormat = PixelFormat{
		BitsPerPixel: pf[0], Depth: pf[1], BigEndian: pf[2] != 0, TrueColour: pf[3] != 0,
		RedMax: binary.BigEndian.Uint16(pf[4:]), GreenMax: binary.BigEndian.Uint16(pf[6:]),
		BlueMax: binary.BigEndian.Uint16(pf[8:]), RedShift: pf[10], GreenShift: pf[11], BlueShift: pf[12],
	}
	if c.PixelFormat.BitsPerPixel%8 != 0 || c.PixelFormat.BitsPerPixel == 0 {
		return fmt.Errorf("unsupported bits per pixel %d", c.PixelFormat.BitsPerPixel)
	}
	name, err := c.readString(binary.BigEndian.Uint32(init[20:]))
	if err != nil {
		return fmt.Errorf("read desktop name: %w", err)
	}
	c.Name = name
	return nil
}

// readReason reads a length-prefixed failure reason; a read error becomes
// part of the reason rather than hiding the failure.
func (c *Client) readReason() string {
	var n uint32
	if err := binary.Read(c.br, binary.BigEndian, &n); err != nil {
		return fmt.Sprintf("(no reason: %v)", err)
	}
	s, err := c.readString(n)
	if err != nil {
		return fmt.Sprintf("(no reason: %v)", err)
	}
	return s
}

func (c *Client) readString(n uint32) (string, error) {
	if n > maxStringLen {
		return "", fmt.Errorf("string of %d bytes is too long", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// DESResponse answers a VNC authentication challenge with password's
// first 8 bytes.
func DESResponse(password string, challenge [16]byte) [16]byte {
	return rfbauth.DESResponse([]byte(password), challenge)
}

// SetEncodings tells the server which encodings the client accepts, in
// order of preference.
func (c *Client) SetEncodings(encs ...int32) error {
	msg := make([]byte, 4+4*len(encs))
	msg[0] = 2
	binary.BigEndian.PutUint16(msg[2:], uint16(len(encs)))
	for i, e := range encs {
		binary.BigEndian.PutUint32(msg[4+4*i:], uint32(e))
	}
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("set encodings: %w", err)
	}
	return nil
}

// RequestUpdate sends a FramebufferUpdateRequest. A non-incremental request
// makes the server send the whole region even if nothing changed.
func (c *Client) RequestUpdate(incremental bool, x, y, w, h uint16) error {
	var msg [10]byte
	msg[0] = 3
	if incremental {
		msg[1] = 1
	}
	binary.BigEndian.PutUint16(msg[2:], x)
	binary.BigEndian.PutUint16(msg[4:], y)
	binary.BigEndian.PutUint16(msg[6:], w)
	binary.BigEndian.PutUint16(msg[8:], h)
	if _, err := c.conn.Write(msg[:]); err != nil {
		return fmt.Errorf("framebuffer update request: %w", err)
	}
	return nil
}

// RequestFull asks for the whole framebuffer, non-incrementally.
func (c *Client) RequestFull() error {
	return c.RequestUpdate(false, 0, 0, c.Width, c.Height)
}

// ReadUpdate reads server messages until a FramebufferUpdate and returns its
// rectangles. Bell, colour map and cut-text messages met on the way are
// consumed (cut text is kept in CutText). The context bounds the read.
//
// The Data of returned rectangles is valid until the next ReadUpdate.
func (c *Client) ReadUpdate(ctx context.Context) ([]Rect, error) {
	var rects []Rect
	err := c.withContext(ctx, func() error {
		var err error
		rects, err = c.readUpdate()
		return err
	})
	return rects, err
}

func (c *Client) readUpdate() ([]Rect, error) {
	for {
		t, err := c.br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("read server message: %w", err)
		}
		switch t {
		case 0:
			return c.readFramebufferUpdate()
		case 1: // SetColourMapEntries
			var h [5]byte
			if _, err := io.ReadFull(c.br, h[:]); err != nil {
				return nil, fmt.Errorf("read colour map entries: %w", err)
			}
			n := int64(binary.BigEndian.Uint16(h[3:])) * 6
			if _, err := c.br.Discard(int(n)); err != nil {
				return nil, fmt.Errorf("read colour map entries: %w", err)
			}
		case 2: // Bell
		case 3: // ServerCutText
			var h [7]byte
			if _, err := io.ReadFull(c.br, h[:]); err != nil {
				return nil, fmt.Errorf("read server cut text: %w", err)
			}
			s, err := c.readString(binary.BigEndian.Uint32(h[3:]))
			if err != nil {
				return nil, fmt.Errorf("read server cut text: %w", err)
			}
			c.CutText = s
		default:
			return nil, fmt.Errorf("unsupported server message type %d", t)
		}
	}
}

func (c *Client) readFramebufferUpdate() ([]Rect, error) {
	var h [3]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return nil, fmt.Errorf("read framebuffer update: %w", err)
	}
	n := int(binary.BigEndian.Uint16(h[1:]))
	rects := make([]Rect, 0, min(n, 256))
	bpp := c.PixelFormat.BytesPerPixel()

	// First pass: sizes, so that all raw data can share one buffer.
	type span struct{ off, n int }
	spans := make([]span, 0, cap(rects))
	used := 0
	for i := 0; i < n; i++ {
		var rh [12]byte
		if _, err := io.ReadFull(c.br, rh[:]); err != nil {
			return nil, fmt.Errorf("read rectangle %d header: %w", i, err)
		}
		r := Rect{
			X: binary.BigEndian.Uint16(rh[0:]), Y: binary.BigEndian.Uint16(rh[2:]),
			W: binary.BigEndian.Uint16(rh[4:]), H: binary.BigEndian.Uint16(rh[6:]),
			Encoding: int32(binary.BigEndian.Uint32(rh[8:])),
		}
		w, hh := int(r.W), int(r.H)
		switch r.Encoding {
		case EncodingRaw:
			size := w * hh * bpp
			c.grow(used + size)
			if _, err := io.ReadFull(c.br, c.buf[used:used+size]); err != nil {
				return nil, fmt.Errorf("read raw rectangle %d (%dx%d): %w", i, w, hh, err)
			}
			spans = append(spans, span{used, size})
			used += size
			rects = append(rects, r)
			continue
		case EncodingCopyRect:
			if err := c.discard(4); err != nil {
				return nil, fmt.Errorf("read copyrect %d: %w", i, err)
			}
		case EncodingDesktopSize:
			c.Width, c.Height = r.W, r.H
		case EncodingExtendedDesktopSize:
			var eh [4]byte
			if _, err := io.ReadFull(c.br, eh[:]); err != nil {
				return nil, fmt.Errorf("read extended desktop size %d: %w", i, err)
			}
			if err := c.discard(16 * int(eh[0])); err != nil {
				return nil, fmt.Errorf("read extended desktop size %d: %w", i, err)
			}
			c.Width, c.Height = r.W, r.H
		case EncodingCursor:
			if err := c.discard(w*hh*bpp + (w+7)/8*hh); err != nil {
				return nil, fmt.Errorf("read cursor %d: %w", i, err)
			}
		case EncodingXCursor:
			if w*hh > 0 {
				if err := c.discard(6 + 2*((w+7)/8*hh)); err != nil {
					return nil, fmt.Errorf("read x cursor %d: %w", i, err)
				}
			}
		case EncodingLastRect:
			n = i // the server ends the update early
		default:
			return nil, fmt.Errorf("rectangle %d: unsupported encoding %d", i, r.Encoding)
		}
		spans = append(spans, span{})
		rects = append(rects, r)
	}
	for i := range rects {
		if s := spans[i]; s.n > 0 {
			rects[i].Data = c.buf[s.off : s.off+s.n : s.off+s.n]
		}
	}
	return rects, nil
}

func (c *Client) grow(n int) {
	if n > len(c.buf) {
		c.buf = slices.Grow(c.buf[:0], n)[:n]
	}
}

func (c *Client) discard(n int) error {
	_, err := c.br.Discard(n)
	return err
}

// KeyEvent presses (down) or releases a key given as an X keysym.
func (c *Client) KeyEvent(keysym uint32, down bool) error {
	var msg [8]byte
	msg[0] = 4
	if down {
		msg[1] = 1
	}
	binary.BigEndian.PutUint32(msg[4:], keysym)
	if _, err := c.conn.Write(msg[:]); err != nil {
		return fmt.Errorf("key event: %w", err)
	}
	return nil
}

// Keysym returns the X keysym for a rune: Latin-1 maps to itself, newline
// and tab to Return and Tab, anything else to the Unicode keysym range.
func Keysym(r rune) uint32 {
	switch {
	case r == '\n' || r == '\r':
		return 0xff0d // Return
	case r == '\t':
		return 0xff09 // Tab
	case r == '\b':
		return 0xff08 // BackSpace
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xff:
		return uint32(r)
	default:
		return 0x01000000 | uint32(r)
	}
}

// TypeText presses and releases the key for each rune of s. The server
// adds Shift where the keysym needs it.
func (c *Client) TypeText(s string) error {
	for _, r := range s {
		k := Keysym(r)
		if err := c.KeyEvent(k, true); err != nil {
			return fmt.Errorf("type %q: %w", r, err)
		}
		if err := c.KeyEvent(k, false); err != nil {
			return fmt.Errorf("type %q: %w", r, err)
		}
	}
	return nil
}

// PointerEvent moves the pointer to x,y with the given button mask (bit 0
// is the left button).
func (c *Client) PointerEvent(mask uint8, x, y uint16) error {
	var msg [6]byte
	msg[0] = 5
	msg[1] = mask
	binary.BigEndian.PutUint16(msg[2:], x)
	binary.BigEndian.PutUint16(msg[4:], y)
	if _, err := c.conn.Write(msg[:]); err != nil {
		return fmt.Errorf("pointer event: %w", err)
	}
	return nil
}

// Click presses and releases the left button at x,y.
func (c *Client) Click(x, y uint16) error {
	if err := c.PointerEvent(1, x, y); err != nil {
		return fmt.Errorf("click: %w", err)
	}
	if err := c.PointerEvent(0, x, y); err != nil {
		return fmt.Errorf("click: %w", err)
	}
	return nil
}

// SendCutText sends text to the server's clipboard (ClientCutText, Latin-1).
func (c *Client) SendCutText(text string) error {
	// RFB cut text is Latin-1; like noVNC, keep the low byte of each
	// UTF-16 unit.
	units := utf16.Encode([]rune(text))
	msg := make([]byte, 8, 8+len(units))
	msg[0] = 6
	binary.BigEndian.PutUint32(msg[4:], uint32(len(units)))
	for _, u := range units {
		msg = append(msg, byte(u))
	}
	if _, err := c.conn.Write(msg); err != nil {
		return fmt.Errorf("client cut text: %w", err)
	}
	return nil
}

// Close closes the underlying connection.
func (c *Client) Close() error { return c.conn.Close() }
