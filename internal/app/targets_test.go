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
	tu.forget()
	tu.note("Target.targetCreated", info("clean", "page", "https://a.example/"))
	ask("clean", "")
	if reads["clean"] != 3 {
		t.Errorf("the clean tab's history read %d times, want 3 (again after it went, again after the redial)", reads["clean"])
	}
}
