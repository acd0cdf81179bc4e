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
	"Audits.issueAdded", // cookie issues carry the raw Set-Cookie line
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
//     exemptedCookies: {"cookie": {"value": …}}), every cookieLine and every
//     rawCookieLine (Audits cookie issues);
//   - all of the above inside Target.receivedMessageFromTarget's message.
//
// Other bytes are kept as they were (key order, id, method, sessionId). It
// reads msg once, so its cost grows with msg's size only.
func Redact(msg []byte) ([]byte, error) {
	r := redactor{out: make([]byte, 0, len(msg))}
	s := scanner{data: msg}
	if err := r.value(&s, 0, ctxTop); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	s.ws()
	if s.pos != len(msg) {
		return nil, fmt.Errorf("redact: trailing data at offset %d", s.pos)
	}
	return r.out, nil
}

type redactCtx uint8

const (
	ctxNone      redactCtx = iota
	ctxTop                 // the message itself: its params may be a wrapper's
	ctxCookieObj           // a cookie object: its "value" is a cookie value
	ctxWrapper             // params of Target.receivedMessageFromTarget
)

type redactor struct {
	out []byte
}

// value copies the JSON value at s.pos to r.out, redacting on the way.
func (r *redactor) value(s *scanner, depth int, ctx redactCtx) error {
	c, err := s.peekByte()
	if err != nil {
		return err
	}
	switch c {
	case '{':
		return r.object(s, depth+1, ctx)
	case '[':
		if depth+1 > maxDepth {
			return fmt.Errorf("nested too deeply")
		}
		s.pos++
		r.out = append(r.out, '[')
		if c, err := s.peekByte(); err != nil {
			return err
		} else if c == ']' {
			s.pos++
			r.out = append(r.out, ']')
			return nil
		}
		for {
			if err := r.value(s, depth+1, ctxNone); err != nil {
				return err
			}
			c, err := s.peekByte()
			if err != nil {
				return err
			}
			s.pos++
			r.out = append(r.out, c)
			switch c {
			case ',':
			case ']':
				return nil
			default:
				return fmt.Errorf("want , or ] at offset %d", s.pos-1)
			}
		}
	default:
		start, end, err := s.value(depth)
		if err != nil {
			return err
		}
		r.out = append(r.out, s.data[start:end]...)
		return nil
	}
}

func isCookieHeader(name []byte) bool {
	return bytes.EqualFold(name, []byte("cookie")) || bytes.EqualFold(name, []byte("set-cookie"))
}

func (r *redactor) object(s *scanner, depth int, ctx redactCtx) error {
	if depth > maxDepth {
		return fmt.Errorf("nested too deeply")
	}
	s.pos++ // '{'
	r.out = append(r.out, '{')
	if c, err := s.peekByte(); err != nil {
		return err
	} else if c == '}' {
		s.pos++
		r.out = append(r.out, '}')
		return nil
	}
	// A {name, value} header entry is a cookie if its name says so, and the
	// name may come after the value: the value's place in out is kept and
	// replaced at the end. Likewise a wrapper's params before its method.
	var (
		nameIsCookie, wrapper bool
		valueAt               = -1 // in out: start and end of a string "value"
		valueEnd              int
		paramsIn, paramsInEnd int // in s.data: params seen before method
		paramsAt, paramsEnd   = -1, 0
	)
	for {
		if _, err := s.peekByte(); err != nil {
			return err
		}
		keyStart := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		r.out = append(r.out, s.data[keyStart:s.pos]...)
		if c, err := s.peekByte(); err != nil {
			return err
		} else if c != ':' {
			return fmt.Errorf("want : at offset %d", s.pos)
		}
		s.pos++
		r.out = append(r.out, ':')
		c, err := s.peekByte()
		if err != nil {
			return err
		}
		if c == '"' {
			start, end, err := s.value(depth)
			if err != nil {
				return err
			}
			r.str(key, s.data[start:end], ctx, &nameIsCookie, &wrapper, &valueAt, &valueEnd)
		} else {
			next := ctxNone
			switch {
			case string(key) == "cookie" && c == '{':
				next = ctxCookieObj
			case ctx == ctxTop && string(key) == "params" && wrapper:
				next = ctxWrapper
			case ctx == ctxTop && string(key) == "params" && c == '{':
				paramsIn, paramsAt = s.pos, len(r.out)
			}
			if err := r.value(s, depth, next); err != nil {
				return err
			}
			if paramsAt >= 0 && paramsEnd == 0 {
				paramsInEnd, paramsEnd = s.pos, len(r.out)
			}
		}
		c, err = s.peekByte()
		if err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
			r.out = append(r.out, ',')
			continue
		case '}':
		default:
			return fmt.Errorf("want , or } at offset %d", s.pos-1)
		}
		break
	}
	if nameIsCookie && valueAt >= 0 {
		r.out = splice(r.out, valueAt, valueEnd, redactedJSON)
	}
	if wrapper && paramsAt >= 0 {
		// params came before method: redo them as a wrapper's.
		sub := redactor{}
		ps := scanner{data: s.data[:paramsInEnd], pos: paramsIn}
		if err := sub.value(&ps, depth, ctxWrapper); err != nil {
			return err
		}
		r.out = splice(r.out, paramsAt, paramsEnd, sub.out)
	}
	r.out = append(r.out, '}')
	return nil
}

// str copies or redacts the string value raw of member key.
func (r *redactor) str(key, raw []byte, ctx redactCtx, nameIsCookie, wrapper *bool, valueAt, valueEnd *int) {
	switch {
	case isCookieHeader(key) || string(key) == "cookieLine" || string(key) == "rawCookieLine":
		r.out = append(r.out, redactedJSON...)
		return
	case string(key) == "value" && ctx == ctxCookieObj:
		r.out = append(r.out, redactedJSON...)
		return
	case string(key) == "value":
		*valueAt = len(r.out)
		r.out = append(r.out, raw...)
		*valueEnd = len(r.out)
		return
	case string(key) == "name":
		n, _ := stringValue(raw)
		*nameIsCookie = isCookieHeader([]byte(n))
	case string(key) == "method" && ctx == ctxTop:
		m, _ := stringValue(raw)
		*wrapper = m == "Target.receivedMessageFromTarget"
	case bytes.HasSuffix(key, []byte("eadersText")): // headersText, requestHeadersText
		t, _ := stringValue(raw)
		if rt := redactHeadersText(t); rt != t {
			q, _ := json.Marshal(rt)
			r.out = append(r.out, q...)
			return
		}
	case string(key) == "message" && ctx == ctxWrapper:
		inner, _ := stringValue(raw)
		red, err := Redact([]byte(inner))
		if err != nil {
			// Not a message scry can read: none of it is passed on.
			r.out = append(r.out, redactedJSON...)
			return
		}
		if !bytes.Equal(red, []byte(inner)) {
			q, _ := json.Marshal(string(red))
			r.out = append(r.out, q...)
			return
		}
	}
	r.out = append(r.out, raw...)
}

func splice(out []byte, from, to int, with []byte) []byte {
	tail := append([]byte(nil), out[to:]...)
	return append(append(out[:from], with...), tail...)
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
