package cookies

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// jar is a fake browser cookie jar answering Storage.getCookies/setCookies.
type jar struct {
	cookies []Cookie
	sets    int
}

func (j *jar) Call(ctx context.Context, method string, params, result any) error {
	switch method {
	case "Storage.getCookies":
		b, _ := json.Marshal(map[string]any{"cookies": j.cookies})
		return json.Unmarshal(b, result)
	case "Storage.setCookies":
		j.sets++
		b, _ := json.Marshal(params)
		var p struct{ Cookies []Cookie }
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		// A cookie replaces the one with the same name, domain, path
		// and partition, as in Chromium's jar; an expired one only
		// deletes it.
		for _, c := range p.Cookies {
			j.cookies = slices.DeleteFunc(j.cookies, func(o Cookie) bool { return o.key() == c.key() })
			var exp float64
			if err := json.Unmarshal(c["expires"], &exp); err == nil && exp > 0 && exp <= float64(time.Now().Unix()) {
				continue
			}
			j.cookies = append(j.cookies, c)
		}
	}
	return nil
}

func cookie(t *testing.T, s string) Cookie {
	t.Helper()
	var c Cookie
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newStore(t *testing.T) (*Store, string) {
	dir := t.TempDir()
	return New(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), -1, -1), dir
}

func TestSnapshotWritesOnlyOnChange(t *testing.T) {
	s, _ := newStore(t)
	j := &jar{cookies: []Cookie{
		cookie(t, `{"name":"sid","value":"1","domain":"a.example","path":"/","session":true,"expires":-1,"size":4}`),
	}}
	ctx := context.Background()
	if wrote, err := s.Snapshot(ctx, j); err != nil || !wrote {
		t.Fatalf("first snapshot: wrote=%v err=%v", wrote, err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v %v", fi, err)
	}
	if wrote, _ := s.Snapshot(ctx, j); wrote {
		t.Error("unchanged jar rewritten")
	}
	j.cookies[0]["value"] = json.RawMessage(`"2"`)
	if wrote, _ := s.Snapshot(ctx, j); !wrote {
		t.Error("changed jar not written")
	}
	if _, n := s.Stats(); n != 1 {
		t.Errorf("count %d", n)
	}
}

func TestRestore(t *testing.T) {
	s, _ := newStore(t)
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()
	old := &jar{cookies: []Cookie{
		cookie(t, `{"name":"sid","value":"s","domain":"a.example","path":"/","session":true,"expires":-1,"httpOnly":true}`),
		cookie(t, `{"name":"persist","value":"p","domain":"a.example","path":"/","session":false,"expires":`+itoa(future)+`}`),
		cookie(t, `{"name":"stale","value":"x","domain":"a.example","path":"/","session":false,"expires":`+itoa(past)+`}`),
	}}
	if _, err := s.Snapshot(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	fresh := &jar{}
	s2 := New(filepath.Dir(filepath.Dir(s.Path())), s.log, -1, -1)
	s2.NoteDatabase() // no database yet: the snapshot is newer
	res, err := s2.Restore(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if res.Put != 2 {
		t.Errorf("restored %d cookies, want 2 (sid, persist)", res.Put)
	}
	got := map[string]string{}
	for _, c := range fresh.cookies {
		got[c.str("name")] = c.str("value")
		if c.str("name") == "persist" {
			if _, ok := c["expires"]; !ok {
				t.Error("persistent cookie restored without its expiry")
			}
		}
		if _, ok := c["size"]; ok {
			t.Error("a field Storage.setCookies does not take was sent")
		}
	}
	if got["sid"] != "s" || got["persist"] != "p" {
		t.Errorf("restored %v, want sid=s persist=p", got)
	}
	if _, ok := got["stale"]; ok {
		t.Error("an expired cookie was restored")
	}
}

// Restore keeps whichever of the profile's cookie database and the
// snapshot was written last: the snapshot if the database has not changed
// since it was taken.
func TestRestoreNewerWins(t *testing.T) {
	future := itoa(time.Now().Add(time.Hour).Unix())
	sess := func(name, value string) string {
		return `{"name":"` + name + `","value":"` + value + `","domain":"a.example","path":"/","session":true,"expires":-1}`
	}
	pers := func(name, value string) string {
		return `{"name":"` + name + `","value":"` + value + `","domain":"a.example","path":"/","session":false,"expires":` + future + `}`
	}
	// part is a persistent partitioned cookie, its key's fields in either order.
	part := func(name, value string, swapped bool) string {
		key := `{"topLevelSite":"https://top.example","hasCrossSiteAncestor":false}`
		if swapped {
			key = `{"hasCrossSiteAncestor":false,"topLevelSite":"https://top.example"}`
		}
		return `{"name":"` + name + `","value":"` + value + `","domain":"a.example","path":"/","session":false,"expires":` + future +
			`,"secure":true,"partitionKey":` + key + `}`
	}
	tests := []struct {
		name     string
		dbNewer  bool     // Chromium committed its cookie database after the snapshot
		snapshot []string // the jar when the snapshot was taken
		profile  []string // what the new browser has from the profile
		gone     []string // cookies the snapshots saw deleted or replaced
		want     map[string]string
		sets     int
	}{
		{
			name:     "hard kill: a rotated persistent cookie takes the snapshot's newer value",
			snapshot: []string{pers("auth", "rotated")}, profile: []string{pers("auth", "stale")},
			want: map[string]string{"auth": "rotated"}, sets: 1,
		},
		{
			name:     "hard kill: a persistent cookie set after the last flush comes back",
			snapshot: []string{pers("auth", "new")},
			want:     map[string]string{"auth": "new"}, sets: 1,
		},
		{
			name:    "graceful: the profile's newer value wins",
			dbNewer: true, snapshot: []string{pers("auth", "old"), sess("sid", "old")}, profile: []string{pers("auth", "new"), sess("sid", "new")},
			want: map[string]string{"auth": "new", "sid": "new"},
		},
		{
			name:    "profile newer but lacking a persistent cookie the snapshot has, no snapshot saw it deleted (a failed commit): it comes back",
			dbNewer: true, snapshot: []string{pers("auth", "a")},
			want: map[string]string{"auth": "a"}, sets: 1,
		},
		{
			name:    "profile newer and holding a persistent cookie the snapshots saw deleted (a logout its commit lost): it is removed",
			dbNewer: true, snapshot: []string{pers("marker", "m")}, profile: []string{pers("auth", "a"), pers("marker", "m")},
			gone: []string{pers("auth", "a")},
			want: map[string]string{"marker": "m"}, sets: 1,
		},
		{
			name:    "profile newer and holding a value the snapshots saw replaced (a rotation its commit lost): the snapshot's value wins",
			dbNewer: true, snapshot: []string{pers("auth", "rotated")}, profile: []string{pers("auth", "stale")},
			gone: []string{pers("auth", "stale")},
			want: map[string]string{"auth": "rotated"}, sets: 1,
		},
		{
			name:    "profile newer, a cookie the snapshots saw deleted set again with a new value since: it stays",
			dbNewer: true, snapshot: []string{sess("sid", "s")}, profile: []string{pers("auth", "again")},
			gone: []string{pers("auth", "a")},
			want: map[string]string{"auth": "again", "sid": "s"}, sets: 1,
		},
		{
			name:    "graceful: session cookies come back whatever the database's time",
			dbNewer: true, snapshot: []string{sess("sid", "s")},
			want: map[string]string{"sid": "s"}, sets: 1,
		},
		{
			name:     "hard kill: a persistent cookie deleted before the snapshot (a logout) is removed",
			snapshot: []string{sess("sid", "s")}, profile: []string{pers("auth", "a"), pers("other", "o")},
			want: map[string]string{"sid": "s"}, sets: 2, // sid back, then one call removing both
		},
		{
			name:     "hard kill: a nameless persistent cookie in both is kept",
			snapshot: []string{pers("", "bare"), pers("auth", "a")}, profile: []string{pers("", "bare"), pers("auth", "a")},
			want: map[string]string{"": "bare", "auth": "a"},
		},
		{
			name:     "hard kill: a partitioned cookie deleted before the snapshot is removed from its partition",
			snapshot: []string{pers("auth", "a")}, profile: []string{pers("auth", "a"), part("auth", "p", false)},
			want: map[string]string{"auth": "a"}, sets: 1,
		},
		{
			name:     "hard kill: a partitioned cookie the snapshot has, keys in another order, stays",
			snapshot: []string{part("p", "v", false)}, profile: []string{part("p", "v", true)},
			want: map[string]string{"p partitioned": "v"},
		},
		{
			name:     "hard kill: the browser's own session cookies are never removed",
			snapshot: []string{pers("auth", "a")}, profile: []string{pers("auth", "a"), sess("fresh", "f")},
			want: map[string]string{"auth": "a", "fresh": "f"},
		},
		{
			name:    "graceful: a persistent cookie set after the snapshot stays",
			dbNewer: true, snapshot: []string{sess("sid", "s")}, profile: []string{pers("auth", "a")},
			want: map[string]string{"auth": "a", "sid": "s"}, sets: 1,
		},
		{
			name:     "a cookie the browser already has exactly is not set again",
			snapshot: []string{pers("auth", "same")}, profile: []string{pers("auth", "same")},
			want: map[string]string{"auth": "same"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newStore(t)
			at := time.Now().Add(-time.Minute).Truncate(time.Second)
			writeDB(t, dir, "Default/Cookies", 7, at)
			recorded := statDatabase(dir)
			if tt.dbNewer {
				// The hardest commit to see: same size, and an mtime
				// in the same coarse second.
				writeDB(t, dir, "Default/Cookies", 8, at)
			}
			var snap []Cookie
			for _, c := range tt.snapshot {
				snap = append(snap, cookie(t, c))
			}
			var gone []goneCookie
			for _, c := range tt.gone {
				gone = append(gone, cookie(t, c).gone())
			}
			writeSnapshotGone(t, s.Path(), at.Add(time.Second), &recorded, snap, gone)

			j := &jar{}
			for _, c := range tt.profile {
				j.cookies = append(j.cookies, cookie(t, c))
			}
			s.NoteDatabase()
			if _, err := s.Restore(context.Background(), j); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{} // name (+" partitioned") → value
			for _, c := range j.cookies {
				name := c.str("name")
				if _, ok := c["partitionKey"]; ok {
					name += " partitioned"
				}
				got[name] = c.str("value")
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("browser has %v, want %v", got, tt.want)
			}
			if j.sets != tt.sets {
				t.Errorf("%d Storage.setCookies calls, want %d", j.sets, tt.sets)
			}
		})
	}
}

// writeSnapshot writes a snapshot file as Snapshot would have at saved,
// with the cookie database as db records it.
func writeSnapshot(t *testing.T, path string, saved time.Time, db *[]dbFile, cs []Cookie) {
	t.Helper()
	writeSnapshotGone(t, path, saved, db, cs, nil)
}

// writeSnapshotGone is writeSnapshot with cookies the snapshots saw go.
func writeSnapshotGone(t *testing.T, path string, saved time.Time, db *[]dbFile, cs []Cookie, gone []goneCookie) {
	t.Helper()
	b, err := json.MarshalIndent(snapshotFile{Version: 1, Saved: saved.UTC(), Database: db, Cookies: cs, Gone: gone}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeDB writes a 4 KiB SQLite database header with the given change
// counter at name in the profile dir and sets its mtime to at, as a
// commit by Chromium would leave it (rewritten in place: same inode).
func writeDB(t *testing.T, dir, name string, changes uint32, at time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	copy(b, "SQLite format 3\x00")
	binary.BigEndian.PutUint32(b[24:], changes)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestStatDatabase(t *testing.T) {
	dir := t.TempDir()
	if got := statDatabase(dir); got == nil || len(got) != 0 {
		t.Errorf("no database: %#v, want an empty list (not nil: nil means not recorded)", got)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeDB(t, dir, "Default/Cookies", 42, at)
	journal := filepath.Join(dir, "Default", "Cookies-journal")
	if err := os.WriteFile(journal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := statDatabase(dir)
	if len(got) != 2 || got[0].Name != "Default/Cookies" || got[1].Name != "Default/Cookies-journal" {
		t.Fatalf("files %#v, want the database and its journal", got)
	}
	if got[0].Changes != 42 || got[0].Size != 4096 || got[0].MTime != at.UnixNano() || got[0].Inode == 0 {
		t.Errorf("database %+v, want 42 changes, 4096 bytes, mtime %d, an inode", got[0], at.UnixNano())
	}
	if got[1].Changes != 0 {
		t.Errorf("journal has a change counter: %+v", got[1])
	}
}

// Which side wins depends on whether the database changed after the
// snapshot, never on scry's clock against the filesystem's.
func TestRestoreComparesNoClocks(t *testing.T) {
	future := itoa(time.Now().Add(time.Hour).Unix())
	rotated := `{"name":"auth","value":"rotated","domain":"a.example","path":"/","session":false,"expires":` + future + `}`
	stale := `{"name":"auth","value":"stale","domain":"a.example","path":"/","session":false,"expires":` + future + `}`
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	tests := []struct {
		name   string
		saved  time.Time                      // scry's clock when it wrote the snapshot
		record bool                           // the snapshot records the database
		change func(t *testing.T, dir string) // what happens to the database after the snapshot
		note   bool                           // NoteDatabase is called
		want   string
	}{
		{
			name:  "a commit 0.5 s after the snapshot, same coarse mtime and size: the profile wins",
			saved: at.Add(500 * time.Millisecond), record: true, note: true,
			change: func(t *testing.T, dir string) { writeDB(t, dir, "Default/Cookies", 8, at) },
			want:   "stale",
		},
		{
			name:  "scry's clock a minute ahead, a commit after the snapshot: the profile wins",
			saved: at.Add(time.Minute), record: true, note: true,
			change: func(t *testing.T, dir string) { writeDB(t, dir, "Default/Cookies", 8, at.Add(time.Second)) },
			want:   "stale",
		},
		{
			name:  "scry's clock a minute behind the file server's, no commit since: the snapshot wins",
			saved: at.Add(-time.Minute), record: true, note: true,
			want: "rotated",
		},
		{
			name:  "only the journal changed: the profile wins",
			saved: at.Add(time.Minute), record: true, note: true,
			change: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "Default", "Cookies-journal"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: "stale",
		},
		{
			name:  "a snapshot that did not record the database: the profile wins",
			saved: at.Add(time.Minute), note: true,
			want: "stale",
		},
		{
			name:  "NoteDatabase not called: the profile wins",
			saved: at.Add(time.Minute), record: true,
			want: "stale",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newStore(t)
			writeDB(t, dir, "Default/Cookies", 7, at)
			var recorded *[]dbFile
			if tt.record {
				db := statDatabase(dir)
				recorded = &db
			}
			writeSnapshot(t, s.Path(), tt.saved, recorded, []Cookie{cookie(t, rotated)})
			if tt.change != nil {
				tt.change(t, dir)
			}
			if tt.note {
				s.NoteDatabase()
			}
			j := &jar{cookies: []Cookie{cookie(t, stale)}}
			if _, err := s.Restore(context.Background(), j); err != nil {
				t.Fatal(err)
			}
			if len(j.cookies) != 1 || j.cookies[0].str("value") != tt.want {
				t.Errorf("browser has %v, want auth=%s", j.cookies, tt.want)
			}
		})
	}
}

// The database is described before the cookies are read: a commit that
// lands while Storage.getCookies runs may hold changes newer than what it
// returned, so the next start must see the database as changed.
func TestSnapshotRecordsTheDatabaseBeforeReading(t *testing.T) {
	s, dir := newStore(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeDB(t, dir, "Default/Cookies", 7, at)
	before := statDatabase(dir)
	j := &committingJar{jar: jar{cookies: []Cookie{cookie(t, `{"name":"sid","value":"1","domain":"a.example","path":"/","session":true,"expires":-1}`)}},
		commit: func() { writeDB(t, dir, "Default/Cookies", 8, at.Add(time.Second)) }}
	if _, err := s.Snapshot(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshotFile
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Database == nil || !slices.Equal(*snap.Database, before) {
		t.Errorf("snapshot records the database as %+v, want it as it was before the read: %+v", snap.Database, before)
	}
}

// committingJar is a jar whose Chromium commits its database while
// Storage.getCookies runs.
type committingJar struct {
	jar
	commit func()
}

func (j *committingJar) Call(ctx context.Context, method string, params, result any) error {
	if method == "Storage.getCookies" && j.commit != nil {
		j.commit()
		j.commit = nil
	}
	return j.jar.Call(ctx, method, params, result)
}

// A restore's changes reach the database only at Chromium's next commit,
// and Chromium writes the database as it opens it: a second hard kill
// before that commit must still find the snapshot newer, so the restore
// snapshots again at once.
func TestRestoreThenHardKillAgain(t *testing.T) {
	future := itoa(time.Now().Add(time.Hour).Unix())
	rotated := `{"name":"auth","value":"rotated","domain":"a.example","path":"/","session":false,"expires":` + future + `}`
	stale := `{"name":"auth","value":"stale","domain":"a.example","path":"/","session":false,"expires":` + future + `}`
	s, dir := newStore(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeDB(t, dir, "Default/Cookies", 7, at)
	db := statDatabase(dir)
	writeSnapshot(t, s.Path(), at, &db, []Cookie{cookie(t, rotated)})

	// Second start: the database still says stale; Chromium opens it
	// (a write) and scry restores the rotated value.
	s.NoteDatabase()
	writeDB(t, dir, "Default/Cookies", 8, at.Add(time.Second))
	if res, err := s.Restore(context.Background(), &jar{cookies: []Cookie{cookie(t, stale)}}); err != nil || !res.SnapshotNewer || res.Put != 1 {
		t.Fatalf("second start: %+v, %v; want the snapshot newer and one cookie put back", res, err)
	}
	// Hard kill before Chromium commits the restored value. Third start.
	s3 := New(dir, s.log, -1, -1)
	s3.NoteDatabase()
	j := &jar{cookies: []Cookie{cookie(t, stale)}}
	res, err := s3.Restore(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.SnapshotNewer || len(j.cookies) != 1 || j.cookies[0].str("value") != "rotated" {
		t.Errorf("third start: %+v, browser has %v; want the snapshot newer and auth=rotated", res, j.cookies)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestCorruptSnapshotSetAside(t *testing.T) {
	for _, body := range []string{`{"version":1,"cookies":[{"na`, `{"version":7,"cookies":[]}`, "\x00\x01"} {
		s, _ := newStore(t)
		if err := os.MkdirAll(filepath.Dir(s.Path()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := s.Restore(context.Background(), &jar{})
		if err != nil || res != (Restored{}) {
			t.Errorf("%q: restore = %+v, %v; want nothing, nil", body, res, err)
		}
		if _, err := os.Stat(s.Path()); !os.IsNotExist(err) {
			t.Errorf("%q: corrupt snapshot still in place", body)
		}
		m, _ := filepath.Glob(s.Path() + ".corrupt-*")
		if len(m) != 1 {
			t.Errorf("%q: not kept aside: %v", body, m)
		} else if b, _ := os.ReadFile(m[0]); !strings.HasPrefix(string(b), body[:2]) {
			t.Errorf("%q: contents not kept", body)
		}
	}
}

func TestNoSnapshotIsFine(t *testing.T) {
	s, _ := newStore(t)
	if res, err := s.Restore(context.Background(), &jar{}); res != (Restored{}) || err != nil {
		t.Errorf("restore without a file: %+v %v", res, err)
	}
}

// A partitioned cookie read back from the (indented) snapshot file must be
// recognised as the one the browser reports compactly.
func TestPartitionedCookieMatchesAcrossTheFile(t *testing.T) {
	s, _ := newStore(t)
	part := `{"name":"p","value":"v","domain":"a.example","path":"/","session":true,"expires":-1,` +
		`"partitionKey":{"topLevelSite":"https://top.example","hasCrossSiteAncestor":false}}`
	if _, err := s.Snapshot(context.Background(), &jar{cookies: []Cookie{cookie(t, part)}}); err != nil {
		t.Fatal(err)
	}
	// The browser has it already, keys in another order.
	have := cookie(t, `{"name":"p","value":"v","domain":"a.example","path":"/","session":true,"expires":-1,`+
		`"partitionKey":{"hasCrossSiteAncestor":false,"topLevelSite":"https://top.example"}}`)
	j := &jar{cookies: []Cookie{have}}
	s2 := New(filepath.Dir(filepath.Dir(s.Path())), s.log, -1, -1)
	if _, err := s2.Restore(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if j.sets != 0 || len(j.cookies) != 1 {
		t.Errorf("a partitioned cookie the browser already has was set again (%d setCookies calls, %d cookies in the jar)", j.sets, len(j.cookies))
	}
}

// runUntilSaved runs the store on sched against a one-cookie jar, calls
// poke while waiting, and reports whether the snapshot file appeared.
func runUntilSaved(t *testing.T, sched Schedule, poke func()) bool {
	t.Helper()
	s, _ := newStore(t)
	j := &jar{cookies: []Cookie{cookie(t, `{"name":"sid","value":"1","domain":"a.example","path":"/","session":true,"expires":-1}`)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, sched, func(context.Context) (Caller, error) { return j, nil })
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(s.Path()); err == nil {
			return true
		}
		poke()
		time.Sleep(2 * time.Millisecond) // polling the condition, not waiting for it
	}
	return false
}

func TestRunSnapshotsAfterANavigationSettles(t *testing.T) {
	nudge := make(chan struct{}, 1)
	nudged := false
	ok := runUntilSaved(t, Schedule{Interval: time.Hour, Nudge: nudge, Settle: 10 * time.Millisecond, MaxWait: time.Second}, func() {
		if !nudged {
			nudge <- struct{}{}
			nudged = true
		}
	})
	if !ok {
		t.Error("no snapshot after a navigation settled (the periodic one is an hour away)")
	}
}

func TestRunSnapshotsPagesThatNeverSettle(t *testing.T) {
	nudge := make(chan struct{}, 1)
	ok := runUntilSaved(t, Schedule{Interval: time.Hour, Nudge: nudge, Settle: time.Hour, MaxWait: 20 * time.Millisecond}, func() {
		select {
		case nudge <- struct{}{}:
		default:
		}
	})
	if !ok {
		t.Error("navigations that never settle held the snapshot back past MaxWait")
	}
}

// statDatabase describes the cookie database in the profile dir.
func statDatabase(dir string) []dbFile {
	return New(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), -1, -1).statDatabase()
}
