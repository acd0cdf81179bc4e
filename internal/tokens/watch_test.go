package tokens

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/cdprole"
	"github.com/dataplanelabs/scry/internal/scrytest"
)

const tokD = "dddddddddddddddddddddddd"

// watched is a tokens file and a File on it whose Changed records each
// set; check() is called by hand, one read of the file each.
func watched(t *testing.T, content, legacy string) (*File, *[]*Set, *scrytest.LogBuffer, func(string)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(c string) {
		t.Helper()
		// As Kubernetes updates a mounted Secret: a new file renamed over.
		if err := os.WriteFile(path+".new", []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(content)
	cur, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if legacy != "" {
		if err := cur.Add(LegacyName, cdprole.Admin, legacy); err != nil {
			t.Fatal(err)
		}
	}
	var got []*Set
	log := &scrytest.LogBuffer{}
	f := &File{Path: path, Legacy: legacy, Current: cur, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Changed: func(s *Set) { got = append(got, s) }}
	return f, &got, log, write
}

func TestFileReloadsAChangedFile(t *testing.T) {
	f, got, log, write := watched(t, "ci agent "+tokA+"\nops admin "+tokB+"\n", tokD)
	f.check()
	f.check()
	if len(*got) != 0 {
		t.Fatalf("the unchanged file gave %d new sets", len(*got))
	}
	// ci rotated to a new token, ops removed, grafana added.
	write("ci agent " + tokC + "\ngrafana observer " + tokB + "\n")
	f.check()
	if len(*got) != 0 {
		t.Fatalf("a change was taken at its first read: %d new sets, want 0 until the next read", len(*got))
	}
	f.check()
	if len(*got) != 1 {
		t.Fatalf("after a change read twice: %d new sets, want 1", len(*got))
	}
	s := (*got)[0]
	if tk, ok := s.Match(tokC); !ok || tk.Name != "ci" {
		t.Errorf("the rotated token: %+v %v", tk, ok)
	}
	if _, ok := s.Match(tokA); ok {
		t.Error("the old token of ci still matches")
	}
	if tk, ok := s.Match(tokB); !ok || tk.Name != "grafana" || tk.Role.String() != "observer" {
		t.Errorf("grafana: %+v %v", tk, ok)
	}
	if tk, ok := s.Match(tokD); !ok || tk.Name != LegacyName {
		t.Errorf("CDP_TOKEN's token is not in the new set: %+v %v", tk, ok)
	}
	l := log.String()
	if !strings.Contains(l, "tokens reloaded") || !strings.Contains(l, "grafana=observer") || !strings.Contains(l, "ops=admin") {
		t.Errorf("log:\n%s", l)
	}
	for _, tok := range []string{tokA, tokB, tokC, tokD} {
		if strings.Contains(l, tok) {
			t.Errorf("a token is in the log:\n%s", l)
		}
	}
	// Rewritten unchanged: nothing new.
	write("ci agent " + tokC + "\ngrafana observer " + tokB + "\n")
	f.check()
	f.check()
	// The same tokens in another order and with comments: nothing new.
	write("# reordered\ngrafana observer " + tokB + "\nci agent " + tokC + "  # rotated\n")
	f.check()
	f.check()
	if len(*got) != 1 {
		t.Errorf("an unchanged token list gave %d new sets in all, want 1", len(*got))
	}
}

// A file that no longer reads keeps the tokens in use, says why once (not
// at every read), never echoes a token, and a fixed file is taken.
func TestFileKeepsTheTokensWhenTheFileIsBad(t *testing.T) {
	f, got, log, write := watched(t, "ci agent "+tokA+"\n", "")
	for _, bad := range []string{
		"ci agent " + tokA + "\nbroken " + tokB + "\n", // two fields
		"", // no tokens
		"ci agent " + tokA + "\ncdp-token admin " + tokC + "\nx agent tiny\n",
	} {
		write(bad)
		f.check()
		f.check()
		f.check()
	}
	if len(*got) != 0 {
		t.Fatalf("bad files gave %d new sets", len(*got))
	}
	if n := strings.Count(log.String(), "cannot be used"); n != 3 {
		t.Errorf("%d error lines for 3 bad contents read 3 times each, want 3:\n%s", n, log)
	}
	if !strings.Contains(log.String(), "line 2") {
		t.Errorf("the error does not name the line:\n%s", log)
	}
	for _, tok := range []string{tokA, tokB, tokC, "tiny"} {
		if strings.Contains(log.String(), tok) {
			t.Errorf("the log holds a field of a line:\n%s", log)
		}
	}
	if err := os.Remove(f.Path); err != nil {
		t.Fatal(err)
	}
	f.check()
	f.check()
	if len(*got) != 0 || !strings.Contains(log.String(), "no such file") {
		t.Errorf("a removed file: %d new sets, log:\n%s", len(*got), log)
	}
	write("ci agent " + tokA + "\n")
	f.check()
	f.check()
	if len(*got) != 0 || !strings.Contains(log.String(), "reads again") {
		t.Errorf("the file fixed back to the tokens in use: %d new sets, log:\n%s", len(*got), log)
	}
	write("ci agent " + tokC + "\n")
	f.check()
	f.check()
	if len(*got) != 1 {
		t.Fatalf("the fixed file gave %d new sets, want 1", len(*got))
	}
}

// CDP_TOKEN's token clashing with the file (the same token, or the name
// cdp-token) keeps the tokens in use, as it stops start-up.
func TestFileLegacyClash(t *testing.T) {
	f, got, log, write := watched(t, "ci agent "+tokA+"\n", tokD)
	write("ci agent " + tokA + "\nops admin " + tokD + "\n")
	f.check()
	f.check()
	if len(*got) != 0 || !strings.Contains(log.String(), "CDP_TOKEN") {
		t.Errorf("a file holding CDP_TOKEN's token: %d new sets, log:\n%s", len(*got), log)
	}
}

// Run reads the file until Close, and picks up a change on its own.
func TestFileRun(t *testing.T) {
	f, _, _, write := watched(t, "ci agent "+tokA+"\n", "")
	changed := make(chan *Set, 1)
	f.Changed = func(s *Set) { changed <- s }
	f.Interval = 10 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	<-f.Ready()
	write("ci agent " + tokB + "\n")
	select {
	case s := <-changed:
		if _, ok := s.Match(tokB); !ok {
			t.Error("the new set lacks the new token")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no new set 10 s after the file changed")
	}
	f.Close(context.Background())
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}
