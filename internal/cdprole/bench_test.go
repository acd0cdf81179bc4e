package cdprole

import (
	"strings"
	"testing"
)

// BenchmarkPeekCheck is the cost scry adds to every command of a scoped
// connection.
func BenchmarkPeekCheck(b *testing.B) {
	evaluate := `{"id":123,"method":"Runtime.evaluate","params":{"expression":"` + strings.Repeat("x", 90) +
		`","contextId":3,"returnByValue":true,"awaitPromise":true},"sessionId":"6D21F7238E0F8CB7B5A69B07C62D2543"}`
	for _, bc := range []struct{ name, msg string }{
		{"Runtime.evaluate", evaluate},
		{"Input.dispatchKeyEvent", `{"id":124,"method":"Input.dispatchKeyEvent","params":{"type":"keyDown","modifiers":0,"key":"a","code":"KeyA","text":"a","unmodifiedText":"a","windowsVirtualKeyCode":65,"location":0,"isKeypad":false,"autoRepeat":false},"sessionId":"6D21F7238E0F8CB7B5A69B07C62D2543"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			p := Policy{Role: Agent, DownloadDir: "/dl", PersonHasControl: func() (string, bool) { return "", false }}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				cmd, err := Peek(msg)
				if err != nil {
					b.Fatal(err)
				}
				if v := p.Check(cmd, msg); !v.Allow {
					b.Fatal(v.Reason)
				}
			}
		})
	}
}

func BenchmarkRedact(b *testing.B) {
	msg := []byte(`{"method":"Network.responseReceivedExtraInfo","params":{"requestId":"76B0497808B37EB296F56F5144FB0966","blockedCookies":[],"headers":{"Connection":"keep-alive","Content-Length":"29","Date":"Thu, 03 Dec 2026 17:09:57 GMT","Keep-Alive":"timeout=5","Set-Cookie":"sid=x; HttpOnly; Path=/"},"resourceIPAddressSpace":"Loopback","statusCode":200,"headersText":"HTTP/1.1 200 OK\r\nSet-Cookie: sid=x; HttpOnly; Path=/\r\nDate: Thu, 03 Dec 2026 17:09:57 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 29\r\n\r\n","exemptedCookies":[]},"sessionId":"6D21F7238E0F8CB7B5A69B07C62D2543"}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Redact(msg); err != nil {
			b.Fatal(err)
		}
	}
}
