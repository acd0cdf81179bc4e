package novnc

import (
	"encoding/binary"
)

// cutWatcher follows the viewer-to-server half of an RFB session after the
// security handshake (ClientInit, then client messages, RFC 6143 section
// 7.5) as the bytes pass by, and hands every ClientCutText to onCut. It
// never changes the stream. On a message type it does not know it stops
// following (and says so once through onLost), since it can no longer tell
// where messages begin; the bytes still flow.
type cutWatcher struct {
	onCut  func(text []byte)
	onLost func(msgType byte)
	max    int // cut texts longer than this are skipped, not collected

	started bool   // ClientInit seen
	hdr     []byte // the current message's header so far
	want    int    // header length of the current message; 0 between messages
	body    int    // body bytes still to pass
	cut     []byte // the cut text being collected
	cutting bool
	lost    bool
}

// clientHeaderLen is the fixed part of each client message noVNC (1.3)
// may send, by type.
var clientHeaderLen = map[byte]int{
	0:   20, // SetPixelFormat
	2:   4,  // SetEncodings: + 4 per encoding
	3:   10, // FramebufferUpdateRequest
	4:   8,  // KeyEvent
	5:   6,  // PointerEvent
	6:   8,  // ClientCutText: + length
	150: 10, // EnableContinuousUpdates
	248: 9,  // ClientFence: + payload length
	250: 4,  // xvp
	251: 8,  // SetDesktopSize: + 16 per screen
}

// Write implements io.Writer for io.TeeReader; it never fails.
func (w *cutWatcher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !w.lost {
		switch {
		case !w.started:
			w.started = true // ClientInit: one byte, the shared flag
			p = p[1:]
		case w.body > 0:
			k := min(w.body, len(p))
			if w.cutting {
				w.cut = append(w.cut, p[:k]...)
			}
			w.body -= k
			p = p[k:]
			if w.body == 0 {
				w.endBody()
			}
		case w.want == 0:
			l, ok := clientHeaderLen[p[0]]
			if !ok {
				w.lost = true
				if w.onLost != nil {
					w.onLost(p[0])
				}
				return n, nil
			}
			w.want = l
			w.hdr = w.hdr[:0]
		default:
			k := min(w.want-len(w.hdr), len(p))
			w.hdr = append(w.hdr, p[:k]...)
			p = p[k:]
			if len(w.hdr) == w.want {
				w.startBody()
			}
		}
	}
	return n, nil
}

// startBody reads the body length from a complete header.
func (w *cutWatcher) startBody() {
	h := w.hdr
	w.want = 0
	switch h[0] {
	case 2:
		w.body = 4 * int(binary.BigEndian.Uint16(h[2:]))
	case 6:
		l := int32(binary.BigEndian.Uint32(h[4:]))
		if l < 0 { // the Extended Clipboard pseudo-encoding: not plain text
			w.body = int(-int64(l))
		} else {
			w.body = int(l)
			w.cutting = w.body <= w.max
			w.cut = w.cut[:0]
		}
	case 248:
		w.body = int(h[8])
	case 251:
		w.body = 16 * int(h[6])
	}
	if w.body == 0 {
		w.endBody()
	}
}

func (w *cutWatcher) endBody() {
	if w.hdr[0] == 6 && w.cutting && w.onCut != nil {
		w.onCut(append([]byte(nil), w.cut...))
	}
	w.cutting = false
}
