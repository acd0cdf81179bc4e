package cookies

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/profile"
)

// TabsFileName is the tab list's path inside PROFILE_DIR.
var TabsFileName = filepath.Join(profile.StateDir, "tabs.json")

// maxTabsFile bounds the tab list scry reads back.
const maxTabsFile = 4 << 20

type tabsFile struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	URLs    []string  `json:"urls"`
}

// Tabs records the URLs of the browser's open tabs, in order, with each
// cookie snapshot (RESTORE_TABS=on) and reopens them at the next start,
// after the cookies are back, so they load logged in. The file sits next
// to the cookie snapshot and is as sensitive: a URL may carry a token.
type Tabs struct {
	store *Store
	// allowFile records file: URLs too (ALLOW_FILE_URLS=on).
	allowFile bool

	mu   sync.Mutex
	last []string // the list on disk; nil before it is known
	// opened numbers the tabs (by target id) in the order they were
	// opened: Target.getTargets answers in no useful order (roughly
	// the most recently active first).
	opened map[string]uint64
	seq    uint64
}

// NewTabs returns the tab list kept beside store's snapshot.
func NewTabs(store *Store, allowFile bool) *Tabs {
	return &Tabs{store: store, allowFile: allowFile, opened: map[string]uint64{}}
}

// Created notes a new tab, in the order the browser reports them
// (Target.targetCreated). A tab noted already keeps its place.
func (t *Tabs) Created(targetID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.note(targetID)
}

// note is Created with t.mu held.
func (t *Tabs) note(id string) {
	if _, ok := t.opened[id]; !ok {
		t.seq++
		t.opened[id] = t.seq
	}
}

// inOrder sorts ps in the order the tabs were opened; a tab not noted
// before goes last, and the ids of closed tabs are forgotten. Called with
// t.mu held.
func (t *Tabs) inOrder(ps []targetInfo) {
	live := map[string]bool{}
	for _, p := range ps {
		t.note(p.TargetID)
		live[p.TargetID] = true
	}
	for id := range t.opened {
		if !live[id] {
			delete(t.opened, id)
		}
	}
	slices.SortStableFunc(ps, func(a, b targetInfo) int { return cmp.Compare(t.opened[a.TargetID], t.opened[b.TargetID]) })
}

// Path is the tab list's file.
func (t *Tabs) Path() string { return filepath.Join(t.store.dir, TabsFileName) }

type targetInfo struct {
	TargetID string `json:"targetId"`
	Type     string `json:"type"`
	Subtype  string `json:"subtype"`
	URL      string `json:"url"`
}

// pages lists the browser's tabs in the order Chromium reports them.
func pages(ctx context.Context, c Caller) ([]targetInfo, error) {
	var res struct {
		TargetInfos []targetInfo `json:"targetInfos"`
	}
	if err := c.Call(ctx, "Target.getTargets", nil, &res); err != nil {
		return nil, err
	}
	var out []targetInfo
	for _, ti := range res.TargetInfos {
		// A prerendered page has a subtype; a page of the browser's own
		// UI (chrome://omnibox-popup.top-chrome, listed before the start
		// tab) is no tab either.
		if ti.Type == "page" && ti.Subtype == "" && !browserUI(ti.URL) {
			out = append(out, ti)
		}
	}
	return out, nil
}

// browserUI reports whether u is a page of Chromium's own window (its
// WebUI hosts end in ".top-chrome"), not a tab.
func browserUI(u string) bool {
	rest, ok := strings.CutPrefix(u, "chrome://")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	return strings.HasSuffix(host, ".top-chrome")
}

// keep reports whether a tab's URL is worth reopening: web pages, and
// file: ones only where the browser may open them. Blank and new-tab
// pages, chrome: and devtools: pages, data: and blob: URLs are not.
func (t *Tabs) keep(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "file":
		return t.allowFile
	}
	return false
}

// blank reports whether a tab shows nothing of its own: the page Chromium
// starts with (a new-tab page, which the build or a search policy may
// name chrome://new-tab-page-third-party, say) or a blank one.
func blank(raw string) bool {
	switch {
	case raw == "", raw == "about:blank",
		strings.HasPrefix(raw, "chrome://newtab"), strings.HasPrefix(raw, "chrome://new-tab-page"),
		strings.HasPrefix(raw, "chrome-search://"):
		return true
	}
	return false
}

// Record reads the open tabs' URLs and writes them if they changed since
// the last write. It reports whether it wrote.
func (t *Tabs) Record(ctx context.Context, c Caller) (bool, error) {
	ps, err := pages(ctx, c)
	if err != nil {
		return false, fmt.Errorf("record tabs: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inOrder(ps)
	urls := []string{}
	for _, p := range ps {
		if t.keep(p.URL) {
			urls = append(urls, p.URL)
		}
	}
	if t.last != nil && slices.Equal(t.last, urls) {
		return false, nil
	}
	if err := t.write(urls); err != nil {
		return false, fmt.Errorf("record tabs: %w", err)
	}
	t.last = urls
	return true, nil
}

func (t *Tabs) write(urls []string) error {
	data, err := json.MarshalIndent(tabsFile{Version: 1, Saved: time.Now().UTC(), URLs: urls}, "", " ")
	if err != nil {
		return err
	}
	pd, err := t.store.profileDir()
	if err != nil {
		return err
	}
	if err := pd.MkdirAll(profile.StateDir, 0o700); err != nil {
		return err
	}
	return pd.WriteFileAtomic(TabsFileName, data, 0o600, t.store.uid, t.store.gid)
}

// read returns the recorded URLs: nil when there is no list, and nil,
// with the file moved aside, when it cannot be read.
func (t *Tabs) read() ([]string, error) {
	pd, err := t.store.profileDir()
	if err != nil {
		return nil, err
	}
	data, err := pd.ReadFile(TabsFileName, maxTabsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var f tabsFile
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		if err = dec.Decode(&f); err == nil && f.Version != 1 {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
	}
	if err != nil {
		name := fmt.Sprintf("%s.corrupt-%s", TabsFileName, time.Now().UTC().Format("20060102T150405Z"))
		rerr := pd.Rename(TabsFileName, name)
		t.store.log.Error("tab list unreadable; no tabs restored", "file", t.Path(), "err", err, "moved_to", name, "rename_err", rerr)
		return nil, nil
	}
	return f.URLs, nil
}

// Restore opens the recorded URLs, in order, as new tabs. A URL already
// open (Chromium restored its own session, say) is not opened twice. If
// it opened any, it closes the blank tabs Chromium started with and waits
// until Chromium no longer lists them. It returns how many tabs it opened.
func (t *Tabs) Restore(ctx context.Context, c Caller) (int, error) {
	urls, err := t.read()
	if err != nil {
		return 0, fmt.Errorf("restore tabs: %w", err)
	}
	if len(urls) == 0 {
		t.mu.Lock()
		t.last = urls
		t.mu.Unlock()
		return 0, nil
	}
	before, err := startPages(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("restore tabs: %w", err)
	}
	t.mu.Lock()
	t.inOrder(before)
	t.mu.Unlock()
	open := map[string]int{}
	var blanks []string
	for _, p := range before {
		open[p.URL]++
		if blank(p.URL) {
			blanks = append(blanks, p.TargetID)
		}
	}
	opened := 0
	for _, u := range urls {
		if open[u] > 0 {
			open[u]--
			continue
		}
		var res struct {
			TargetID string `json:"targetId"`
		}
		if err := c.Call(ctx, "Target.createTarget", map[string]any{"url": u}, &res); err != nil {
			t.store.log.Warn("a recorded tab could not be reopened", "err", err)
			t.store.log.Debug("tab not reopened", "url", u)
			continue
		}
		t.Created(res.TargetID)
		t.store.log.Debug("tab reopened", "url", u)
		opened++
	}
	if opened > 0 && len(blanks) > 0 {
		if err := closeTabs(ctx, c, blanks); err != nil {
			t.store.log.Warn("the blank start tab could not be closed", "err", err)
		}
	}
	// The list stays on disk until the tabs differ from it: a restart
	// before the pages loaded reopens the same ones.
	t.mu.Lock()
	t.last = urls
	t.mu.Unlock()
	return opened, nil
}

// closeWait bounds how long closeTabs waits for Chromium to close a tab.
const closeWait = 5 * time.Second

// closeTabs closes the tabs ids and waits until Chromium no longer lists
// them. Target.closeTarget answers before the tab is gone: without the
// wait, the doors opened with the start tab still listed (one start in
// five here). A tab still listed half a second later is asked again.
func closeTabs(ctx context.Context, c Caller, ids []string) error {
	deadline := time.NewTimer(closeWait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	left := slices.Clone(ids)
	var asked time.Time
	for {
		if time.Since(asked) >= 500*time.Millisecond {
			for _, id := range left {
				// An error here is a tab already gone; the listing below decides.
				_ = c.Call(ctx, "Target.closeTarget", map[string]any{"targetId": id}, nil)
			}
			asked = time.Now()
		}
		ps, err := pages(ctx, c)
		if err != nil {
			return err
		}
		left = slices.DeleteFunc(left, func(id string) bool {
			return !slices.ContainsFunc(ps, func(p targetInfo) bool { return p.TargetID == id })
		})
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%d tab(s) still open after %s", len(left), closeWait)
		case <-tick.C:
		}
	}
}

// startTabWait bounds how long Restore waits for the tab Chromium opens at
// launch: a loaded machine lists it a moment after DevTools answers, and
// a start tab that appears only after the restore would stay open.
const startTabWait = 5 * time.Second

// startPages returns the page targets once Chromium lists at least one
// (its start tab, or the pages its own session restore opened), or what
// it lists when startTabWait has passed.
func startPages(ctx context.Context, c Caller) ([]targetInfo, error) {
	deadline := time.NewTimer(startTabWait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ps, err := pages(ctx, c)
		if err != nil || len(ps) > 0 {
			return ps, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return ps, nil
		case <-tick.C:
		}
	}
}

// ForgetTabs removes the tab list a run with RESTORE_TABS=on left behind,
// so that turning the option on again later never reopens stale tabs
// (their URLs may carry tokens).
func ForgetTabs(store *Store) error {
	pd, err := store.profileDir()
	if err != nil {
		return err
	}
	if err := pd.Remove(TabsFileName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
