package cookies

import (
	"context"
	"errors"
	"testing"
	"time"
)

// failing is a browser that answers nothing.
type failing struct{}

func (failing) Call(context.Context, string, any, any) error {
	return errors.New("chromium is not answering")
}

// Status says when a snapshot last succeeded, written or not, so an
// unchanged jar keeps the age small and failing snapshots make it grow,
// and it counts the failures.
func TestStatusFollowsSuccessNotChange(t *testing.T) {
	s, _ := newStore(t)
	j := &jar{cookies: []Cookie{
		cookie(t, `{"name":"sid","value":"1","domain":"a.example","path":"/","session":true,"expires":-1,"size":4}`),
	}}
	ctx := context.Background()
	t0 := time.Now()
	if wrote, err := s.Snapshot(ctx, j); err != nil || !wrote {
		t.Fatalf("first snapshot: wrote=%v err=%v", wrote, err)
	}
	if last, n, f := s.Status(); last.Before(t0) || n != 1 || f != 0 {
		t.Errorf("after a written snapshot: last %v (before it, %v), %d cookies, %d failures; want last at the snapshot, 1, 0", last, t0, n, f)
	}
	t1 := time.Now()
	if wrote, err := s.Snapshot(ctx, j); err != nil || wrote {
		t.Fatalf("unchanged snapshot: wrote=%v err=%v", wrote, err)
	}
	last, _, _ := s.Status()
	if last.Before(t1) {
		t.Errorf("an unchanged jar read successfully did not count: last %v, snapshot at %v", last, t1)
	}

	// Run against a browser that never answers: failures counted, last
	// stays where the last success left it.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(rctx, Schedule{Interval: 5 * time.Millisecond, Nudge: make(chan struct{}), Settle: time.Millisecond, MaxWait: time.Millisecond},
			func(context.Context) (Caller, error) { return failing{}, nil })
	}()
	deadline := time.Now().Add(10 * time.Second)
	var f uint64
	for time.Now().Before(deadline) {
		if _, _, f = s.Status(); f >= 2 {
			break
		}
		time.Sleep(2 * time.Millisecond) // polling the condition, not waiting for it
	}
	cancel()
	<-done
	l2, n, f := s.Status()
	if f < 2 {
		t.Errorf("%d failures counted after 10 s of failing snapshots, want ≥ 2", f)
	}
	if !l2.Equal(last) || n != 1 {
		t.Errorf("failing snapshots moved last from %v to %v (cookies %d): the age would hide them", last, l2, n)
	}
}
