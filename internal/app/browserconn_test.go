package app

import (
	"encoding/json"
	"testing"
)

// Only a page or frame whose URL changed nudges the cookie snapshot; the
// events' other traffic (titles, workers, new blank tabs) does not.
func TestNavigationEvents(t *testing.T) {
	info := func(id, typ, url string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"targetInfo": map[string]any{"targetId": id, "type": typ, "url": url, "title": "t"}})
		return b
	}
	steps := []struct {
		method string
		params json.RawMessage
		nudge  bool
	}{
		{"Target.targetCreated", info("A", "page", "about:blank"), false},
		{"Target.targetInfoChanged", info("A", "page", "about:blank"), false}, // a title change
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/login"), true},
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/home"), true}, // the redirect after it
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/home"), false},
		{"Target.targetInfoChanged", info("W", "service_worker", "https://a.example/sw.js"), false},
		{"Target.targetInfoChanged", info("F", "iframe", "https://idp.example/"), true}, // not seen created
		{"Target.targetDestroyed", json.RawMessage(`{"targetId":"A"}`), false},
		{"Target.targetInfoChanged", info("A", "page", "https://a.example/home"), true}, // a new target under that id
		{"Target.attachedToTarget", json.RawMessage(`{}`), false},
		{"Target.targetInfoChanged", json.RawMessage(`not json`), false},
	}
	b := &browserConn{urls: map[string]string{}}
	nav := make(chan struct{}, 1)
	for i, st := range steps {
		b.onEvent(nav, st.method, st.params)
		got := false
		select {
		case <-nav:
			got = true
		default:
		}
		if got != st.nudge {
			t.Errorf("step %d (%s %s): nudged %v, want %v", i, st.method, st.params, got, st.nudge)
		}
	}
}
