package wsframe

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// FuzzReader feeds arbitrary bytes to a Reader, whole and one byte at a
// time. It checks that it never panics, that both ways give the same
// messages and error, that no message is bigger than allowed, that an error
// is one Next documents, that each message's Raw read again by a fresh
// Reader gives the same message, and that a clean end means every byte
// belonged to a returned message.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds() {
		f.Add(s.data, s.requireMask, s.max)
	}
	f.Fuzz(func(t *testing.T, data []byte, requireMask bool, max uint16) {
		cfg := ReaderConfig{RequireMask: requireMask, MaxMessage: int64(max)}
		limit := int64(max)
		if limit == 0 {
			limit = DefaultMaxMessage
		}
		whole := NewReader(bytes.NewReader(data), cfg)
		slow := NewReader(iotest.OneByteReader(bytes.NewReader(data)), cfg)
		consumed := 0
		for {
			m, err := whole.Next()
			sm, serr := slow.Next()
			if err != serr && !(isProtocolError(err) && isProtocolError(serr) && err.Error() == serr.Error()) {
				t.Fatalf("read whole: %v; read a byte at a time: %v", err, serr)
			}
			if err != nil {
				checkReadError(t, err)
				if err == io.EOF && consumed != len(data) {
					t.Fatalf("clean end after messages of %d bytes in all, of %d", consumed, len(data))
				}
				return
			}
			if m.Opcode != sm.Opcode || !bytes.Equal(m.Payload, sm.Payload) || !bytes.Equal(m.Raw, sm.Raw) {
				t.Fatalf("read whole: %s %q (raw % x); a byte at a time: %s %q (raw % x)",
					m.Opcode, m.Payload, m.Raw, sm.Opcode, sm.Payload, sm.Raw)
			}
			switch {
			case m.Opcode == OpText || m.Opcode == OpBinary:
				if int64(len(m.Payload)) > limit {
					t.Fatalf("%s message of %d bytes, over MaxMessage %d", m.Opcode, len(m.Payload), limit)
				}
			case m.Opcode == OpClose || m.Opcode == OpPing || m.Opcode == OpPong:
				if len(m.Payload) > MaxControlPayload || m.Opcode == OpClose && len(m.Payload) == 1 {
					t.Fatalf("%s frame with a payload of %d bytes", m.Opcode, len(m.Payload))
				}
			default:
				t.Fatalf("Next returned a message with opcode %s", m.Opcode)
			}
			consumed += len(m.Raw)
			if consumed > len(data) {
				t.Fatalf("messages' Raw add up to %d bytes, more than the %d read", consumed, len(data))
			}
			again := NewReader(bytes.NewReader(m.Raw), cfg)
			am, err := again.Next()
			if err != nil {
				t.Fatalf("reading Raw % x again: %v", m.Raw, err)
			}
			if am.Opcode != m.Opcode || !bytes.Equal(am.Payload, m.Payload) || !bytes.Equal(am.Raw, m.Raw) {
				t.Fatalf("Raw % x read again gives %s %q, want %s %q", m.Raw, am.Opcode, am.Payload, m.Opcode, m.Payload)
			}
			if _, err := again.Next(); err != io.EOF {
				t.Fatalf("Raw % x read again: after its message, %v, want io.EOF", m.Raw, err)
			}
		}
	})
}

func isProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

// checkReadError fails t unless err is one that Next documents for input
// from a bytes.Reader.
func checkReadError(t *testing.T, err error) {
	t.Helper()
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("Next error %T %v, want io.EOF, io.ErrUnexpectedEOF or a *ProtocolError", err, err)
	}
	if pe.Code != CloseProtocolError && pe.Code != CloseTooBig {
		t.Fatalf("ProtocolError with close code %d", pe.Code)
	}
}

type readerSeed struct {
	name        string
	data        []byte
	requireMask bool
	max         uint16
}

// readerSeeds are FuzzReader's starting points; testdata/fuzz/FuzzReader
// holds them too, named.
func readerSeeds() []readerSeed {
	m := &testMask
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	tenMiB := AppendHeader(nil, Header{Fin: true, Opcode: OpBinary, Masked: true, Mask: testMask, Length: 10 << 20})
	return []readerSeed{
		{"masked-text", AppendFrame(nil, OpText, true, m, []byte(`{"id":1,"method":"Page.navigate","params":{"url":"https://example.com"}}`)), true, 0},
		{"unmasked-from-server", cat(
			AppendFrame(nil, OpText, true, nil, []byte(`{"id":1,"result":{}}`)),
			AppendFrame(nil, OpPing, true, nil, nil)), false, 0},
		{"fragmented-with-ping-pong", cat(
			AppendFrame(nil, OpText, false, m, []byte(`{"id":2,`)),
			AppendFrame(nil, OpPing, true, m, []byte("hi")),
			AppendFrame(nil, OpContinuation, false, m, []byte(`"method":`)),
			AppendFrame(nil, OpPong, true, m, nil),
			AppendFrame(nil, OpContinuation, true, m, []byte(`"Browser.getVersion"}`))), true, 0},
		{"ten-mib-header-small-max", cat(tenMiB, []byte("abcdefgh")), true, 1024},
		{"sixteen-bit-length", AppendFrame(nil, OpBinary, true, m, make([]byte, 300)), true, 0},
		{"sixty-four-bit-length-not-minimal", cat([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 3}, testMask[:], []byte("abc")), true, 0},
		{"unknown-opcode", cat([]byte{0x83, 0x80}, testMask[:]), true, 0},
		{"rsv1-set", cat([]byte{0xC1, 0x81}, testMask[:], []byte("x")), true, 0},
		{"close-one-byte", AppendFrame(nil, OpClose, true, m, []byte{3}), true, 0},
		{"close-with-reason", AppendFrame(nil, OpClose, true, m, ClosePayload(1000, "bye")), true, 0},
		{"continuation-first", AppendFrame(nil, OpContinuation, true, m, []byte("x")), true, 0},
		{"text-inside-message", cat(AppendFrame(nil, OpText, false, m, []byte("a")), AppendFrame(nil, OpText, true, m, []byte("b"))), true, 0},
		{"fragments-over-max", cat(AppendFrame(nil, OpBinary, false, m, []byte("abc")), AppendFrame(nil, OpContinuation, true, m, []byte("def"))), true, 5},
		{"length-top-bit", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, true, 0},
		{"ping-without-fin", AppendFrame(nil, OpPing, false, m, nil), true, 0},
	}
}

// FuzzRoundTrip encodes a payload as a message cut into random fragments,
// with random masks and random control frames before and between them, and
// checks that a Reader gives back the control frames in order, then the
// message with its frames' exact bytes.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(`{"id":1,"method":"Target.getTargets"}`), uint64(0), true, true)
	f.Add([]byte(`{"id":2,"method":"Input.insertText","params":{"text":"secret"}}`), uint64(7), true, false)
	f.Add(bytes.Repeat([]byte{0xFF, 0, 0x80}, 100), uint64(42), false, true)
	f.Add([]byte{}, uint64(99), false, false)
	f.Fuzz(func(t *testing.T, payload []byte, seed uint64, masked, text bool) {
		rng := rand.New(rand.NewPCG(seed, seed>>32^0x5eed))
		op := OpBinary
		if text {
			op = OpText
		}
		var stream, raw []byte
		var controls []Message
		addControls := func() {
			for range rng.IntN(3) {
				c := Message{Opcode: []Opcode{OpPing, OpPong, OpClose}[rng.IntN(3)]}
				c.Payload = make([]byte, rng.IntN(MaxControlPayload+1))
				for i := range c.Payload {
					c.Payload[i] = byte(rng.Uint32())
				}
				if c.Opcode == OpClose && len(c.Payload) == 1 {
					c.Payload = nil
				}
				c.Raw = AppendFrame(nil, c.Opcode, true, randomMask(rng, masked), c.Payload)
				stream = append(stream, c.Raw...)
				controls = append(controls, c)
			}
		}
		addControls()
		rest := payload
		for first := true; ; first = false {
			n := len(rest)
			if rng.IntN(4) != 0 {
				n = rng.IntN(len(rest) + 1)
			}
			fin := n == len(rest) && rng.IntN(3) != 0
			fop := OpContinuation
			if first {
				fop = op
			}
			fr := AppendFrame(nil, fop, fin, randomMask(rng, masked), rest[:n])
			stream, raw = append(stream, fr...), append(raw, fr...)
			rest = rest[n:]
			if fin {
				break
			}
			addControls()
		}

		var src io.Reader = bytes.NewReader(stream)
		if seed&1 != 0 {
			src = iotest.OneByteReader(src)
		}
		limit := int64(len(payload)) // exactly at the limit is allowed
		if seed&2 != 0 {
			limit++
		}
		r := NewReader(src, ReaderConfig{RequireMask: masked, MaxMessage: limit})
		for i, c := range controls {
			m, err := r.Next()
			if err != nil {
				t.Fatalf("control frame %d: %v", i, err)
			}
			if m.Opcode != c.Opcode || !bytes.Equal(m.Payload, c.Payload) || !bytes.Equal(m.Raw, c.Raw) {
				t.Fatalf("control frame %d: got %s %q (raw % x), want %s %q (raw % x)",
					i, m.Opcode, m.Payload, m.Raw, c.Opcode, c.Payload, c.Raw)
			}
		}
		m, err := r.Next()
		if err != nil {
			t.Fatalf("message: %v", err)
		}
		if m.Opcode != op || !bytes.Equal(m.Payload, payload) || !bytes.Equal(m.Raw, raw) {
			t.Fatalf("got %s message of %d bytes (raw %d), want %s of %d (raw %d)",
				m.Opcode, len(m.Payload), len(m.Raw), op, len(payload), len(raw))
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the message: %v, want io.EOF", err)
		}
	})
}

// randomMask returns a random mask key, or nil if frames are not masked.
func randomMask(rng *rand.Rand, masked bool) *[4]byte {
	if !masked {
		return nil
	}
	var k [4]byte
	for i := range k {
		k[i] = byte(rng.Uint32())
	}
	return &k
}
