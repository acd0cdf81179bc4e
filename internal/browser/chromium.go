package browser

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/supervise"
)

// Chromium is the browser as a component: Run starts it and watches it,
// Close closes it through CDP so the profile is flushed.
type Chromium struct {
	Path       string
	Args       []string // Flags(cfg)
	ExtraFlags int      // how many of Args are CHROME_EXTRA_FLAGS, for the log
	Env        []string
	Dir        string // its working directory
	Credential *syscall.Credential
	// Addr is its loopback DevTools address (CDP_INTERNAL_PORT).
	Addr   string
	Logger *slog.Logger
	// SandboxHint is the error to give when Chromium's output said its
	// sandbox could not start.
	SandboxHint string

	once     sync.Once
	ready    chan struct{}
	proc     atomic.Pointer[supervise.Process]
	stopping atomic.Bool
}

func (c *Chromium) init() { c.once.Do(func() { c.ready = make(chan struct{}) }) }

// Ready is closed once Chromium answers on its DevTools port.
func (c *Chromium) Ready() <-chan struct{} {
	c.init()
	return c.ready
}

// Process is the running Chromium, nil before Run started it.
func (c *Chromium) Process() *supervise.Process { return c.proc.Load() }

// Alive reports whether Chromium was started and has not exited.
func (c *Chromium) Alive() bool {
	p := c.proc.Load()
	return p != nil && !p.Exited()
}

// Run starts Chromium, waits until its DevTools endpoint answers, and
// returns when it exits: an error if nobody asked it to stop (the browser
// must never end on its own). When ctx ends it stops Chromium with
// signals; Close is the gentle way.
func (c *Chromium) Run(ctx context.Context) error {
	c.init()
	var sandboxFailed atomic.Bool
	c.Logger.Info("starting chromium", "path", c.Path, "extra_flags", c.ExtraFlags)
	p, err := supervise.Start(supervise.Spec{
		Name: "chromium", Path: c.Path, Args: c.Args,
		Env: c.Env, Dir: c.Dir, Credential: c.Credential, Logger: c.Logger,
		// If scry dies without a stop, Chromium still gets to flush.
		DeathSignal: syscall.SIGTERM,
		Classify: func(line string) slog.Level {
			if SandboxFailed(line) {
				sandboxFailed.Store(true)
			}
			return ClassifyOutput(line)
		},
	})
	if err != nil {
		return err
	}
	c.proc.Store(p)
	if c.stopping.Load() { // Close came while it was starting
		return p.Stop(ctx, stopGrace)
	}
	v, err := WaitCDP(ctx, c.Addr, p)
	if err != nil {
		if c.stopping.Load() {
			return nil
		}
		_ = p.Stop(context.Background(), stopGrace)
		if sandboxFailed.Load() && c.SandboxHint != "" {
			return errors.New(c.SandboxHint)
		}
		return err
	}
	c.Logger.Info("chromium ready", "pid", p.Pid(), "browser", v.Browser)
	close(c.ready)
	select {
	case <-p.Done():
		if c.stopping.Load() {
			return nil
		}
		if err := p.Err(); err != nil {
			return err
		}
		return errors.New("chromium exited with status 0")
	case <-ctx.Done():
		c.stopping.Store(true)
		return p.Stop(context.Background(), stopGrace)
	}
}

// stopGrace is how long Chromium gets after SIGTERM when Run stops it.
const stopGrace = 5 * time.Second

// Close closes Chromium within ctx's deadline: through CDP with two thirds
// of the time left, so it flushes the profile like a user quitting, then
// with signals within half of what remains. Run then returns nil.
func (c *Chromium) Close(ctx context.Context) {
	c.stopping.Store(true)
	p := c.proc.Load()
	if p == nil {
		return
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(3 * stopGrace)
	}
	if !p.Exited() {
		// Leave a third of the budget for signals and the display.
		closeCtx, cancel := context.WithTimeout(ctx, time.Until(deadline)*2/3)
		err := Close(closeCtx, c.Addr, p)
		cancel()
		if err != nil {
			c.Logger.Warn("graceful close failed; signalling chromium", "err", err)
		} else {
			c.Logger.Info("chromium closed cleanly")
		}
	}
	if err := p.Stop(ctx, time.Until(deadline)/2); err != nil {
		c.Logger.Error("stop chromium", "err", err)
	}
}
