package supervise

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestBackoffNext(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
	}{
		{"default", *DefaultBackoff()},
		{"small", Backoff{Min: time.Millisecond, Max: 50 * time.Millisecond, Stable: time.Second}},
		{"max below min", Backoff{Min: time.Second, Max: 100 * time.Millisecond, Stable: time.Second}},
		{"huge max", Backoff{Min: time.Second, Max: 1000 * time.Hour, Stable: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			lo := min(b.Min, b.Max) / 2
			prev := time.Duration(0)
			for i := range 40 {
				d := b.Next(0)
				// The un-jittered wait of attempt i, capped.
				want := b.Max
				if b.Min<<min(i, 20) < b.Max {
					want = b.Min << min(i, 20)
				}
				if d < want/2 || d > want {
					t.Fatalf("attempt %d: Next = %v, want in [%v, %v]", i, d, want/2, want)
				}
				if d < lo || d > b.Max {
					t.Fatalf("attempt %d: Next = %v outside [%v, %v]", i, d, lo, b.Max)
				}
				// While it grows, every wait is at least the last one:
				// attempt i+1 draws from [d_i, 2·d_i].
				if i <= 20 && want < b.Max && d < prev {
					t.Fatalf("attempt %d: Next = %v shrank from %v", i, d, prev)
				}
				prev = d
			}
			// A run that lasted Stable starts over.
			first := min(b.Min, b.Max)
			if d := b.Next(b.Stable); d < first/2 || d > first {
				t.Errorf("after a stable run: Next = %v, want in [%v, %v]", d, first/2, first)
			}
			// A short run does not.
			if d := b.Next(b.Stable - 1); d < min(2*b.Min, b.Max)/2 {
				t.Errorf("after a short run: Next = %v, want the backoff to grow again", d)
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	b := DefaultBackoff()
	if b.Min <= 0 || b.Max < b.Min || b.Stable <= 0 {
		t.Fatalf("DefaultBackoff() = %+v", b)
	}
	if d := b.Next(0); d > b.Min {
		t.Errorf("first wait %v longer than Min %v", d, b.Min)
	}
}

// fastBackoff restarts at once; Stable decides whether it resets.
func fastBackoff(stable time.Duration) *Backoff {
	return &Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond, Stable: stable}
}

func TestKeepRestarts(t *testing.T) {
	log, logs := newLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts, restarts atomic.Int32
	start := func() (*Process, error) {
		starts.Add(1)
		return Start(Spec{Name: "flaky", Path: "/bin/sh", Args: []string{"-c", "echo starting >&2; echo shmget: No space left on device >&2; exit 3"},
			Logger: log, OutputLevel: slog.LevelDebug})
	}
	done := make(chan error, 1)
	go func() {
		done <- Keep(ctx, log, fastBackoff(time.Hour), time.Second, start, nil, func() {
			if restarts.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Keep = %v, want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Keep did not return after ctx was cancelled")
	}
	if s, r := starts.Load(), restarts.Load(); r != 3 || s < 3 || s > 4 {
		t.Errorf("starts = %d, restarts = %d; want restarted called 3 times, one start per call after the first", s, r)
	}
	// The exit record says why (one stream: order across two pipes is not
	// defined), even when the child's chatter is at a level
	// that is off in production.
	found := false
	for _, r := range logs.Records(t) {
		if r["msg"] != "exited, restarting" {
			continue
		}
		found = true
		if out := r["last_output"]; out != "starting | shmget: No space left on device" {
			t.Errorf("last_output = %q, want the child's two lines, oldest first", out)
		}
	}
	if !found {
		t.Error("exit not logged")
	}
}

func TestKeepStartFailureRetries(t *testing.T) {
	log, logs := newLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts atomic.Int32
	start := func() (*Process, error) {
		if starts.Add(1) == 3 {
			cancel()
		}
		return nil, errors.New("no binary")
	}
	if err := Keep(ctx, log, fastBackoff(time.Hour), time.Second, start, nil, nil); err != nil {
		t.Fatalf("Keep = %v", err)
	}
	if n := starts.Load(); n != 3 {
		t.Errorf("start called %d times, want 3", n)
	}
	if !logs.has(t, "start failed") {
		t.Error("start failure not logged")
	}
}

func TestKeepBackoffResetsAfterStable(t *testing.T) {
	tests := []struct {
		name   string
		stable time.Duration
		reset  bool
	}{
		// Any run is stable: every wait is the first one.
		{"every run stable", time.Nanosecond, true},
		{"no run stable", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := newLogger(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := fastBackoff(tt.stable)
			var restarts int
			start := func() (*Process, error) {
				return Start(Spec{Name: "flaky", Path: "/bin/sh", Args: []string{"-c", "exit 1"}, Logger: log})
			}
			err := Keep(ctx, log, b, time.Second, start, nil, func() {
				restarts++
				if restarts == 4 {
					cancel()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			// Keep has called Next once per exit, 4 times in all.
			want := 4
			if tt.reset {
				want = 1
			}
			if b.n != want {
				t.Errorf("backoff attempt counter = %d, want %d", b.n, want)
			}
		})
	}
}

func TestKeepStopsChildOnCancel(t *testing.T) {
	tests := []struct {
		name   string
		script string
		code   int
	}{
		{"polite", "echo ready; exec sleep 1000", 128 + int(syscall.SIGTERM)},
		{"ignores SIGTERM", "trap '' TERM; echo ready; exec sleep 1000", 128 + int(syscall.SIGKILL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			running := make(chan *Process, 1)
			start := func() (*Process, error) {
				return Start(Spec{Name: "steady", Path: "/bin/sh", Args: []string{"-c", tt.script}, Logger: log})
			}
			// Ready once the child's signal handling is in place.
			// (Keep calls it on its own goroutine: no t.Fatal here.)
			ready := func(ctx context.Context, p *Process) error {
				for !logs.contains(`"msg":"ready"`) {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-p.Done():
						return p.Err()
					case <-time.After(5 * time.Millisecond):
					}
				}
				running <- p
				return nil
			}
			done := make(chan error, 1)
			go func() { done <- Keep(ctx, log, fastBackoff(time.Hour), 200*time.Millisecond, start, ready, nil) }()

			var p *Process
			select {
			case p = <-running:
			case <-time.After(20 * time.Second):
				t.Fatal("child never started")
			}
			t.Cleanup(func() { p.killGroup(); <-p.Done() })
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Keep = %v, want nil", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Keep did not return after ctx was cancelled")
			}
			if !p.Exited() {
				t.Fatal("Keep returned with the child still running")
			}
			if got := p.ExitCode(); got != tt.code {
				t.Errorf("ExitCode() = %d, want %d", got, tt.code)
			}
		})
	}
}
