// Package cookies keeps the browser's cookies across restarts.
//
// Session cookies (no expiry) live only in Chromium's memory: any restart,
// clean or not, loses them, and with them many logins. Persistent cookies
// reach the profile's database only when Chromium flushes it (about every
// 30 s), so a hard kill loses the latest ones. scry snapshots the cookie jar
// over CDP into a file in the profile (periodically and soon after a page
// navigates) and, at the next start and before any agent connects, puts
// back the session cookies, the persistent cookies the profile lost, and,
// when the snapshot is newer than the profile's database or the snapshots
// saw the profile's value go, the ones it holds stale. The file is as
// sensitive as the profile.
package cookies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/profile"
)

// FileName is the snapshot's path inside PROFILE_DIR.
var FileName = filepath.Join(profile.StateDir, "cookies.json")

// Caller is the part of a CDP connection the store needs.
type Caller interface {
	Call(ctx context.Context, method string, params, result any) error
}

// Cookie is a CDP Network.Cookie kept as raw fields, so that whatever
// Chromium reports (partition keys, source scheme and port) survives the
// round trip.
type Cookie map[string]json.RawMessage

func (c Cookie) str(k string) string {
	var s string
	_ = json.Unmarshal(c[k], &s)
	return s
}

func (c Cookie) session() bool {
	var b bool
	_ = json.Unmarshal(c["session"], &b)
	return b
}

// key identifies a cookie the way the cookie store does.
func (c Cookie) key() string {
	return c.str("name") + "\x00" + c.str("domain") + "\x00" + c.str("path") + "\x00" + canonical(c["partitionKey"])
}

// canonical is raw JSON in one spelling whatever its layout or key order:
// the snapshot file is indented, Chromium's answers are compact, and a
// partition key (an object) must compare equal across the two.
func canonical(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// paramFields are the Cookie fields Storage.setCookies accepts back. The
// domain goes back as Chromium reported it: without a leading dot it names
// a host-only cookie, and Chromium's CDP handler sets it host-only (it drops
// such a domain and takes the host, with https for a Secure cookie, as the
// cookie's URL), so __Host- cookies are accepted too. Playwright and
// Puppeteer rely on the same rule; TestHostOnlyCookiesComeBackHostOnly in
// the integration tests checks it on the real browser.
var paramFields = []string{"name", "value", "domain", "path", "secure", "httpOnly", "sameSite",
	"priority", "sourceScheme", "sourcePort", "partitionKey"}

func (c Cookie) param() map[string]json.RawMessage {
	p := map[string]json.RawMessage{}
	for _, f := range paramFields {
		if v, ok := c[f]; ok {
			p[f] = v
		}
	}
	if !c.session() {
		p["expires"] = c["expires"]
	}
	return p
}

// removal is the Storage.setCookies parameter that deletes c: the cookie
// itself, expired. Chromium deletes the cookie it is equivalent to (same
// name, domain, path and partition), as a Set-Cookie with a past expiry
// does; the browser target has no Network.deleteCookies.
func (c Cookie) removal() map[string]json.RawMessage {
	p := c.param()
	p["expires"] = json.RawMessage("1")
	return p
}

// sameCookie reports whether a and b would set the same cookie.
func sameCookie(a, b Cookie) bool {
	pa, pb := a.param(), b.param()
	if len(pa) != len(pb) {
		return false
	}
	for k, v := range pa {
		if canonical(v) != canonical(pb[k]) {
			return false
		}
	}
	return true
}

// expired reports whether a persistent cookie's expiry has passed.
func (c Cookie) expired(now time.Time) bool {
	if c.session() {
		return false
	}
	var exp float64
	if json.Unmarshal(c["expires"], &exp) != nil {
		return true
	}
	return exp <= float64(now.Unix())
}

type snapshotFile struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	// Database is the profile's cookie database as it was on disk just
	// before the cookies were read; nil in a snapshot from a scry that
	// did not record it.
	Database *[]dbFile `json:"database,omitempty"`
	Cookies  []Cookie  `json:"cookies"`
	// Gone are persistent cookie values the snapshots saw in the browser
	// and then no longer saw: deleted (a logout) or replaced (a rotated
	// token) by the running browser. A profile whose cookie database
	// still holds one of them is stale there. Each is kept until it
	// would have expired.
	Gone []goneCookie `json:"gone,omitempty"`
}

// goneCookie identifies a cookie value that is no longer in the browser:
// neither its name nor its value is kept, only a hash of both.
type goneCookie struct {
	ID      string  `json:"id"`      // goneID of the cookie
	Expires float64 `json:"expires"` // the cookie's: it cannot come back after
}

func (g goneCookie) id() string { return g.ID }

// maxGone bounds the gone list; the ones that expire first go first.
const maxGone = 2000

func (c Cookie) gone() goneCookie {
	var exp float64
	_ = json.Unmarshal(c["expires"], &exp)
	return goneCookie{ID: c.goneID(), Expires: exp}
}

// goneID identifies c's value: the hex SHA-256 of its key and value.
func (c Cookie) goneID() string {
	h := sha256.Sum256([]byte(c.key() + "\x00" + c.str("value")))
	return hex.EncodeToString(h[:])
}

// dbFile is one of the cookie database's files as stat(2) and its SQLite
// header describe it. Only equality matters: nothing here is compared
// with a clock.
type dbFile struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
	Inode uint64 `json:"inode,omitempty"`
	// Changes is the SQLite header's file change counter, which every
	// commit in rollback-journal mode (Chromium's) increments: it tells
	// two commits apart when a coarse mtime and an unchanged size (the
	// database grows by pages) do not.
	Changes uint32 `json:"changes,omitempty"`
}

// Store reads and writes the snapshot file.
type Store struct {
	dir  string
	path string
	log  *slog.Logger
	uid  int // owner of the file when scry runs as root; -1 keeps scry's
	gid  int

	// dbAtStart is the profile's cookie database before this Chromium
	// opened it; noted says NoteDatabase recorded it.
	dbAtStart []dbFile
	noted     bool

	pdMu sync.Mutex
	pd   *profile.Dir // the profile, opened at first use

	mu sync.Mutex
	// prev is the jar at the last successful read of this browser, nil
	// before the first; gone what the snapshots saw leave it (by id).
	prev     map[string]Cookie
	gone     map[string]goneCookie
	lastHash [32]byte
	saved    time.Time
	count    int
	checked  time.Time // last successful snapshot, written or not
	failures uint64    // snapshots Run saw fail
}

// New returns the store for the profile in dir.
func New(dir string, log *slog.Logger, uid, gid int) *Store {
	return &Store{dir: dir, path: filepath.Join(dir, FileName), log: log, uid: uid, gid: gid, checked: time.Now()}
}

// databaseFiles are Chromium's cookie database and its SQLite side files,
// relative to the profile: Linux keeps it in Default/, other platforms in
// Default/Network/. A commit changes the database or its journal.
var databaseFiles = []string{
	"Default/Cookies", "Default/Cookies-journal", "Default/Cookies-wal",
	"Default/Network/Cookies", "Default/Network/Cookies-journal", "Default/Network/Cookies-wal",
}

// profileDir is the profile, opened once for all of the store's files:
// see profile.Dir for why nothing here follows a link.
func (s *Store) profileDir() (*profile.Dir, error) {
	s.pdMu.Lock()
	defer s.pdMu.Unlock()
	if s.pd == nil {
		pd, err := profile.OpenDir(s.dir, s.uid, s.gid)
		if err != nil {
			return nil, err
		}
		s.pd = pd
	}
	return s.pd, nil
}

// NoteDatabase records the profile's cookie database as it is on disk,
// for Restore to tell whether it changed after the snapshot was taken.
// Call it before Chromium starts: Chromium writes the database as it
// opens it.
func (s *Store) NoteDatabase() {
	s.dbAtStart, s.noted = s.statDatabase(), true
}

// statDatabase describes the cookie database files that exist in the
// profile. A link is described as a link, never followed.
func (s *Store) statDatabase() []dbFile {
	files := []dbFile{}
	pd, err := s.profileDir()
	if err != nil {
		return files
	}
	for _, name := range databaseFiles {
		fi, err := pd.Lstat(name)
		if err != nil {
			continue
		}
		f := dbFile{Name: name, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.Inode = st.Ino
		}
		f.Changes = sqliteChangeCounter(pd, name)
		files = append(files, f)
	}
	return files
}

// sqliteChangeCounter reads the file change counter (big-endian, offset
// 24) of the SQLite database name; 0 if it is not one (a journal).
func sqliteChangeCounter(pd *profile.Dir, name string) uint32 {
	f, err := pd.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	var h [28]byte
	if _, err := f.ReadAt(h[:], 0); err != nil || string(h[:16]) != "SQLite format 3\x00" {
		return 0
	}
	return binary.BigEndian.Uint32(h[24:28])
}

// databaseUnchanged reports whether the database is now as it was
// recorded in a snapshot.
func databaseUnchanged(recorded *[]dbFile, now []dbFile) bool {
	return recorded != nil && slices.Equal(*recorded, now)
}

// Path is the snapshot file.
func (s *Store) Path() string { return s.path }

// Stats reports when the snapshot last changed on disk and how many
// cookies it holds (for metrics).
func (s *Store) Stats() (time.Time, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved, s.count
}

// Status reports, for metrics, when a snapshot last succeeded (the jar
// read, and written if it changed; before the first, when the store was
// made), how many cookies the snapshot holds, and how many snapshots Run
// saw fail. A growing age with failures says snapshots are failing; a
// jar that merely did not change keeps the age small.
func (s *Store) Status() (last time.Time, cookies int, failures uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checked, s.count, s.failures
}

func getCookies(ctx context.Context, c Caller) ([]Cookie, error) {
	var res struct {
		Cookies []Cookie `json:"cookies"`
	}
	if err := c.Call(ctx, "Storage.getCookies", nil, &res); err != nil {
		return nil, err
	}
	return res.Cookies, nil
}

// Snapshot reads the browser's cookies and writes them if they changed
// since the last write. It reports whether it wrote.
func (s *Store) Snapshot(ctx context.Context, c Caller) (bool, error) {
	return s.snapshot(ctx, c, false)
}

// snapshot is Snapshot; force writes even an unchanged jar.
func (s *Store) snapshot(ctx context.Context, c Caller, force bool) (bool, error) {
	// The database first: if it is the same at the next start, Chromium
	// committed nothing after this point, so the cookies read below are
	// at least as new as it.
	db := s.statDatabase()
	sess, err := getCookies(ctx, c)
	if err != nil {
		return false, fmt.Errorf("snapshot cookies: %w", err)
	}
	sort.Slice(sess, func(i, j int) bool { return sess[i].key() < sess[j].key() })
	s.mu.Lock()
	defer s.mu.Unlock()
	// What left the jar since the last read is gone, whether or not
	// this snapshot reaches the disk: a later one carries it.
	now := time.Now().UTC()
	gone := s.track(sess, now)
	h, err := contentHash(sess, gone)
	if err != nil {
		return false, err
	}
	if h == s.lastHash && !force {
		s.checked = time.Now()
		return false, nil
	}
	data, err := json.MarshalIndent(snapshotFile{Version: 1, Saved: now, Database: &db, Cookies: sess, Gone: gone}, "", " ")
	if err != nil {
		return false, err
	}
	pd, err := s.profileDir()
	if err != nil {
		return false, fmt.Errorf("snapshot cookies: %w", err)
	}
	if err := pd.MkdirAll(profile.StateDir, 0o700); err != nil {
		return false, fmt.Errorf("snapshot cookies: %w", err)
	}
	if err := pd.WriteFileAtomic(FileName, data, 0o600, s.uid, s.gid); err != nil {
		return false, fmt.Errorf("snapshot cookies: %w", err)
	}
	s.lastHash, s.saved, s.count, s.checked = h, now, len(sess), time.Now()
	return true, nil
}

// Restore puts the snapshot's cookies back into the browser, by the rule in
// docs/durability.md:
//   - the database unchanged since the snapshot (its recorded size, mtime,
//     inode and SQLite change counter; no clocks): the snapshot is newer and
//     its values win, and persistent cookies it lacks are removed;
//   - otherwise the profile's values win;
//   - either way a cookie the snapshot has and the profile lacks comes back
//     (a failed commit touches the database too), unless a snapshot saw the
//     browser delete that value (gone);
//   - session cookies the browser lacks always come back.
//
// An unreadable snapshot is logged and moved aside, never fatal. A Restore
// that changed the browser snapshots at once, so the next start can tell.
func (s *Store) Restore(ctx context.Context, c Caller) (res Restored, err error) {
	snap, err := s.readSnapshot()
	if err != nil || snap == nil {
		return res, err
	}
	now := time.Now()
	s.loadGone(snap, now)
	have, err := getCookies(ctx, c)
	if err != nil {
		return res, fmt.Errorf("restore cookies: %w", err)
	}
	res.Saved = snap.Saved
	res.SnapshotNewer = s.noted && databaseUnchanged(snap.Database, s.dbAtStart)
	p := s.plan(snap, have, now, res.SnapshotNewer)
	if p.missing > 0 || p.replaced > 0 {
		s.log.Warn("the profile's cookie database is newer than the snapshot but lacks cookies the snapshot has, or holds values the snapshots saw deleted or replaced; "+
			"the snapshot's are put back (a commit that failed, on a full disk say)", "missing", p.missing, "stale", p.replaced)
	}
	res.Put = len(p.put) - s.setCookies(ctx, c, "unrestored", p.put)
	res.Removed = len(p.remove) - s.setCookies(ctx, c, "unremoved", p.remove)
	if res.Put > 0 || res.Removed > 0 {
		if _, err := s.snapshot(ctx, c, true); err != nil {
			s.log.Warn("cookie snapshot after the restore failed; a hard kill before the next one may bring back older cookies", "err", err)
		}
		return res, nil
	}
	// What is in the browser now is what the file says: no rewrite until
	// it changes. The jar as read is the baseline for what leaves it.
	s.mu.Lock()
	s.prev = map[string]Cookie{}
	for _, ck := range have {
		s.prev[ck.key()] = ck
	}
	if h, err := contentHash(sortedCopy(snap.Cookies), s.goneList()); err == nil {
		s.lastHash, s.saved, s.count = h, snap.Saved, len(snap.Cookies)
	}
	s.mu.Unlock()
	return res, nil
}

// readSnapshot reads and decodes the snapshot: nil when there is none,
// and nil after moving aside one that cannot be read.
func (s *Store) readSnapshot() (*snapshotFile, error) {
	pd, err := s.profileDir()
	if err != nil {
		return nil, fmt.Errorf("restore cookies: %w", err)
	}
	data, err := pd.ReadFile(FileName, maxSnapshot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		s.setAside(fmt.Errorf("read: %w", err))
		return nil, nil
	}
	var snap snapshotFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&snap); err != nil || snap.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", snap.Version)
		}
		s.setAside(err)
		return nil, nil
	}
	return &snap, nil
}

// loadGone takes the deletions the snapshots saw, so they stay known
// whatever happens next.
func (s *Store) loadGone(snap *snapshotFile, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = map[string]goneCookie{}
	for _, g := range snap.Gone {
		if g.Expires > float64(now.Unix()) {
			s.gone[g.id()] = g
		}
	}
}

// restorePlan is what Restore changes in the browser.
type restorePlan struct {
	put, remove       []map[string]json.RawMessage
	missing, replaced int // persistent cookies a newer profile lacks; its values the snapshots saw replaced
}

// plan applies the restore rule (see Restore) to the snapshot and the
// browser's cookies, have.
func (s *Store) plan(snap *snapshotFile, have []Cookie, now time.Time, snapshotNewer bool) restorePlan {
	live := map[string]Cookie{}
	for _, ck := range have {
		live[ck.key()] = ck
	}
	// stale: a value of the profile's that the snapshots saw deleted or
	// replaced; the profile missed that change (a failed commit).
	stale := func(ck Cookie) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.gone[ck.goneID()]
		return ok
	}
	var p restorePlan
	inSnapshot := map[string]bool{} // unexpired cookies only
	for _, ck := range snap.Cookies {
		if ck.expired(now) {
			continue
		}
		inSnapshot[ck.key()] = true // a nameless cookie is kept, if not re-set
		if ck.str("name") == "" {
			continue
		}
		l, ok := live[ck.key()]
		switch {
		case ok && sameCookie(l, ck):
			continue
		case ok && !snapshotNewer && !stale(l):
			continue // changed after the snapshot
		case ok && !snapshotNewer:
			p.replaced++
		case !ok && !snapshotNewer && !ck.session():
			p.missing++ // no snapshot saw it deleted: never drop it
		}
		p.put = append(p.put, ck.param())
	}
	for _, l := range have {
		if l.session() || inSnapshot[l.key()] {
			continue
		}
		if snapshotNewer || stale(l) {
			p.remove = append(p.remove, l.removal())
		}
	}
	return p
}

// maxSnapshot bounds the snapshot file Restore reads.
const maxSnapshot = 64 << 20

// track compares the jar just read with the previous read of the same
// browser, records as gone each persistent cookie value that left it
// (deleted, or replaced by another value), forgets gone values that are
// back, and returns the gone list. The first read has nothing to compare
// with. Called with s.mu held.
func (s *Store) track(jar []Cookie, now time.Time) []goneCookie {
	if s.gone == nil {
		s.gone = map[string]goneCookie{}
	}
	cur := make(map[string]Cookie, len(jar))
	for _, ck := range jar {
		cur[ck.key()] = ck
		delete(s.gone, ck.goneID())
	}
	for k, p := range s.prev {
		if p.session() || p.expired(now) {
			continue
		}
		if c, ok := cur[k]; !ok || c.str("value") != p.str("value") {
			g := p.gone()
			s.gone[g.id()] = g
		}
	}
	s.prev = cur
	for id, g := range s.gone {
		if g.Expires <= float64(now.Unix()) {
			delete(s.gone, id)
		}
	}
	list := s.goneList()
	if len(list) > maxGone {
		for _, g := range list[:len(list)-maxGone] {
			delete(s.gone, g.id())
		}
		list = list[len(list)-maxGone:]
	}
	return list
}

// goneList is the gone set, the ones that expire first first. Called with
// s.mu held.
func (s *Store) goneList() []goneCookie {
	list := make([]goneCookie, 0, len(s.gone))
	for _, g := range s.gone {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Expires != list[j].Expires {
			return list[i].Expires < list[j].Expires
		}
		return list[i].id() < list[j].id()
	})
	return list
}

// contentHash is what decides whether a snapshot needs writing.
func contentHash(jar []Cookie, gone []goneCookie) ([32]byte, error) {
	b, err := json.Marshal(struct {
		C []Cookie
		G []goneCookie
	}{jar, gone})
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Restored is what Restore changed in the browser.
type Restored struct {
	Put     int // cookies set from the snapshot
	Removed int // persistent cookies removed: the newer snapshot lacks them, or a snapshot saw them deleted
	// SnapshotNewer says the profile's cookie database had not changed
	// since the snapshot, so the snapshot's persistent cookies won.
	SnapshotNewer bool
	Saved         time.Time // when the snapshot was taken, by scry's clock (for logs)
}

// setCookies sets cookies in one Storage.setCookies call and returns how
// many Chromium refused. Chromium rejects the whole batch for one cookie
// it cannot rebuild (a field a newer version no longer takes, say): then
// the others go one by one, and the snapshot is kept aside (PATH.WHY-TIME)
// if any is still refused.
func (s *Store) setCookies(ctx context.Context, c Caller, why string, params []map[string]json.RawMessage) (failed int) {
	if len(params) == 0 {
		return 0
	}
	err := c.Call(ctx, "Storage.setCookies", map[string]any{"cookies": params}, nil)
	if err == nil {
		return 0
	}
	for _, p := range params {
		if c.Call(ctx, "Storage.setCookies", map[string]any{"cookies": []any{p}}, nil) != nil {
			failed++
		}
	}
	if failed > 0 {
		s.KeepCopy(why, fmt.Errorf("chromium rejected %d of %d cookies: %w", failed, len(params), err))
	}
	return failed
}

// KeepCopy copies the snapshot aside (PATH.WHY-TIME) so that the next
// snapshot, which will lack what could not be restored, cannot erase it.
func (s *Store) KeepCopy(why string, cause error) {
	pd, err := s.profileDir()
	if err != nil {
		return
	}
	data, err := pd.ReadFile(FileName, maxSnapshot)
	if err != nil {
		return
	}
	name := fmt.Sprintf("%s.%s-%s", FileName, why, time.Now().UTC().Format("20060102T150405Z"))
	aside := filepath.Join(s.dir, name)
	if err := pd.WriteFileAtomic(name, data, 0o600, s.uid, s.gid); err != nil {
		s.log.Error("cannot keep a copy of the cookie snapshot", "file", aside, "err", err)
		return
	}
	s.log.Error("cookies not fully restored; the snapshot is kept for inspection", "kept", aside, "err", cause)
}

func sortedCopy(cs []Cookie) []Cookie {
	out := append([]Cookie(nil), cs...)
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// setAside renames an unreadable snapshot so it is kept for inspection and
// never read again.
func (s *Store) setAside(cause error) {
	name := fmt.Sprintf("%s.corrupt-%s", FileName, time.Now().UTC().Format("20060102T150405Z"))
	aside := filepath.Join(s.dir, name)
	err := errors.New("profile directory not open")
	if pd, perr := s.profileDir(); perr == nil {
		err = pd.Rename(FileName, name)
	}
	if err != nil {
		s.log.Error("cookie snapshot unreadable and cannot be moved aside; cookies not restored",
			"file", s.path, "err", cause, "rename_err", err)
		return
	}
	s.log.Error("cookie snapshot unreadable; moved aside, cookies not restored",
		"file", s.path, "moved_to", aside, "err", cause)
}

// Schedule says when Run snapshots.
type Schedule struct {
	// Interval is the periodic snapshot's (SESSION_COOKIE_INTERVAL).
	Interval time.Duration
	// Nudge tells Run a page navigated: the redirect after a login
	// arrives with its cookies set, and a hard kill before the next
	// periodic snapshot would lose them.
	Nudge <-chan struct{}
	// Settle is how long after the last nudge Run snapshots, so a chain
	// of redirects and the scripts of the page it lands on are done.
	Settle time.Duration
	// MaxWait bounds the wait from the first nudge, for pages that never
	// stop navigating.
	MaxWait time.Duration
}

// Run snapshots on sched until ctx ends. conn returns the current browser
// connection (it may change if scry reconnects).
func (s *Store) Run(ctx context.Context, sched Schedule, conn func(context.Context) (Caller, error)) {
	s.run(ctx, sched, conn, nil)
}

// run is Run; tabs, if not nil, records the open tabs after each
// snapshot.
func (s *Store) run(ctx context.Context, sched Schedule, conn func(context.Context) (Caller, error), tabs *Tabs) {
	t := time.NewTicker(sched.Interval)
	defer t.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var first time.Time // of the nudges not yet snapshotted
	for {
		why := "periodic"
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sched.Nudge:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			settle.Reset(max(0, min(sched.Settle, first.Add(sched.MaxWait).Sub(now))))
			continue
		case <-settle.C:
			first, why = time.Time{}, "navigation"
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := conn(cctx)
		if err == nil {
			var wrote bool
			wrote, err = s.Snapshot(cctx, c)
			if wrote {
				_, n := s.Stats()
				s.log.Debug("cookies saved", "count", n, "after", why)
			}
			if err == nil && tabs != nil {
				if _, terr := tabs.Record(cctx, c); terr != nil && ctx.Err() == nil {
					s.log.Warn("tab list not saved; will retry", "err", terr)
				}
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			s.mu.Lock()
			s.failures++
			s.mu.Unlock()
			s.log.Warn("cookie snapshot failed; will retry", "err", err)
		}
	}
}
