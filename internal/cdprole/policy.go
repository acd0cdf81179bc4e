package cdprole

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// Policy decides the commands of one scoped connection.
type Policy struct {
	Role Role
	// DownloadDir is where an agent's downloads go: Browser.setDownloadBehavior /
	// Page.setDownloadBehavior with allow/allowAndName get their downloadPath rewritten to it
	// (Playwright sends a path on ITS machine; scry's container has no such path). Uploads
	// (DOM.setFileInputFiles files, Input.dispatchDragEvent data.files)
	// are allowed for an agent only from inside DownloadDir (filepath.Clean, no "..", absolute).
	DownloadDir string
	// PersonHasControl, if not nil, reports an active handoff: while it returns ok, Input.* from
	// an Agent is refused with "scry: a person has control (handoff ID): <method> is refused until they finish".
	PersonHasControl func() (handoffID string, ok bool)
	// PageURL, if not nil, returns the URL of the page a command is for, as
	// far as scry knows it: by the command's sessionId, or by the targetId
	// of a Target.sendMessageToTarget. On a page that is not a web page
	// (chrome://settings a person left open, chrome://omnibox-popup, an
	// extension's page), which has browser APIs web pages lack, an agent
	// may look but not act: the commands that run code, type, or change
	// the document there are refused (actsInPage).
	PageURL func(sessionID, targetID string) (url string, ok bool)
	// TabHistory, if not nil, returns the URLs in the history of the tab
	// a session (or, without one, a target) is on. What outlives a navigation (a script for new
	// documents, request interception) is refused to an agent on a tab
	// whose history holds a browser page: going back there (history.back()
	// from the page itself) would run it in that page.
	TabHistory func(sessionID, targetID string) ([]string, error)
	// Target is the target the connection itself is attached to: on a
	// page's own WebSocket (/devtools/page/ID), a command without a
	// sessionId goes to that page, and is checked as the page's; "" on
	// the browser's.
	Target string
	// ShownBrowserPage, if not nil, returns a browser page the tab of a
	// command's page has shown ("" if none; by sessionId, or the targetId
	// of a Target.sendMessageToTarget). There the commands of actsInPage
	// are refused too: the page can go back to it (history.back()), and
	// commands sent right after run there before scry hears of the
	// navigation.
	ShownBrowserPage func(sessionID, targetID string) (string, error)
}

// Verdict is Check's answer for one command.
type Verdict struct {
	Allow bool
	// Reason is the error message for the reply when !Allow, e.g.
	// "scry: Storage.getCookies is not allowed for role agent".
	Reason string
	// Rewritten, if not nil, is the message to forward instead of msg (setDownloadBehavior).
	Rewritten []byte
}

func refuse(format string, args ...any) Verdict {
	return Verdict{Reason: fmt.Sprintf(format, args...)}
}

// Check decides cmd (as Peek read it from msg) for p.Role. Admin: always
// Allow.
func (p Policy) Check(cmd Command, msg []byte) Verdict {
	if p.Role == Admin {
		return Verdict{Allow: true}
	}
	if cmd.Method != "Target.sendMessageToTarget" || !allowed(p.Role, cmd.Method) {
		return p.check(cmd, msg)
	}
	// The command inside is checked by the same rules. Chrome answers it with
	// a Target.receivedMessageFromTarget event, but a refused one never
	// reaches Chrome: the refusal is the error reply to the outer command
	// (its id and sessionId), which is what the client is waiting on too.
	in := cmd.Inner
	if in == nil {
		return refuse("scry: Target.sendMessageToTarget needs params.message holding a CDP command")
	}
	if in.Method == "Target.sendMessageToTarget" {
		return refuse("scry: Target.sendMessageToTarget inside Target.sendMessageToTarget is not allowed for role %s", p.Role)
	}
	if in.SessionID != "" {
		return refuse("scry: a command inside Target.sendMessageToTarget may not carry a sessionId, for role %s", p.Role)
	}
	// Chromium sends the message to params.sessionId's session if there is
	// one, else to params.targetId's: the page checked is that one.
	if p.PageURL != nil && actsInPage[in.Method] && cmd.ToSession == "" && cmd.TargetID == "" {
		return refuse("scry: %s inside Target.sendMessageToTarget must name its page (sessionId or targetId) for role %s", in.Method, p.Role)
	}
	at := cmd.TargetID
	if cmd.ToSession != "" {
		at = ""
	}
	v := p.checkAt(*in, innerMessage(msg), cmd.ToSession, at)
	if v.Allow && v.Rewritten != nil {
		return refuse("scry: %s must be sent on a session of its own (flatten), not inside Target.sendMessageToTarget, for role %s", in.Method, p.Role)
	}
	return v
}

// check decides one command that is not itself a sendMessageToTarget
// wrapper.
func (p Policy) check(cmd Command, msg []byte) Verdict {
	if cmd.SessionID == "" {
		return p.checkAt(cmd, msg, "", p.Target)
	}
	return p.checkAt(cmd, msg, cmd.SessionID, "")
}

// checkAt decides cmd for the page that sessionID (or, without one,
// targetID) names.
func (p Policy) checkAt(cmd Command, msg []byte, sessionID, targetID string) Verdict {
	if p.Role != Agent && p.Role != Observer {
		return refuse("scry: %s is not allowed for an unknown role", cmd.Method)
	}
	if !allowed(p.Role, cmd.Method) {
		return refuse("scry: %s is not allowed for role %s", clip(cmd.Method), p.Role)
	}
	if p.PageURL != nil && actsInPage[cmd.Method] && (sessionID != "" || targetID != "") {
		u, ok := p.PageURL(sessionID, targetID)
		if !ok {
			// A page scry cannot place may be a browser page: fail closed.
			return refuse("scry: %s is not allowed for role %s on a page scry does not know (session %q, target %q)",
				cmd.Method, p.Role, clip(sessionID), clip(targetID))
		}
		if !WebPage(u) {
			return refuse("scry: %s is not allowed for role %s on %s, which is not a web page: an agent may only look at the browser's own pages",
				cmd.Method, p.Role, clip(u))
		}
		if p.ShownBrowserPage != nil {
			shown, err := p.ShownBrowserPage(sessionID, targetID)
			if err != nil {
				return refuse("scry: %s is not allowed for role %s on a tab scry cannot check: %v", cmd.Method, p.Role, err)
			}
			if shown != "" {
				return refuse("scry: %s is not allowed for role %s in a tab that has shown %s, which is not a web page (its page can go back there): open a tab of your own (Target.createTarget)",
					cmd.Method, p.Role, clip(shown))
			}
		}
	}
	if p.TabHistory != nil && outlivesNavigation[cmd.Method] {
		if sessionID == "" && targetID == "" {
			return refuse("scry: %s is allowed for role %s on a page's session only, not the browser's", cmd.Method, p.Role)
		}
		urls, err := p.TabHistory(sessionID, targetID)
		if err != nil {
			return refuse("scry: %s is not allowed for role %s on a tab scry cannot check: %v", cmd.Method, p.Role, err)
		}
		for _, u := range urls {
			if !WebPage(u) {
				return refuse("scry: %s is not allowed for role %s on a tab whose history holds %s, which is not a web page: open a tab of your own (Target.createTarget)",
					cmd.Method, p.Role, clip(u))
			}
		}
	}
	if strings.HasPrefix(cmd.Method, "Input.") && p.Role == Agent && p.PersonHasControl != nil {
		if id, ok := p.PersonHasControl(); ok {
			return refuse("scry: a person has control (handoff %s): %s is refused until they finish", id, cmd.Method)
		}
	}
	switch cmd.Method {
	case "Page.navigate", "Target.createTarget":
		if err := CheckURL(cmd.URL); err != nil {
			return Verdict{Reason: err.Error()}
		}
	case "Browser.setDownloadBehavior", "Page.setDownloadBehavior":
		return p.downloads(cmd, msg)
	case "DOM.setFileInputFiles":
		return p.uploads(cmd, msg, false)
	case "Input.dispatchDragEvent":
		return p.uploads(cmd, msg, true)
	case "Tracing.start":
		return checkTracing(msg)
	}
	return Verdict{Allow: true}
}

// innerMessage is the command inside a sendMessageToTarget msg (read again
// here so that Command keeps no parameter values).
func innerMessage(msg []byte) []byte {
	var inner []byte
	_ = eachMember(params(msg), func(key, val []byte) error {
		if string(key) == "message" {
			if s, ok := checkedString(val); ok {
				inner = []byte(s)
			}
		}
		return nil
	})
	return inner
}

// params returns msg's params object (nil if none); Peek already refused
// duplicate keys, bad JSON and a params that is not an object.
func params(msg []byte) []byte {
	var out []byte
	_ = eachMember(msg, func(key, val []byte) error {
		if string(key) == "params" && val[0] == '{' {
			out = val
		}
		return nil
	})
	return out
}

// downloads rewrites an allowing setDownloadBehavior to DownloadDir. deny
// and default are passed on untouched.
func (p Policy) downloads(cmd Command, msg []byte) Verdict {
	var behavior string
	err := eachMember(params(msg), func(key, val []byte) error {
		if string(key) == "behavior" {
			behavior, _ = stringValue(val)
		}
		return nil
	})
	if err != nil && params(msg) != nil {
		return refuse("scry: bad %s: %v", cmd.Method, err)
	}
	if behavior != "allow" && behavior != "allowAndName" {
		return Verdict{Allow: true}
	}
	if p.DownloadDir == "" {
		return refuse("scry: %s: downloads are off for role %s (scry has no download directory)", cmd.Method, p.Role)
	}
	path, _ := json.Marshal(p.DownloadDir)
	rewritten, err := setParam(msg, "downloadPath", path)
	if err != nil {
		return refuse("scry: bad %s: %v", cmd.Method, err)
	}
	return Verdict{Allow: true, Rewritten: rewritten}
}

// setParam returns msg with params[key] set to the JSON value val, other
// bytes as they were.
func setParam(msg []byte, key string, val []byte) ([]byte, error) {
	out := make([]byte, 0, len(msg)+len(val)+32)
	out = append(out, '{')
	var seenParams bool
	first := true
	err := eachMember(msg, func(k, v []byte) error {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendKey(out, k)
		if string(k) != "params" || v[0] != '{' {
			out = append(out, v...)
			return nil
		}
		seenParams = true
		out = append(out, '{')
		pfirst := true
		err := eachMember(v, func(pk, pv []byte) error {
			if string(pk) == key {
				return nil
			}
			if !pfirst {
				out = append(out, ',')
			}
			pfirst = false
			out = appendKey(out, pk)
			out = append(out, pv...)
			return nil
		})
		if !pfirst {
			out = append(out, ',')
		}
		out = appendKey(out, []byte(key))
		out = append(out, val...)
		out = append(out, '}')
		return err
	})
	if err != nil {
		return nil, err
	}
	if !seenParams {
		if !first {
			out = append(out, ',')
		}
		out = append(out, `"params":{`...)
		out = appendKey(out, []byte(key))
		out = append(out, val...)
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

func appendKey(out, key []byte) []byte {
	q, _ := json.Marshal(string(key))
	out = append(out, q...)
	return append(out, ':')
}

// uploads allows files only from inside DownloadDir: an agent may upload
// what it downloaded, not the profile's files (Cookies, Login Data).
func (p Policy) uploads(cmd Command, msg []byte, drag bool) Verdict {
	var files []byte
	err := eachMember(params(msg), func(key, val []byte) error {
		switch {
		case !drag && string(key) == "files":
			files = val
		case drag && string(key) == "data" && val[0] == '{':
			return eachMember(val, func(k, v []byte) error {
				if string(k) == "files" {
					files = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil && params(msg) != nil {
		return refuse("scry: bad %s: %v", cmd.Method, err)
	}
	if files == nil || bytes.Equal(files, []byte("null")) {
		return Verdict{Allow: true}
	}
	var paths []string
	if err := json.Unmarshal(files, &paths); err != nil {
		return refuse("scry: bad %s: files: %v", cmd.Method, err)
	}
	for _, f := range paths {
		if err := p.checkUpload(f); err != nil {
			return refuse("scry: %s: %v", cmd.Method, err)
		}
	}
	return Verdict{Allow: true}
}

func (p Policy) checkUpload(f string) error {
	if p.DownloadDir == "" {
		return fmt.Errorf("uploads are off for role %s (scry has no download directory)", p.Role)
	}
	dir := filepath.Clean(p.DownloadDir)
	if !filepath.IsAbs(f) || hasDotDot(f) || strings.ContainsRune(f, 0) {
		return fmt.Errorf("role %s may upload only files inside %s, by absolute path without \"..\"", p.Role, dir)
	}
	if c := filepath.Clean(f); c == dir || !strings.HasPrefix(c, strings.TrimSuffix(dir, "/")+"/") {
		return fmt.Errorf("role %s may upload only files inside %s", p.Role, dir)
	}
	return nil
}

func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// checkTracing refuses trace configurations that could carry more than
// page timing: netlog categories (network events of the whole browser),
// raw perfetto configs (opaque to scry) and the system tracing backend.
func checkTracing(msg []byte) Verdict {
	var bad string
	var walk func(key, val []byte) error
	walk = func(key, val []byte) error {
		switch string(key) {
		case "perfettoConfig":
			bad = "a perfettoConfig"
		case "tracingBackend":
			if b, _ := stringValue(val); b != "" && b != "auto" && b != "chrome" {
				bad = "tracingBackend " + clip(b)
			}
		}
		switch val[0] {
		case '{':
			return eachMember(val, walk)
		case '"':
			s, _ := stringValue(val)
			if strings.Contains(strings.ToLower(s), "netlog") {
				bad = "netlog categories"
			}
		case '[':
			var items []json.RawMessage
			if err := json.Unmarshal(val, &items); err != nil {
				return err
			}
			for _, it := range items {
				if err := walk(nil, it); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if ps := params(msg); ps != nil {
		if err := eachMember(ps, walk); err != nil {
			return refuse("scry: bad Tracing.start: %v", err)
		}
	}
	if bad != "" {
		return refuse("scry: Tracing.start with %s is not allowed for scoped roles", bad)
	}
	return Verdict{Allow: true}
}
