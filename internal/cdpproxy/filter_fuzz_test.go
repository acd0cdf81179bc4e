package cdpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/tokens"
	"github.com/dataplanelabs/scry/internal/wsframe"
)

// sinkConn is one end of a connection whose writes are kept.
type sinkConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *sinkConn) Write(p []byte) (int, error) { return c.buf.Write(p) }
func (c *sinkConn) Close() error                { return nil }

// FuzzFilterForwardsOnlyAllowed: whatever bytes an agent sends, every
// message that reaches Chromium is one the agent may send (as Peek and
// Check read it, or as Check rewrote it), and every control frame reaches
// it unchanged. Inputs are either a raw byte stream or, most of the time,
// newline-separated commands framed here, fragmented and with pings
// between fragments.
func FuzzFilterForwardsOnlyAllowed(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"method":"Runtime.evaluate","params":{"expression":"1"}}`,
		`{"id":2,"method":"Storage.getCookies"}` + "\n" + `{"id":3,"method":"Page.enable"}`,
		`{"id":4,"method":"Page.navigate","params":{"url":"file:///etc/passwd"}}`,
		`{"id":5,"method":"Page.navigate","params":{"url":"https://example.com"},"method":"Browser.close"}`,
		`{"id":6,"method":"Target.sendMessageToTarget","params":{"message":"{\"id\":1,\"method\":\"Storage.getCookies\"}"}}`,
		`{"id":7,"method":"Browser.setDownloadBehavior","params":{"behavior":"allow","downloadPath":"/tmp/x"}}`,
		`{"id":8,"method":"DOM.setFileInputFiles","params":{"files":["/data/Default/Cookies"],"nodeId":1}}`,
		`{"id":9,"method":"Storage.get\u0043ookies"}`,
	} {
		f.Add(false, uint8(3), []byte(seed))
	}
	f.Add(true, uint8(0), wsframe.AppendFrame(nil, wsframe.OpText, true, &[4]byte{1, 2, 3, 4}, []byte(`{"id":1,"method":"Browser.close"}`)))
	f.Fuzz(func(t *testing.T, raw bool, frag uint8, data []byte) {
		var in []byte
		if raw {
			in = data
		} else {
			key := [4]byte{9, 8, 7, 6}
			for _, msg := range bytes.Split(data, []byte("\n")) {
				n := int(frag%4) + 1 // fragments
				size := (len(msg) + n - 1) / max(n, 1)
				op := wsframe.OpText
				for i := 0; i < n; i++ {
					lo, hi := min(i*size, len(msg)), min((i+1)*size, len(msg))
					in = wsframe.AppendFrame(in, op, i == n-1, &key, msg[lo:hi])
					op = wsframe.OpContinuation
					if i < n-1 && frag&0x10 != 0 {
						in = wsframe.AppendFrame(in, wsframe.OpPing, true, &key, []byte("p"))
					}
				}
			}
		}
		backend, client := &sinkConn{}, &sinkConn{}
		p := New(Config{Backend: "127.0.0.1:1", Logger: slog.New(slog.DiscardHandler), AuditMode: "off", DownloadDir: "/dl"})
		who := tokens.Token{Name: "bot", Role: cdprole.Agent}
		fc := &filterConn{p: p, c: conn{who: who, log: p.log}, client: client, backend: backend,
			policy: cdprole.Policy{Role: cdprole.Agent, DownloadDir: "/dl"}, audit: newAuditTrail(p, conn{who: who})}
		_, _ = fc.upstream(context.Background(), bufio.NewReader(bytes.NewReader(in)))

		r := wsframe.NewReader(bytes.NewReader(backend.buf.Bytes()), wsframe.ReaderConfig{RequireMask: true, MaxMessage: maxCommand})
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("scry forwarded a stream Chromium cannot read: %v", err)
			}
			if m.Opcode.IsControl() {
				continue
			}
			cmd, err := cdprole.Peek(m.Payload)
			if err != nil {
				t.Fatalf("scry forwarded %q, which it cannot read: %v", m.Payload, err)
			}
			if v := fc.policy.Check(cmd, m.Payload); !v.Allow {
				t.Fatalf("scry forwarded %q, which an agent may not send: %s", m.Payload, v.Reason)
			} else if v.Rewritten != nil && !bytes.Equal(v.Rewritten, m.Payload) && !strings.Contains(string(m.Payload), "/dl") {
				t.Fatalf("scry forwarded %q, which it should have rewritten to %q", m.Payload, v.Rewritten)
			}
		}
		// Every reply scry wrote is a whole, unmasked text frame.
		cr := wsframe.NewReader(bytes.NewReader(client.buf.Bytes()), wsframe.ReaderConfig{})
		for {
			m, err := cr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("scry wrote the client a broken frame: %v", err)
			}
			if m.Opcode == wsframe.OpText && !bytes.Contains(m.Payload, []byte(`"error"`)) {
				t.Fatalf("scry wrote the client %q", m.Payload)
			}
		}
	})
}
