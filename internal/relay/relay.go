// Package relay copies a stream both ways between two connections, for
// both of scry's doors: the agent door splices a CDP WebSocket to
// Chromium, the human door bridges a viewer's WebSocket to x11vnc.
package relay

import (
	"context"
	"io"
	"net"
	"time"
)

// End is one side of a relay.
type End struct {
	// Conn is closed when the relay ends; when the other side's stream
	// to it ends, it is half-closed (CloseWrite) if it can be, else
	// closed: a WebSocket cannot half-close, it sends its close frame.
	Conn net.Conn
	// Buffered are bytes already read from Conn (by an HTTP reader, say),
	// sent on before anything else read from it.
	Buffered []byte
	// Reader, if not nil, is read instead of Conn (to watch the stream
	// on its way); it must read from Conn.
	Reader io.Reader
	// Buf, if not nil, is the buffer for copying what is read from this
	// side, and each write to the other side carries at most len(Buf)
	// bytes. nil copies with streamCopy: between two sockets on Linux,
	// raw read(2)/write(2) through the netpoller (see copy_linux.go),
	// else io.Copy.
	Buf []byte
}

// Dir names a direction: AtoB copies from a to b.
type Dir int

// Directions, and None for a relay that ctx ended before either direction
// did.
const (
	None Dir = iota
	AtoB
	BtoA
)

// Result is what a relay did.
type Result struct {
	// AtoB and BtoA count the bytes copied each way, Buffered included.
	AtoB, BtoA int64
	// First is the direction that ended first, and Err its copy error
	// (nil when its source ended cleanly); None if ctx ended first.
	First Dir
	Err   error
}

// Copy copies a to b and b to a until both directions are done, then
// closes both connections. When one direction ends, its destination is
// half-closed, so the peer sees the end and normally closes its own
// direction at once; grace bounds how long the other direction may go on
// after that (so a peer that never follows cannot hold the connections),
// and zero or negative means no bound. When ctx ends, both connections are
// closed.
func Copy(ctx context.Context, a, b End, grace time.Duration) Result {
	results := make(chan copied, 2) // buffered: a copier never blocks on its send
	go copyHalf(results, AtoB, b.Conn, a)
	go copyHalf(results, BtoA, a.Conn, b)

	closeBoth := func() {
		a.Conn.Close()
		b.Conn.Close()
	}
	var res Result
	var graceTimer <-chan time.Time
	done, canceled := ctx.Done(), false
	for pending := 2; pending > 0; {
		select {
		case c := <-results:
			pending--
			if c.dir == AtoB {
				res.AtoB = c.n
			} else {
				res.BtoA = c.n
			}
			if res.First == None && !canceled {
				res.First, res.Err = c.dir, c.err
			}
			if pending == 1 && grace > 0 {
				t := time.NewTimer(grace)
				defer t.Stop()
				graceTimer = t.C
			}
		case <-graceTimer:
			closeBoth()
			graceTimer = nil
		case <-done:
			closeBoth()
			done, canceled = nil, true
		}
	}
	closeBoth()
	return res
}

type copied struct {
	dir Dir
	n   int64
	err error
}

// copyHalf copies src to dst: src's buffered bytes, then the rest of its
// stream, then passes the end on with a half-close. The result always goes
// to results, before the half-close.
func copyHalf(results chan<- copied, dir Dir, dst net.Conn, src End) {
	var n int64
	var err error
	if len(src.Buffered) > 0 {
		var m int
		m, err = dst.Write(src.Buffered)
		n += int64(m)
	}
	if err == nil {
		var r io.Reader = src.Conn
		if src.Reader != nil {
			r = src.Reader
		}
		var m int64
		if src.Buf != nil {
			// Hide r's WriteTo so that the copy uses Buf.
			m, err = io.CopyBuffer(dst, readerOnly{r}, src.Buf)
		} else {
			// Raw read/write between two sockets, so Go's sysmon is not
			// woken per message (copy_linux.go); io.Copy otherwise.
			m, err = streamCopy(dst, r)
		}
		n += m
	}
	// The end is recorded before it is passed on: once dst's peer sees
	// it, the other direction may end at once, and must not be taken for
	// the first.
	results <- copied{dir, n, err}
	closeWrite(dst)
}

type readerOnly struct{ io.Reader }

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
