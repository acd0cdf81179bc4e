package novnc

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// login is a viewer still in the RFB handshake, before it holds a viewer
// slot. Its fields other than start and end are guarded by logins.mu.
type login struct {
	start time.Time
	addr  string             // source address (see sourceAddr)
	end   context.CancelFunc // cuts the viewer's connection

	password bool // at the password prompt: a human may be typing
	evicted  bool
}

// stage names where a login is, for logs.
func (l *login) stage() string {
	if l.password {
		return "password"
	}
	return "version and security type"
}

// logins tracks the logins in progress in arrival order. Over the cap, a
// newcomer is never refused: it takes the place of a login from the address
// that holds the most (so one address's connections, silent or guessing,
// make room among themselves), of those the oldest still in the
// machine-paced steps (a real noVNC is through them in milliseconds, so
// that is a silent or broken client), else the oldest at the password
// prompt. So connections that never log in cannot lock the human out: the
// human's own connection always gets in, and at the prompt it outlives
// every silent connection opened before it and every one from an address
// that holds more.
type logins struct {
	mu   sync.Mutex
	list []*login
	n    atomic.Int64 // len(list), read without the lock
}

// add registers l. If limit (> 0) logins are in progress already, it removes
// the one to make room from and returns it, marked evicted; the caller ends
// it.
func (q *logins) add(l *login, limit int) (evicted *login) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit > 0 && len(q.list) >= limit {
		held := map[string]int{}
		most := 0
		for _, l := range q.list {
			held[l.addr]++
			most = max(most, held[l.addr])
		}
		heaviest := func(l *login) bool { return held[l.addr] == most }
		i := slices.IndexFunc(q.list, func(l *login) bool { return heaviest(l) && !l.password })
		if i < 0 {
			i = slices.IndexFunc(q.list, heaviest)
		}
		evicted = q.list[i]
		evicted.evicted = true
		q.list = slices.Delete(q.list, i, i+1)
	}
	q.list = append(q.list, l)
	q.n.Store(int64(len(q.list)))
	return evicted
}

// awaitPassword marks l as at the password prompt.
func (q *logins) awaitPassword(l *login) {
	q.mu.Lock()
	l.password = true
	q.mu.Unlock()
}

// remove ends l's login and reports whether it had been evicted.
func (q *logins) remove(l *login) (evicted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.list, l); i >= 0 {
		q.list = slices.Delete(q.list, i, i+1)
		q.n.Store(int64(len(q.list)))
	}
	return l.evicted
}
