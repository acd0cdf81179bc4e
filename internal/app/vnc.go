package app

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
	"github.com/dataplanelabs/scry/internal/vnc"
)

// vncChild is x11vnc under supervision: restarted with backoff whenever it
// dies, independent of Chromium and of any viewer.
type vncChild struct {
	cancel    context.CancelFunc
	done      chan struct{}
	ready     chan struct{} // closed the first time x11vnc answers
	readyOnce sync.Once
	pid       atomic.Int64
	restarts  atomic.Int64
}

// waitReady waits until x11vnc has answered once.
func (v *vncChild) waitReady(ctx context.Context) error {
	select {
	case <-v.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("x11vnc never answered on its port (%w): scry's log above says why", ctx.Err())
	}
}

func (v *vncChild) stop() {
	v.cancel()
	<-v.done
}

// Pid is the running x11vnc's pid, 0 between restarts.
func (v *vncChild) Pid() int { return int(v.pid.Load()) }

func (s *scry) startVNC(path string) error {
	cfg := s.cfg
	for _, w := range vnc.Warnings(cfg.VNCPassword) {
		s.log.Warn(w)
	}
	uid, gid := -1, -1
	if s.cred != nil {
		uid, gid = int(s.cred.Uid), int(s.cred.Gid)
	}
	// x11vnc's password is always scry's random one, never VNC_PASSWORD:
	// only scry's bridge can use x11vnc (see package rfbauth). In the
	// runtime dir, never the profile.
	f, err := vnc.WritePasswordFile(s.runtime, s.vncServerPassword, uid, gid)
	if err != nil {
		return err
	}
	opts := vnc.Options{Display: cfg.Display, Port: cfg.VNCPort, PasswordFile: f}
	log := s.log.With("proc", "x11vnc")
	ctx, cancel := context.WithCancel(context.Background())
	v := &vncChild{cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	s.x11vnc = v
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.VNCPort))
	start := func() (*supervise.Process, error) {
		p, err := supervise.Start(supervise.Spec{
			Name: "x11vnc", Path: path, Args: vnc.Args(opts),
			Env: s.env, Credential: s.cred, Logger: s.log,
			OutputLevel: slog.LevelDebug, // x11vnc narrates every connection
			// Should scry die without stopping it, SIGTERM (not SIGKILL)
			// lets x11vnc free its shared memory itself.
			DeathSignal: syscall.SIGTERM,
			// A crashed or killed x11vnc leaves its shared memory behind;
			// enough restarts would exhaust the kernel's segments.
			AfterExit: func(pid int) {
				n, err := vnc.RemoveSegmentsOf(pid)
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
			v.pid.Store(int64(p.Pid()))
		}
		return p, err
	}
	ready := func(ctx context.Context, p *supervise.Process) error {
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
		if err := vnc.WaitReady(rctx, addr); err != nil {
			if p.Exited() {
				return fmt.Errorf("x11vnc exited before it answered on %s", addr)
			}
			return err
		}
		log.Info("x11vnc ready", "pid", p.Pid(), "addr", addr)
		v.readyOnce.Do(func() { close(v.ready) })
		return nil
	}
	go func() {
		defer close(v.done)
		_ = supervise.Keep(ctx, log, supervise.DefaultBackoff(), 3*time.Second, start, ready, func() {
			v.restarts.Add(1)
			v.pid.Store(0)
			s.metrics.Restarted("x11vnc")
		})
	}()
	return nil
}
