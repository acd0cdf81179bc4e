package tokens

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dataplanelabs/scry/internal/cdprole"
)

// WatchInterval is how often File reads the tokens file again; a change
// is taken at the second read that finds it, so within two intervals. A
// Kubernetes Secret's update reaches the mounted file within about a
// minute, and reading a small file is cheap.
const WatchInterval = 3 * time.Second

// File keeps the tokens of a tokens file (CDP_TOKENS_FILE) current while
// scry runs: when the file's content changes (and stays so for one more
// read), it hands the new Set to Changed, so tokens are added, rotated
// and revoked without a restart (which would restart the browser). A file
// that no longer reads (a bad line, gone, empty) changes nothing: the
// tokens in use stay, and the error is logged, once per content, naming
// the line but never a token.
type File struct {
	Path string
	// Legacy is CDP_TOKEN's token, added to every Set read (as at start).
	Legacy string
	// Current is the Set in use when Run starts.
	Current *Set
	// Changed receives each new Set. It is called from Run's goroutine.
	Changed func(*Set)
	Logger  *slog.Logger
	// Interval is how often the file is read; zero means WatchInterval.
	Interval time.Duration

	once  sync.Once
	ready chan struct{}
	stop  chan struct{}
	stopO sync.Once
	// last is the content last taken (or reported bad), pending one seen
	// once, to be taken if the next read finds it unchanged.
	last, pending [sha256.Size]byte
	broken        bool // the content last taken was bad
}

func (f *File) init() {
	f.once.Do(func() {
		f.ready = make(chan struct{})
		f.stop = make(chan struct{})
	})
}

// Ready is closed once Run has started.
func (f *File) Ready() <-chan struct{} {
	f.init()
	return f.ready
}

// Close ends Run.
func (f *File) Close(context.Context) {
	f.init()
	f.stopO.Do(func() { close(f.stop) })
}

// Run reads the file every Interval until ctx ends or Close is called.
func (f *File) Run(ctx context.Context) error {
	f.init()
	close(f.ready)
	tick := time.NewTicker(cmp.Or(f.Interval, WatchInterval))
	defer tick.Stop()
	for {
		f.check()
		select {
		case <-ctx.Done():
			return nil
		case <-f.stop:
			return nil
		case <-tick.C:
		}
	}
}

// check reads the file once. A content that differs from the one last
// taken is taken only once the next read finds it unchanged: an editor
// writing the file in place may be caught halfway, with fewer lines (the
// rest would be revoked) that still read well. A valid Set other than
// the current one is then handed on; an invalid content is logged.
func (f *File) check() {
	data, err := readFile(f.Path)
	sum := sha256.Sum256(data)
	if err != nil {
		// A read error is a content of its own, apart from an empty file.
		sum = sha256.Sum256([]byte("error: " + err.Error()))
	}
	if sum == f.last {
		f.pending = [sha256.Size]byte{}
		return
	}
	if sum != f.pending {
		f.pending = sum // taken if the next read finds the same
		return
	}
	f.last, f.pending = sum, [sha256.Size]byte{}
	var set *Set
	if err == nil {
		set, err = parseFile(data)
	}
	if err == nil && f.Legacy != "" {
		if aerr := set.Add(LegacyName, cdprole.Admin, f.Legacy); aerr != nil {
			err = fmt.Errorf("CDP_TOKEN: %w", aerr)
		}
	}
	if err != nil {
		f.broken = true
		f.Logger.Error("CDP_TOKENS_FILE changed but cannot be used; the tokens in use stay until it is fixed",
			"file", f.Path, "err", err)
		return
	}
	wasBroken := f.broken
	f.broken = false
	if set.Same(f.Current) {
		if wasBroken {
			f.Logger.Info("CDP_TOKENS_FILE reads again; the tokens in use are unchanged", "file", f.Path)
		}
		return
	}
	added, removed := f.Current.diff(set)
	f.Logger.Info("tokens reloaded", "file", f.Path, "tokens", set.Names(), "added", added, "removed", removed)
	f.Current = set
	f.Changed(set)
}

func readFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

func parseFile(data []byte) (*Set, error) {
	s, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if s.Len() == 0 {
		return nil, errors.New("no tokens in it: add lines of NAME ROLE TOKEN")
	}
	return s, nil
}

// Same reports whether s and o hold the same tokens (names, roles and
// secrets), in any order.
func (s *Set) Same(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for _, t := range s.list {
		if !o.Has(t) {
			return false
		}
	}
	return true
}

// Has reports whether s holds t: the same name, role and secret. A
// connection whose token the set no longer has was revoked.
func (s *Set) Has(t Token) bool {
	if s == nil {
		return false
	}
	return slices.ContainsFunc(s.list, func(u Token) bool {
		return u.Name == t.Name && u.Role == t.Role && u.hash == t.hash
	})
}

// diff names the tokens of n that s lacks (added) and those of s that n
// lacks (removed), a rotated or re-roled token in both.
func (s *Set) diff(n *Set) (added, removed []string) {
	added, removed = []string{}, []string{}
	for _, t := range n.list {
		if !s.Has(t) {
			added = append(added, t.Name+"="+t.Role.String())
		}
	}
	if s != nil {
		for _, t := range s.list {
			if !n.Has(t) {
				removed = append(removed, t.Name+"="+t.Role.String())
			}
		}
	}
	return added, removed
}
