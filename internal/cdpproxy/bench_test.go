package cdpproxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"
)

// BenchmarkSplice measures a CDP WebSocket spliced through the bridge to an
// echoing fake Chromium: small round trips (the shape of Runtime.evaluate)
// and 1 MiB messages (screenshots). A report, never pass/fail.
func BenchmarkSplice(b *testing.B) {
	for _, size := range []int{100, 1 << 20} {
		name := "roundtrip-100B"
		if size > 100 {
			name = "message-1MiB"
		}
		b.Run(name, func(b *testing.B) {
			fc := &fakeChrome{}
			chrome := httptest.NewServer(http.HandlerFunc(fc.serve))
			defer chrome.Close()
			p := New(Config{Backend: chrome.Listener.Addr().String(), Logger: slog.New(slog.DiscardHandler)})
			srv := httptest.NewServer(p)
			defer srv.Close()
			defer p.Close()
			c, _, err := websocket.Dial(b.Context(), "ws://"+srv.Listener.Addr().String()+"/devtools/browser/B1",
				&websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(64 << 20)
			msg := bytes.Repeat([]byte("x"), size)
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			for b.Loop() {
				if err := c.Write(b.Context(), websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				if _, got, err := c.Read(b.Context()); err != nil || len(got) != size {
					b.Fatalf("echo: %d bytes, %v", len(got), err)
				}
			}
		})
	}
}
