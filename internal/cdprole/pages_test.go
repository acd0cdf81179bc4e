package cdprole

import (
	"fmt"
	"strings"
	"testing"
)

func TestWebPage(t *testing.T) {
	for u, want := range map[string]bool{
		"":                                   true,
		"about:blank":                        true,
		"https://example.com/":               true,
		" HTTP://example.com":                true,
		"data:text/html,hi":                  true,
		"blob:https://example.com/1-2":       true,
		"chrome://settings/":                 false,
		"chrome://omnibox-popup.top-chrome/": false,
		"chrome-untrusted://x/":              false,
		"chrome-extension://abc/popup.html":  false,
		"devtools://devtools/inspector.html": false,
		"file:///etc/passwd":                 false,
		"blob:chrome://settings/1":           false,
		"view-source:https://example.com":    false,
		"no scheme":                          false,
	} {
		if got := WebPage(u); got != want {
			t.Errorf("WebPage(%q) = %v, want %v", u, got, want)
		}
	}
}

// On a page that is not a web page an agent may look, not act.
func TestAgentOnBrowserPages(t *testing.T) {
	pages := map[string]string{"S-settings": "chrome://settings/", "S-web": "https://example.com/"}
	targets := map[string]string{"T-ext": "chrome-extension://abc/", "T-web": "https://example.com/"}
	p := Policy{Role: Agent, PageURL: func(sid, tid string) (string, bool) {
		if sid != "" {
			u, ok := pages[sid]
			return u, ok
		}
		u, ok := targets[tid]
		return u, ok
	}}
	on := func(session, method, params string) string {
		m := cmdMsg(method, params)
		if session != "" {
			m = strings.Replace(m, `{"id":1,`, `{"id":1,"sessionId":"`+session+`",`, 1)
		}
		return m
	}
	for _, tt := range []struct {
		msg   string
		allow bool
	}{
		{on("S-settings", "Runtime.evaluate", `{"expression":"1"}`), false},
		{on("S-settings", "Input.insertText", `{"text":"x"}`), false},
		{on("S-settings", "Page.addScriptToEvaluateOnNewDocument", `{"source":"1"}`), false},
		{on("S-settings", "Fetch.enable", `{}`), false},
		{on("S-settings", "DOM.getDocument", `{}`), true},
		{on("S-settings", "Page.enable", `{}`), true},
		{on("S-settings", "Page.createIsolatedWorld", `{"frameId":"F"}`), true},
		{on("S-settings", "Page.navigate", `{"url":"https://example.com/"}`), true},
		{on("S-web", "Runtime.evaluate", `{"expression":"1"}`), true},
		{on("S-unknown", "Runtime.evaluate", `{"expression":"1"}`), false}, // scry cannot place it: fail closed
		{on("S-unknown", "DOM.getDocument", `{}`), true},                   // looking is never checked
		{on("", "Runtime.evaluate", `{"expression":"1"}`), true},           // the browser session has no Runtime
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"targetId":"T-ext","message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, false},
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"targetId":"T-web","message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, true},
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"sessionId":"S-web","message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, true},
		// Chromium takes the sessionId over the targetId: the page checked is the session's.
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"sessionId":"S-settings","targetId":"T-web","message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, false},
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"targetId":"T-web","message":"{\"id\":2,\"sessionId\":\"S-settings\",\"method\":\"Runtime.evaluate\"}"}}`, false},
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, false},
	} {
		v := check(t, p, tt.msg)
		if v.Allow != tt.allow {
			t.Errorf("%s: %+v, want allow %v", tt.msg, v, tt.allow)
		}
		if !v.Allow && !strings.Contains(v.Reason, "scry: ") {
			t.Errorf("%s: reason %q", tt.msg, v.Reason)
		}
	}
	// The admin is not checked; without PageURL nothing is.
	if v := check(t, Policy{Role: Admin, PageURL: p.PageURL}, on("S-settings", "Runtime.evaluate", `{}`)); !v.Allow {
		t.Error("admin refused on an internal page")
	}
	if v := check(t, Policy{Role: Agent}, on("S-settings", "Runtime.evaluate", `{}`)); !v.Allow {
		t.Error("refused without PageURL")
	}
}

func TestActsInPageAreAgentMethods(t *testing.T) {
	for m := range actsInPage {
		if !allowed(Agent, m) {
			t.Errorf("actsInPage lists %s, which is not on the agent's list", m)
		}
	}
	for _, m := range agentMethods {
		if strings.HasPrefix(m, "Input.") && !actsInPage[m] {
			t.Errorf("%s acts in the page but is not in actsInPage", m)
		}
	}
}

// What outlives a navigation is refused on a tab whose history holds a
// browser page: history.back() from the page would run it there.
func TestAgentOnTabsWithBrowserPagesInHistory(t *testing.T) {
	histories := map[string][]string{
		"S-clean":   {"about:blank", "https://example.com/"},
		"S-settled": {"chrome://settings/", "https://example.com/"},
	}
	p := Policy{Role: Agent, TabHistory: func(sid, _ string) ([]string, error) {
		h, ok := histories[sid]
		if !ok {
			return nil, fmt.Errorf("unknown session")
		}
		return h, nil
	}}
	for _, tt := range []struct {
		session, method string
		allow           bool
	}{
		{"S-clean", "Page.addScriptToEvaluateOnNewDocument", true},
		{"S-clean", "Fetch.enable", true},
		{"S-settled", "Page.addScriptToEvaluateOnNewDocument", false},
		{"S-settled", "Fetch.enable", false},
		{"S-settled", "Runtime.evaluate", true}, // acts now, on a web page
		{"S-unknown", "Fetch.enable", false},
		{"", "Fetch.enable", false}, // the browser's session: every tab
	} {
		m := cmdMsg(tt.method, `{"source":"1"}`)
		if tt.session != "" {
			m = strings.Replace(m, `{"id":1,`, `{"id":1,"sessionId":"`+tt.session+`",`, 1)
		}
		if v := check(t, p, m); v.Allow != tt.allow {
			t.Errorf("%s on %q: %+v, want allow %v", tt.method, tt.session, v, tt.allow)
		}
	}
}

// In a tab that has shown a browser page, an agent may not act either:
// history.back() from the web page goes there, and the commands sent
// right after it would run there before scry hears of the navigation.
func TestAgentInTabsThatShowedABrowserPage(t *testing.T) {
	shown := map[string]string{"S-clean": "", "S-settled": "chrome://settings/", "T-settled": "chrome://new-tab-page/"}
	p := Policy{Role: Agent,
		PageURL: func(sid, tid string) (string, bool) { return "https://example.com/", true },
		ShownBrowserPage: func(sid, tid string) (string, error) {
			key := sid
			if key == "" {
				key = tid
			}
			u, ok := shown[key]
			if !ok {
				return "", fmt.Errorf("no such tab")
			}
			return u, nil
		}}
	for _, tt := range []struct {
		msg   string
		allow bool
		why   string
	}{
		{`{"id":1,"sessionId":"S-clean","method":"Runtime.evaluate","params":{"expression":"1"}}`, true, ""},
		{`{"id":1,"sessionId":"S-settled","method":"Runtime.evaluate","params":{"expression":"1"}}`, false, "has shown chrome://settings/"},
		{`{"id":1,"sessionId":"S-settled","method":"Input.insertText","params":{"text":"x"}}`, false, "open a tab of your own"},
		{`{"id":1,"sessionId":"S-settled","method":"DOM.getDocument","params":{}}`, true, ""}, // looking
		{`{"id":1,"sessionId":"S-settled","method":"Page.navigate","params":{"url":"https://example.com/"}}`, true, ""},
		{`{"id":1,"sessionId":"S-gone","method":"Runtime.evaluate","params":{"expression":"1"}}`, false, "cannot check"},
		{`{"id":1,"method":"Target.sendMessageToTarget","params":{"targetId":"T-settled","message":"{\"id\":2,\"method\":\"Runtime.evaluate\"}"}}`, false, "chrome://new-tab-page/"},
	} {
		v := check(t, p, tt.msg)
		if v.Allow != tt.allow || !strings.Contains(v.Reason, tt.why) {
			t.Errorf("%s: %+v, want allow %v and a reason with %q", tt.msg, v, tt.allow, tt.why)
		}
	}
}
