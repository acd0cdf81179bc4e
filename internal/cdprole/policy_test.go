package cdprole

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func check(t *testing.T, p Policy, msg string) Verdict {
	t.Helper()
	cmd, err := Peek([]byte(msg))
	if err != nil {
		t.Fatalf("Peek(%s): %v", msg, err)
	}
	return p.Check(cmd, []byte(msg))
}

func cmdMsg(method, params string) string {
	if params == "" {
		return fmt.Sprintf(`{"id":1,"method":%q}`, method)
	}
	return fmt.Sprintf(`{"id":1,"method":%q,"params":%s}`, method, params)
}

func TestCheckRoles(t *testing.T) {
	tests := []struct {
		role   Role
		method string
		params string
		allow  bool
		reason string
	}{
		{Admin, "Storage.getCookies", "", true, ""},
		{Admin, "Browser.close", "", true, ""},
		{Admin, "Page.navigate", `{"url":"file:///etc/passwd"}`, true, ""},
		{Admin, "Made.up", "", true, ""},

		{Agent, "Runtime.evaluate", `{"expression":"1"}`, true, ""},
		{Agent, "Input.insertText", `{"text":"hunter2"}`, true, ""},
		{Agent, "Page.navigate", `{"url":"https://example.com/"}`, true, ""},
		{Agent, "Page.navigate", `{"url":"file:///etc/passwd"}`, false, "file: URLs may not be opened by role agent"},
		{Agent, "Target.createTarget", `{"url":""}`, true, ""},
		{Agent, "Target.createTarget", `{"url":"chrome://settings"}`, false, "chrome: URLs"},
		{Agent, "Network.enable", "", true, ""},
		{Agent, "Made.up", "", false, "scry: Made.up is not allowed for role agent"},
		{Agent, "Page.newMethodChromiumAddsLater", "", false, "not allowed for role agent"},
		{Agent, "Tracing.start", `{"transferMode":"ReturnAsStream","categories":"devtools.timeline,v8"}`, true, ""},
		{Agent, "Tracing.start", `{"categories":"devtools.timeline,disabled-by-default-netlog"}`, false, "netlog"},
		{Agent, "Tracing.start", `{"traceConfig":{"includedCategories":["v8","disabled-by-default-NetLog"]}}`, false, "netlog"},
		{Agent, "Tracing.start", `{"perfettoConfig":"CgQIARAB"}`, false, "perfettoConfig"},
		{Agent, "Tracing.start", `{"tracingBackend":"system"}`, false, "tracingBackend system"},

		{Observer, "Page.captureScreenshot", "", true, ""},
		{Observer, "DOM.getDocument", "", true, ""},
		{Observer, "Accessibility.getFullAXTree", "", true, ""},
		{Observer, "Target.getTargets", "", true, ""},
		{Observer, "Runtime.enable", "", true, ""},
		{Observer, "Network.enable", "", false, "not allowed for role observer"},
		{Observer, "DOMSnapshot.captureSnapshot", "", false, "not allowed for role observer"},
		{Observer, "Runtime.evaluate", `{"expression":"document.cookie"}`, false, "scry: Runtime.evaluate is not allowed for role observer"},
		{Observer, "Runtime.callFunctionOn", "", false, "not allowed for role observer"},
		{Observer, "Input.dispatchMouseEvent", "", false, "not allowed for role observer"},
		{Observer, "Input.insertText", "", false, "not allowed for role observer"},
		{Observer, "Page.navigate", `{"url":"https://x"}`, false, "not allowed for role observer"},
		{Observer, "Page.reload", "", false, "not allowed for role observer"},
		{Observer, "Target.createTarget", `{"url":"https://x"}`, false, "not allowed for role observer"},
		{Observer, "Emulation.setDeviceMetricsOverride", "", false, "not allowed for role observer"},
		{Observer, "Fetch.enable", "", false, "not allowed for role observer"},
		{Observer, "Storage.getCookies", "", false, "not allowed for role observer"},

		{Role(0), "Page.enable", "", false, "unknown role"},
	}
	for _, tt := range tests {
		t.Run(tt.role.String()+"/"+tt.method, func(t *testing.T) {
			v := check(t, Policy{Role: tt.role, DownloadDir: "/dl"}, cmdMsg(tt.method, tt.params))
			if v.Allow != tt.allow || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("Check = %+v, want allow %v reason containing %q", v, tt.allow, tt.reason)
			}
			if !v.Allow && !strings.HasPrefix(v.Reason, "scry: ") {
				t.Fatalf("reason %q does not start with scry:", v.Reason)
			}
		})
	}
}

// TestAgentRefused: every method the issue names (and the rest of the
// refused list) is refused to agent and observer, with the message.
func TestAgentRefused(t *testing.T) {
	named := []string{
		"Storage.getCookies", "Storage.setCookies", "Storage.clearCookies", "Storage.clearDataForOrigin",
		"Storage.clearDataForStorageKey", "Network.getAllCookies", "Network.getCookies", "Network.setCookie",
		"Network.setCookies", "Network.deleteCookies", "Network.clearBrowserCookies", "Network.loadNetworkResource",
		"Page.getCookies", "Page.deleteCookie", "DOMStorage.getDOMStorageItems", "IndexedDB.requestData",
		"CacheStorage.requestCachedResponse", "Browser.close", "Browser.crash", "Browser.crashGpuProcess",
		"Browser.executeBrowserCommand", "Target.exposeDevToolsProtocol", "Target.setRemoteLocations",
		"Extensions.loadUnpacked", "Extensions.getStorageItems", "Security.setIgnoreCertificateErrors",
		"Page.crash", "HeadlessExperimental.beginFrame", "Memory.getBrowserSamplingProfile",
		"Input.setIgnoreInputEvents", "Target.openDevTools",
	}
	named = append(named, refusedMethods...)
	for _, m := range named {
		for _, r := range []Role{Agent, Observer} {
			v := check(t, Policy{Role: r}, cmdMsg(m, `{}`))
			want := fmt.Sprintf("scry: %s is not allowed for role %s", m, r)
			if v.Allow || v.Reason != want {
				t.Errorf("%s for %s: %+v, want refusal %q", m, r, v, want)
			}
			if MethodLabel(m) == "other" && m != "Page.getCookies" {
				t.Errorf("MethodLabel(%s) = other: a refused method should be a known label", m)
			}
		}
	}
	if MethodLabel("Made.up") != "other" || MethodLabel("Runtime.evaluate") != "Runtime.evaluate" {
		t.Errorf("MethodLabel: %q %q", MethodLabel("Made.up"), MethodLabel("Runtime.evaluate"))
	}
}

// TestTablesAreDisjoint: a refused method never sits on an allow-list.
func TestTablesAreDisjoint(t *testing.T) {
	for _, m := range refusedMethods {
		if allowed(Agent, m) || allowed(Observer, m) {
			t.Errorf("%s is both refused and allowed", m)
		}
	}
	for _, m := range observerMethods {
		if !allowed(Agent, m) {
			t.Errorf("observer may send %s but agent may not", m)
		}
	}
}

// TestTablesInProtocol: every name in the tables is a command of the
// installed Chromium's protocol (catches typos and removed methods).
func TestTablesInProtocol(t *testing.T) {
	proto := protocolMethods(t)
	for name, list := range map[string][]string{"agent": agentMethods, "observer": observerMethods, "refused": refusedMethods} {
		seen := map[string]bool{}
		for _, m := range list {
			if !proto[m] {
				t.Errorf("%s list: %s is not a method of Chromium's protocol (testdata/protocol-methods.txt)", name, m)
			}
			if seen[m] {
				t.Errorf("%s list: %s twice", name, m)
			}
			seen[m] = true
		}
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url    string
		ok     bool
		reason string
	}{
		{"https://x", true, ""},
		{"HTTP://X/", true, ""},
		{"http://127.0.0.1:8080/a?b#c", true, ""},
		{"data:text/html,hi", true, ""},
		{"about:blank", true, ""},
		{"about:blank#x", true, ""},
		{"about:blank?x", true, ""},
		{"ABOUT:blank", true, ""},
		{"", true, ""},
		{"  https://x  ", true, ""},
		{" file:///etc/passwd", false, "file:"},
		{"FILE:///x", false, "file:"},
		{"fi\tle:///x", false, "file:"},
		{"fi\nle:///x", false, "file:"},
		{"\x00javascript:alert(1)", false, "javascript:"},
		{"javascript:alert(1)", false, "javascript:"},
		{"view-source:file:///x", false, "view-source:"},
		{"about:settings", false, "about:settings"},
		{"about:blankx", false, "about:blankx"},
		{"about:srcdoc", false, "about:srcdoc"},
		{"chrome://settings", false, "chrome:"},
		{"chrome-untrusted://x", false, "chrome-untrusted:"},
		{"devtools://devtools/bundled/inspector.html", false, "devtools:"},
		{"filesystem:http://x/temporary/a", false, "filesystem:"},
		{"blob:http://x/uuid", false, "blob:"},
		{"chrome-extension://abc/x.html", false, "chrome-extension:"},
		{"example.com", false, "no scheme"},
		{"/etc/passwd", false, "no scheme"},
		{"1http://x", false, "no scheme"},
		{":x", false, "no scheme"},
		{"\x01\x1f file:/x \x00", false, "file:"},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("CheckURL(%q) = %v, want ok %v reason containing %q", tt.url, err, tt.ok, tt.reason)
		}
	}
}

func TestDownloadBehavior(t *testing.T) {
	p := Policy{Role: Agent, DownloadDir: "/data/downloads"}
	for _, m := range []string{"Browser.setDownloadBehavior", "Page.setDownloadBehavior"} {
		for _, tt := range []struct {
			params  string
			rewrite bool
		}{
			{`{"behavior":"allowAndName","downloadPath":"/home/me/pw-artifacts","eventsEnabled":true}`, true},
			{`{"behavior":"allow"}`, true},
			{`{"downloadPath":"/etc","behavior":"allow","browserContextId":"C1"}`, true},
			{`{"behavior":"deny"}`, false},
			{`{"behavior":"default","downloadPath":"/etc"}`, false},
		} {
			msg := `{"id":4,"sessionId":"S","method":"` + m + `","params":` + tt.params + `}`
			v := check(t, p, msg)
			if !v.Allow || (v.Rewritten != nil) != tt.rewrite {
				t.Fatalf("%s: %+v, want allowed, rewritten %v", msg, v, tt.rewrite)
			}
			if !tt.rewrite {
				continue
			}
			var got struct {
				ID        int               `json:"id"`
				SessionID string            `json:"sessionId"`
				Method    string            `json:"method"`
				Params    map[string]any    `json:"params"`
				X         map[string]string `json:"-"`
			}
			if err := json.Unmarshal(v.Rewritten, &got); err != nil {
				t.Fatalf("rewritten %s: %v", v.Rewritten, err)
			}
			var orig map[string]any
			_ = json.Unmarshal([]byte(tt.params), &orig)
			orig["downloadPath"] = "/data/downloads"
			if got.ID != 4 || got.SessionID != "S" || got.Method != m || fmt.Sprint(got.Params) != fmt.Sprint(orig) {
				t.Errorf("rewritten %s, want params %v", v.Rewritten, orig)
			}
			if _, err := Peek(v.Rewritten); err != nil {
				t.Errorf("rewritten message does not Peek: %v", err)
			}
		}
	}
	v := check(t, Policy{Role: Agent}, cmdMsg("Browser.setDownloadBehavior", `{"behavior":"allow","downloadPath":"/tmp"}`))
	if v.Allow || !strings.Contains(v.Reason, "downloads are off") {
		t.Errorf("without DownloadDir: %+v", v)
	}
	in := `{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"{\"id\":2,\"method\":\"Page.setDownloadBehavior\",\"params\":{\"behavior\":\"allow\",\"downloadPath\":\"/etc\"}}"}}`
	if v := check(t, p, in); v.Allow {
		t.Errorf("rewrite inside sendMessageToTarget allowed: %+v", v)
	}
}

func TestUploads(t *testing.T) {
	p := Policy{Role: Agent, DownloadDir: "/dl/"}
	tests := []struct {
		files []string
		ok    bool
	}{
		{[]string{"/dl/report.pdf"}, true},
		{[]string{"/dl/sub/a.txt", "/dl/b.txt"}, true},
		{[]string{}, true},
		{[]string{"/dl/../data/Default/Cookies"}, false},
		{[]string{"/dl/a", "/data/Default/Login Data"}, false},
		{[]string{"/dl"}, false},
		{[]string{"/dlx/a"}, false},
		{[]string{"dl/a"}, false},
		{[]string{"/dl/./a"}, true},
		{[]string{"/dl/a/.."}, false},
	}
	for _, tt := range tests {
		files, _ := json.Marshal(tt.files)
		for _, msg := range []string{
			cmdMsg("DOM.setFileInputFiles", `{"files":`+string(files)+`,"backendNodeId":5}`),
			cmdMsg("Input.dispatchDragEvent", `{"type":"drop","x":1,"y":2,"data":{"items":[],"files":`+string(files)+`,"dragOperationsMask":1}}`),
		} {
			v := check(t, p, msg)
			if v.Allow != tt.ok {
				t.Errorf("%s: %+v, want allow %v", msg, v, tt.ok)
			}
			if !v.Allow && !strings.Contains(v.Reason, "/dl") {
				t.Errorf("reason %q does not name the download directory", v.Reason)
			}
		}
	}
	if v := check(t, Policy{Role: Agent}, cmdMsg("DOM.setFileInputFiles", `{"files":["/x"]}`)); v.Allow {
		t.Errorf("upload without DownloadDir allowed")
	}
	if v := check(t, p, cmdMsg("Input.dispatchDragEvent", `{"type":"dragEnter","x":1,"y":2,"data":{"items":[],"dragOperationsMask":1}}`)); !v.Allow {
		t.Errorf("drag without files refused: %+v", v)
	}
	// Peek refuses this message; Check does not rely on that.
	dup := cmdMsg("DOM.setFileInputFiles", `{"files":["/dl/a"],"files":["/etc/passwd"]}`)
	if v := p.Check(Command{Method: "DOM.setFileInputFiles"}, []byte(dup)); v.Allow {
		t.Errorf("duplicate files key allowed")
	}
}

func TestPersonHasControl(t *testing.T) {
	active := true
	control := func() (string, bool) { return "h-42", active }
	for _, tt := range []struct {
		role   Role
		method string
		allow  bool
	}{
		{Agent, "Input.dispatchKeyEvent", false},
		{Agent, "Input.insertText", false},
		{Agent, "Input.dispatchMouseEvent", false},
		{Agent, "Runtime.evaluate", true},
		{Agent, "Page.captureScreenshot", true},
		{Admin, "Input.dispatchKeyEvent", true},
	} {
		v := check(t, Policy{Role: tt.role, PersonHasControl: control}, cmdMsg(tt.method, `{}`))
		if v.Allow != tt.allow {
			t.Errorf("%s %s during handoff: %+v, want allow %v", tt.role, tt.method, v, tt.allow)
		}
		if !v.Allow {
			want := "scry: a person has control (handoff h-42): " + tt.method + " is refused until they finish"
			if v.Reason != want {
				t.Errorf("reason %q, want %q", v.Reason, want)
			}
		}
	}
	nested := `{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"{\"id\":2,\"method\":\"Input.insertText\",\"params\":{\"text\":\"x\"}}"}}`
	if v := check(t, Policy{Role: Agent, PersonHasControl: control}, nested); v.Allow {
		t.Errorf("nested Input during handoff allowed")
	}
	active = false
	if v := check(t, Policy{Role: Agent, PersonHasControl: control}, cmdMsg("Input.insertText", `{}`)); !v.Allow {
		t.Errorf("Input refused after handoff ended: %+v", v)
	}
}

func TestSendMessageToTarget(t *testing.T) {
	wrap := func(inner string) string {
		b, _ := json.Marshal(inner)
		return `{"id":1,"sessionId":"S","method":"Target.sendMessageToTarget","params":{"sessionId":"T","message":` + string(b) + `}}`
	}
	tests := []struct {
		role   Role
		msg    string
		allow  bool
		reason string
	}{
		{Agent, wrap(`{"id":2,"method":"Runtime.evaluate","params":{"expression":"1"}}`), true, ""},
		{Agent, wrap(`{"id":2,"method":"Storage.getCookies"}`), false, "scry: Storage.getCookies is not allowed for role agent"},
		{Agent, wrap(`{"id":2,"method":"Page.navigate","params":{"url":"file:///etc/passwd"}}`), false, "file:"},
		{Agent, wrap(`{"id":2,"method":"Page.navigate","params":{"url":"https://x"}}`), true, ""},
		{Agent, wrap(`{"id":2,"method":"DOM.setFileInputFiles","params":{"files":["/etc/passwd"]}}`), false, "/dl"},
		{Agent, wrap(wrap(`{"id":3,"method":"Runtime.evaluate"}`)), false, "inside Target.sendMessageToTarget"},
		{Agent, `{"id":1,"method":"Target.sendMessageToTarget","params":{"sessionId":"T"}}`, false, "needs params.message"},
		{Observer, wrap(`{"id":2,"method":"Runtime.evaluate"}`), false, "Runtime.evaluate is not allowed for role observer"},
		{Observer, wrap(`{"id":2,"method":"DOM.getDocument"}`), true, ""},
		{Admin, wrap(wrap(`{"id":3,"method":"Browser.close"}`)), true, ""},
	}
	for _, tt := range tests {
		v := check(t, Policy{Role: tt.role, DownloadDir: "/dl"}, tt.msg)
		if v.Allow != tt.allow || !strings.Contains(v.Reason, tt.reason) {
			t.Errorf("%s %s: %+v, want allow %v reason containing %q", tt.role, tt.msg, v, tt.allow, tt.reason)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{Admin, Agent, Observer} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseRole("Admin"); err == nil || !strings.Contains(err.Error(), "admin, agent or observer") {
		t.Errorf("ParseRole(Admin) = %v", err)
	}
}
