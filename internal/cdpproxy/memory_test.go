package cdpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/wsframe"
)

// rawWS is a WebSocket client that writes frames as the test builds them,
// halves of frames included.
type rawWS struct {
	c net.Conn
	r *wsframe.Reader
}

func dialRaw(t *testing.T, b *bridge, token string) *rawWS {
	t.Helper()
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /devtools/page/P1 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", b.public(), token)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &rawWS{c: c, r: wsframe.NewReader(br, wsframe.ReaderConfig{})}
}

var rawKey = [4]byte{1, 2, 3, 4}

func (w *rawWS) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := w.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// command is a CDP command of about size bytes.
func command(id, size int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"method":"Runtime.evaluate","params":{"expression":"'%s'"}}`, id, strings.Repeat("x", size))
}

// The connections of scoped tokens share a bound on the memory of the
// commands being read (CommandMemory): past it, a command waits until
// memory is free and then goes through, and a fragmented command that
// would have to wait while holding memory ends its connection with close
// code 1013 instead (two such waits could block each other for ever).
// Every byte comes back once the connections are done.
func TestCommandMemoryIsShared(t *testing.T) {
	fc := newFakeChrome(t)
	b := newBridge(t, Config{Backend: fc.addr, Policy: allowPublic, Tokens: scopedTokens(t), TargetURL: webTargets, AuditMode: "off",
		DownloadDir: "/dl", CommandMemory: 1 << 20})
	free := func(n int64) bool {
		if b.p.cmdMem.TryAcquire(n) {
			b.p.cmdMem.Release(n)
			return true
		}
		return false
	}

	// One connection holds 800 KiB: a 400 KiB command, half sent.
	big := command(1, 400<<10)
	frame := wsframe.AppendFrame(nil, wsframe.OpText, true, &rawKey, big)
	hold := dialRaw(t, b, agentTok)
	hold.write(t, frame[:len(frame)/2])
	waitFor(t, "the half-sent command's memory taken", func() bool { return !free(300 << 10) })

	// A fragmented command cannot wait holding its first fragment.
	frag := dialRaw(t, b, agentTok)
	part := command(2, 150<<10)
	frag.write(t, wsframe.AppendFrame(nil, wsframe.OpText, false, &rawKey, part[:50<<10]))
	frag.write(t, wsframe.AppendFrame(nil, wsframe.OpContinuation, true, &rawKey, part[50<<10:]))
	m, err := frag.r.Next()
	if err != nil || m.Opcode != wsframe.OpClose || len(m.Payload) < 2 || binary.BigEndian.Uint16(m.Payload) != wsframe.CloseTryAgainLater ||
		!bytes.Contains(m.Payload, []byte("busy")) {
		t.Errorf("the fragmented command: %v %q, want a close frame 1013 saying scry is busy", err, m.Payload)
	}

	// A whole command waits, and goes through once the first is done.
	wait := dialRaw(t, b, observerTok)
	wait.write(t, wsframe.AppendFrame(nil, wsframe.OpText, true, &rawKey, []byte(`{"id":3,"method":"DOM.getDocument","params":{"pad":"`+strings.Repeat("y", 200<<10)+`"}}`)))
	// A waiter blocks even a 1-byte TryAcquire while memory is free.
	waitFor(t, "the whole command waiting for memory", func() bool { return !free(1) })
	hold.write(t, frame[len(frame)/2:])
	if m, err := hold.r.Next(); err != nil || !bytes.Equal(m.Payload, big) {
		t.Fatalf("the first command's echo: %v (%d bytes)", err, len(m.Payload))
	}
	if m, err := wait.r.Next(); err != nil || !bytes.HasPrefix(m.Payload, []byte(`{"id":3,`)) {
		t.Fatalf("the waiting command's echo: %v %.40q", err, m.Payload)
	}
	for _, w := range []*rawWS{hold, frag, wait} {
		w.c.Close()
	}
	waitFor(t, "all command memory back", func() bool { return free(1 << 20) })
}

// failingConn is Chromium's side of a connection that is gone: writes fail.
type failingConn struct{ net.Conn }

func (failingConn) Write([]byte) (int, error) { return 0, net.ErrClosed }
func (failingConn) Close() error              { return nil }

// A command that cannot be passed on (Chromium closed the tab's socket
// while it was written) gives its memory back: otherwise each such
// command would shrink the budget for good.
func TestCommandMemoryBackWhenChromiumIsGone(t *testing.T) {
	p := New(Config{Backend: "127.0.0.1:1", Logger: slog.New(slog.DiscardHandler), AuditMode: "off", DownloadDir: "/dl",
		CommandMemory: 1 << 20, TargetURL: webTargets})
	who := tokens.Token{Name: "bot", Role: cdprole.Agent}
	fc := &filterConn{p: p, c: conn{who: who, log: p.log, page: "P1"}, client: &sinkConn{}, backend: failingConn{},
		policy: cdprole.Policy{Role: cdprole.Agent, DownloadDir: "/dl", Target: "P1", PageURL: func(string, string) (string, bool) { return "https://example.com/", true }},
		audit:  newAuditTrail(p, conn{who: who})}
	in := wsframe.AppendFrame(nil, wsframe.OpText, true, &rawKey, command(1, 300<<10))
	if _, err := fc.upstream(context.Background(), bufio.NewReader(bytes.NewReader(in))); err == nil {
		t.Fatal("upstream to a closed Chromium: no error")
	}
	if !p.cmdMem.TryAcquire(1 << 20) {
		t.Error("the command's memory was not given back")
	}
}
