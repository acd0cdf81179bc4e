package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

// step is a component whose Run does what the test tells it.
type step struct {
	ready chan struct{}
	run   func(ctx context.Context, ready chan struct{}) error
}

func (c *step) Ready() <-chan struct{}        { return c.ready }
func (c *step) Run(ctx context.Context) error { return c.run(ctx, c.ready) }
func (c *step) Close(context.Context)         {}
func newStep(run func(context.Context, chan struct{}) error) *step {
	return &step{ready: make(chan struct{}), run: run}
}

func newRun(t *testing.T) (*scry, context.CancelFunc) {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	s := &scry{log: slog.New(slog.NewTextHandler(io.Discard, nil)), runCtx: runCtx}
	s.group, s.failed = errgroup.WithContext(runCtx)
	t.Cleanup(func() { cancel(); _ = s.group.Wait() })
	return s, cancel
}

// A component that is ready lets the start-up go on; one that fails
// before it is ready stops it with its own error; and the first failure
// after start-up reaches the run loop with the component's name.
func TestStartAwaitsReadyOrFailure(t *testing.T) {
	s, _ := newRun(t)
	ctx := context.Background()
	served := newStep(func(ctx context.Context, ready chan struct{}) error {
		close(ready)
		<-ctx.Done()
		return nil
	})
	if err := s.start(ctx, "served", served); err != nil {
		t.Fatalf("start of a ready component: %v", err)
	}
	broken := errors.New("no such display")
	if err := s.start(ctx, "broken", newStep(func(context.Context, chan struct{}) error { return broken })); !errors.Is(err, broken) {
		t.Fatalf("start of a failing component: %v, want %v", err, broken)
	}
	<-s.failed.Done()
	var f *failure
	if !errors.As(context.Cause(s.failed), &f) || f.name != "broken" {
		t.Errorf("the run loop heard %v, want the failure of broken", context.Cause(s.failed))
	}
}

// The boot context ending stops the wait, naming the component.
func TestStartGivesUpWithTheBootContext(t *testing.T) {
	s, _ := newRun(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := newStep(func(ctx context.Context, _ chan struct{}) error { <-ctx.Done(); return nil })
	err := s.start(ctx, "slow", slow)
	if err == nil || !strings.Contains(err.Error(), "slow not ready") {
		t.Errorf("start past the boot context: %v, want it to say slow is not ready", err)
	}
}

// An optional component's failure is logged, never the run loop's.
func TestOptionalFailureIsNotFatal(t *testing.T) {
	s, _ := newRun(t)
	s.startOptional(context.Background(), newStep(func(context.Context, chan struct{}) error {
		return errors.New("no clipboard today")
	}), "not started", "stopped")
	if err := s.start(context.Background(), "next", newStep(func(ctx context.Context, ready chan struct{}) error {
		close(ready)
		<-ctx.Done()
		return nil
	})); err != nil {
		t.Errorf("start after an optional failure: %v", err)
	}
	select {
	case <-s.failed.Done():
		t.Errorf("an optional failure reached the run loop: %v", context.Cause(s.failed))
	default:
	}
}
