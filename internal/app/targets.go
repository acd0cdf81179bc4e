package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdp"
)

// targetURLs keeps the URL of every target Chromium reports on scry's own
// connection (Target.setDiscoverTargets), for the agent door: an agent
// may not act on a page that is not a web page (cdprole.Policy.PageURL),
// and a tab changes what it shows when a person navigates it.
type targetURLs struct {
	addr string // Chromium's DevTools address, for History

	mu    sync.Mutex
	urls  map[string]string
	types map[string]string
}

// maxTargets bounds the map; Chromium forgets closed targets, and so does
// this (Target.targetDestroyed).
const maxTargets = 1 << 16

func newTargetURLs(addr string) *targetURLs {
	return &targetURLs{addr: addr, urls: map[string]string{}, types: map[string]string{}}
}

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
			ID   string `json:"targetId"`
			Type string `json:"type"`
			URL  string `json:"url"`
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
		delete(t.types, p.TargetID)
		return
	}
	if _, known := t.urls[p.TargetInfo.ID]; known || len(t.urls) < maxTargets {
		t.urls[p.TargetInfo.ID] = p.TargetInfo.URL
		t.types[p.TargetInfo.ID] = p.TargetInfo.Type
	}
}

// forget empties the map: a new connection's discovery reports every
// target again (after a redial some may have gone meanwhile).
func (t *targetURLs) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.urls)
	clear(t.types)
}

// historyTimeout bounds asking a tab for its history.
const historyTimeout = 5 * time.Second

// History returns the URLs in the history of the tab targetID is, asked
// of the tab itself over its own DevTools WebSocket. Targets that are not
// tabs (frames, workers) have no history of their own: none.
func (t *targetURLs) History(targetID string) ([]string, error) {
	t.mu.Lock()
	typ, known := t.types[targetID]
	t.mu.Unlock()
	if known && typ != "page" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	c, err := cdp.Dial(ctx, "ws://"+t.addr+"/devtools/page/"+url.PathEscape(targetID))
	if err != nil {
		return nil, fmt.Errorf("reach the tab: %w", err)
	}
	defer c.Close()
	var h struct {
		Entries []struct {
			URL string `json:"url"`
		} `json:"entries"`
	}
	if err := c.Call(ctx, "Page.getNavigationHistory", nil, &h); err != nil {
		return nil, err
	}
	urls := make([]string, 0, len(h.Entries))
	for _, e := range h.Entries {
		urls = append(urls, e.URL)
	}
	return urls, nil
}
