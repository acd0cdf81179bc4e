package scrytest

import (
	"context"
	"fmt"
	"time"
)

// WaitFor checks cond until it returns nil or ctx ends, and then returns
// ctx's error with cond's last one. The deadline belongs to ctx and bounds
// a real condition; the interval between checks is only how often to look.
func WaitFor(ctx context.Context, cond func() error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}
