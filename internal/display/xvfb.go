package display

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// stopGrace is how long Xvfb gets to exit after SIGTERM.
const stopGrace = 2 * time.Second

// Xvfb is the display as a component: Run starts Xvfb and watches it,
// Close stops it.
type Xvfb struct {
	Display    string
	Screen     config.Screen
	Path       string   // the Xvfb binary
	Env        []string // the children's environment
	Credential *syscall.Credential
	Logger     *slog.Logger
	// Authority is the cookie clients must present (Xvfb's -auth); nil
	// leaves the display open to every local client.
	Authority *Authority

	once     sync.Once
	ready    chan struct{}
	proc     atomic.Pointer[supervise.Process]
	stopping atomic.Bool
}

func (x *Xvfb) init() { x.once.Do(func() { x.ready = make(chan struct{}) }) }

// Ready is closed once the display accepts clients.
func (x *Xvfb) Ready() <-chan struct{} {
	x.init()
	return x.ready
}

// Process is the running Xvfb, nil before Run started it.
func (x *Xvfb) Process() *supervise.Process { return x.proc.Load() }

// Run starts Xvfb on a free display, waits until it accepts clients, and
// returns when it exits: an error if nobody asked it to stop. When ctx
// ends it stops Xvfb first.
func (x *Xvfb) Run(ctx context.Context) error {
	x.init()
	if err := PrepareSocketDir(); err != nil {
		return err
	}
	if err := CheckFree(x.Display); err != nil {
		return err
	}
	log := x.Logger
	log.Info("starting xvfb", "display", x.Display, "screen", x.Screen.String())
	p, err := supervise.Start(supervise.Spec{
		Name: "xvfb", Path: x.Path, Args: x.args(),
		Env: x.Env, Credential: x.Credential, Logger: log,
	})
	if err != nil {
		return err
	}
	x.proc.Store(p)
	if x.stopping.Load() { // Close came while it was starting
		return x.stop(ctx)
	}
	if err := WaitReady(ctx, x.Display, x.cookie(), p); err != nil {
		if x.stopping.Load() {
			return nil
		}
		_ = x.stop(context.Background())
		return err
	}
	log.Info("xvfb ready", "pid", p.Pid())
	close(x.ready)
	select {
	case <-p.Done():
		if x.stopping.Load() {
			return nil
		}
		if err := p.Err(); err != nil {
			return err
		}
		return errors.New("xvfb exited with status 0")
	case <-ctx.Done():
		return x.stop(context.Background())
	}
}

// Close stops Xvfb (SIGTERM, then SIGKILL after a grace period or when
// ctx ends); Run then returns nil.
func (x *Xvfb) Close(ctx context.Context) {
	x.stopping.Store(true)
	if x.proc.Load() != nil {
		if err := x.stop(ctx); err != nil {
			x.Logger.Error("stop xvfb", "err", err)
		}
	}
}

func (x *Xvfb) stop(ctx context.Context) error {
	x.stopping.Store(true)
	return x.proc.Load().Stop(ctx, stopGrace)
}

func (x *Xvfb) args() []string {
	args := Args(x.Display, x.Screen)
	if x.Authority != nil {
		args = append(args, "-auth", x.Authority.Path)
	}
	return args
}

func (x *Xvfb) cookie() []byte {
	if x.Authority == nil {
		return nil
	}
	return x.Authority.Cookie
}
