package cookies

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readSnapshot(t *testing.T, s *Store) snapshotFile {
	t.Helper()
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshotFile
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

func goneIDs(snap snapshotFile) map[string]bool {
	m := map[string]bool{}
	for _, g := range snap.Gone {
		m[g.ID] = true
	}
	return m
}

// The snapshots record the persistent cookie values they saw leave the
// browser (a logout, a rotation), even when the snapshot that saw it
// could not be written, carry them across a restart, and forget one that
// comes back. A restart whose profile is newer but still holds such a
// value (the commit that would have deleted it failed) removes it.
func TestSnapshotsRecordWhatWentAndRestoreHonoursIt(t *testing.T) {
	future := itoa(time.Now().Add(time.Hour).Unix())
	pers := func(name, value string) Cookie {
		return cookie(t, `{"name":"`+name+`","value":"`+value+`","domain":"a.example","path":"/","session":false,"expires":`+future+`}`)
	}
	sess := cookie(t, `{"name":"sid","value":"s","domain":"a.example","path":"/","session":true,"expires":-1}`)
	ctx := context.Background()
	s, dir := newStore(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	writeDB(t, dir, "Default/Cookies", 7, at)

	j := &jar{cookies: []Cookie{pers("auth", "a"), pers("token", "t1"), sess}}
	if _, err := s.Snapshot(ctx, j); err != nil {
		t.Fatal(err)
	}
	if g := readSnapshot(t, s).Gone; len(g) != 0 {
		t.Fatalf("first snapshot has gone cookies: %v", g)
	}

	// Logout of auth, rotation of token, the session cookie dropped; the
	// snapshot that sees it cannot be written (.scry is in the way).
	j.cookies = []Cookie{pers("token", "t2")}
	state := filepath.Dir(s.Path())
	if err := os.Rename(state, state+"-away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, j); err == nil {
		t.Fatal("snapshot into a .scry that is a file succeeded")
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(state+"-away", state); err != nil {
		t.Fatal(err)
	}
	j.cookies = append(j.cookies, pers("marker", "m"))
	if _, err := s.Snapshot(ctx, j); err != nil {
		t.Fatal(err)
	}
	snap := readSnapshot(t, s)
	authA, tokenT1 := pers("auth", "a").goneID(), pers("token", "t1").goneID()
	if g := goneIDs(snap); !g[authA] || !g[tokenT1] || len(snap.Gone) != 2 {
		t.Fatalf("gone %+v, want auth=a and token=t1 (never a session cookie)", snap.Gone)
	}
	if b, _ := os.ReadFile(s.Path()); strings.Contains(string(b), `"auth"`) || strings.Contains(string(b), `"t1"`) {
		t.Errorf("the snapshot names what went in clear:\n%s", b)
	}

	// Restart. Chromium's commit of the logout and the rotation failed:
	// the database changed (the profile is newer) but holds auth=a and
	// token=t1.
	writeDB(t, dir, "Default/Cookies", 8, at)
	s2 := New(dir, s.log, -1, -1)
	s2.NoteDatabase()
	j2 := &jar{cookies: []Cookie{pers("auth", "a"), pers("token", "t1")}}
	res, err := s2.Restore(ctx, j2)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range j2.cookies {
		got[c.str("name")] = c.str("value")
	}
	if res.SnapshotNewer || got["auth"] != "" || got["token"] != "t2" || got["marker"] != "m" {
		t.Errorf("after the restart: %+v, browser %v; want the profile newer, auth gone, token=t2, marker=m", res, got)
	}
	// The restarted store carries what went into its own snapshots.
	if g := goneIDs(readSnapshot(t, s2)); !g[authA] || !g[tokenT1] {
		t.Errorf("the restart's snapshot forgot what went: %v", g)
	}

	// auth=a logged in again: no longer gone.
	j2.cookies = append(j2.cookies, pers("auth", "a"))
	if _, err := s2.Snapshot(ctx, j2); err != nil {
		t.Fatal(err)
	}
	if g := goneIDs(readSnapshot(t, s2)); g[authA] || !g[tokenT1] {
		t.Errorf("gone %v after auth=a came back, want only token=t1", g)
	}
}

// The full disk of issue 14: a persistent cookie snapshotted, the disk
// filled, the final snapshot failed, Chromium's failed commit touched the
// database without the cookie. The restart puts it back.
func TestFailedCommitDoesNotLoseACookie(t *testing.T) {
	future := itoa(time.Now().Add(time.Hour).Unix())
	login := cookie(t, `{"name":"login","value":"l","domain":"a.example","path":"/","session":false,"expires":`+future+`}`)
	ctx := context.Background()
	s, dir := newStore(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	writeDB(t, dir, "Default/Cookies", 7, at)
	if _, err := s.Snapshot(ctx, &jar{cookies: []Cookie{login}}); err != nil {
		t.Fatal(err)
	}
	writeDB(t, dir, "Default/Cookies", 7, at.Add(time.Second)) // touched, nothing committed
	s2 := New(dir, s.log, -1, -1)
	s2.NoteDatabase()
	j := &jar{}
	res, err := s2.Restore(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotNewer || res.Put != 1 || len(j.cookies) != 1 || j.cookies[0].str("name") != "login" {
		t.Errorf("restore %+v, browser %v; want the profile newer and the login put back", res, j.cookies)
	}
}
