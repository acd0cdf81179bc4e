package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdp"
	"github.com/dataplanelabs/scry/internal/cdprole"
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
	// shown is, per tab, a page of the browser's own it has shown since
	// scry read its history (checked): history.back() from the tab's
	// page goes back there.
	shown   map[string]string
	checked map[string]bool
	// live is set while discovery is subscribed on a connection that is
	// up: only then do the events tell every navigation, and a tab's
	// mark can be trusted without reading its history again. gen counts
	// the losses, so a read begun before one is not trusted after it.
	live bool
	gen  uint64

	// history reads a tab's history; History in production.
	history func(targetID string) ([]string, error)
}

// maxTargets bounds the map; Chromium forgets closed targets, and so does
// this (Target.targetDestroyed).
const maxTargets = 1 << 16

func newTargetURLs(addr string) *targetURLs {
	t := &targetURLs{addr: addr, urls: map[string]string{}, types: map[string]string{},
		shown: map[string]string{}, checked: map[string]bool{}}
	t.history = t.History
	return t
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
	id := p.TargetInfo.ID
	if method == "Target.targetDestroyed" {
		id = p.TargetID
		delete(t.urls, id)
		delete(t.types, id)
		delete(t.shown, id)
		delete(t.checked, id)
		return
	}
	if _, known := t.urls[id]; known || len(t.urls) < maxTargets {
		t.urls[id] = p.TargetInfo.URL
		t.types[id] = p.TargetInfo.Type
		if _, ok := t.shown[id]; !ok && !cdprole.WebPage(p.TargetInfo.URL) {
			t.shown[id] = p.TargetInfo.URL
		}
	}
}

// BrowserPageShown returns a page of the browser's own (chrome://settings,
// a New Tab page) that the tab targetID has shown, "" if none: its page
// can go back there (history.back()), and what an agent starts there runs
// with that page's powers, before scry hears of the navigation. The tab's
// history is read the first time it is asked about; after that, the
// discovery events keep the answer, since a tab only gains history by
// navigating, which they report. Targets that are not tabs have none.
func (t *targetURLs) BrowserPageShown(targetID string) (string, error) {
	t.mu.Lock()
	typ, known := t.types[targetID]
	u, checked := t.shown[targetID], t.checked[targetID] && t.live
	gen := t.gen
	t.mu.Unlock()
	if known && typ != "page" || checked {
		return u, nil
	}
	urls, err := t.history(targetID)
	if err != nil {
		return "", fmt.Errorf("read the tab's history: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	first := ""
	for _, h := range urls {
		if first == "" && !cdprole.WebPage(h) {
			first = h
		}
	}
	if t.gen != gen || !t.live {
		// The watch was lost meanwhile, or is not up: this read is the
		// answer, and is not kept.
		return cmp.Or(t.shown[targetID], first), nil
	}
	if _, ok := t.shown[targetID]; !ok && first != "" {
		t.shown[targetID] = first
	}
	if _, live := t.urls[targetID]; live {
		t.checked[targetID] = true
	}
	return t.shown[targetID], nil
}

// watching says discovery is subscribed on a connection that is up.
func (t *targetURLs) watching() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live = true
	// A read begun before the watch was up may have missed a navigation.
	t.gen++
}

// forget empties the maps when the connection is lost and before a new
// one's discovery reports every target again (after a redial some may
// have gone meanwhile, and navigations went unseen).
func (t *targetURLs) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live = false
	t.gen++
	clear(t.urls)
	clear(t.types)
	// Navigations may have gone unseen meanwhile: histories are read
	// again.
	clear(t.shown)
	clear(t.checked)
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
