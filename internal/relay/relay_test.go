package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns the two ends of a real loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// relayed starts Copy between two fresh connections and returns the far
// ends (what the relay's a and b are talking to) and its result.
func relayed(t *testing.T, ctx context.Context, a, b End, grace time.Duration) (aPeer, bPeer *net.TCPConn, res <-chan Result) {
	t.Helper()
	aPeer, aConn := pair(t)
	bConn, bPeer := pair(t)
	a.Conn, b.Conn = aConn, bConn
	out := make(chan Result, 1)
	go func() { out <- Copy(ctx, a, b, grace) }()
	return aPeer, bPeer, out
}

func TestCopyBothWaysWithHalfClose(t *testing.T) {
	aPeer, bPeer, res := relayed(t, t.Context(), End{Buffered: []byte("early:")}, End{Buf: make([]byte, 4096)}, time.Minute)
	up := bytes.Repeat([]byte("a"), 1<<20)
	down := bytes.Repeat([]byte("b"), 300<<10)
	go func() {
		aPeer.Write(up)
		aPeer.CloseWrite() // a is done sending; b's answer still flows
	}()
	got, err := io.ReadAll(bPeer)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("early:"), up...); !bytes.Equal(got, want) {
		t.Fatalf("b got %d bytes, want the %d buffered and sent, in order", len(got), len(want))
	}
	go func() {
		bPeer.Write(down)
		bPeer.CloseWrite()
	}()
	back, err := io.ReadAll(aPeer)
	if err != nil || !bytes.Equal(back, down) {
		t.Fatalf("a got %d bytes (%v), want %d", len(back), err, len(down))
	}
	r := <-res
	if r.AtoB != int64(len("early:")+len(up)) || r.BtoA != int64(len(down)) {
		t.Errorf("counted %d and %d bytes, want %d and %d", r.AtoB, r.BtoA, len("early:")+len(up), len(down))
	}
	if r.First != AtoB || r.Err != nil {
		t.Errorf("first ended %v with %v, want a->b, clean", r.First, r.Err)
	}
}

// TestCopyGraceEndsAPeerThatNeverFollows: once one direction ended, the
// other is cut after grace even if its peer never closes.
func TestCopyGraceEndsAPeerThatNeverFollows(t *testing.T) {
	aPeer, bPeer, res := relayed(t, t.Context(), End{}, End{}, 50*time.Millisecond)
	aPeer.Close()
	// bPeer sends nothing and never closes: only the grace ends the relay.
	r := <-res
	if r.First != AtoB {
		t.Errorf("first ended %v, want a->b", r.First)
	}
	if _, err := bPeer.Read(make([]byte, 1)); err == nil {
		t.Error("b's peer still connected after the relay ended")
	}
}

func TestCopyEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	aPeer, bPeer, res := relayed(t, ctx, End{}, End{}, 0)
	cancel()
	r := <-res
	if r.First != None {
		t.Errorf("first ended %v (%v), want None: ctx ended it", r.First, r.Err)
	}
	for _, c := range []net.Conn{aPeer, bPeer} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a peer still connected after ctx ended")
		}
	}
}

// TestCopyReaderWatchesTheStream: a Reader sees what is relayed from its
// side, and the count is what reached the other side.
func TestCopyReaderWatchesTheStream(t *testing.T) {
	var seen bytes.Buffer
	a := End{}
	aPeer, aConn := pair(t)
	a.Conn = aConn
	a.Reader = io.TeeReader(aConn, &seen)
	bConn, bPeer := pair(t)
	res := make(chan Result, 1)
	go func() { res <- Copy(t.Context(), a, End{Conn: bConn}, time.Minute) }()
	aPeer.Write([]byte("paste"))
	aPeer.Close()
	got, _ := io.ReadAll(bPeer)
	bPeer.Close()
	r := <-res
	if string(got) != "paste" || seen.String() != "paste" || r.AtoB != 5 {
		t.Errorf("relayed %q, watched %q, counted %d; want paste, paste, 5", got, seen.String(), r.AtoB)
	}
	if r.Err != nil && !errors.Is(r.Err, net.ErrClosed) {
		t.Errorf("err %v", r.Err)
	}
}
