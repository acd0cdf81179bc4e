package wsframe

import (
	"errors"
	"fmt"
	"io"
)

// DefaultMaxMessage is ReaderConfig.MaxMessage's default: 64 MiB.
const DefaultMaxMessage = 64 << 20

// Message is one unit Reader.Next returns: a control frame, or a whole data
// message with its fragments joined.
//
// A Message is valid only until the next call to Next: the Reader reuses
// the memory of Payload and Raw. Copy what must outlive it.
type Message struct {
	// Opcode is OpText or OpBinary for a data message (never
	// OpContinuation), else the control frame's opcode.
	Opcode Opcode
	// Payload is the whole message, unmasked.
	Payload []byte
	// Raw is the wire bytes of every frame of the message, in order, still
	// masked as sent (and with their header encoding as sent), so the
	// message can be forwarded unchanged. Control frames that came between
	// its fragments are not in it: Next returned them on their own.
	Raw []byte
}

// ReaderConfig tells a Reader which side of the connection it reads.
type ReaderConfig struct {
	// RequireMask: every frame must be masked (a server reading a client,
	// RFC 6455 section 5.1); otherwise every frame must be unmasked (a
	// client reading a server).
	RequireMask bool
	// MaxMessage bounds a data message's total payload (all fragments); 0
	// means DefaultMaxMessage (64 MiB). A frame that would exceed it is
	// refused from its header, before its payload is read or allocated.
	MaxMessage int64
	// Reserve, if set, is called before each chunk (up to 1 MiB) of a
	// data frame's payload is read, with the memory the Reader will hold
	// for it (n, twice its length: the raw frame and the unmasked
	// payload) and what it already holds for the message (held, from
	// earlier chunks and fragments). It may block
	// until n is free, but only while held is 0: a Reader blocked holding
	// memory could wait forever on others doing the same. An error ends
	// the read: Next returns it. Release gets back what Reserve granted
	// for a message when the next Next begins (the caller is done with
	// the message), when reading fails, or at Release. Together they bound
	// the memory of many Readers at once.
	Reserve func(n, held int64) error
	Release func(n int64)
}

// Reader reads frames from a WebSocket stream and returns whole messages.
// It reads exactly the bytes of the frames it returns and never beyond:
// give it a *bufio.Reader for a network connection (it makes several small
// reads per frame). A Reader is not safe for concurrent use.
type Reader struct {
	src         io.Reader
	requireMask bool
	max         int64

	hdr [MaxHeaderSize]byte

	// The data message being assembled; inMessage is set between its
	// first frame and its final one.
	inMessage bool
	op        Opcode
	payload   []byte
	raw       []byte

	// The last control frame returned, kept apart so that one can be
	// returned while a data message is still being assembled.
	ctlPayload []byte
	ctlRaw     []byte

	// dataDone is set when Next last returned a data message, whose
	// buffers the next call may reset.
	dataDone bool

	reserve  func(n, held int64) error
	release  func(int64)
	reserved int64 // granted by reserve for the message being assembled

	err error // sticky: once reading fails, it stays failed
}

// NewReader returns a Reader of the frames in r.
func NewReader(r io.Reader, cfg ReaderConfig) *Reader {
	m := cfg.MaxMessage
	if m <= 0 {
		m = DefaultMaxMessage
	}
	return &Reader{src: r, requireMask: cfg.RequireMask, max: m, reserve: cfg.Reserve, release: cfg.Release}
}

// Release gives back what Reserve granted for the message last returned
// (or being read): for a caller that stops calling Next without an error,
// as when the message could not be passed on. The Reader is done then:
// Next returns ErrReleased.
func (r *Reader) Release() {
	r.giveBack()
	if r.err == nil {
		r.err = ErrReleased
	}
}

// ErrReleased is Next's error after Release.
var ErrReleased = errors.New("wsframe: reader released")

// giveBack returns what reserve granted for the last message.
func (r *Reader) giveBack() {
	if r.reserved > 0 && r.release != nil {
		r.release(r.reserved)
	}
	r.reserved = 0
}

// keepBuffer is the largest buffer a Reader keeps for the next message;
// a bigger one, left by a rare big message, goes back to the collector so
// that a connection that once carried it does not hold it forever.
const keepBuffer = 1 << 20

// readChunk is how much payload buffer a Reader adds at a time, so that a
// frame that announces a large payload but never sends it costs no more
// memory than what really arrived.
const readChunk = 1 << 20

// Next returns the next control frame or complete data message. Control
// frames that arrive between the fragments of a data message are returned
// on their own, as they come, while the data message goes on accumulating.
//
// Errors: io.EOF only at a frame boundary with no partial message;
// io.ErrUnexpectedEOF inside a frame or message; *ProtocolError for
// violations of RFC 6455, whose Code is the close code to send; otherwise
// the underlying reader's error. An error is final: later calls return it
// again.
func (r *Reader) Next() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
		r.giveBack()
		return Message{}, err
	}
	return m, nil
}

func (r *Reader) next() (Message, error) {
	if r.dataDone {
		r.payload, r.raw = reuse(r.payload), reuse(r.raw)
		r.dataDone = false
		r.giveBack()
	}
	for {
		h, n, err := readHeader(r.src, &r.hdr)
		if err != nil {
			if errors.Is(err, io.EOF) && r.inMessage {
				err = io.ErrUnexpectedEOF
			}
			return Message{}, err
		}
		if h.Masked != r.requireMask {
			if r.requireMask {
				return Message{}, protocolError("unmasked %s frame from a client", h.Opcode)
			}
			return Message{}, protocolError("masked %s frame from a server", h.Opcode)
		}

		if h.Opcode.IsControl() {
			r.ctlRaw = append(r.ctlRaw[:0], r.hdr[:n]...)
			start := len(r.ctlRaw)
			if r.ctlRaw, err = r.readPayload(r.ctlRaw, h.Length, false); err != nil {
				return Message{}, err
			}
			r.ctlPayload = append(r.ctlPayload[:0], r.ctlRaw[start:]...)
			if h.Masked {
				Mask(h.Mask, 0, r.ctlPayload)
			}
			if h.Opcode == OpClose && len(r.ctlPayload) == 1 {
				return Message{}, protocolError("close frame with a 1-byte payload")
			}
			return Message{Opcode: h.Opcode, Payload: r.ctlPayload, Raw: r.ctlRaw}, nil
		}

		switch {
		case h.Opcode == OpContinuation && !r.inMessage:
			return Message{}, protocolError("continuation frame with no message in progress")
		case h.Opcode != OpContinuation && r.inMessage:
			return Message{}, protocolError("%s frame while a fragmented %s message is in progress", h.Opcode, r.op)
		}
		if h.Length > r.max-int64(len(r.payload)) {
			return Message{}, &ProtocolError{Code: CloseTooBig, Reason: fmt.Sprintf(
				"%s message over %d bytes (%d so far, a frame of %d)", r.opOf(h), r.max, len(r.payload), h.Length)}
		}
		if h.Opcode != OpContinuation {
			r.op = h.Opcode
			r.inMessage = true
		}
		r.raw = append(r.raw, r.hdr[:n]...)
		start := len(r.raw)
		if r.raw, err = r.readPayload(r.raw, h.Length, true); err != nil {
			return Message{}, err
		}
		pstart := len(r.payload)
		r.payload = append(r.payload, r.raw[start:]...)
		if h.Masked {
			Mask(h.Mask, 0, r.payload[pstart:])
		}
		if h.Fin {
			r.inMessage = false
			r.dataDone = true
			return Message{Opcode: r.op, Payload: r.payload, Raw: r.raw}, nil
		}
	}
}

// opOf names the data message a frame belongs to.
func (r *Reader) opOf(h Header) Opcode {
	if h.Opcode == OpContinuation {
		return r.op
	}
	return h.Opcode
}

// readPayload appends n bytes from the source onto dst. It grows dst as
// the bytes arrive, at most readChunk ahead of them, and, for a data
// frame (reserve), asks Reserve for each chunk's share before reading it:
// a header announcing a large payload that never comes holds at most one
// chunk's.
func (r *Reader) readPayload(dst []byte, n int64, reserve bool) ([]byte, error) {
	for n > 0 {
		c := int(min(n, readChunk))
		if reserve && r.reserve != nil {
			if err := r.reserve(2*int64(c), r.reserved); err != nil {
				return dst, err
			}
			r.reserved += 2 * int64(c)
		}
		l := len(dst)
		if cap(dst)-l < c {
			dst = append(dst[:cap(dst)], make([]byte, c-(cap(dst)-l))...)
		}
		dst = dst[:l+c]
		if _, err := io.ReadFull(r.src, dst[l:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return dst[:l], err
		}
		n -= int64(c)
	}
	return dst, nil
}

// reuse empties b for the next message, dropping it if it grew too big.
func reuse(b []byte) []byte {
	if cap(b) > keepBuffer {
		return nil
	}
	return b[:0]
}
