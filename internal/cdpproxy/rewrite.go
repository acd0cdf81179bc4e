package cdpproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// discoveryCommand is the command Chrome's DevTools HTTP handler reads
// from a request's raw (escaped) path, as Chromium 156 does: the first
// segment after /json, whatever follows it, so /json/new/x is "new" and
// /json/version/x is "version"; a bare /json is "list". It is "" for
// anything else: /json/ and /jsonx (which Chrome refuses) and paths that
// are not discovery at all.
func discoveryCommand(escapedPath string) string {
	rest, ok := strings.CutPrefix(escapedPath, "/json")
	switch {
	case !ok:
		return ""
	case rest == "":
		return "list"
	case rest[0] != '/':
		return ""
	}
	cmd, _, _ := strings.Cut(rest[1:], "/")
	return cmd
}

// rewritten reports whether the discovery answer to a request for
// escapedPath is JSON carrying WebSocket URLs.
func rewritten(escapedPath string) bool {
	switch discoveryCommand(escapedPath) {
	case "list", "version", "new":
		return true
	}
	return false
}

// Rewrite makes the WebSocket URLs in a discovery answer point at the
// bridge as the client reached it. Chrome builds them from the Host header
// it was sent, which is its own loopback port.
//
// body is one JSON object or an array of them; host is the client's Host
// ("scry-0.scry:9222"); scheme is "ws" or "wss"; query, if not empty, is
// added to every WebSocket URL (it carries the access token).
func Rewrite(body []byte, host, scheme string, query url.Values) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return body, nil
	}
	if trimmed[0] == '[' {
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("decode target list: %w", err)
		}
		for _, obj := range list {
			if err := rewriteObject(obj, host, scheme, query); err != nil {
				return nil, err
			}
		}
		return marshal(list)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, fmt.Errorf("decode target: %w", err)
	}
	if err := rewriteObject(obj, host, scheme, query); err != nil {
		return nil, err
	}
	return marshal(obj)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "   ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func rewriteObject(obj map[string]json.RawMessage, host, scheme string, query url.Values) error {
	if raw, ok := obj["webSocketDebuggerUrl"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decode webSocketDebuggerUrl: %w", err)
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("parse webSocketDebuggerUrl %q: %w", s, err)
		}
		if u.Opaque != "" {
			return fmt.Errorf("webSocketDebuggerUrl %q is not a scheme://host/path URL", s)
		}
		u.Scheme, u.Host = scheme, host
		u.RawQuery = addQuery(u.Query(), query)
		obj["webSocketDebuggerUrl"] = mustString(u.String())
	}
	if raw, ok := obj["devtoolsFrontendUrl"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decode devtoolsFrontendUrl: %w", err)
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("parse devtoolsFrontendUrl %q: %w", s, err)
		}
		q := u.Query()
		target := q.Get("ws")
		if target == "" {
			target = q.Get("wss")
		}
		if target != "" {
			// The value is host/path without a scheme; keep the path.
			path := target
			if i := strings.IndexByte(target, '/'); i >= 0 {
				path = target[i:]
			} else {
				path = ""
			}
			pu, err := url.Parse(path)
			if err == nil {
				pu.RawQuery = addQuery(pu.Query(), query)
				path = pu.String()
			}
			q.Del("ws")
			q.Del("wss")
			q.Set(scheme, host+path)
			u.RawQuery = q.Encode()
			obj["devtoolsFrontendUrl"] = mustString(u.String())
		}
	}
	return nil
}

func addQuery(q, extra url.Values) string {
	for k, vs := range extra {
		q[k] = vs
	}
	return q.Encode()
}

func mustString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSpace(buf.Bytes())
}
