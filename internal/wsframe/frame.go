// Package wsframe reads and writes WebSocket frames (RFC 6455) so that scry
// can look inside a CDP client's messages: for scoped tokens the agent door
// reads each command the client sends, peeks at it and either forwards the
// frames exactly as they came or answers with a reply of its own.
//
// It is a codec and nothing more. It knows nothing of CDP, never writes to a
// connection, and does no handshake. It deliberately supports no
// extensions: scry strips Sec-WebSocket-Extensions from the upgrades it
// reads, so a frame with any RSV bit set is a protocol error. It does not
// check that text messages are valid UTF-8 (CDP's JSON parser will refuse
// what is not), nor the close codes a peer sends.
package wsframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 section 5.2).
type Opcode byte

// The opcodes RFC 6455 defines; every other value is a protocol error.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether o is a control opcode (close, ping, pong, or a
// reserved one from 0xB up): control frames may come between the fragments
// of a message, must not be fragmented and carry at most 125 bytes.
func (o Opcode) IsControl() bool { return o&0x8 != 0 }

// known reports whether RFC 6455 defines o.
func (o Opcode) known() bool {
	switch o {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

// String names o for logs and errors; unknown opcodes show their value.
func (o Opcode) String() string {
	switch o {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode 0x" + strconv.FormatUint(uint64(o), 16)
}

// Close codes (RFC 6455 section 7.4.1) that a ProtocolError carries.
const (
	CloseNormal        uint16 = 1000
	CloseProtocolError uint16 = 1002
	CloseInvalidData   uint16 = 1007
	CloseTooBig        uint16 = 1009
	CloseTryAgainLater uint16 = 1013
)

// MaxControlPayload is the most a control frame may carry.
const MaxControlPayload = 125

// MaxHeaderSize is the longest a frame header can be: two bytes, an 8-byte
// extended length and a 4-byte mask key.
const MaxHeaderSize = 14

// Header is a frame header as on the wire.
type Header struct {
	Fin    bool
	Rsv    byte // the three RSV bits, 0..7
	Opcode Opcode
	Masked bool
	Mask   [4]byte
	Length int64 // payload length
}

// EncodedLen is the size of h encoded by AppendHeader (minimal length
// encoding); a header read from the wire may have been longer.
func (h Header) EncodedLen() int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// ProtocolError is a violation of RFC 6455 by the peer. Code is the close
// code to send it before closing the connection: 1002 for a protocol
// error, 1009 for a message too big.
type ProtocolError struct {
	Code   uint16
	Reason string
}

// Error describes the violation with its close code.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol error (close code %d): %s", e.Code, e.Reason)
}

func protocolError(format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// ReadHeader reads one frame header from r. It checks what can be checked
// from the header alone: RSV bits zero, opcode known, control frames FIN and
// at most 125 bytes, the 64-bit length's top bit clear. Lengths encoded in
// more bytes than needed are accepted. It reads exactly the header's bytes
// and no more, so r (usually a *bufio.Reader) can go on with the payload.
//
// It returns io.EOF if r ends before the header's first byte,
// io.ErrUnexpectedEOF if it ends inside it, and a *ProtocolError with the
// header read so far for a violation.
func ReadHeader(r io.Reader) (Header, error) {
	var buf [MaxHeaderSize]byte
	h, _, err := readHeader(r, &buf)
	return h, err
}

// readHeader is ReadHeader with the caller's buffer, which receives the
// header's wire bytes; it returns how many there were. Checks come as soon
// as their bytes are in, so a bad frame is refused before more is read.
func readHeader(r io.Reader, buf *[MaxHeaderSize]byte) (Header, int, error) {
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return Header{}, 0, err // io.EOF only if nothing was read
	}
	b0, b1 := buf[0], buf[1]
	h := Header{
		Fin:    b0&0x80 != 0,
		Rsv:    (b0 >> 4) & 0x7,
		Opcode: Opcode(b0 & 0xF),
		Masked: b1&0x80 != 0,
		Length: int64(b1 & 0x7F),
	}
	switch {
	case h.Rsv != 0:
		return h, 2, protocolError("RSV bits %03b set on a %s frame, but no extension was negotiated", h.Rsv, h.Opcode)
	case !h.Opcode.known():
		return h, 2, protocolError("unknown %s", h.Opcode)
	case h.Opcode.IsControl() && !h.Fin:
		return h, 2, protocolError("fragmented %s frame", h.Opcode)
	case h.Opcode.IsControl() && h.Length > MaxControlPayload:
		return h, 2, protocolError("%s frame with a payload over %d bytes", h.Opcode, MaxControlPayload)
	}
	n := 2
	switch h.Length {
	case 126:
		if err := readMore(r, buf[n:n+2]); err != nil {
			return h, n, err
		}
		h.Length = int64(binary.BigEndian.Uint16(buf[n:]))
		n += 2
	case 127:
		if err := readMore(r, buf[n:n+8]); err != nil {
			return h, n, err
		}
		l := binary.BigEndian.Uint64(buf[n:])
		n += 8
		if l>>63 != 0 {
			return h, n, protocolError("%s frame length has its most significant bit set", h.Opcode)
		}
		h.Length = int64(l)
	}
	if h.Masked {
		if err := readMore(r, buf[n:n+4]); err != nil {
			return h, n, err
		}
		copy(h.Mask[:], buf[n:n+4])
		n += 4
	}
	return h, n, nil
}

// readMore reads len(b) bytes that must come: an end of input here is
// always unexpected.
func readMore(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendHeader encodes h onto dst with the shortest length encoding and
// returns the extended slice. Rsv is taken modulo 8 and Opcode modulo 16;
// a negative Length encodes as 0.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0xF) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	l := max(h.Length, 0)
	switch {
	case l <= 125:
		dst = append(dst, b0, b1|byte(l))
	case l <= 0xFFFF:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(l))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(l))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}

// AppendFrame encodes one whole frame onto dst and returns the extended
// slice. With a non-nil mask the frame is masked with *mask, as a client
// must send it; payload itself is left untouched.
func AppendFrame(dst []byte, op Opcode, fin bool, mask *[4]byte, payload []byte) []byte {
	h := Header{Fin: fin, Opcode: op, Length: int64(len(payload))}
	if mask != nil {
		h.Masked, h.Mask = true, *mask
	}
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		Mask(*mask, 0, dst[start:])
	}
	return dst
}

// Mask XORs b in place with key, starting at key offset pos%4, and returns
// the offset for the bytes after b, so a payload can be unmasked in pieces.
// Masking twice with the same key and offset restores b.
func Mask(key [4]byte, pos int, b []byte) int {
	pos &= 3
	// Rotate the key so that k[0] applies to b[0]; then every multiple of
	// 8 (and 4) in b starts at k[0] too.
	k := [4]byte{key[pos], key[(pos+1)&3], key[(pos+2)&3], key[(pos+3)&3]}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; len(b)-i >= 32; i += 32 {
		s := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; len(b)-i >= 8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for j := 0; i < len(b); i, j = i+1, j+1 {
		b[i] ^= k[j&3]
	}
	return (pos + len(b)) & 3
}

// ClosePayload returns the payload of a Close frame carrying code and
// reason. A reason longer than the 123 bytes that fit is cut at a UTF-8
// character boundary.
func ClosePayload(code uint16, reason string) []byte {
	const maxReason = MaxControlPayload - 2
	if len(reason) > maxReason {
		n := maxReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	p := make([]byte, 0, 2+len(reason))
	p = binary.BigEndian.AppendUint16(p, code)
	return append(p, reason...)
}

// ParseClosePayload splits a Close frame's payload into its code and
// reason. An empty payload carries no code: it returns 1005 (no status
// received), as RFC 6455 section 7.1.5 says to report it. A 1-byte payload
// is a *ProtocolError.
func ParseClosePayload(p []byte) (code uint16, reason string, err error) {
	switch len(p) {
	case 0:
		return 1005, "", nil
	case 1:
		return 0, "", protocolError("close frame with a 1-byte payload")
	}
	return binary.BigEndian.Uint16(p), string(p[2:]), nil
}
