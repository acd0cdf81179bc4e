package handoff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBrowser records what the registry asked of Chromium.
type fakeBrowser struct {
	mu        sync.Mutex
	targets   map[string]bool
	opened    []string
	activated chan string
}

func (f *fakeBrowser) HasTarget(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.targets[id], nil
}

func (f *fakeBrowser) NewTab(_ context.Context, u string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, u)
	return "TAB1", nil
}

func (f *fakeBrowser) Activate(_ context.Context, id string) error {
	f.activated <- id
	return nil
}

func newTestRegistry(t *testing.T, log *bytes.Buffer) (*Registry, *fakeBrowser, chan Event) {
	t.Helper()
	fb := &fakeBrowser{targets: map[string]bool{"T1": true}, activated: make(chan string, 4)}
	events := make(chan Event, 16)
	r := New(Config{
		Browser: fb, OnEvent: func(e Event) { events <- e },
		Logger: slog.New(slog.NewTextHandler(log, nil)), MaxOpen: 2,
	})
	t.Cleanup(r.Close)
	return r, fb, events
}

func secretOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

func TestLifecycle(t *testing.T) {
	var log bytes.Buffer
	r, fb, events := newTestRegistry(t, &log)
	v, err := r.Create(context.Background(), Request{Reason: " log in ", TargetID: "T1"}, "http://h:6080/")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != Pending || v.Reason != "log in" || !strings.HasPrefix(v.URL, "http://h:6080/h/") {
		t.Fatalf("created %+v", v)
	}
	if n := len(secretOf(v.URL)); n != 22 { // 128 bits, base64url
		t.Errorf("secret has %d characters, want 22", n)
	}
	if got := v.ExpiresAt.Sub(v.CreatedAt); got != DefaultTimeout {
		t.Errorf("timeout %s, want %s", got, DefaultTimeout)
	}
	if e := <-events; e.Name != "handoff.created" || e.Handoff.URL != v.URL {
		t.Errorf("event %+v", e)
	}

	// A waiter sees the change.
	waited := make(chan View, 1)
	waiting := make(chan struct{})
	r.testWaiting = func() { close(waiting) }
	go func() { w, _ := r.Wait(context.Background(), v.ID, time.Minute); waited <- w }()
	<-waiting
	r.testWaiting = nil

	got, cookie, err := r.openLink(secretOf(v.URL), "")
	if err != nil || cookie == "" || got.State != Active {
		t.Fatalf("open: %+v %q %v", got, cookie, err)
	}
	if w := <-waited; w.State != Active {
		t.Errorf("waiter saw %s", w.State)
	}
	if id := <-fb.activated; id != "T1" {
		t.Errorf("activated %q, want the targetId", id)
	}
	// Spent: another browser gets 410; the same browser (its cookie) gets back in.
	var he *Error
	if _, _, err := r.openLink(secretOf(v.URL), ""); !errors.As(err, &he) || he.Code != http.StatusGone {
		t.Errorf("second open: %v, want 410", err)
	}
	if _, c, err := r.openLink(secretOf(v.URL), cookie); err != nil || c != "" {
		t.Errorf("reopen with the cookie: %q %v", c, err)
	}
	if _, _, err := r.openLink("nope", ""); !errors.As(err, &he) || he.Code != http.StatusNotFound {
		t.Errorf("unknown link: %v, want 404", err)
	}
	if _, err := r.finish(v.ID, "wrong"); !errors.As(err, &he) || he.Code != http.StatusForbidden {
		t.Errorf("done with a wrong cookie: %v", err)
	}
	e, ok := r.byCookie(v.ID, cookie)
	if !ok {
		t.Fatal("cookie not accepted")
	}
	if d, err := r.finish(v.ID, cookie); err != nil || d.State != Done || d.EndedAt == nil {
		t.Fatalf("done: %+v %v", d, err)
	}
	if e.ctx.Err() == nil {
		t.Error("the viewer's context outlived the handoff")
	}
	if _, err := r.Cancel(v.ID); !errors.As(err, &he) || he.Code != http.StatusConflict {
		t.Errorf("cancel after done: %v, want 409", err)
	}
	if _, _, err := r.openLink(secretOf(v.URL), cookie); !errors.As(err, &he) || he.Code != http.StatusGone {
		t.Errorf("link after done: %v, want 410", err)
	}
	for _, want := range []string{"handoff.active", "handoff.done"} {
		if e := <-events; e.Name != want || e.Handoff.URL != "" {
			t.Errorf("event %+v, want %s without the link", e, want)
		}
	}
	if strings.Contains(log.String(), secretOf(v.URL)) || strings.Contains(log.String(), cookie) {
		t.Errorf("a secret is in the log:\n%s", log.String())
	}
	for _, msg := range []string{"handoff created", "handoff active", "handoff done"} {
		if !strings.Contains(log.String(), msg) {
			t.Errorf("no %q line", msg)
		}
	}
}

func TestLimitsAndValidation(t *testing.T) {
	var log bytes.Buffer
	r, fb, _ := newTestRegistry(t, &log)
	ten, nine := 10, 9
	for _, tc := range []struct {
		req  Request
		code int
	}{
		{Request{}, 400},
		{Request{Reason: strings.Repeat("x", 501)}, 400},
		{Request{Reason: "x", TimeoutSeconds: &nine}, 400},
		{Request{Reason: "x", URL: "javascript:alert(1)"}, 400},
		{Request{Reason: "x", TargetID: "missing"}, 400},
		{Request{Reason: "x", TargetID: "../etc"}, 400},
	} {
		var he *Error
		if _, err := r.Create(context.Background(), tc.req, "http://h"); !errors.As(err, &he) || he.Code != tc.code {
			t.Errorf("%+v: %v, want %d", tc.req, err, tc.code)
		}
	}
	a, err := r.Create(context.Background(), Request{Reason: strings.Repeat("é", 500), TimeoutSeconds: &ten, URL: "https://example.com/login"}, "http://h")
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.opened) != 1 || fb.opened[0] != "https://example.com/login" {
		t.Errorf("opened %v", fb.opened)
	}
	if _, err := r.Create(context.Background(), Request{Reason: "b"}, "http://h"); err != nil {
		t.Fatal(err)
	}
	var he *Error
	if _, err := r.Create(context.Background(), Request{Reason: "c"}, "http://h"); !errors.As(err, &he) || he.Code != http.StatusTooManyRequests {
		t.Errorf("third with MaxOpen 2: %v, want 429", err)
	}
	if _, err := r.Cancel(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(context.Background(), Request{Reason: "c"}, "http://h"); err != nil {
		t.Errorf("after a cancel: %v", err)
	}
	if n := r.Open(); n != 2 {
		t.Errorf("open %d, want 2", n)
	}
	if l := r.List(); len(l) != 3 || l[2].State != Cancelled {
		t.Errorf("list %+v", l)
	}
}

func TestAPI(t *testing.T) {
	var log bytes.Buffer
	r, _, _ := newTestRegistry(t, &log)
	api := &API{Registry: r, HumanPort: func() int { return 6080 }}
	srv := httptest.NewServer(api)
	defer srv.Close()
	post := func(body string) (*http.Response, map[string]any) {
		resp, err := http.Post(srv.URL+Prefix, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, m := post(`{"reason":"hi"}`)
	if resp.StatusCode != 201 || !strings.HasPrefix(m["url"].(string), "http://127.0.0.1:6080/h/") {
		t.Fatalf("%d %v", resp.StatusCode, m)
	}
	for body, code := range map[string]int{
		`{"reason":"hi","x":1}`: 400,
		`{"reason":"hi"} {}`:    400,
		`[1]`:                   400,
		`{"reason":"` + strings.Repeat("a", 5000) + `"}`: 413,
	} {
		if resp, m := post(body); resp.StatusCode != code || m["error"] == "" {
			t.Errorf("%.40s: %d %v, want %d", body, resp.StatusCode, m, code)
		}
	}
}

func TestLinkBase(t *testing.T) {
	for host, want := range map[string]string{
		"10.0.0.5:9222": "http://10.0.0.5:6080",
		"[::1]:9222":    "http://[::1]:6080",
		"scry-0.scry":   "http://scry-0.scry:6080",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		if got := LinkBase(r, 6080); got != want {
			t.Errorf("%s: %s, want %s", host, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := (&API{BaseURL: "https://scry.example.com/p/"}).LinkBase(r); got != "https://scry.example.com/p" {
		t.Errorf("base URL: %s", got)
	}
}

func TestNotificationText(t *testing.T) {
	v := View{ID: "h_1", URL: "https://x/h/s", Reason: "log in <now> & then", ExpiresAt: time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)}
	n := NewNotification(Event{Name: "handoff.created", Handoff: v})
	if !strings.Contains(n.Text, "https://x/h/s") || !strings.Contains(n.Text, "&lt;now&gt; &amp; then") || n.Event != "handoff.created" {
		t.Errorf("created text %q", n.Text)
	}
	if n := NewNotification(Event{Name: "handoff.done", Handoff: View{ID: "h_1", Reason: "r"}}); !strings.Contains(n.Text, "done") {
		t.Errorf("done text %q", n.Text)
	}
}
