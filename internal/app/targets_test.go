package app

import (
	"encoding/json"
	"errors"
	"testing"
)

func info(id, typ, u string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"targetInfo": map[string]string{"targetId": id, "type": typ, "url": u}})
	return b
}

// A tab's history is read once, the first time an agent's command asks;
// from then on the discovery events keep the answer: a browser page the
// tab shows later marks it for good, even once it shows a web page again.
// A tab that goes and comes back is read again; so is every tab after a
// redial (events may have been missed). Frames and workers are not tabs.
func TestBrowserPageShown(t *testing.T) {
	tu := newTargetURLs("127.0.0.1:1")
	reads := map[string]int{}
	histories := map[string][]string{
		"clean":    {"about:blank", "https://a.example/"},
		"restored": {"chrome://settings/", "https://a.example/"},
	}
	tu.history = func(id string) ([]string, error) {
		reads[id]++
		h, ok := histories[id]
		if !ok {
			return nil, errors.New("no such tab")
		}
		return h, nil
	}
	tu.note("Target.targetCreated", info("clean", "page", "https://a.example/"))
	tu.note("Target.targetCreated", info("restored", "page", "https://a.example/"))
	tu.note("Target.targetCreated", info("frame", "iframe", "https://b.example/"))
	tu.watching()

	ask := func(id, want string) {
		t.Helper()
		got, err := tu.BrowserPageShown(id)
		if err != nil || got != want {
			t.Errorf("BrowserPageShown(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	ask("clean", "")
	ask("clean", "")
	ask("restored", "chrome://settings/")
	ask("frame", "")
	if reads["clean"] != 1 || reads["restored"] != 1 || reads["frame"] != 0 {
		t.Errorf("history reads %v, want one per tab and none for the frame", reads)
	}

	// A person takes the clean tab to the settings and back.
	tu.note("Target.targetInfoChanged", info("clean", "page", "chrome://settings/"))
	tu.note("Target.targetInfoChanged", info("clean", "page", "https://a.example/next"))
	ask("clean", "chrome://settings/")
	if reads["clean"] != 1 {
		t.Errorf("the clean tab's history read %d times, want once: the events tell the rest", reads["clean"])
	}

	if _, err := tu.BrowserPageShown("unknown"); err == nil {
		t.Error("a tab whose history cannot be read: no error")
	}
	tu.note("Target.targetDestroyed", json.RawMessage(`{"targetId":"clean"}`))
	tu.note("Target.targetCreated", info("clean", "page", "https://a.example/"))
	ask("clean", "")
	// The connection is lost: until a new watch is up, every ask reads
	// the history (navigations go unseen meanwhile).
	tu.forget()
	tu.note("Target.targetCreated", info("clean", "page", "https://a.example/"))
	ask("clean", "")
	ask("clean", "")
	if reads["clean"] != 4 {
		t.Errorf("the clean tab's history read %d times, want 4 (again after it went, at each ask while not watching)", reads["clean"])
	}
	tu.watching()
	ask("clean", "")
	ask("clean", "")
	if reads["clean"] != 5 {
		t.Errorf("the clean tab's history read %d times, want 5 (once more when watching again)", reads["clean"])
	}
}

// A history read that the loss of the watch overtook answers that one
// ask, and is not kept as the tab's mark.
func TestBrowserPageShownReadOvertakenByALoss(t *testing.T) {
	tu := newTargetURLs("127.0.0.1:1")
	reads := 0
	tu.history = func(string) ([]string, error) {
		reads++
		if reads == 1 {
			tu.forget()
			tu.note("Target.targetCreated", info("tab", "page", "https://a.example/"))
			tu.watching()
		}
		return []string{"https://a.example/"}, nil
	}
	tu.note("Target.targetCreated", info("tab", "page", "https://a.example/"))
	tu.watching()
	for range 2 {
		if u, err := tu.BrowserPageShown("tab"); u != "" || err != nil {
			t.Fatalf("BrowserPageShown = %q, %v", u, err)
		}
	}
	if reads != 2 {
		t.Errorf("%d history reads, want 2: the first, overtaken, is not kept", reads)
	}
}

// A read begun while the watch was not yet up is not kept when the watch
// comes up during it: a navigation in between went unseen.
func TestBrowserPageShownReadBeforeTheWatch(t *testing.T) {
	tu := newTargetURLs("127.0.0.1:1")
	reads := 0
	tu.history = func(string) ([]string, error) {
		reads++
		if reads == 1 {
			tu.watching()
		}
		return []string{"https://a.example/"}, nil
	}
	tu.note("Target.targetCreated", info("tab", "page", "https://a.example/"))
	for range 2 {
		if u, err := tu.BrowserPageShown("tab"); u != "" || err != nil {
			t.Fatalf("BrowserPageShown = %q, %v", u, err)
		}
	}
	if reads != 2 {
		t.Errorf("%d history reads, want 2: the first began before the watch was up", reads)
	}
}
