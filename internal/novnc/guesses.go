package novnc

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// guesses bounds VNC password guessing on two levels:
//
//   - Each source address has its answers checked one at a time, and after
//     a wrong one its next answer waits: base, doubling with each failure
//     up to maxDelay; the failure count halves every halfLife without one.
//     A wrong answer is held back that long too.
//   - Across all addresses at most limit answers are wrong per window; an
//     address with failures of its own may use only limit-reserve of them,
//     so the rest are left for people who have not failed lately.
//
// Only guessers wait: an address with no recent failures is checked at
// once, and a right answer is accepted at once, whatever other addresses
// are doing. A guess is counted when it is checked (a guesser learns a
// wrong answer from the missing success, not from the failure message), so
// the bounds hold for guessers who hang up early too.
type guesses struct {
	base, maxDelay, halfLife time.Duration
	window                   time.Duration
	limit, reserve           int

	mu      sync.Mutex
	sources map[string]*source
	checks  []time.Time   // wrong answers and checks under way in the last window, oldest first
	changed chan struct{} // closed and replaced whenever a check ends
	wrong   int64         // wrong answers since start
}

// source is one address's guessing record.
type source struct {
	fails float64   // failures, decayed to last
	last  time.Time // when fails was last updated
	next  time.Time // its next answer is checked no earlier
	busy  bool      // an answer of its is being checked
}

// Bounds for a base delay of one second: the delay caps at a minute, a
// quiet address halves its count every 5 minutes, and all addresses
// together get at most 60 wrong answers a minute, 10 of them kept for
// addresses without recent failures.
const (
	guessMaxDelay = 60  // × base
	guessHalfLife = 300 // × base
	guessWindow   = 60  // × base
	guessLimit    = 60
	guessReserve  = 10
	maxSources    = 4096 // addresses remembered; past them, new ones share one record
)

func newGuesses(base time.Duration) *guesses {
	return &guesses{
		base:     base,
		maxDelay: guessMaxDelay * base,
		halfLife: guessHalfLife * base,
		window:   guessWindow * base,
		limit:    guessLimit,
		reserve:  guessReserve,
		sources:  map[string]*source{},
		changed:  make(chan struct{}),
	}
}

// errThrottled is check's error when a source's turn would come after its
// connection's deadline.
var errThrottled = errors.New("too many wrong VNC passwords from this address lately; try again later")

// guess is one answer being checked; exactly one of right and wrong ends
// it (end, deferred, cleans up one that neither did).
type guess struct {
	g     *guesses
	addr  string
	at    time.Time
	ended bool
}

// check waits until addr's answer may be checked: its previous check is
// over, its delay has passed, and the window has room. It gives up with
// ctx's error, or errThrottled when ctx's deadline comes first.
func (g *guesses) check(ctx context.Context, addr string) (*guess, error) {
	for {
		g.mu.Lock()
		now := time.Now()
		key, s := g.source(addr, now)
		changed := g.changed
		wait := time.Duration(-1) // until a check ends
		if !s.busy {
			wait = max(s.next.Sub(now), g.room(now, s.fails >= 0.5), 0)
		}
		if wait == 0 {
			s.busy = true
			g.checks = append(g.checks, now)
			g.mu.Unlock()
			return &guess{g: g, addr: key, at: now}, nil
		}
		g.mu.Unlock()
		if d, ok := ctx.Deadline(); ok && wait > 0 && now.Add(wait).After(d) {
			return nil, errThrottled
		}
		if err := sleep(ctx, wait, changed); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, errThrottled
			}
			return nil, err
		}
	}
}

// sleep waits d (forever if negative), or until changed is closed or ctx
// ends, which is its error.
func sleep(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d) // a throttle, not synchronisation
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
	case <-changed:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// room returns how long until the window has room for one more check.
// The caller holds g.mu.
func (g *guesses) room(now time.Time, failed bool) time.Duration {
	for len(g.checks) > 0 && !g.checks[0].After(now.Add(-g.window)) {
		g.checks = g.checks[1:]
	}
	limit := g.limit
	if failed {
		limit -= g.reserve
	}
	if len(g.checks) < limit {
		return 0
	}
	// Room comes when enough of the oldest leave the window.
	return g.checks[len(g.checks)-limit].Add(g.window).Sub(now)
}

// source returns addr's record, decayed to now, and the key it is kept
// under. The caller holds g.mu.
func (g *guesses) source(addr string, now time.Time) (string, *source) {
	if _, ok := g.sources[addr]; !ok && len(g.sources) >= maxSources {
		g.forget(now)
		if len(g.sources) >= maxSources {
			addr = "" // a flood of addresses shares one record
		}
	}
	s, ok := g.sources[addr]
	if !ok {
		s = &source{last: now}
		g.sources[addr] = s
	}
	return addr, s.decay(now, g.halfLife)
}

// forget drops the records of addresses that have almost no failures left
// and nothing under way. The caller holds g.mu.
func (g *guesses) forget(now time.Time) {
	for a, s := range g.sources {
		if s.decay(now, g.halfLife); !s.busy && s.fails < 0.05 && !s.next.After(now) {
			delete(g.sources, a)
		}
	}
}

func (s *source) decay(now time.Time, halfLife time.Duration) *source {
	if d := now.Sub(s.last); d > 0 && s.fails > 0 {
		s.fails *= math.Exp2(-float64(d) / float64(halfLife))
	}
	s.last = now
	return s
}

// delay is the wait after a source's failures: base, doubled per failure
// after the first, up to maxDelay.
func (g *guesses) delay(fails float64) time.Duration {
	n := int(math.Round(fails)) - 1
	if n >= 30 {
		return g.maxDelay
	}
	return min(g.base<<max(n, 0), g.maxDelay)
}

// right ends a check whose answer was right: it leaves no trace.
func (q *guess) right() {
	q.g.end(q, false)
}

// wrong records a wrong answer and holds the caller back until the
// source's delay has passed or ctx ends.
func (q *guess) wrong(ctx context.Context) {
	next := q.g.end(q, true)
	_ = sleep(ctx, max(time.Until(next), 0), nil)
}

// abandon ends a check that neither right nor wrong ended.
func (q *guess) abandon() {
	if q != nil {
		q.g.end(q, false)
	}
}

// end ends q (once) and returns when its source's next answer may be
// checked.
func (g *guesses) end(q *guess, wrong bool) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if q.ended {
		return time.Time{}
	}
	q.ended = true
	now := time.Now()
	_, s := g.source(q.addr, now)
	s.busy = false
	if wrong {
		g.wrong++
		s.fails++
		s.next = now.Add(g.delay(s.fails))
	} else if i := slices.Index(g.checks, q.at); i >= 0 {
		g.checks = slices.Delete(g.checks, i, i+1)
	}
	close(g.changed)
	g.changed = make(chan struct{})
	return s.next
}

// wrongAnswers returns the number of wrong answers since start.
func (g *guesses) wrongAnswers() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wrong
}

// sourceAddr is the address a viewer's guesses are counted under: its IP,
// or for IPv6 its /64, which one host usually holds whole.
func sourceAddr(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
