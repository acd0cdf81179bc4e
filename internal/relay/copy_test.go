package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
)

// TestStreamCopy: streamCopy moves every byte of a stream larger than the
// socket buffers, in order, counts them, and returns nil at the source's
// end; a closed source reports net.ErrClosed.
func TestStreamCopy(t *testing.T) {
	in, src := pair(t)  // the test writes in, streamCopy reads src
	dst, out := pair(t) // streamCopy writes dst, the test reads out
	want := make([]byte, 5<<20)
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := streamCopy(dst, src)
		closeWrite(dst)
		done <- result{n, err}
	}()
	go func() {
		_, _ = in.Write(want)
		closeWrite(in)
	}()
	got, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("streamCopy = %d, %v; read %d bytes (equal %v), want %d, nil and the same bytes",
			r.n, r.err, len(got), bytes.Equal(got, want), len(want))
	}

	// Closed under it (Proxy.Close): net.ErrClosed, not a hang.
	_, src2 := pair(t)
	dst2, _ := pair(t)
	go func() { done <- func() result { n, err := streamCopy(dst2, src2); return result{n, err} }() }()
	src2.Close()
	if r := <-done; !errors.Is(r.err, net.ErrClosed) {
		t.Errorf("streamCopy from a closed conn: %v, want net.ErrClosed", r.err)
	}
}
