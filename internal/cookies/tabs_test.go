package cookies

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// browserTabs is a fake browser's target list answering Target.getTargets
// (most recently opened first, as Chromium's order is no tab order),
// createTarget and closeTarget.
type browserTabs struct {
	targets []targetInfo
	next    int
	created []string
	closed  []string
	// lists counts Target.getTargets; at the listing startsAt the start
	// tab (startTab) appears, as on a loaded machine.
	lists, startsAt int
	startTab        string
	// closeLag is how many listings a tab stays listed after
	// Target.closeTarget answered; dropCloses is how many closeTarget
	// calls Chromium acknowledges and ignores.
	closeLag, dropCloses int
	closing              map[string]int
}

func (b *browserTabs) add(typ, u string) {
	b.next++
	b.targets = append(b.targets, targetInfo{TargetID: fmt.Sprint("T", b.next), Type: typ, URL: u})
}

func (b *browserTabs) Call(ctx context.Context, method string, params, result any) error {
	p, _ := json.Marshal(params)
	var in struct {
		URL      string `json:"url"`
		TargetID string `json:"targetId"`
	}
	_ = json.Unmarshal(p, &in)
	switch method {
	case "Target.getTargets":
		b.lists++
		if b.startTab != "" && b.lists == b.startsAt {
			b.add("page", b.startTab)
		}
		for id, at := range b.closing {
			if b.lists >= at {
				b.targets = slices.DeleteFunc(b.targets, func(t targetInfo) bool { return t.TargetID == id })
				delete(b.closing, id)
			}
		}
		ts := slices.Clone(b.targets)
		slices.Reverse(ts)
		out, _ := json.Marshal(map[string]any{"targetInfos": ts})
		return json.Unmarshal(out, result)
	case "Target.createTarget":
		b.created = append(b.created, in.URL)
		b.add("page", in.URL)
		out, _ := json.Marshal(map[string]any{"targetId": b.targets[len(b.targets)-1].TargetID})
		return json.Unmarshal(out, result)
	case "Target.closeTarget":
		b.closed = append(b.closed, in.TargetID)
		if b.dropCloses > 0 {
			b.dropCloses--
			return nil
		}
		if b.closing == nil {
			b.closing = map[string]int{}
		}
		b.closing[in.TargetID] = b.lists + b.closeLag
	default:
		return fmt.Errorf("unexpected %s", method)
	}
	return nil
}

func (b *browserTabs) urls() []string {
	var u []string
	for _, t := range b.targets {
		if t.Type == "page" {
			u = append(u, t.URL)
		}
	}
	return u
}

func TestTabsRecordAndRestore(t *testing.T) {
	store, dir := newStore(t)
	tabs := NewTabs(store, false)
	b := &browserTabs{}
	b.add("page", "https://a.example/inbox?x=1")
	b.add("page", "chrome://newtab/")
	b.add("service_worker", "https://a.example/sw.js")
	b.add("page", "devtools://devtools/bundled/inspector.html")
	b.add("page", "file:///etc/passwd")
	b.add("page", "about:blank")
	b.add("page", "http://127.0.0.1:8080/b")
	b.targets = append(b.targets, targetInfo{TargetID: "P", Type: "page", Subtype: "prerender", URL: "https://a.example/next"})
	// The browser reports each tab as it opens.
	for _, tg := range b.targets {
		tabs.Created(tg.TargetID)
	}

	wrote, err := tabs.Record(context.Background(), b)
	if err != nil || !wrote {
		t.Fatalf("Record = %v, %v; want a write", wrote, err)
	}
	fi, err := os.Stat(tabs.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("tabs.json mode %v, want 0600", fi.Mode().Perm())
	}
	if wrote, err := tabs.Record(context.Background(), b); err != nil || wrote {
		t.Errorf("unchanged tabs: Record = %v, %v; want no write", wrote, err)
	}

	// The next start: Chromium opened its new-tab page.
	store2 := New(dir, store.log, -1, -1)
	tabs2 := NewTabs(store2, false)
	b2 := &browserTabs{}
	b2.add("page", "chrome://new-tab-page-third-party/")
	n, err := tabs2.Restore(context.Background(), b2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.example/inbox?x=1", "http://127.0.0.1:8080/b"}
	if n != 2 || !slices.Equal(b2.urls(), want) {
		t.Errorf("Restore opened %d; tabs %q, want %q", n, b2.urls(), want)
	}
	// Nothing changed since (and the order is the one they opened in,
	// whatever order Target.getTargets answers in): no rewrite.
	if wrote, err := tabs2.Record(context.Background(), b2); err != nil || wrote {
		t.Errorf("after the restore: Record = %v, %v; want no write", wrote, err)
	}
}

// On a loaded machine Chromium lists its own omnibox popup (a page of its
// window, not a tab) before its start tab: the restore waits for the start
// tab and closes it (TestRestoreTabsReopensThemLoggedIn failed once).
func TestTabsRestoreWaitsForTheStartTabPastTheBrowsersOwnPages(t *testing.T) {
	store, dir := newStore(t)
	b := &browserTabs{}
	b.add("page", "https://a.example/inbox")
	if _, err := NewTabs(store, false).Record(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b2 := &browserTabs{startsAt: 3, startTab: "chrome://new-tab-page-third-party/"}
	b2.add("page", "chrome://omnibox-popup.top-chrome/")
	b2.add("page", "chrome://omnibox-popup.top-chrome/omnibox_popup_aim.html")
	n, err := NewTabs(New(dir, store.log, -1, -1), false).Restore(context.Background(), b2)
	if err != nil || n != 1 {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	if b2.lists < b2.startsAt {
		b2.add("page", b2.startTab) // it comes anyway, after the restore
	}
	want := []string{"chrome://omnibox-popup.top-chrome/", "chrome://omnibox-popup.top-chrome/omnibox_popup_aim.html", "https://a.example/inbox"}
	if got := b2.urls(); !slices.Equal(got, want) {
		t.Errorf("pages %q, want %q (the start tab closed, the browser's own pages left alone)", got, want)
	}
}

// Target.closeTarget answers before the tab is gone, and a close may be
// lost: Restore returns only once the start tab is no longer listed, so
// the doors never open with it still there (TestRestoreTabsReopensThemLoggedIn
// saw it in CI, and one start in five did here).
func TestTabsRestoreWaitsUntilTheStartTabIsGone(t *testing.T) {
	for _, tc := range []struct {
		name           string
		lag, drop      int
		wantCloseCalls int
	}{
		{"closed at once", 0, 0, 1},
		{"closed a few listings later", 4, 0, 1},
		{"first close lost", 0, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, dir := newStore(t)
			b := &browserTabs{}
			b.add("page", "https://a.example/inbox")
			if _, err := NewTabs(store, false).Record(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			b2 := &browserTabs{closeLag: tc.lag, dropCloses: tc.drop}
			b2.add("page", "chrome://new-tab-page-third-party/")
			n, err := NewTabs(New(dir, store.log, -1, -1), false).Restore(context.Background(), b2)
			if err != nil || n != 1 {
				t.Fatalf("Restore = %d, %v", n, err)
			}
			if got, want := b2.urls(), []string{"https://a.example/inbox"}; !slices.Equal(got, want) {
				t.Errorf("when Restore returned the pages were %q, want %q", got, want)
			}
			// At least: a slow machine may ask again before the lagging
			// close shows.
			if len(b2.closed) < tc.wantCloseCalls {
				t.Errorf("closeTarget called %d times (%q), want at least %d", len(b2.closed), b2.closed, tc.wantCloseCalls)
			}
		})
	}
}

func TestTabsRestoreKeepsWhatTheProfileOpened(t *testing.T) {
	store, _ := newStore(t)
	tabs := NewTabs(store, true)
	b := &browserTabs{}
	b.add("page", "https://a.example/")
	b.add("page", "file:///tmp/x.html")
	if _, err := tabs.Record(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	// Chromium restored the first tab itself: only the second opens, and
	// the restored tab stays.
	b2 := &browserTabs{}
	b2.add("page", "https://a.example/")
	n, err := NewTabs(New(store.dir, store.log, -1, -1), true).Restore(context.Background(), b2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !slices.Equal(b2.created, []string{"file:///tmp/x.html"}) || len(b2.closed) != 0 {
		t.Errorf("opened %d (%q), closed %q; want only the file: tab opened, nothing closed", n, b2.created, b2.closed)
	}
}

func TestTabsNoneRecordedOpensNothing(t *testing.T) {
	store, _ := newStore(t)
	b := &browserTabs{}
	b.add("page", "about:blank")
	n, err := NewTabs(store, false).Restore(context.Background(), b)
	if err != nil || n != 0 || len(b.created)+len(b.closed) != 0 {
		t.Errorf("Restore = %d, %v; created %q closed %q; want nothing", n, err, b.created, b.closed)
	}
}

func TestTabsCorruptFileSetAside(t *testing.T) {
	store, dir := newStore(t)
	tabs := NewTabs(store, false)
	if err := os.MkdirAll(dir+"/.scry", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tabs.Path(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &browserTabs{}
	n, err := tabs.Restore(context.Background(), b)
	if err != nil || n != 0 {
		t.Fatalf("Restore = %d, %v; want 0, nil", n, err)
	}
	entries, _ := os.ReadDir(dir + "/.scry")
	aside := false
	for _, e := range entries {
		aside = aside || strings.HasPrefix(e.Name(), "tabs.json.corrupt-")
	}
	if !aside {
		t.Errorf("corrupt tab list not moved aside: %v", entries)
	}
}

// With RESTORE_TABS off, an old tab list goes: turning the option on again
// later must not reopen stale tabs. No list, or no .scry, is no error.
func TestForgetTabs(t *testing.T) {
	store, dir := newStore(t)
	if err := ForgetTabs(store); err != nil {
		t.Fatalf("ForgetTabs with no .scry: %v", err)
	}
	tabs := NewTabs(store, false)
	if err := os.MkdirAll(dir+"/.scry", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := ForgetTabs(store); err != nil {
		t.Fatalf("ForgetTabs with no list: %v", err)
	}
	if err := os.WriteFile(tabs.Path(), []byte(`{"version":1,"urls":["https://example.com/?token=x"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ForgetTabs(store); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tabs.Path()); !os.IsNotExist(err) {
		t.Errorf("tab list still there after ForgetTabs: %v", err)
	}
}
