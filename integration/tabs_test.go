package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
)

// tabsSite has a login (a session cookie, then /home), a /home that says
// whether it sees the login, and a /public page that needs none.
func tabsSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "tabs-user", Path: "/"})
		http.Redirect(w, r, "/home", http.StatusFound)
	})
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		who := "logged out"
		if c, err := r.Cookie("sid"); err == nil {
			who = "logged in as " + c.Value
		}
		fmt.Fprintf(w, `<!doctype html><title>home</title><p id="who">%s</p>`, who)
	})
	mux.HandleFunc("/public", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>public</title><p>hello</p>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type tab struct {
	ID   string `json:"targetId"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// dialTabs opens a CDP connection to s's browser through the agent door.
func dialTabs(t *testing.T, ctx context.Context, s *Scry) *scrytest.CDP {
	t.Helper()
	c, err := scrytest.DialBrowser(ctx, scrytest.NewHTTPClient(), fmt.Sprintf("127.0.0.1:%d", s.CDPPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tabs lists the browser's page targets in the order Chromium reports them.
func tabs(ctx context.Context, c *scrytest.CDP) ([]tab, error) {
	var res struct {
		TargetInfos []tab `json:"targetInfos"`
	}
	if err := c.Call(ctx, "", "Target.getTargets", nil, &res); err != nil {
		return nil, err
	}
	var out []tab
	for _, ti := range res.TargetInfos {
		if ti.Type == "page" {
			out = append(out, ti)
		}
	}
	return out, nil
}

func urls(ts []tab) []string {
	var u []string
	for _, t := range ts {
		u = append(u, t.URL)
	}
	return u
}

// recordedTabs reads PROFILE_DIR/.scry/tabs.json.
func recordedTabs(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".scry", "tabs.json"))
	if err != nil {
		return nil, err
	}
	var f struct {
		URLs []string `json:"urls"`
	}
	return f.URLs, json.Unmarshal(b, &f)
}

// openTabs opens a tab per URL, in order, and waits until the browser
// shows them (after any redirect) as want.
func openTabs(t *testing.T, ctx context.Context, c *scrytest.CDP, open, want []string) {
	t.Helper()
	for _, u := range open {
		if err := c.Call(ctx, "", "Target.createTarget", map[string]any{"url": u}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "tabs open", func() error {
		ts, err := tabs(ctx, c)
		if err != nil {
			return err
		}
		got := urls(ts)
		for _, w := range want {
			if !slices.Contains(got, w) {
				return fmt.Errorf("tabs %q lack %s", got, w)
			}
		}
		return nil
	})
}

func TestRestoreTabsReopensThemLoggedIn(t *testing.T) {
	site := tabsSite(t)
	env := map[string]string{"RESTORE_TABS": "on", "SESSION_COOKIE_INTERVAL": "1s"}
	s := Start(t, Options{Env: env})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	home, public := site.URL+"/home", site.URL+"/public"
	openTabs(t, ctx, dialTabs(t, ctx, s), []string{site.URL + "/login", public}, []string{home, public})
	want := []string{home, public}
	waitFor(t, 30*time.Second, "tabs.json records the two tabs", func() error {
		got, err := recordedTabs(s.ProfileDir)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("tabs.json has %q, want %q", got, want)
		}
		return nil
	})
	s.Stop()

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: env})
	if !s2.HasLog("tabs restored") {
		t.Errorf("no \"tabs restored\" line:\n%s", s2.Log())
	}
	for _, r := range s2.Records() {
		if r["msg"] == "tabs restored" && fmt.Sprint(r["count"]) != "2" {
			t.Errorf("tabs restored count = %v, want 2", r["count"])
		}
	}
	if s2.Count(site.URL) > 0 {
		t.Errorf("a tab's URL is in the info log:\n%s", s2.Log())
	}
	c := dialTabs(t, ctx, s2)
	ts, err := tabs(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// Target.getTargets answers in no tab order (roughly the most
	// recently active first): compare the sets here, and the order scry
	// keeps in tabs.json at the end.
	if got := slices.Sorted(slices.Values(urls(ts))); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("after the restart the tabs are %q, want %q (the blank start tab closed)", urls(ts), want)
	}
	home2 := ts[slices.IndexFunc(ts, func(tb tab) bool { return tb.URL == home })]
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.Call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": home2.ID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restored /home shows the login", func() error {
		var ev struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		err := c.Call(ctx, att.SessionID, "Runtime.evaluate",
			map[string]any{"expression": `document.getElementById("who") ? document.getElementById("who").textContent : ""`, "returnByValue": true}, &ev)
		if err != nil {
			return err
		}
		if ev.Result.Value != "logged in as tabs-user" {
			return fmt.Errorf("/home says %q", ev.Result.Value)
		}
		return nil
	})
	s2.Stop()
	if got, err := recordedTabs(s2.ProfileDir); err != nil || !slices.Equal(got, want) {
		t.Errorf("after the second run tabs.json has %q (%v), want %q in the order they were opened", got, err, want)
	}
}

func TestRestoreTabsOffReopensNothing(t *testing.T) {
	site := tabsSite(t)
	s := Start(t, Options{Env: fastCookies})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	public := site.URL + "/public"
	openTabs(t, ctx, dialTabs(t, ctx, s), []string{public}, []string{public})
	s.Stop()
	if _, err := os.Stat(filepath.Join(s.ProfileDir, ".scry", "tabs.json")); err == nil {
		t.Errorf("tabs.json written with RESTORE_TABS off")
	}

	s2 := Start(t, Options{ProfileDir: s.ProfileDir, Env: fastCookies})
	if s2.HasLog("tabs restored") {
		t.Errorf("tabs restored with RESTORE_TABS off:\n%s", s2.Log())
	}
	ts, err := tabs(ctx, dialTabs(t, ctx, s2))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(urls(ts), public) {
		t.Errorf("with RESTORE_TABS off the tab came back: %q", urls(ts))
	}
}
