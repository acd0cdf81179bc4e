package cdprole

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting, as Chrome's own CDP JSON parser does (it stops at
// a few hundred levels), so a hostile message cannot exhaust the stack.
const maxDepth = 300

// A scanner walks one JSON text without building values: scry only needs the
// few keys it checks and the byte ranges of the rest, and values it does not
// check (typed text, passwords) are never copied.
type scanner struct {
	data []byte
	pos  int
	// rawKey is the key of the member object passes to its callback, as
	// written (quotes and escapes included).
	rawKey []byte
}

var errEnd = errors.New("unexpected end of JSON")

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peekByte returns the next non-space byte without consuming it.
func (s *scanner) peekByte() (byte, error) {
	s.ws()
	if s.pos >= len(s.data) {
		return 0, errEnd
	}
	return s.data[s.pos], nil
}

// str reads a JSON string at pos and returns its contents: raw (a sub-slice
// of data) when it has no escapes, else unescaped into a new slice.
func (s *scanner) str() ([]byte, error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, fmt.Errorf("want a string at offset %d", s.pos)
	}
	start := s.pos
	s.pos++
	escaped := false
	for {
		if s.pos >= len(s.data) {
			return nil, errEnd
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			if !escaped {
				return s.data[start+1 : s.pos-1], nil
			}
			var out string
			if err := json.Unmarshal(s.data[start:s.pos], &out); err != nil {
				return nil, fmt.Errorf("bad string at offset %d: %w", start, err)
			}
			return []byte(out), nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				return nil, errEnd
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return nil, errEnd
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !isHex(h) {
						return nil, fmt.Errorf("bad \\u escape at offset %d", s.pos)
					}
				}
				s.pos += 6
			default:
				return nil, fmt.Errorf("bad escape at offset %d", s.pos)
			}
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at offset %d", s.pos)
		default:
			s.pos++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number reads a JSON number and reports whether it is an integer (no
// fraction, no exponent).
func (s *scanner) number() (integer bool, err error) {
	start := s.pos
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && '1' <= d[s.pos] && d[s.pos] <= '9':
		for s.pos < len(d) && '0' <= d[s.pos] && d[s.pos] <= '9' {
			s.pos++
		}
	default:
		return false, fmt.Errorf("bad number at offset %d", start)
	}
	integer = true
	if s.pos < len(d) && d[s.pos] == '.' {
		integer = false
		s.pos++
		if !s.digits() {
			return false, fmt.Errorf("bad number at offset %d", start)
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		integer = false
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return false, fmt.Errorf("bad number at offset %d", start)
		}
	}
	return integer, nil
}

func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// value skips one JSON value, checking its syntax, and returns its range.
func (s *scanner) value(depth int) (start, end int, err error) {
	c, err := s.peekByte()
	if err != nil {
		return 0, 0, err
	}
	start = s.pos
	switch {
	case c == '"':
		_, err = s.str()
	case c == '{':
		err = s.object(depth+1, false, func([]byte, int, int) error { return nil })
	case c == '[':
		err = s.array(depth + 1)
	case c == '-' || '0' <= c && c <= '9':
		_, err = s.number()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = fmt.Errorf("unexpected %q at offset %d", c, s.pos)
	}
	return start, s.pos, err
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return fmt.Errorf("bad literal at offset %d", s.pos)
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deeply")
	}
	s.pos++ // '['
	if c, err := s.peekByte(); err != nil {
		return err
	} else if c == ']' {
		s.pos++
		return nil
	}
	for {
		if _, _, err := s.value(depth); err != nil {
			return err
		}
		c, err := s.peekByte()
		if err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return fmt.Errorf("want , or ] at offset %d", s.pos-1)
		}
	}
}

// object reads a JSON object at pos, calling fn for each member with the
// key (unescaped) and the value's byte range. With uniq, a key seen twice is
// an error: Chrome and scry could otherwise read different values.
func (s *scanner) object(depth int, uniq bool, fn func(key []byte, start, end int) error) error {
	if depth > maxDepth {
		return errors.New("nested too deeply")
	}
	if c, err := s.peekByte(); err != nil {
		return err
	} else if c != '{' {
		return fmt.Errorf("want an object at offset %d", s.pos)
	}
	s.pos++
	if c, err := s.peekByte(); err != nil {
		return err
	} else if c == '}' {
		s.pos++
		return nil
	}
	var seen keySet
	for {
		if _, err := s.peekByte(); err != nil {
			return err
		}
		keyStart := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		rawKey := s.data[keyStart:s.pos]
		if uniq && !seen.add(key) {
			return fmt.Errorf("duplicate key %q", key)
		}
		if c, err := s.peekByte(); err != nil {
			return err
		} else if c != ':' {
			return fmt.Errorf("want : at offset %d", s.pos)
		}
		s.pos++
		start, end, err := s.value(depth)
		if err != nil {
			return err
		}
		s.rawKey = rawKey
		if err := fn(key, start, end); err != nil {
			return err
		}
		c, err := s.peekByte()
		if err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
		case '}':
			return nil
		default:
			return fmt.Errorf("want , or } at offset %d", s.pos-1)
		}
	}
}

// keySet finds duplicate keys: a short list (objects in CDP commands have a
// handful of keys), a map once an object is large.
type keySet struct {
	few  [16][]byte
	n    int
	many map[string]struct{}
}

func (k *keySet) add(key []byte) bool {
	if k.many != nil {
		if _, ok := k.many[string(key)]; ok {
			return false
		}
		k.many[string(key)] = struct{}{}
		return true
	}
	for _, f := range k.few[:k.n] {
		if bytes.Equal(f, key) {
			return false
		}
	}
	if k.n < len(k.few) {
		k.few[k.n] = key
		k.n++
		return true
	}
	k.many = make(map[string]struct{}, 2*len(k.few))
	for _, f := range k.few {
		k.many[string(f)] = struct{}{}
	}
	k.many[string(key)] = struct{}{}
	return true
}

// eachMember runs fn over the members of the JSON object data, refusing
// duplicate keys and trailing bytes.
func eachMember(data []byte, fn func(key []byte, val []byte) error) error {
	s := scanner{data: data}
	err := s.object(0, true, func(key []byte, start, end int) error {
		return fn(key, data[start:end])
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.pos != len(data) {
		return fmt.Errorf("trailing data at offset %d", s.pos)
	}
	return nil
}

// stringValue unescapes a raw JSON string value; ok is false for any other
// kind of value.
func stringValue(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	s := scanner{data: raw}
	b, err := s.str()
	if err != nil {
		return "", false
	}
	return string(b), true
}

// checkedString is stringValue for the values Check decides on: they must
// be valid UTF-8, so that no reader can take the bytes for something else.
func checkedString(raw []byte) (string, bool) {
	v, ok := stringValue(raw)
	if !ok || !utf8.ValidString(v) {
		return "", false
	}
	return v, true
}
