package vnc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dataplanelabs/scry/internal/supervise"
)

// Keeper keeps x11vnc running: restarted with backoff whenever it dies,
// independent of Chromium and of any viewer.
type Keeper struct {
	Path       string // the x11vnc binary
	Options    Options
	Env        []string
	Credential *syscall.Credential
	Logger     *slog.Logger
	// Restarted, if not nil, is called before each restart.
	Restarted func()

	once      sync.Once
	ready     chan struct{} // closed the first time x11vnc answers
	readyOnce sync.Once
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when a started Run returns
	pid       atomic.Int64

	mu      sync.Mutex
	started bool
	stopped bool
}

func (k *Keeper) init() {
	k.once.Do(func() {
		k.ready, k.stop, k.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	})
}

// Ready is closed the first time x11vnc answers on its port.
func (k *Keeper) Ready() <-chan struct{} {
	k.init()
	return k.ready
}

// Pid is the running x11vnc's pid, 0 between restarts.
func (k *Keeper) Pid() int { return int(k.pid.Load()) }

// Run keeps x11vnc running until ctx ends or Close is called, then stops
// it. x11vnc dying is never an error: it is restarted.
func (k *Keeper) Run(ctx context.Context) error {
	k.init()
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return nil
	}
	k.started = true
	k.mu.Unlock()
	defer close(k.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-k.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := k.Logger.With("proc", "x11vnc")
	_ = supervise.Keep(ctx, log, supervise.DefaultBackoff(), 3*time.Second, k.start, k.readyFunc(log), func() {
		k.pid.Store(0)
		if k.Restarted != nil {
			k.Restarted()
		}
	})
	return nil
}

// Close stops x11vnc and waits until Run has returned or ctx ends; a Run
// that has not begun will not start it.
func (k *Keeper) Close(ctx context.Context) {
	k.init()
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.stopped = true
	started := k.started
	k.mu.Unlock()
	close(k.stop)
	if !started {
		return
	}
	select {
	case <-k.done:
	case <-ctx.Done():
	}
}

func (k *Keeper) start() (*supervise.Process, error) {
	log := k.Logger.With("proc", "x11vnc")
	p, err := supervise.Start(supervise.Spec{
		Name: "x11vnc", Path: k.Path, Args: Args(k.Options),
		Env: k.Env, Credential: k.Credential, Logger: k.Logger,
		OutputLevel: slog.LevelDebug, // x11vnc narrates every connection
		// Should scry die without stopping it, SIGTERM (not SIGKILL)
		// lets x11vnc free its shared memory itself.
		DeathSignal: syscall.SIGTERM,
		// A crashed or killed x11vnc leaves its shared memory behind;
		// enough restarts would exhaust the kernel's segments.
		AfterExit: func(pid int) {
			n, err := RemoveSegmentsOf(pid)
			if err != nil {
				log.Warn("could not free a dead x11vnc's shared memory: each such crash leaks ~9 MB, and enough of them "+
					"stop x11vnc from starting (shmget: No space left on device); remove them with ipcrm -m ID "+
					"(ipcs -m -p lists them by creator pid), or run scry as CHILD_UID or with CAP_SYS_ADMIN",
					"pid", pid, "err", err)
			} else if n > 0 {
				log.Debug("freed a dead x11vnc's shared memory", "pid", pid, "segments", n)
			}
		},
	})
	if err == nil {
		k.pid.Store(int64(p.Pid()))
	}
	return p, err
}

// readyFunc probes a started x11vnc until it answers, it dies, or 30 s
// pass; the first answer closes Ready.
func (k *Keeper) readyFunc(log *slog.Logger) func(context.Context, *supervise.Process) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(k.Options.Port))
	return func(ctx context.Context, p *supervise.Process) error {
		rctx, c := context.WithTimeout(ctx, 30*time.Second)
		defer c()
		// A dead x11vnc will never answer: stop probing, restart sooner.
		go func() {
			select {
			case <-p.Done():
				c()
			case <-rctx.Done():
			}
		}()
		if err := WaitReady(rctx, addr); err != nil {
			if p.Exited() {
				return fmt.Errorf("x11vnc exited before it answered on %s", addr)
			}
			return err
		}
		log.Info("x11vnc ready", "pid", p.Pid(), "addr", addr)
		k.readyOnce.Do(func() { close(k.ready) })
		return nil
	}
}
