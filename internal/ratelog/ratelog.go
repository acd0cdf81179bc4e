// Package ratelog keeps a flood of like log records from flooding the log.
//
// Anyone who can reach a door can make scry refuse requests as fast as the
// network allows; one WARN line per refusal would let them fill the disk and
// bury the lines that matter. A Limiter lets a burst of records through per
// key (a refusal reason, say), then one per interval, and counts what it
// holds back so the next record it lets through can say how many were
// dropped. Metrics still count every event.
package ratelog

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key. The zero value is not usable; use New.
type Limiter struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

// maxKeys bounds the limiter's memory: keys are meant to be a small fixed
// set (reasons), never client addresses. Past it, new keys share one bucket.
const maxKeys = 64

// New returns a Limiter that lets burst records through at once per key,
// then one per every.
func New(burst int, every time.Duration) *Limiter {
	return &Limiter{every: every, burst: max(burst, 1), now: time.Now, keys: map[string]*bucket{}}
}

// Allow reports whether a record for key may be logged now and, if so, how
// many records for key were held back since the last one let through.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= maxKeys {
			key = "\x00other"
			b = l.keys[key]
		}
		if b == nil {
			b = &bucket{tokens: float64(l.burst), last: now}
			l.keys[key] = b
		}
	}
	if l.every > 0 {
		b.tokens = min(float64(l.burst), b.tokens+float64(now.Sub(b.last))/float64(l.every))
	}
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}
