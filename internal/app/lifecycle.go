package app

import (
	"context"
	"fmt"
)

// component is the shape every part of scry has: Run does its whole life
// under the run context and returns an error only when it fails; Ready is
// closed once it serves; Close stops it within ctx (the shutdown's
// budget), and Run then returns nil. Close must be safe before Run.
type component interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
	Close(ctx context.Context)
}

// unit is one launched component.
type unit struct {
	name  string
	c     component
	ended chan struct{} // closed when Run returned; err is set then
	err   error
}

// failure is a component's Run that failed: the group's first one ends
// scry.
type failure struct {
	name string
	err  error
}

func (f *failure) Error() string { return f.name + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// launch runs c in the group under the run context. If it fails, the run
// loop hears of it and stops scry.
func (s *scry) launch(name string, c component) *unit {
	u := &unit{name: name, c: c, ended: make(chan struct{})}
	s.group.Go(func() error {
		defer close(u.ended)
		u.err = c.Run(s.runCtx)
		if u.err != nil {
			return &failure{name: name, err: u.err}
		}
		return nil
	})
	return u
}

// start launches c and waits until it is ready.
func (s *scry) start(ctx context.Context, name string, c component) error {
	return s.await(ctx, s.launch(name, c))
}

// await waits until u is ready, its Run or another component's ended in
// failure, or ctx (the boot context) ends.
func (s *scry) await(ctx context.Context, u *unit) error {
	select {
	case <-u.c.Ready():
		return nil
	case <-s.failed.Done():
		cause := context.Cause(s.failed)
		if f, ok := cause.(*failure); ok && f.name == u.name {
			return f.err
		}
		return cause
	case <-u.ended:
		if u.err != nil {
			return u.err
		}
		return fmt.Errorf("%s stopped during start-up", u.name)
	case <-ctx.Done():
		return fmt.Errorf("%s not ready (%w): scry's log above says why; STARTUP_TIMEOUT bounds the start-up", u.name, ctx.Err())
	}
}

// startOptional runs c like start, but its failure costs only its own
// feature: it is logged (notStarted before it was ready, stopped after),
// never fatal.
func (s *scry) startOptional(ctx context.Context, c component, notStarted, stopped string) {
	ready := false
	u := &unit{c: c, ended: make(chan struct{})}
	s.group.Go(func() error {
		defer close(u.ended)
		u.err = c.Run(s.runCtx)
		return nil
	})
	select {
	case <-c.Ready():
		ready = true
	case <-u.ended:
	case <-ctx.Done():
	}
	s.group.Go(func() error {
		<-u.ended
		switch {
		case u.err == nil:
		case ready:
			s.log.Warn(stopped, "err", u.err)
		default:
			s.log.Warn(notStarted, "err", u.err)
		}
		return nil
	})
}
