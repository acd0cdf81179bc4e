package supervise

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// Backoff is a capped, jittered exponential backoff that resets once a child
// has stayed up for Stable.
type Backoff struct {
	Min, Max time.Duration
	Stable   time.Duration
	n        int
}

// DefaultBackoff suits a helper like x11vnc: quick first retry, at most 30s
// between attempts, reset after a minute of uptime.
func DefaultBackoff() *Backoff {
	return &Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Stable: time.Minute}
}

// Next returns the wait before the next start, given how long the last run
// lasted.
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	if uptime >= b.Stable {
		b.n = 0
	}
	d := b.Min << min(b.n, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.n++
	// Full jitter in [d/2, d): restarts of many pods don't line up.
	return d/2 + rand.N(d/2+1)
}

// Keep runs a child until ctx ends, restarting it with backoff whenever it
// exits. start is called for each attempt and returns the started process;
// ready, if not nil, is called after each start (for a readiness wait or to
// publish the new pid). When ctx ends, the running child is stopped with
// grace and Keep returns nil.
func Keep(ctx context.Context, log *slog.Logger, b *Backoff, grace time.Duration,
	start func() (*Process, error), ready func(context.Context, *Process) error, restarted func()) error {
	first := true
	for {
		if !first && restarted != nil {
			restarted()
		}
		first = false
		p, err := start()
		var uptime time.Duration
		if err != nil {
			log.Error("start failed", "err", err)
		} else {
			if ready != nil {
				if err := ready(ctx, p); err != nil && ctx.Err() == nil {
					log.Warn("not ready", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				stopCtx, cancel := context.WithTimeout(context.Background(), grace+5*time.Second)
				defer cancel()
				return p.Stop(stopCtx, grace)
			case <-p.Done():
			}
			uptime = time.Since(p.Started())
			attrs := []any{"err", p.Err(), "code", p.ExitCode(), "uptime", uptime.Round(time.Millisecond)}
			if out := p.LastOutput(); len(out) > 0 {
				attrs = append(attrs, "last_output", strings.Join(out, " | "))
			}
			log.Warn("exited, restarting", attrs...)
		}
		wait := b.Next(uptime)
		log.Info("restart scheduled", "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
