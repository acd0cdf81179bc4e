package cdprole

import (
	"fmt"
	"strings"
)

// CheckURL says whether an agent may open raw in a tab (Page.navigate,
// Target.createTarget, /json/new): http, https, data and about:blank only.
// raw is first normalised as Chrome's URL parser does (leading and trailing
// C0 controls and spaces stripped, tabs and newlines removed anywhere,
// scheme case-insensitive), so "\tFI\nLE:///etc/passwd" is a file: URL here
// as it is there. An empty URL is about:blank.
func CheckURL(raw string) error {
	u := normaliseURL(raw)
	if u == "" {
		return nil
	}
	scheme, rest, ok := splitScheme(u)
	if !ok {
		return fmt.Errorf("scry: the URL has no scheme: role agent may open only http, https, data and about:blank URLs")
	}
	switch scheme {
	case "http", "https", "data":
		return nil
	case "about":
		// Chrome rewrites other about: pages to chrome:// ones.
		if rest == "blank" || strings.HasPrefix(rest, "blank?") || strings.HasPrefix(rest, "blank#") {
			return nil
		}
		return fmt.Errorf("scry: about:%s may not be opened by role agent: only about:blank (other about: pages are chrome:// pages)", clip(rest))
	}
	return fmt.Errorf("scry: %s: URLs may not be opened by role agent: only http, https, data and about:blank", clip(scheme))
}

// normaliseURL strips what Chrome's URL parser ignores.
func normaliseURL(raw string) string {
	u := strings.TrimFunc(raw, func(r rune) bool { return r <= 0x20 })
	if strings.ContainsAny(u, "\t\r\n") {
		u = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, u)
	}
	return u
}

// splitScheme splits u at its scheme, lowercased; ok is false when u has no
// valid scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func splitScheme(u string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(u, ':')
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := u[j]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(u[:i]), u[i+1:], true
}

// clip keeps error messages short (a data: URL can be megabytes).
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// WebPage reports whether a page at u (a target's URL, as Chromium reports
// it) is a web page, where an agent may act: http, https, data, blob and
// about: (blank, srcdoc) pages, and a target that has no URL yet. The
// browser's own pages (chrome:, chrome-untrusted:, devtools:,
// chrome-extension:, file: ...) are not.
func WebPage(u string) bool {
	u = normaliseURL(u)
	if u == "" {
		return true
	}
	scheme, rest, ok := splitScheme(u)
	if !ok {
		return false
	}
	switch scheme {
	case "http", "https", "data", "about":
		return true
	case "blob":
		// blob:https://origin/uuid is its origin's.
		return rest != "" && WebPage(rest)
	}
	return false
}

// actsInPage are the commands of the agent's list that run code in a page,
// type into it, change its document or what it loads, or reload it. On a
// page that is not a web page an agent is refused them (Policy.PageURL);
// what clients send to set a page up (enable, frame tree, isolated worlds,
// bindings, emulation) and reads stay allowed, so a client that attaches
// to every tab still starts.
var actsInPage = map[string]bool{
	"Runtime.evaluate":                      true,
	"Runtime.callFunctionOn":                true,
	"Runtime.compileScript":                 true,
	"Runtime.runScript":                     true,
	"Page.addScriptToEvaluateOnNewDocument": true,
	"Page.reload":                           true,
	"Page.navigateToHistoryEntry":           true,
	"Page.setDocumentContent":               true,
	"Page.setBypassCSP":                     true,
	"DOM.setAttributeValue":                 true,
	"DOM.setAttributesAsText":               true,
	"DOM.setNodeValue":                      true,
	"DOM.setOuterHTML":                      true,
	"DOM.removeNode":                        true,
	"DOM.removeAttribute":                   true,
	"DOM.setFileInputFiles":                 true,
	"DOM.focus":                             true,
	"CSS.setStyleSheetText":                 true,
	"CSS.setStyleTexts":                     true,
	"CSS.addRule":                           true,
	"Fetch.enable":                          true,
	"Fetch.continueRequest":                 true,
	"Fetch.continueResponse":                true,
	"Fetch.fulfillRequest":                  true,
	"Input.cancelDragging":                  true,
	"Input.dispatchDragEvent":               true,
	"Input.dispatchKeyEvent":                true,
	"Input.dispatchMouseEvent":              true,
	"Input.dispatchTouchEvent":              true,
	"Input.emulateTouchFromMouseEvent":      true,
	"Input.imeSetComposition":               true,
	"Input.insertText":                      true,
	"Input.setInterceptDrags":               true,
	"Input.synthesizePinchGesture":          true,
	"Input.synthesizeScrollGesture":         true,
	"Input.synthesizeTapGesture":            true,
}

// outlivesNavigation are the commands of the agent's list whose effect
// stays with the tab across navigations: a script run in every new
// document, request interception (it can answer a page's own scripts).
// They are checked against the tab's whole history (Policy.TabHistory).
var outlivesNavigation = map[string]bool{
	"Page.addScriptToEvaluateOnNewDocument": true,
	"Fetch.enable":                          true,
}
