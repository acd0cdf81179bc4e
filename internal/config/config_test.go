package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestDefaults: Vars is the one home of every default. An empty
// environment is a valid configuration, FromEnv reads exactly the table's
// variables, and setting any of them to its documented default changes
// nothing.
func TestDefaults(t *testing.T) {
	var read []string
	base, err := FromEnv(func(k string) string {
		read = append(read, k)
		return ""
	})
	if err != nil {
		t.Fatalf("FromEnv on an empty environment: %v", err)
	}
	var names []string
	for _, v := range Vars {
		names = append(names, v.Name)
	}
	slices.Sort(read)
	read = slices.Compact(read)
	sorted := slices.Sorted(slices.Values(names))
	if !slices.Equal(slices.Compact(slices.Clone(sorted)), sorted) {
		t.Errorf("Vars lists a variable twice: %q", sorted)
	}
	if !slices.Equal(read, sorted) {
		t.Errorf("FromEnv reads %q,\nbut Vars lists %q", read, sorted)
	}
	for _, v := range Vars {
		val := v.Default
		if slices.Contains(names, val) {
			val = Default(val) // CHILD_GID's default is CHILD_UID's value
		}
		c, err := FromEnv(env(map[string]string{v.Name: val}))
		if err != nil {
			t.Errorf("%s=%q (its default): %v", v.Name, val, err)
			continue
		}
		if !reflect.DeepEqual(c, base) {
			t.Errorf("%s=%q (its default) changes the configuration:\n got %+v\nwant %+v", v.Name, val, *c, *base)
		}
	}
	if n, err := ParseDisplay(Default("DISPLAY")); err != nil || base.DisplayNumber() != n {
		t.Errorf("DisplayNumber = %d, want %d (%v)", base.DisplayNumber(), n, err)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"port out of range", map[string]string{"CDP_PORT": "70000"}, []string{`CDP_PORT="70000"`, "1-65535"}},
		{"port not a number", map[string]string{"VNC_PORT": "vnc"}, []string{`VNC_PORT="vnc"`}},
		{"port zero", map[string]string{"VNC_PORT": "0"}, []string{`VNC_PORT="0"`}},
		{"internal port zero", map[string]string{"CDP_INTERNAL_PORT": "0"}, []string{`CDP_INTERNAL_PORT="0"`}},
		{"ports equal", map[string]string{"CDP_PORT": "9223"}, []string{"CDP_PORT=9223 and CDP_INTERNAL_PORT=9223", "different ports"}},
		{"screen word", map[string]string{"SCREEN": "big"}, []string{`SCREEN="big"`, "WxHxDEPTH"}},
		{"screen two parts", map[string]string{"SCREEN": "1440x900"}, []string{`SCREEN="1440x900"`}},
		{"screen depth", map[string]string{"SCREEN": "1440x900x7"}, []string{"DEPTH"}},
		{"screen tiny", map[string]string{"SCREEN": "10x10x24"}, []string{"between"}},
		{"display no colon", map[string]string{"DISPLAY": "99"}, []string{`DISPLAY="99"`, ":N"}},
		{"display remote", map[string]string{"DISPLAY": "host:0"}, []string{`DISPLAY="host:0"`}},
		{"display screen", map[string]string{"DISPLAY": ":99.0"}, []string{`DISPLAY=":99.0"`}},
		{"relative profile", map[string]string{"PROFILE_DIR": "data"}, []string{`PROFILE_DIR="data"`, "absolute"}},
		{"bad quote", map[string]string{"CHROME_EXTRA_FLAGS": `--a="b`}, []string{"CHROME_EXTRA_FLAGS", "unterminated"}},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, []string{`LOG_FORMAT="xml"`}},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, []string{`LOG_LEVEL="loud"`}},
		{"duration", map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, []string{`SHUTDOWN_TIMEOUT="soon"`}},
		{"vnc handshake timeout", map[string]string{"VNC_HANDSHAKE_TIMEOUT": "0s"}, []string{`VNC_HANDSHAKE_TIMEOUT="0s"`, "positive duration"}},
		{"uid", map[string]string{"CHILD_UID": "-1"}, []string{`CHILD_UID="-1"`}},
		{"origin", map[string]string{"CDP_ALLOWED_ORIGINS": "example.com"}, []string{"CDP_ALLOWED_ORIGINS", "https://"}},
		{"keepalive", map[string]string{"KEEPALIVE": "30s"}, []string{`KEEPALIVE="30s"`, "IDLE/INTERVAL/COUNT"}},
		{"keepalive zero", map[string]string{"KEEPALIVE": "0s/1s/1"}, []string{"KEEPALIVE"}},
		{"session cookies", map[string]string{"SESSION_COOKIES": "yes"}, []string{`SESSION_COOKIES="yes"`, "persist or off"}},
		{"restore tabs", map[string]string{"RESTORE_TABS": "yes"}, []string{`RESTORE_TABS="yes"`, "on or off"}},
		{"restore tabs without cookies", map[string]string{"RESTORE_TABS": "on", "SESSION_COOKIES": "off"}, []string{"RESTORE_TABS=on needs SESSION_COOKIES=persist"}},
		{"short token", map[string]string{"CDP_TOKEN": "abc"}, []string{"CDP_TOKEN", "too short"}},
		{"token file missing", map[string]string{"CDP_TOKEN_FILE": "/nonexistent/token"}, []string{`CDP_TOKEN_FILE="/nonexistent/token"`}},
		{"two errors", map[string]string{"CDP_PORT": "x", "SCREEN": "y"}, []string{"CDP_PORT", "SCREEN"}},
		{"wildcard host", map[string]string{"CDP_ALLOWED_HOSTS": "scry-0.scry,*.scry"}, []string{"CDP_ALLOWED_HOSTS", `"*.scry"`, "wildcards are not supported"}},
		{"wildcard novnc host", map[string]string{"NOVNC_ALLOWED_HOSTS": "*"}, []string{"NOVNC_ALLOWED_HOSTS", "wildcards"}},
		{"host with path", map[string]string{"CDP_ALLOWED_HOSTS": "scry/x"}, []string{"CDP_ALLOWED_HOSTS", `"scry/x"`, "host name"}},
		{"host with bad port", map[string]string{"CDP_ALLOWED_HOSTS": "scry:http"}, []string{`"scry:http"`, "1-65535"}},
		{"host with port 0", map[string]string{"NOVNC_ALLOWED_HOSTS": "scry:0"}, []string{`"scry:0"`, "1-65535"}},
		{"port without host", map[string]string{"CDP_ALLOWED_HOSTS": ":9222"}, []string{`":9222"`, "host name"}},
		{"extra flag: debugging port", map[string]string{"CHROME_EXTRA_FLAGS": "--lang=en --remote-debugging-port=9333"},
			[]string{"CHROME_EXTRA_FLAGS", `"--remote-debugging-port=9333"`, "CDP_INTERNAL_PORT"}},
		{"extra flag: single dash", map[string]string{"CHROME_EXTRA_FLAGS": "-remote-debugging-port=0"}, []string{"CDP_INTERNAL_PORT"}},
		{"extra flag: debugging address", map[string]string{"CHROME_EXTRA_FLAGS": "--remote-debugging-address=0.0.0.0"},
			[]string{`"--remote-debugging-address=0.0.0.0"`, "CDP_PORT"}},
		{"extra flag: pipe", map[string]string{"CHROME_EXTRA_FLAGS": "--remote-debugging-pipe"}, []string{`"--remote-debugging-pipe"`, "CDP_INTERNAL_PORT"}},
		{"extra flag: profile", map[string]string{"CHROME_EXTRA_FLAGS": `--user-data-dir="/tmp/other profile"`},
			[]string{`"--user-data-dir=/tmp/other profile"`, "PROFILE_DIR"}},
		{"extra flag: bare profile switch", map[string]string{"CHROME_EXTRA_FLAGS": "--user-data-dir"}, []string{"PROFILE_DIR"}},
		{"extra flag: profile directory", map[string]string{"CHROME_EXTRA_FLAGS": `--lang=en "--profile-directory=Profile 1"`},
			[]string{"CHROME_EXTRA_FLAGS", `"--profile-directory=Profile 1"`, "PROFILE_DIR", "one identity"}},
		{"extra flag: profile directory, single dash", map[string]string{"CHROME_EXTRA_FLAGS": "-profile-directory=Work"},
			[]string{`"-profile-directory=Work"`, "PROFILE_DIR"}},
		{"extra flag: bare profile directory switch", map[string]string{"CHROME_EXTRA_FLAGS": "--profile-directory"}, []string{"PROFILE_DIR"}},
		{"extra flag: a URL to open at launch", map[string]string{"CHROME_EXTRA_FLAGS": "--lang=en https://example.com/"},
			[]string{"CHROME_EXTRA_FLAGS", `"https://example.com/"`, "not a flag", "/json/new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestAcceptedValues: what the refusals above must not catch.
func TestAcceptedValues(t *testing.T) {
	for _, e := range []map[string]string{
		{"CDP_ALLOWED_HOSTS": "scry-0.scry,scry:9222,scry.:9222,SCRY-0.SCRY,::1,[::1]:9222,10.0.0.1"},
		{"NOVNC_ALLOWED_HOSTS": "vnc.example.com:443,vnc.example.com"},
		{"CHROME_EXTRA_FLAGS": "--remote-debugging-port-offset=1 --user-data-dir-name=x --remote-allow-origins=* --lang=en --x=https://example.com/?user-data-dir=x"},
		{"CHROME_EXTRA_FLAGS": "--User-Data-Dir=/x"}, // not the switch on Linux: names are case-sensitive
		{"CHROME_EXTRA_FLAGS": "--profile-directory-x=1 --y=https://example.com/?profile-directory=Work"},
		{"CDP_PORT": "0", "NOVNC_PORT": "0"}, // the doors on any free port
		{"RESTORE_TABS": "on"},
	} {
		if _, err := FromEnv(env(e)); err != nil {
			t.Errorf("%v: %v", e, err)
		}
	}
}

func TestLists(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"CDP_ALLOWED_HOSTS":   " scry-0.scry , scry:9222,,",
		"CDP_ALLOWED_ORIGINS": "https://a.example, *",
		"CHILD_UID":           "1234",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"scry-0.scry", "scry:9222"}; !reflect.DeepEqual(c.CDPAllowedHosts, want) {
		t.Errorf("hosts = %q", c.CDPAllowedHosts)
	}
	if want := []string{"https://a.example", "*"}; !reflect.DeepEqual(c.CDPAllowedOrigins, want) {
		t.Errorf("origins = %q", c.CDPAllowedOrigins)
	}
	if c.ChildGID != 1234 {
		t.Errorf("CHILD_GID defaults to CHILD_UID: got %d", c.ChildGID)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"--lang=en-US --proxy-server=http://p:3128", []string{"--lang=en-US", "--proxy-server=http://p:3128"}},
		{`--proxy-server="http://a b"`, []string{"--proxy-server=http://a b"}},
		{`--a='x "y" z'  --b`, []string{`--a=x "y" z`, "--b"}},
		{`--a=x\ y`, []string{"--a=x y"}},
		{`"a\"b\\c\d"`, []string{`a"b\c\d`}},
		{`'' ""`, []string{"", ""}},
		{"a\tb\nc", []string{"a", "b", "c"}},
		{`--user-agent="Mozilla/5.0 (X11; Linux x86_64)"`, []string{"--user-agent=Mozilla/5.0 (X11; Linux x86_64)"}},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if err != nil {
			t.Errorf("SplitWords(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{`"a`, `'a`, `a\`} {
		if _, err := SplitWords(bad); err == nil {
			t.Errorf("SplitWords(%q): want an error", bad)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`--a="b c"`, `'x'`, `a\ b`, `"\"`, "\t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitWords(s)
		if err != nil {
			return
		}
		// Words without quotes or blanks or backslashes split back the same way.
		for _, w := range words {
			if strings.ContainsAny(w, " \t\n'\"\\") || w == "" {
				return
			}
		}
		again, err := SplitWords(strings.Join(words, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("round trip of %q: %q vs %q (%v)", s, again, words, err)
		}
	})
}

func TestTokenFile(t *testing.T) {
	f := t.TempDir() + "/token"
	if err := os.WriteFile(f, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := FromEnv(env(map[string]string{"CDP_TOKEN": "ignored-because-file-wins", "CDP_TOKEN_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CDPToken != "0123456789abcdef0123" {
		t.Errorf("token %q, want the file's, trimmed", c.CDPToken)
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/tokens"
	const agent, admin = "agent-token-0123456789", "admin-token-0123456789"
	if err := os.WriteFile(f, []byte("# who\nbot agent "+agent+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := FromEnv(env(map[string]string{"CDP_TOKENS_FILE": f, "CDP_TOKEN": admin}))
	if err != nil {
		t.Fatal(err)
	}
	if bot, ok := c.Tokens.Match(agent); !ok || bot.Name != "bot" || bot.Role.String() != "agent" {
		t.Errorf("the file's token: %+v %v", bot, ok)
	}
	if adm, ok := c.Tokens.Match(admin); !ok || adm.Name != "cdp-token" || adm.Role.String() != "admin" {
		t.Errorf("CDP_TOKEN: %+v %v", adm, ok)
	}
	if c.AuditLog != "summary" {
		t.Errorf("AUDIT_LOG with scoped tokens defaults to %q, want summary", c.AuditLog)
	}
	if c.DownloadDir != "/data/Downloads" {
		t.Errorf("DOWNLOAD_DIR defaults to %q", c.DownloadDir)
	}

	// A bad line stops start-up, naming the line and never the token.
	if err := os.WriteFile(f, []byte("bot agent "+agent+"\nops root "+admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = FromEnv(env(map[string]string{"CDP_TOKENS_FILE": f}))
	if err == nil || !strings.Contains(err.Error(), "CDP_TOKENS_FILE") || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), admin) {
		t.Errorf("bad line: %v", err)
	}
	// The same token in the file and CDP_TOKEN.
	if err := os.WriteFile(f, []byte("bot agent "+agent+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = FromEnv(env(map[string]string{"CDP_TOKENS_FILE": f, "CDP_TOKEN": agent}))
	if err == nil || !strings.Contains(err.Error(), "CDP_TOKEN") || strings.Contains(err.Error(), agent) {
		t.Errorf("CDP_TOKEN also in the file: %v", err)
	}
}

func TestAuditLogAndDownloadDir(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
		err  string
	}{
		{map[string]string{}, "off", ""},
		{map[string]string{"CDP_TOKEN": "admin-token-0123456789"}, "off", ""},
		{map[string]string{"AUDIT_LOG": "commands"}, "commands", ""},
		{map[string]string{"AUDIT_LOG": "all"}, "", `AUDIT_LOG="all": want off, summary or commands`},
		{map[string]string{"DOWNLOAD_DIR": "dl"}, "", `DOWNLOAD_DIR="dl": want an absolute path`},
	} {
		c, err := FromEnv(env(tt.env))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%v: err %v, want %s", tt.env, err, tt.err)
		case tt.err == "" && (err != nil || c.AuditLog != tt.want):
			t.Errorf("%v: AuditLog %v (%v), want %s", tt.env, c, err, tt.want)
		}
	}
}

// TestRiskyFlags: the flags that switch a protection off, which scry and
// doctor warn about, and look-alikes that do not.
func TestRiskyFlags(t *testing.T) {
	risky := []string{"--no-sandbox", "-no-sandbox", "--disable-web-security", "--remote-allow-origins=*",
		"--remote-allow-origins=http://localhost:3000", "--disable-site-isolation-trials", "--single-process",
		"--disable-features=Translate,IsolateOrigins", "--disable-features=site-per-process",
		"--allow-running-insecure-content", "--ignore-certificate-errors", "--allow-file-access-from-files"}
	harmless := []string{"--lang=en", "--no-sandbox-x", "--disable-features=Translate", "--enable-features=IsolateOrigins",
		"--ignore-certificate-errors-spki-list=abc=", `--user-agent="--no-sandbox"`}
	var quoted []string
	for _, f := range append(slices.Clone(risky), harmless...) {
		quoted = append(quoted, "'"+f+"'")
	}
	c, err := FromEnv(env(map[string]string{"CHROME_EXTRA_FLAGS": strings.Join(quoted, " ")}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.RiskyFlags()
	var flags []string
	for _, r := range got {
		flags = append(flags, r.Flag)
		if len(r.Risk) < 40 {
			t.Errorf("%s: risk %q says too little", r.Flag, r.Risk)
		}
	}
	if !slices.Equal(flags, risky) {
		t.Errorf("RiskyFlags = %q,\nwant %q", flags, risky)
	}
	if !c.HasExtraFlag("no-sandbox") || c.HasExtraFlag("sandbox") || c.HasExtraFlag("lang=en") {
		t.Error("HasExtraFlag")
	}
	if c, _ := FromEnv(env(nil)); len(c.RiskyFlags()) != 0 {
		t.Errorf("RiskyFlags of the defaults = %v", c.RiskyFlags())
	}
}
