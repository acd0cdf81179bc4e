package wsframe

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOpcode(t *testing.T) {
	for _, tt := range []struct {
		op      Opcode
		name    string
		control bool
	}{
		{OpContinuation, "continuation", false},
		{OpText, "text", false},
		{OpBinary, "binary", false},
		{0x3, "opcode 0x3", false},
		{0x7, "opcode 0x7", false},
		{OpClose, "close", true},
		{OpPing, "ping", true},
		{OpPong, "pong", true},
		{0xB, "opcode 0xb", true},
		{0xF, "opcode 0xf", true},
	} {
		if got := tt.op.String(); got != tt.name {
			t.Errorf("Opcode(%#x).String() = %q, want %q", byte(tt.op), got, tt.name)
		}
		if got := tt.op.IsControl(); got != tt.control {
			t.Errorf("Opcode(%#x).IsControl() = %v, want %v", byte(tt.op), got, tt.control)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	for _, h := range []Header{
		{Fin: true, Opcode: OpText},
		{Fin: false, Opcode: OpBinary, Length: 125},
		{Fin: true, Opcode: OpContinuation, Length: 126, Masked: true, Mask: mask},
		{Fin: true, Opcode: OpText, Length: 0xFFFF},
		{Fin: true, Opcode: OpText, Length: 0x10000, Masked: true, Mask: mask},
		{Fin: true, Opcode: OpBinary, Length: 1<<63 - 1},
		{Fin: true, Opcode: OpPing, Length: 125, Masked: true, Mask: mask},
		{Fin: true, Opcode: OpClose, Length: 2},
	} {
		b := AppendHeader([]byte("x"), h)
		if len(b)-1 != h.EncodedLen() {
			t.Errorf("%+v: encoded in %d bytes, EncodedLen says %d", h, len(b)-1, h.EncodedLen())
		}
		// Trailing bytes stand for the payload: ReadHeader must leave them.
		r := bytes.NewReader(append(b[1:], "payload"...))
		got, err := ReadHeader(r)
		if err != nil {
			t.Fatalf("ReadHeader(AppendHeader(%+v)): %v", h, err)
		}
		if got != h {
			t.Errorf("ReadHeader(AppendHeader(%+v)) = %+v", h, got)
		}
		if r.Len() != len("payload") {
			t.Errorf("%+v: ReadHeader left %d bytes of 7 after the header", h, r.Len())
		}
	}
}

func TestAppendHeaderMinimalLength(t *testing.T) {
	for _, tt := range []struct {
		length int64
		want   []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{0xFFFF, []byte{0x81, 126, 0xFF, 0xFF}},
		{0x10000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		got := AppendHeader(nil, Header{Fin: true, Opcode: OpText, Length: tt.length})
		if !bytes.Equal(got, tt.want) {
			t.Errorf("length %d: AppendHeader = % x, want % x", tt.length, got, tt.want)
		}
	}
}

func TestReadHeaderAcceptsLongLengthEncodings(t *testing.T) {
	for _, b := range [][]byte{
		{0x82, 126, 0, 5},
		{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5},
	} {
		h, err := ReadHeader(bytes.NewReader(b))
		if err != nil || h.Length != 5 || h.Opcode != OpBinary || !h.Fin {
			t.Errorf("ReadHeader(% x) = %+v, %v; want a final binary frame of 5 bytes", b, h, err)
		}
	}
}

func TestReadHeaderErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want error // io.EOF, io.ErrUnexpectedEOF, or nil for a ProtocolError 1002
	}{
		{"nothing", nil, io.EOF},
		{"one byte", []byte{0x81}, io.ErrUnexpectedEOF},
		{"half a 16-bit length", []byte{0x81, 126, 1}, io.ErrUnexpectedEOF},
		{"half a 64-bit length", []byte{0x81, 127, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"half a mask", []byte{0x81, 0x85, 1, 2}, io.ErrUnexpectedEOF},
		{"mask after a 16-bit length", []byte{0x81, 0xFE, 0, 200, 1}, io.ErrUnexpectedEOF},
		{"rsv1", []byte{0xC1, 0}, nil},
		{"rsv2", []byte{0xA1, 0}, nil},
		{"rsv3", []byte{0x91, 0}, nil},
		{"opcode 3", []byte{0x83, 0}, nil},
		{"opcode 7", []byte{0x87, 0}, nil},
		{"opcode 0xB", []byte{0x8B, 0}, nil},
		{"opcode 0xF", []byte{0x8F, 0}, nil},
		{"ping without fin", []byte{0x09, 0}, nil},
		{"close without fin", []byte{0x08, 0}, nil},
		{"pong of 126 bytes", []byte{0x8A, 126, 0, 126}, nil},
		{"ping with a 64-bit length", []byte{0x89, 127, 0, 0, 0, 0, 0, 0, 0, 1}, nil},
		{"length top bit", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tt.in))
			if tt.want != nil {
				if err != tt.want {
					t.Fatalf("ReadHeader(% x) error = %v, want %v", tt.in, err, tt.want)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != CloseProtocolError {
				t.Fatalf("ReadHeader(% x) error = %v, want a ProtocolError with code 1002", tt.in, err)
			}
		})
	}
}

// maskSlow is the definition of masking, byte by byte.
func maskSlow(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
	return (pos + len(b)) % 4
}

func TestMask(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := 0; n <= 80; n++ {
		for pos := 0; pos < 8; pos++ {
			in := make([]byte, n)
			for i := range in {
				in[i] = byte(i * 7)
			}
			want := bytes.Clone(in)
			wantNext := maskSlow(key, pos, want)
			got := bytes.Clone(in)
			if next := Mask(key, pos, got); next != wantNext {
				t.Fatalf("Mask(len %d, pos %d) returned offset %d, want %d", n, pos, next, wantNext)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Mask(len %d, pos %d) = % x, want % x", n, pos, got, want)
			}
			// In pieces, each starting where the last left off.
			got = bytes.Clone(in)
			p := pos
			for i := 0; i < n; i += 3 {
				p = Mask(key, p, got[i:min(i+3, n)])
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Mask in 3-byte pieces (len %d, pos %d) = % x, want % x", n, pos, got, want)
			}
		}
	}
}

func TestAppendFrameLeavesPayload(t *testing.T) {
	payload := []byte("hello, browser")
	keep := bytes.Clone(payload)
	mask := [4]byte{0xFF, 0, 0xFF, 0}
	f := AppendFrame([]byte("prefix"), OpText, true, &mask, payload)
	if !bytes.Equal(payload, keep) {
		t.Fatalf("AppendFrame changed its payload to %q", payload)
	}
	if !bytes.HasPrefix(f, []byte("prefix")) {
		t.Fatalf("AppendFrame lost dst: % x", f)
	}
	body := f[len("prefix")+6:]
	Mask(mask, 0, body)
	if !bytes.Equal(body, payload) {
		t.Fatalf("AppendFrame's masked payload unmasks to %q", body)
	}
}

func TestClosePayload(t *testing.T) {
	long := strings.Repeat("a", 122) + "é" // 124 bytes, "é" straddles byte 123
	for _, tt := range []struct {
		code       uint16
		reason     string
		wantReason string
	}{
		{1000, "", ""},
		{1002, "bad frame", "bad frame"},
		{1009, strings.Repeat("x", 123), strings.Repeat("x", 123)},
		{1009, strings.Repeat("x", 200), strings.Repeat("x", 123)},
		{1002, long, strings.Repeat("a", 122)},
		{1002, strings.Repeat("€", 50), strings.Repeat("€", 41)},
	} {
		p := ClosePayload(tt.code, tt.reason)
		if len(p) > MaxControlPayload {
			t.Errorf("ClosePayload(%d, %d bytes) is %d bytes long", tt.code, len(tt.reason), len(p))
		}
		code, reason, err := ParseClosePayload(p)
		if err != nil || code != tt.code || reason != tt.wantReason {
			t.Errorf("ParseClosePayload(ClosePayload(%d, %q)) = %d, %q, %v; want %d, %q",
				tt.code, tt.reason, code, reason, err, tt.code, tt.wantReason)
		}
		if !utf8.ValidString(reason) {
			t.Errorf("ClosePayload(%d, %q) cut the reason inside a character", tt.code, tt.reason)
		}
	}
	if code, _, err := ParseClosePayload(nil); code != 1005 || err != nil {
		t.Errorf("ParseClosePayload(empty) = %d, %v; want 1005, nil", code, err)
	}
	var pe *ProtocolError
	if _, _, err := ParseClosePayload([]byte{3}); !errors.As(err, &pe) || pe.Code != CloseProtocolError {
		t.Errorf("ParseClosePayload(1 byte) error = %v, want a ProtocolError 1002", err)
	}
}
