package novnc

import (
	"encoding/binary"
	"slices"
	"testing"
)

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func cutText(s string) []byte {
	return cat([]byte{6, 0, 0, 0}, be32(uint32(len(s))), []byte(s))
}

// session is what noVNC sends after the handshake, with every message
// type it knows and two pastes among them.
var session = cat(
	[]byte{1},                              // ClientInit, shared
	append([]byte{0}, make([]byte, 19)...), // SetPixelFormat
	cat([]byte{2, 0}, be16(3), be32(0), be32(1), be32(0xffffff21)), // SetEncodings
	[]byte{3, 0, 0, 0, 0, 0, 5, 160, 3, 132},                       // FramebufferUpdateRequest
	[]byte{4, 1, 0, 0, 0, 0, 0, 0x61},                              // KeyEvent 'a'
	[]byte{5, 0, 0, 10, 0, 20},                                     // PointerEvent
	cutText("hello"),
	cat([]byte{248, 0, 0, 0}, be32(0), []byte{4}, []byte("ping")), // ClientFence
	cat([]byte{251, 0, 5, 160, 3, 132, 2, 0}, make([]byte, 32)),   // SetDesktopSize, 2 screens
	[]byte{150, 1, 0, 0, 0, 0, 5, 160, 3, 132},                    // EnableContinuousUpdates
	[]byte{250, 0, 1, 2},                                          // xvp
	cat([]byte{6, 0, 0, 0}, be32(uint32(0x100000000-8)), []byte{0, 0, 0, 1, 'x', 'y', 'z', 'w'}), // extended clipboard
	cutText(""),
	cutText("wörld"),
	[]byte{4, 0, 0, 0, 0, 0, 0, 0x61},
)

func TestCutWatcherFindsPastes(t *testing.T) {
	want := []string{"hello", "", "wörld"}
	for _, chunk := range []int{len(session), 1, 2, 3, 7, 13} {
		var got []string
		var lost []byte
		w := &cutWatcher{max: 1 << 20, onCut: func(b []byte) { got = append(got, string(b)) }, onLost: func(b byte) { lost = append(lost, b) }}
		for i := 0; i < len(session); i += chunk {
			n, err := w.Write(session[i:min(i+chunk, len(session))])
			if err != nil || n != min(chunk, len(session)-i) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if !slices.Equal(got, want) || lost != nil {
			t.Errorf("chunks of %d: pastes %q, lost %v; want %q and nothing lost", chunk, got, lost, want)
		}
		if w.want != 0 || w.body != 0 {
			t.Errorf("chunks of %d: ended mid-message (want %d, body %d)", chunk, w.want, w.body)
		}
	}
}

func TestCutWatcherStopsAtUnknownMessages(t *testing.T) {
	var got []string
	var lost []byte
	w := &cutWatcher{max: 1 << 20, onCut: func(b []byte) { got = append(got, string(b)) }, onLost: func(b byte) { lost = append(lost, b) }}
	w.Write(cat([]byte{1}, cutText("before"), []byte{77, 1, 2, 3}, cutText("after")))
	if !slices.Equal(got, []string{"before"}) || !slices.Equal(lost, []byte{77}) {
		t.Errorf("pastes %q, lost %v; want [before] and [77] once", got, lost)
	}
}

func TestCutWatcherSkipsHugePastes(t *testing.T) {
	var got []string
	w := &cutWatcher{max: 4, onCut: func(b []byte) { got = append(got, string(b)) }}
	w.Write(cat([]byte{1}, cutText("too long"), cutText("ok")))
	if !slices.Equal(got, []string{"ok"}) {
		t.Errorf("pastes %q, want only [ok]", got)
	}
}

// FuzzCutWatcher: any byte stream, however split, gives the same pastes
// and never panics.
func FuzzCutWatcher(f *testing.F) {
	f.Add(session, 3)
	f.Add(cat([]byte{1}, cutText("x")), 1)
	f.Add([]byte{1, 6, 0, 0, 0, 0x80, 0, 0, 0}, 2)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk <= 0 || chunk > len(b) {
			chunk = 1
		}
		run := func(step int) []string {
			var got []string
			w := &cutWatcher{max: 64, onCut: func(b []byte) { got = append(got, string(b)) }}
			for i := 0; i < len(b); i += step {
				w.Write(b[i:min(i+step, len(b))])
			}
			return got
		}
		if whole, split := run(max(len(b), 1)), run(chunk); !slices.Equal(whole, split) {
			t.Fatalf("whole %q, in chunks of %d %q", whole, chunk, split)
		}
	})
}
