package cdprole

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Redacted replaces every cookie value Redact removes.
const Redacted = "(redacted by scry)"

var redactedJSON = []byte(`"` + Redacted + `"`)

// cookieEvents are the events that can carry cookie values: raw request and
// response headers (Cookie, Set-Cookie, HttpOnly cookies included), cookie
// objects with values, and the wrapper that carries another target's
// events as a string.
var cookieEvents = toSet([]string{
	"Fetch.authRequired",
	"Fetch.requestPaused",
	"Network.requestIntercepted",
	"Network.requestWillBeSent",
	"Network.requestWillBeSentExtraInfo",
	"Network.responseReceived",
	"Network.responseReceivedEarlyHints",
	"Network.responseReceivedExtraInfo",
	"Network.signedExchangeReceived",
	"Network.webSocketHandshakeResponseReceived",
	"Network.webSocketWillSendHandshakeRequest",
	"Target.receivedMessageFromTarget",
})

// MayCarryCookies reports, from the first bytes of a message the browser
// sends (up to 128), whether it is an event that can carry cookie values
// and must go through Redact for scoped roles. Chromium writes events as
// {"method":"…","params":…} and replies as {"id":…}, so the method is read
// from the prefix; anything else is answered true (Redact decides).
func MayCarryCookies(prefix []byte) bool {
	if bytes.HasPrefix(prefix, []byte(`{"id":`)) {
		return false
	}
	rest, ok := bytes.CutPrefix(prefix, []byte(`{"method":"`))
	if !ok {
		return true
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return true
	}
	_, ok = cookieEvents[string(rest[:end])]
	return ok
}

// Redact returns msg with every cookie value replaced by Redacted:
//   - header values named Cookie or Set-Cookie (any case), in header maps
//     and in [{name, value}] arrays;
//   - Cookie: and Set-Cookie: lines inside headersText and
//     requestHeadersText;
//   - the value of every cookie object (associatedCookies, blockedCookies,
//     exemptedCookies: {"cookie": {"value": …}}) and every cookieLine;
//   - all of the above inside Target.receivedMessageFromTarget's message.
//
// Other bytes are kept as they were (key order, id, method, sessionId).
func Redact(msg []byte) ([]byte, error) {
	out, err := redactValue(make([]byte, 0, len(msg)), msg, 0, ctxNone)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	return out, nil
}

type redactCtx uint8

const (
	ctxNone      redactCtx = iota
	ctxCookieObj           // inside a cookie object: its "value" is a cookie value
	ctxTop                 // the message itself: params.message may be wrapped JSON
	ctxWrapper             // params of Target.receivedMessageFromTarget
)

func redactValue(out, val []byte, depth int, ctx redactCtx) ([]byte, error) {
	s := scanner{data: val}
	c, err := s.peekByte()
	if err != nil {
		return nil, err
	}
	if depth == 0 {
		ctx = ctxTop
	}
	switch c {
	case '{':
		return redactObject(out, val, depth, ctx)
	case '[':
		out = append(out, s.data[:s.pos]...)
		s.pos++
		out = append(out, '[')
		if c, err := s.peekByte(); err != nil {
			return nil, err
		} else if c == ']' {
			s.pos++
			return append(out, ']'), trailing(&s)
		}
		for {
			start, end, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if out, err = redactValue(out, val[start:end], depth+1, ctxNone); err != nil {
				return nil, err
			}
			c, err := s.peekByte()
			if err != nil {
				return nil, err
			}
			s.pos++
			out = append(out, c)
			switch c {
			case ',':
			case ']':
				return out, trailing(&s)
			default:
				return nil, fmt.Errorf("want , or ] at offset %d", s.pos-1)
			}
		}
	default:
		if _, _, err := s.value(depth); err != nil {
			return nil, err
		}
		if err := trailing(&s); err != nil {
			return nil, err
		}
		return append(out, val...), nil
	}
}

func trailing(s *scanner) error {
	s.ws()
	if s.pos != len(s.data) {
		return fmt.Errorf("trailing data at offset %d", s.pos)
	}
	return nil
}

func isCookieHeader(name []byte) bool {
	return bytes.EqualFold(name, []byte("cookie")) || bytes.EqualFold(name, []byte("set-cookie"))
}

func redactObject(out, val []byte, depth int, ctx redactCtx) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested too deeply")
	}
	// A {name, value} header entry is a cookie if its name says so, and the
	// name may come after the value: look first.
	nameIsCookie, wrapper := false, false
	s := scanner{data: val}
	err := s.object(depth, false, func(key []byte, start, end int) error {
		switch string(key) {
		case "name":
			n, _ := stringValue(val[start:end])
			nameIsCookie = isCookieHeader([]byte(n))
		case "method":
			m, _ := stringValue(val[start:end])
			wrapper = ctx == ctxTop && m == "Target.receivedMessageFromTarget"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := trailing(&s); err != nil {
		return nil, err
	}
	out = append(out, '{')
	first := true
	s = scanner{data: val}
	err = s.object(depth, false, func(key []byte, start, end int) error {
		v := val[start:end]
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendKey(out, key)
		isString := v[0] == '"'
		switch {
		case isString && (isCookieHeader(key) || string(key) == "cookieLine"):
			out = append(out, redactedJSON...)
		case isString && string(key) == "value" && (nameIsCookie || ctx == ctxCookieObj):
			out = append(out, redactedJSON...)
		case isString && strings.HasSuffix(string(key), "eadersText"):
			t, _ := stringValue(v)
			q, _ := json.Marshal(redactHeadersText(t))
			out = append(out, q...)
		case isString && ctx == ctxWrapper && string(key) == "message":
			inner, _ := stringValue(v)
			r, err := Redact([]byte(inner))
			if err != nil {
				// Not a CDP message scry can read: nothing of it is passed on.
				out = append(out, redactedJSON...)
				return nil
			}
			q, _ := json.Marshal(string(r))
			out = append(out, q...)
		default:
			next := ctxNone
			switch {
			case string(key) == "cookie" && v[0] == '{':
				next = ctxCookieObj
			case wrapper && string(key) == "params":
				next = ctxWrapper
			}
			var err error
			out, err = redactValue(out, v, depth+1, next)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// redactHeadersText replaces the values of Cookie: and Set-Cookie: lines in
// a raw HTTP header block.
func redactHeadersText(t string) string {
	lines := strings.SplitAfter(t, "\n")
	changed := false
	for i, l := range lines {
		name, _, ok := strings.Cut(l, ":")
		if !ok || !isCookieHeader([]byte(strings.TrimSpace(name))) {
			continue
		}
		eol := l[len(strings.TrimRight(l, "\r\n")):]
		lines[i] = name + ": " + Redacted + eol
		changed = true
	}
	if !changed {
		return t
	}
	return strings.Join(lines, "")
}
