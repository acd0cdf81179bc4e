package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/dataplanelabs/scry/internal/vnc"
)

// loginSite is a site whose "login" stores all five kinds of state, and
// whose /status page reports which of them it can see.
func loginSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>login</title>
<form method="post" action="/login"><input name="user" id="user"><button id="go">log in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "persist", Value: "p1", Path: "/", MaxAge: 3600})
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "hsid", Value: "h1", Path: "/", HttpOnly: true})
		fmt.Fprint(w, `<!doctype html><title>storing</title><script>
localStorage.setItem("ls", "l1");
const open = indexedDB.open("db", 1);
open.onupgradeneeded = () => open.result.createObjectStore("s");
open.onsuccess = () => {
  const tx = open.result.transaction("s", "readwrite");
  tx.objectStore("s").put("i1", "k");
  tx.oncomplete = () => { document.title = "stored"; };
};
</script>`)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		seen := map[string]bool{}
		for _, n := range []string{"persist", "sid", "hsid"} {
			if c, err := r.Cookie(n); err == nil && c.Value != "" {
				seen[n] = true
			}
		}
		server, _ := json.Marshal(seen)
		fmt.Fprintf(w, `<!doctype html><title>status</title><pre id="r"></pre><script>
const seen = %s;
seen.logged_in = !!seen.sid;
seen.localStorage = localStorage.getItem("ls") === "l1";
const open = indexedDB.open("db", 1);
open.onupgradeneeded = () => open.result.createObjectStore("s");
open.onsuccess = () => {
  const get = open.result.transaction("s").objectStore("s").get("k");
  get.onsuccess = () => { seen.indexedDB = get.result === "i1"; document.getElementById("r").textContent = JSON.stringify(seen); };
  get.onerror = () => { seen.indexedDB = false; document.getElementById("r").textContent = JSON.stringify(seen); };
};
</script>`, server)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// login submits the site's form through CDP in a new tab, waits until every
// kind of state is stored, and closes the tab.
func login(t *testing.T, s *Scry, site string) {
	t.Helper()
	closeTab := loginInTab(t, s, site)
	closeTab()
}

// loginInTab is login leaving the tab open until closeTab is called.
func loginInTab(t *testing.T, s *Scry, site string) (closeTab func()) {
	t.Helper()
	ctx, cancel := attach(t, s)
	ok := false
	defer func() {
		if !ok {
			cancel()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(site)); err != nil {
		t.Fatal(err)
	}
	// Submit the form from the page itself: a synthetic mouse click into a
	// background tab is at the mercy of a loaded machine's scheduling.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("go").click(), true`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "login stored", func() error {
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			return err
		}
		if title != "stored" {
			return fmt.Errorf("title %q", title)
		}
		return nil
	})
	ok = true
	return cancel
}

// status opens /status in a new tab and returns what the site sees.
func status(t *testing.T, s *Scry, site string) map[string]bool {
	t.Helper()
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/status")); err != nil {
		t.Fatal(err)
	}
	var seen map[string]bool
	waitFor(t, 20*time.Second, "status page", func() error {
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("r").textContent`))
		if err != nil {
			return err
		}
		if txt == "" {
			return fmt.Errorf("not reported yet")
		}
		return json.Unmarshal([]byte(txt), &seen)
	})
	return seen
}

// waitSnapshot waits until the session-cookie snapshot holds the sid cookie.
func waitSnapshot(t *testing.T, s *Scry) {
	t.Helper()
	path := filepath.Join(s.ProfileDir, ".scry", "cookies.json")
	waitFor(t, 20*time.Second, "session cookie snapshot", func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"sid"`) || !strings.Contains(string(b), `"hsid"`) || !strings.Contains(string(b), `"persist"`) {
			return fmt.Errorf("snapshot lacks persist/sid/hsid")
		}
		return nil
	})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
}

func wantSeen(t *testing.T, event string, seen map[string]bool, want ...string) {
	t.Helper()
	for _, k := range want {
		if !seen[k] {
			t.Errorf("after %s: %s is gone (site sees %v)", event, k, seen)
		}
	}
}

var fastCookies = map[string]string{"SESSION_COOKIE_INTERVAL": "1s"}

func TestGracefulRestartKeepsEverything(t *testing.T) {
	site := loginSite(t)
	s := Start(t, Options{})
	login(t, s, site.URL)
	s.Stop()
	if !s.HasLog("cookies saved") {
		t.Errorf("no final session cookie snapshot at shutdown:\n%s", s.Log())
	}
	prefs, _ := os.ReadFile(filepath.Join(s.ProfileDir, "Default", "Preferences"))
	if !strings.Contains(string(prefs), `"exit_type":"Normal"`) {
		t.Errorf("profile's last exit not recorded as clean after a graceful stop")
	}

	s2 := Start(t, Options{ProfileDir: s.ProfileDir})
	if !s2.HasLog("cookies restored") {
		t.Errorf("session cookies were not restored:\n%s", s2.Log())
	}
	seen := status(t, s2, site.URL)
	wantSeen(t, "a graceful restart", seen, "persist", "sid", "hsid", "localStorage", "indexedDB", "logged_in")
}

// uncleanExit reports whether the profile's Preferences record a session
// that did not end cleanly: Chromium writes that while it runs, and a
// killed Chromium leaves it, which makes the next Chromium offer to
// restore pages unless scry marks it clean.
func uncleanExit(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "Default", "Preferences"))
	if err != nil {
		return err
	}
	var prefs struct {
		Profile struct {
			ExitType      string `json:"exit_type"`
			ExitedCleanly *bool  `json:"exited_cleanly"`
		} `json:"profile"`
	}
	if err := json.Unmarshal(b, &prefs); err != nil {
		return err
	}
	p := prefs.Profile
	if p.ExitType == "Normal" && (p.ExitedCleanly == nil || *p.ExitedCleanly) {
		return fmt.Errorf("Preferences say the last exit was clean (exit_type %q)", p.ExitType)
	}
	return nil
}

// waitSessionOpen waits until Chromium has written Preferences recording
// its session as open (not yet exited cleanly). A fresh profile has no
// Preferences for several seconds; a kill before then leaves nothing to
// mark.
func waitSessionOpen(t *testing.T, s *Scry) {
	t.Helper()
	start := time.Now()
	waitFor(t, 60*time.Second, "Chromium records its session open in Preferences", func() error { return uncleanExit(s.ProfileDir) })
	t.Logf("Preferences recorded the open session %s after the wait began", time.Since(start).Round(time.Millisecond))
}

func TestChromiumSIGKILLThenRestart(t *testing.T) {
	site := loginSite(t)
	s := Start(t, Options{Env: fastCookies})
	login(t, s, site.URL)
	waitSnapshot(t, s)
	waitSessionOpen(t, s)
	if err := syscall.Kill(-s.ChromiumPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := s.Wait(30 * time.Second); code == 0 {
		t.Fatalf("scry exited 0 after Chromium was killed")
	}
	if err := uncleanExit(s.ProfileDir); err != nil {
		t.Errorf("after the SIGKILL: %v", err)
	}
	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if !s2.HasLog("marked the profile's last exit clean") {
		t.Errorf("the restart did not say it marked the crashed profile clean:\n%s", s2.Log())
	}
	seen := status(t, s2, site.URL)
	wantSeen(t, "SIGKILL of Chromium", seen, "persist", "sid", "hsid", "logged_in")
	t.Logf("after SIGKILL of Chromium the site sees %v", seen)
}

func TestWholeContainerSIGKILLThenRestart(t *testing.T) {
	site := loginSite(t)
	s := Start(t, Options{Env: fastCookies})
	login(t, s, site.URL)
	waitSnapshot(t, s)
	waitSessionOpen(t, s)
	killEverything(t, s)
	if err := uncleanExit(s.ProfileDir); err != nil {
		t.Errorf("after the SIGKILL: %v", err)
	}
	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if !s2.HasLog("removing stale profile lock") {
		t.Errorf("the stale SingletonLock was not cleared:\n%s", s2.Log())
	}
	if !s2.HasLog("marked the profile's last exit clean") {
		t.Errorf("the restart did not say it marked the crashed profile clean:\n%s", s2.Log())
	}
	seen := status(t, s2, site.URL)
	wantSeen(t, "SIGKILL of everything", seen, "persist", "sid", "hsid", "logged_in")
	t.Logf("after SIGKILL of everything the site sees %v", seen)
}

func TestSessionCookiesOffLosesThem(t *testing.T) {
	site := loginSite(t)
	off := map[string]string{"SESSION_COOKIES": "off"}
	s := Start(t, Options{Env: off})
	login(t, s, site.URL)
	s.Stop()
	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: off})
	seen := status(t, s2, site.URL)
	if seen["sid"] || seen["hsid"] {
		t.Errorf("with SESSION_COOKIES=off session cookies survived a restart: %v", seen)
	}
	wantSeen(t, "a graceful restart without the feature", seen, "persist", "localStorage", "indexedDB")
}

func TestCorruptSnapshotIsSetAside(t *testing.T) {
	dir := filepath.Join(tempDir(t), "profile")
	state := filepath.Join(dir, ".scry")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(state, "cookies.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"saved":"2026-11-23T00:00:00Z","cookies":[{"name":"sid","va`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{ProfileDir: dir})
	if !s.HasLog("moved aside") {
		t.Errorf("corrupt snapshot not reported:\n%s", s.Log())
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Errorf("corrupt snapshot not kept aside: %v", matches)
	}
}

func TestSecondScryOnSameProfileRefuses(t *testing.T) {
	s := Start(t, Options{})
	s2 := Start(t, Options{ProfileDir: s.ProfileDir, NoWait: true})
	if code := s2.Wait(30 * time.Second); code == 0 {
		t.Fatal("second scry on the same profile exited 0")
	}
	if !s2.HasLog("in use by scry pid") {
		t.Errorf("second scry did not say the profile is in use:\n%s", s2.Log())
	}
	// The first one is untouched.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v map[string]any
	if _, err := getJSON(ctx, s.CDPURL()+"/json/version", "", &v); err != nil {
		t.Errorf("first scry broken by the second: %v", err)
	}
}

// killEverything kills scry and every child process group with SIGKILL, as
// a node crash or an OOM kill of the container would, and waits until none
// of them has the profile on its command line. The children go first:
// scry's death sends Chromium SIGTERM (its parent-death signal), and a
// Chromium that saw that before its SIGKILL could start flushing, which no
// crash allows. Chromium's browser process can still be exiting afterwards
// for a few milliseconds (state R or D, command line already empty) and
// its SingletonLock still names it; the next scry must take it for gone,
// as it would in a container restarted in place.
func killEverything(t *testing.T, s *Scry) {
	t.Helper()
	x11vnc := loggedPid(t, s, "x11vnc ready")
	groups := []int{s.ChromiumPid, x11vnc, loggedPid(t, s, "xvfb ready")}
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
	_ = syscall.Kill(s.Pid(), syscall.SIGKILL)
	s.Wait(30 * time.Second)
	// A killed container's shared memory goes with its IPC namespace; on
	// this host, x11vnc's would stay (scry, killed too, could not free it)
	// and enough runs exhaust the kernel's segments.
	if _, err := vnc.RemoveSegmentsOf(x11vnc); err != nil {
		t.Logf("freeing the killed x11vnc's shared memory: %v", err)
	}
	waitFor(t, 20*time.Second, "old processes gone", func() error {
		if p := processesUsing(s.ProfileDir); len(p) > 0 {
			return fmt.Errorf("still running: %v", p)
		}
		return nil
	})
}

// hostOnlySite serves HTTPS for any name under scry.test (Chromium maps them
// to 127.0.0.1, see hostOnlyEnv). /login sets a host-only session cookie and
// a __Host- session cookie (which must be Secure, Path=/ and have no Domain);
// /seen answers with the names of the cookies the request carried.
func hostOnlySite(t *testing.T) (site, sub string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "host", Value: "h1", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "__Host-sid", Value: "s1", Path: "/", Secure: true, HttpOnly: true})
		fmt.Fprint(w, `<!doctype html><title>logged in</title>`)
	})
	mux.HandleFunc("/seen", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, strings.Join(names, ","))
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	return "https://app.scry.test:" + port, "https://sub.app.scry.test:" + port
}

// hostOnlyEnv gives the test site its names. The certificate is
// httptest's own, so Chromium is told not to check it; the connection is
// still real TLS, and the cookies' Secure and __Host- rules apply as on
// any HTTPS site.
var hostOnlyEnv = map[string]string{
	"CHROME_EXTRA_FLAGS": quietChromium + ` "--host-resolver-rules=MAP *.scry.test 127.0.0.1" --ignore-certificate-errors`,
}

// seenAt loads url's /seen in a new tab and returns the cookie names sent.
func seenAt(t *testing.T, s *Scry, url string) []string {
	t.Helper()
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/seen")); err != nil {
		t.Fatal(err)
	}
	txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if txt == "" {
		return nil
	}
	return strings.Split(txt, ",")
}

// browserCookies is what Storage.getCookies reports, by name.
func browserCookies(t *testing.T, s *Scry) map[string]*network.Cookie {
	t.Helper()
	ctx, cancel := attach(t, s)
	defer cancel()
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		got[c.Name] = c
	}
	return got
}

// Host-only cookies, and __Host- cookies (often the login session), come
// back host-only after a restart: not sent to subdomains, and not rejected
// by Chromium for having a Domain. It guards param's reliance on Chromium
// reading a domain without a leading dot as host-only.
func TestHostOnlyCookiesComeBackHostOnly(t *testing.T) {
	site, sub := hostOnlySite(t)
	s := Start(t, Options{Env: hostOnlyEnv})
	func() {
		ctx, cancel := attach(t, s)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(site+"/login")); err != nil {
			t.Fatal(err)
		}
	}()
	check := func(when string) {
		t.Helper()
		got := browserCookies(t, s)
		for _, name := range []string{"host", "__Host-sid"} {
			c := got[name]
			if c == nil {
				t.Errorf("%s: Storage.getCookies has no %s cookie (it has %v)", when, name, slices.Collect(maps.Keys(got)))
				continue
			}
			if c.Domain != "app.scry.test" || !c.Session {
				t.Errorf("%s: %s cookie domain %q session %v, want host-only app.scry.test, session", when, name, c.Domain, c.Session)
			}
		}
		if seen := seenAt(t, s, site); !slices.Contains(seen, "host") || !slices.Contains(seen, "__Host-sid") {
			t.Errorf("%s: the site got cookies %v, want host and __Host-sid", when, seen)
		}
		if seen := seenAt(t, s, sub); len(seen) > 0 {
			t.Errorf("%s: a subdomain got cookies %v, want none (they are host-only)", when, seen)
		}
	}
	check("before the restart")
	s.Stop()

	s = Start(t, Options{ProfileDir: s.ProfileDir, Env: hostOnlyEnv})
	if !s.HasLog("cookies restored") || s.HasLog("not fully restored") {
		t.Errorf("session cookies not all restored:\n%s", s.Log())
	}
	check("after a graceful restart")
}

// cookieSite sets and reads persistent cookies: /set?n=NAME&v=VALUE sets
// NAME for an hour (an empty value deletes it, as a logout does) and
// /seen?n=NAME answers with the value the request carried.
func cookieSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		c := &http.Cookie{Name: r.FormValue("n"), Value: r.FormValue("v"), Path: "/", MaxAge: 3600}
		if c.Value == "" {
			c.MaxAge = -1
		}
		http.SetCookie(w, c)
		fmt.Fprint(w, `<!doctype html><title>set</title>`)
	})
	mux.HandleFunc("/seen", func(w http.ResponseWriter, r *http.Request) {
		if c, _ := r.Cookie(r.FormValue("n")); c != nil {
			fmt.Fprint(w, c.Value)
		}
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	return site
}

// visit opens url in a new tab and returns the page's text.
func visit(t *testing.T, s *Scry, url string) string {
	t.Helper()
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	return txt
}

// cookieDB describes the profile's cookie database: each file's size and
// mtime and the SQLite header's change counter, which Chromium's every
// commit bumps.
func cookieDB(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{"Cookies", "Cookies-journal", "Cookies-wal"} {
		p := filepath.Join(dir, "Default", f)
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d", f, fi.Size(), fi.ModTime().UnixNano())
		if h, err := os.ReadFile(p); err == nil && len(h) >= 28 && f == "Cookies" {
			fmt.Fprintf(&b, " changes %d", binary.BigEndian.Uint32(h[24:28]))
		}
		b.WriteString("; ")
	}
	return b.String()
}

// killBeforeCommit kills everything with SIGKILL after a change to name's
// cookie was snapshotted but before Chromium committed it to the profile's
// cookie database, so that the restart can show the snapshot bringing it
// back. Each attempt runs prepare (which sets name), waits until Chromium
// has committed that, runs change (which must change name's cookie and
// wait for its snapshot), then freezes Chromium's whole process group
// (SIGSTOP: its network service, which writes the database, is in it) and
// only then compares the database with the committed one. Chromium commits
// about 30 s after the first pending change, so the comparison almost
// always finds the database unchanged and the kill follows; when Chromium
// did commit in between, the test thaws it and tries again, with a fresh
// window. It returns the attempt that succeeded, from 1.
func killBeforeCommit(t *testing.T, s *Scry, name string, prepare, change func(attempt int)) int {
	t.Helper()
	const attempts = 5
	for attempt := 1; attempt <= attempts; attempt++ {
		prev := cookieDB(t, s.ProfileDir)
		prepare(attempt)
		// The name is stored in clear (the value is encrypted): once it
		// is in the file, the file changed since prepare began, and the
		// rollback journal was emptied after the database was written
		// (SQLite's last step of a commit), Chromium has committed the
		// cookie.
		db := filepath.Join(s.ProfileDir, "Default", "Cookies")
		waitFor(t, 90*time.Second, "Chromium commits "+name+" to its cookie database", func() error {
			b, err := os.ReadFile(db)
			if err != nil {
				return err
			}
			if !bytes.Contains(b, []byte(name)) || cookieDB(t, s.ProfileDir) == prev {
				return fmt.Errorf("not in the database yet")
			}
			dfi, err := os.Stat(db)
			if err != nil {
				return err
			}
			if jfi, err := os.Stat(db + "-journal"); err == nil && (jfi.Size() > 0 || jfi.ModTime().Before(dfi.ModTime())) {
				return fmt.Errorf("a commit is in flight (journal of %d bytes, older than the database: %v)", jfi.Size(), jfi.ModTime().Before(dfi.ModTime()))
			}
			return nil
		})
		before := cookieDB(t, s.ProfileDir)
		change(attempt)
		if err := syscall.Kill(-s.ChromiumPid, syscall.SIGSTOP); err != nil {
			t.Fatalf("freeze chromium's process group: %v", err)
		}
		after := cookieDB(t, s.ProfileDir)
		if after == before {
			killEverything(t, s)
			return attempt
		}
		t.Logf("attempt %d: Chromium committed its cookie database between the change and the freeze (%s, then %s); again", attempt, before, after)
		if err := syscall.Kill(-s.ChromiumPid, syscall.SIGCONT); err != nil {
			t.Fatalf("thaw chromium's process group: %v", err)
		}
	}
	t.Fatalf("Chromium committed its cookie database between the change and the freeze in each of %d attempts", attempts)
	return 0
}

// waitSnapshotted waits until the cookie snapshot satisfies ok.
func waitSnapshotted(t *testing.T, s *Scry, what string, ok func(snapshot string) bool) {
	t.Helper()
	path := filepath.Join(s.ProfileDir, ".scry", "cookies.json")
	waitFor(t, 20*time.Second, what, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !ok(string(b)) {
			return fmt.Errorf("not in the snapshot yet")
		}
		return nil
	})
}

// restoredFromSnapshot checks that s logged a restore in which the
// snapshot was newer than the profile, and returns that record.
func restoredFromSnapshot(t *testing.T, s *Scry) map[string]any {
	t.Helper()
	for _, r := range s.Records() {
		if r["msg"] == "cookies restored" {
			if r["newer"] != "snapshot" {
				t.Errorf("the restore took the profile for newer: %v", r)
			}
			return r
		}
	}
	t.Errorf("no cookies restored:\n%s", s.Log())
	return nil
}

// A persistent cookie rotated after Chromium's last commit of its cookie
// database, and caught by a snapshot, comes back with its new value after a
// hard kill: the database is as it was before the snapshot, so the
// snapshot wins.
func TestRotatedCookieSurvivesHardKill(t *testing.T) {
	site := cookieSite(t)
	s := Start(t, Options{Env: fastCookies})
	rotated := func(attempt int) string { return fmt.Sprintf("new%d", attempt) }
	n := killBeforeCommit(t, s, "scry_rotated", func(attempt int) {
		visit(t, s, site.URL+fmt.Sprintf("/set?n=scry_rotated&v=old%d", attempt))
	}, func(attempt int) {
		visit(t, s, site.URL+"/set?n=scry_rotated&v="+rotated(attempt))
		waitSnapshotted(t, s, "snapshot of the rotated cookie", func(b string) bool { return strings.Contains(b, `"`+rotated(attempt)+`"`) })
	})

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	restoredFromSnapshot(t, s2)
	if got := visit(t, s2, site.URL+"/seen?n=scry_rotated"); got != rotated(n) {
		t.Errorf("after a hard kill the site got scry_rotated=%q, want the rotated value %q", got, rotated(n))
	}
}

// A persistent cookie deleted after Chromium's last commit (a logout), with
// the deletion caught by a snapshot, stays deleted after a hard kill,
// though the profile's stale database still has it.
func TestLogoutSurvivesHardKill(t *testing.T) {
	site := cookieSite(t)
	s := Start(t, Options{Env: fastCookies})
	marker := func(attempt int) string { return fmt.Sprintf("out%d", attempt) }
	n := killBeforeCommit(t, s, "scry_login", func(int) {
		visit(t, s, site.URL+"/set?n=scry_login&v=yes")
	}, func(attempt int) {
		visit(t, s, site.URL+"/set?n=scry_login&v=")
		// A marker set with the logout proves the snapshot came after it.
		visit(t, s, site.URL+"/set?n=scry_marker&v="+marker(attempt))
		waitSnapshotted(t, s, "snapshot after the logout", func(b string) bool {
			return strings.Contains(b, `"`+marker(attempt)+`"`) && !strings.Contains(b, `"scry_login"`)
		})
	})

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if r := restoredFromSnapshot(t, s2); r != nil && r["removed"] != float64(1) {
		t.Errorf("the restore removed %v cookies, want 1 (scry_login): %v", r["removed"], r)
	}
	if got := visit(t, s2, site.URL+"/seen?n=scry_login"); got != "" {
		t.Errorf("after a hard kill the logged-out cookie is back: scry_login=%q", got)
	}
	if got := visit(t, s2, site.URL+"/seen?n=scry_marker"); got != marker(n) {
		t.Errorf("after a hard kill scry_marker=%q, want %q", got, marker(n))
	}
}

// loggedPid is the pid of the first log record with message msg.
func loggedPid(t *testing.T, s *Scry, msg string) int {
	t.Helper()
	for _, r := range s.Records() {
		if r["msg"] == msg {
			if pid, ok := r["pid"].(float64); ok {
				return int(pid)
			}
		}
	}
	t.Fatalf("no %q record with a pid in the log", msg)
	return 0
}

// With the periodic snapshot an hour away, the login's redirect still gets
// its cookies snapshotted (a second after the navigation settles), and a
// SIGKILL of everything soon after the login keeps them.
func TestLoginSnapshottedAfterNavigation(t *testing.T) {
	site := loginSite(t)
	hourly := map[string]string{"SESSION_COOKIE_INTERVAL": "1h"}
	s := Start(t, Options{Env: hourly})
	login(t, s, site.URL)
	waitSnapshot(t, s)
	killEverything(t, s)
	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: hourly})
	seen := status(t, s2, site.URL)
	wantSeen(t, "SIGKILL of everything soon after the login", seen, "persist", "sid", "hsid", "logged_in")
}

// A login form that posts to its own URL (no redirect, the same URL
// before and after) still gets its cookies snapshotted a second later,
// with the periodic snapshot an hour away: Chromium reports the committed
// navigation with Target.targetInfoChanged even when the URL is the same.
func TestSelfPostingLoginSnapshotted(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		title := "form"
		if r.Method == http.MethodPost {
			http.SetCookie(w, &http.Cookie{Name: "scry_self", Value: "in", Path: "/"})
			title = "posted"
		} else {
			http.SetCookie(w, &http.Cookie{Name: "scry_form", Value: "1", Path: "/"})
		}
		fmt.Fprintf(w, `<!doctype html><title>%s</title><form method="post" action="/signin"><button id="go">sign in</button></form>`, title)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	s := Start(t, Options{Env: map[string]string{"SESSION_COOKIE_INTERVAL": "1h"}})
	ctx, cancel := attach(t, s)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+"/signin")); err != nil {
		t.Fatal(err)
	}
	// The navigation to the form is snapshotted first (the form sets a
	// cookie of its own), so the snapshot awaited below can only come
	// from the post.
	waitSnapshotted(t, s, "snapshot after the form loaded", func(b string) bool { return strings.Contains(b, `"scry_form"`) })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("go").click(), true`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "form posted", func() error {
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			return err
		}
		if title != "posted" {
			return fmt.Errorf("title %q", title)
		}
		return nil
	})
	waitSnapshotted(t, s, "snapshot of the cookie the post set", func(b string) bool { return strings.Contains(b, `"scry_self"`) })
}
