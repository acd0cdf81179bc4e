package app

import (
	"encoding/json"
	"sync"
)

// targetURLs keeps the URL of every target Chromium reports on scry's own
// connection (Target.setDiscoverTargets), for the agent door: an agent
// may not act on a page that is not a web page (cdprole.Policy.PageURL),
// and a tab changes what it shows when a person navigates it.
type targetURLs struct {
	mu   sync.Mutex
	urls map[string]string
}

// maxTargets bounds the map; Chromium forgets closed targets, and so does
// this (Target.targetDestroyed).
const maxTargets = 1 << 16

func newTargetURLs() *targetURLs { return &targetURLs{urls: map[string]string{}} }

// URL returns targetID's URL, if scry has heard of the target.
func (t *targetURLs) URL(targetID string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.urls[targetID]
	return u, ok
}

// note runs on the connection's reader: it never blocks.
func (t *targetURLs) note(method string, params json.RawMessage) {
	var p struct {
		TargetID   string `json:"targetId"`
		TargetInfo struct {
			ID  string `json:"targetId"`
			URL string `json:"url"`
		} `json:"targetInfo"`
	}
	switch method {
	case "Target.targetCreated", "Target.targetInfoChanged", "Target.targetDestroyed":
	default:
		return
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if method == "Target.targetDestroyed" {
		delete(t.urls, p.TargetID)
		return
	}
	if _, known := t.urls[p.TargetInfo.ID]; known || len(t.urls) < maxTargets {
		t.urls[p.TargetInfo.ID] = p.TargetInfo.URL
	}
}

// forget empties the map: a new connection's discovery reports every
// target again (after a redial some may have gone meanwhile).
func (t *targetURLs) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.urls)
}
