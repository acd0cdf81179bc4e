package wsframe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

var testMask = [4]byte{0xA1, 0xB2, 0xC3, 0xD4}

// sources are the ways a test feeds a Reader: all at once, and one byte per
// Read call, as a slow network may.
var sources = []struct {
	name string
	wrap func([]byte) io.Reader
}{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one-byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
}

// frame is one frame to encode for a test.
type frame struct {
	op      Opcode
	fin     bool
	payload string
}

// encode encodes frames masked (as a client sends) or not, and returns the
// stream and each frame's bytes.
func encode(masked bool, frames ...frame) (stream []byte, each [][]byte) {
	var mask *[4]byte
	if masked {
		mask = &testMask
	}
	for _, f := range frames {
		b := AppendFrame(nil, f.op, f.fin, mask, []byte(f.payload))
		each = append(each, b)
		stream = append(stream, b...)
	}
	return stream, each
}

// want is a message a test expects from Next.
type want struct {
	op      Opcode
	payload string
	raw     []byte
}

// expect reads len(msgs) messages from r and then wantErr.
func expect(t *testing.T, r *Reader, msgs []want, wantErr error) {
	t.Helper()
	for i, w := range msgs {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("message %d: Next: %v", i, err)
		}
		if m.Opcode != w.op {
			t.Errorf("message %d: opcode %s, want %s", i, m.Opcode, w.op)
		}
		if string(m.Payload) != w.payload {
			t.Errorf("message %d: payload %q, want %q", i, short(m.Payload), short([]byte(w.payload)))
		}
		if !bytes.Equal(m.Raw, w.raw) {
			t.Errorf("message %d: raw % x, want % x", i, short(m.Raw), short(w.raw))
		}
	}
	if _, err := r.Next(); !errors.Is(err, wantErr) {
		t.Fatalf("after %d messages: Next error = %v, want %v", len(msgs), err, wantErr)
	}
}

func short(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 10 << 20} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*31 + i>>8)
		}
		for _, masked := range []bool{true, false} {
			for _, src := range sources {
				t.Run(fmt.Sprintf("%d/masked=%v/%s", n, masked, src.name), func(t *testing.T) {
					stream, _ := encode(masked, frame{OpBinary, true, string(payload)})
					r := NewReader(src.wrap(stream), ReaderConfig{RequireMask: masked})
					expect(t, r, []want{{OpBinary, string(payload), stream}}, io.EOF)
				})
			}
		}
	}
}

func TestFragmentedWithControlFrames(t *testing.T) {
	for _, masked := range []bool{true, false} {
		for _, src := range sources {
			t.Run(fmt.Sprintf("masked=%v/%s", masked, src.name), func(t *testing.T) {
				stream, f := encode(masked,
					frame{OpText, false, `{"id":1,`},
					frame{OpPing, true, "p1"},
					frame{OpContinuation, false, `"method":`},
					frame{OpPong, true, ""},
					frame{OpPing, true, "p2"},
					frame{OpContinuation, false, ``},
					frame{OpContinuation, true, `"Page.navigate"}`},
					frame{OpBinary, true, "next"},
					frame{OpClose, true, string(ClosePayload(1000, "bye"))},
				)
				join := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
				r := NewReader(src.wrap(stream), ReaderConfig{RequireMask: masked})
				expect(t, r, []want{
					{OpPing, "p1", f[1]},
					{OpPong, "", f[3]},
					{OpPing, "p2", f[4]},
					{OpText, `{"id":1,"method":"Page.navigate"}`, join(f[0], f[2], f[5], f[6])},
					{OpBinary, "next", f[7]},
					{OpClose, string(ClosePayload(1000, "bye")), f[8]},
				}, io.EOF)
			})
		}
	}
}

// TestMessagesAfterBigOne checks that buffer reuse and release after a big
// message never leak one message's bytes into the next.
func TestMessagesAfterBigOne(t *testing.T) {
	big := string(bytes.Repeat([]byte("b"), 3<<20))
	stream, f := encode(true,
		frame{OpText, true, "first"},
		frame{OpText, false, big},
		frame{OpContinuation, true, "!"},
		frame{OpText, true, "small"},
		frame{OpPing, true, "ping"},
		frame{OpText, true, ""},
	)
	r := NewReader(bytes.NewReader(stream), ReaderConfig{RequireMask: true})
	expect(t, r, []want{
		{OpText, "first", f[0]},
		{OpText, big + "!", append(bytes.Clone(f[1]), f[2]...)},
		{OpText, "small", f[3]},
		{OpPing, "ping", f[4]},
		{OpText, "", f[5]},
	}, io.EOF)
}

func TestEndOfInput(t *testing.T) {
	whole, _ := encode(true, frame{OpText, true, "hello"})
	first, _ := encode(true, frame{OpText, false, "hel"}, frame{OpPing, true, "p"})
	for _, tt := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"after a message", whole, io.EOF},
		{"inside a header", whole[:1], io.ErrUnexpectedEOF},
		{"inside a mask", whole[:4], io.ErrUnexpectedEOF},
		{"inside a payload", whole[:len(whole)-1], io.ErrUnexpectedEOF},
		{"between fragments", first, io.ErrUnexpectedEOF},
	} {
		for _, src := range sources {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				r := NewReader(src.wrap(tt.in), ReaderConfig{RequireMask: true})
				var err error
				for range 3 {
					if _, err = r.Next(); err != nil {
						break
					}
				}
				if err != tt.want {
					t.Fatalf("Next error = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

func TestReaderPassesOnReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	head, _ := encode(true, frame{OpText, true, "hello"})
	r := NewReader(io.MultiReader(bytes.NewReader(head[:4]), iotest.ErrReader(boom)), ReaderConfig{RequireMask: true})
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next error = %v, want %v", err, boom)
	}
}

func TestViolations(t *testing.T) {
	masked := func(frames ...frame) []byte { b, _ := encode(true, frames...); return b }
	unmasked := func(frames ...frame) []byte { b, _ := encode(false, frames...); return b }
	raw := func(hdr ...byte) []byte { return append(hdr, testMask[:]...) } // a masked header
	for _, tt := range []struct {
		name        string
		in          []byte
		requireMask bool
		max         int64
		code        uint16
		before      int // messages Next returns before the error
	}{
		{"continuation first", masked(frame{OpContinuation, true, "x"}), true, 0, 1002, 0},
		{"continuation after a whole message", masked(frame{OpText, true, "a"}, frame{OpContinuation, true, "x"}), true, 0, 1002, 1},
		{"text inside a message", masked(frame{OpText, false, "a"}, frame{OpText, true, "b"}), true, 0, 1002, 0},
		{"binary inside a message", masked(frame{OpText, false, "a"}, frame{OpPing, true, ""}, frame{OpBinary, true, "b"}), true, 0, 1002, 1},
		{"opcode 3", raw(0x83, 0x80), true, 0, 1002, 0},
		{"opcode 7", raw(0x87, 0x80), true, 0, 1002, 0},
		{"opcode 0xB", raw(0x8B, 0x80), true, 0, 1002, 0},
		{"opcode 0xF", raw(0x8F, 0x80), true, 0, 1002, 0},
		{"rsv1", raw(0xC1, 0x80), true, 0, 1002, 0},
		{"rsv2", raw(0xA2, 0x80), true, 0, 1002, 0},
		{"rsv3", raw(0x90, 0x80), true, 0, 1002, 0},
		{"rsv on a control frame", raw(0xF9, 0x80), true, 0, 1002, 0},
		{"ping without fin", masked(frame{OpPing, false, ""}), true, 0, 1002, 0},
		{"close without fin", masked(frame{OpClose, false, ""}), true, 0, 1002, 0},
		{"ping of 126 bytes", masked(frame{OpPing, true, string(make([]byte, 126))}), true, 0, 1002, 0},
		{"close of 1 byte", masked(frame{OpClose, true, "x"}), true, 0, 1002, 0},
		{"unmasked from a client", unmasked(frame{OpText, true, "x"}), true, 0, 1002, 0},
		{"unmasked ping from a client", unmasked(frame{OpPing, true, ""}), true, 0, 1002, 0},
		{"masked from a server", masked(frame{OpText, true, "x"}), false, 0, 1002, 0},
		{"length top bit", raw(0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0), true, 0, 1002, 0},
		{"frame over max", masked(frame{OpText, true, "12345"}), true, 4, 1009, 0},
		{"frame at max", masked(frame{OpText, true, "1234"}, frame{OpBinary, true, "12345"}), true, 4, 1009, 1},
		{"fragments over max", masked(frame{OpText, false, "123"}, frame{OpPing, true, ""}, frame{OpContinuation, true, "45"}), true, 4, 1009, 1},
		{"over the default max", raw(0x82, 0xFF, 0, 0, 0, 0, 4, 0, 0, 1), true, 0, 1009, 0},
	} {
		for _, src := range sources {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				r := NewReader(src.wrap(tt.in), ReaderConfig{RequireMask: tt.requireMask, MaxMessage: tt.max})
				for i := range tt.before {
					if _, err := r.Next(); err != nil {
						t.Fatalf("message %d: Next: %v", i, err)
					}
				}
				_, err := r.Next()
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("Next error = %v, want a ProtocolError with code %d", err, tt.code)
				}
				if _, again := r.Next(); again != err {
					t.Fatalf("Next after %v returned %v", err, again)
				}
			})
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestTooBigRefusedFromHeader checks that a frame over MaxMessage is
// refused before any of its payload is read: the Reader consumes exactly
// its header, though all 10 MiB are there to read.
func TestTooBigRefusedFromHeader(t *testing.T) {
	payload := make([]byte, 10<<20)
	for _, tt := range []struct {
		name    string
		frames  []frame
		allowed int // bytes the Reader may consume: the frames before the big one, and its header
	}{
		{"one frame", []frame{{OpBinary, true, string(payload)}}, 14},
		{"second fragment", []frame{{OpBinary, false, string(payload[:1<<19])}, {OpContinuation, true, string(payload)}}, 14 + 1<<19 + 14},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stream, _ := encode(true, tt.frames...)
			c := &countingReader{r: bytes.NewReader(stream)}
			r := NewReader(c, ReaderConfig{RequireMask: true, MaxMessage: 1 << 20})
			_, err := r.Next()
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != CloseTooBig {
				t.Fatalf("Next error = %v, want a ProtocolError with code 1009", err)
			}
			if c.n != tt.allowed {
				t.Fatalf("Reader consumed %d bytes before refusing, want %d (no payload)", c.n, tt.allowed)
			}
		})
	}
}

// TestAnnouncedLengthIsNotAllocated checks that a frame announcing 60 MiB
// (under the 64 MiB default) and sending 10 bytes costs memory for what
// arrived, not for what was announced.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	in := AppendHeader(nil, Header{Fin: true, Opcode: OpBinary, Masked: true, Mask: testMask, Length: 60 << 20})
	in = append(in, "0123456789"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(in), ReaderConfig{RequireMask: true}).Next()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("Next error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Fatalf("reading 10 bytes of a frame announcing 60 MiB allocated %d bytes", got)
	}
}

func BenchmarkNextSmallText(b *testing.B) {
	payload := bytes.Repeat([]byte(`{"id":1,"method":"Runtime.evaluate"}`), 6)[:200]
	f := AppendFrame(nil, OpText, true, &testMask, payload)
	src := bytes.NewReader(f)
	r := NewReader(src, ReaderConfig{RequireMask: true})
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(f)
		m, err := r.Next()
		if err != nil || len(m.Payload) != 200 {
			b.Fatalf("Next = %d bytes, %v", len(m.Payload), err)
		}
	}
}

func BenchmarkMask(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Mask(testMask, 1, buf)
	}
}

// budget records a Reader's Reserve and Release calls.
type budget struct {
	held, peak int64
	msg        int64 // held for the message being read
	calls      []string
	refuseOver int64 // Reserve fails past this much held; 0: never
}

func (b *budget) config() ReaderConfig {
	return ReaderConfig{RequireMask: true,
		Reserve: func(n, held int64) error {
			if held != b.msg {
				b.calls = append(b.calls, fmt.Sprintf("held %d, want %d", held, b.msg))
			}
			if b.refuseOver > 0 && b.held+n > b.refuseOver {
				b.calls = append(b.calls, fmt.Sprint("refuse ", n))
				return errors.New("over budget")
			}
			b.held += n
			b.msg += n
			b.peak = max(b.peak, b.held)
			b.calls = append(b.calls, fmt.Sprint("reserve ", n))
			return nil
		},
		Release: func(n int64) {
			b.held -= n
			b.msg = 0
			b.calls = append(b.calls, fmt.Sprint("release ", n))
		},
	}
}

// Reserve is asked for each data frame's payload (twice its length) before
// it is read, control frames between fragments cost nothing, and Release
// gets the whole message's share back when the next Next begins, or when
// reading fails; nothing stays held.
func TestReserveAndRelease(t *testing.T) {
	stream, _ := encode(true,
		frame{OpText, false, "12345"},
		frame{OpPing, true, "p"},
		frame{OpContinuation, true, "678"},
		frame{OpText, true, ""},
		frame{OpText, true, "abcd"},
	)
	b := &budget{}
	r := NewReader(bytes.NewReader(stream), b.config())
	for range 4 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if b.held != 8 {
		t.Errorf("while the last message is the caller's, %d bytes held, want 8", b.held)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next at the end = %v", err)
	}
	want := "[reserve 10 reserve 6 release 16 reserve 8 release 8]"
	if got := fmt.Sprint(b.calls); got != want || b.held != 0 {
		t.Errorf("calls %s, %d held; want %s, 0 held", got, b.held, want)
	}

	// A message cut off, and a Reserve that fails: what was granted comes back.
	for _, tc := range []struct {
		name   string
		stream []byte
		b      *budget
	}{
		{"cut off", stream[:len(stream)-2], &budget{}},
		{"refused", stream, &budget{refuseOver: 12}},
	} {
		r := NewReader(bytes.NewReader(tc.stream), tc.b.config())
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if tc.b.held != 0 {
			t.Errorf("%s (%v): %d bytes still held; calls %v", tc.name, err, tc.b.held, tc.b.calls)
		}
	}
}

// A large frame is reserved chunk by chunk as it is read, so a header
// that announces much and sends little holds one chunk's share; Release
// gives back what a message holds when the caller stops early.
func TestReserveByChunk(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 2*readChunk+readChunk/2)
	stream := AppendFrame(nil, OpBinary, true, &testMask, payload)
	b := &budget{}
	r := NewReader(bytes.NewReader(stream), b.config())
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{"reserve 2097152", "reserve 2097152", "reserve 1048576"})
	if got := fmt.Sprint(b.calls); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
	r.Release()
	r.Release()
	if b.held != 0 {
		t.Errorf("%d bytes held after Release, want 0", b.held)
	}
	if _, err := r.Next(); !errors.Is(err, ErrReleased) {
		t.Errorf("Next after Release = %v, want ErrReleased", err)
	}

	// Only a header and a few bytes: one chunk reserved, not 2.5 MiB.
	b = &budget{}
	r = NewReader(bytes.NewReader(stream[:100]), b.config())
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next on a cut frame = %v", err)
	}
	if b.peak != 2*readChunk || b.held != 0 {
		t.Errorf("a cut 2.5 MiB frame: peak %d held, %d after; want %d, 0", b.peak, b.held, 2*readChunk)
	}
}
