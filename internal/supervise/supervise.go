// Package supervise starts, watches, stops and restarts child processes.
//
// Every child runs in its own process group so that a stop reaches the whole
// tree it spawned (Chromium's zygote and renderers, for one). One goroutine
// owns each child's Wait; nothing here reaps other processes, because in the
// image tini is PID 1 and does.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Spec describes a child process.
type Spec struct {
	Name string   // short name used in logs: "xvfb", "chromium", "x11vnc"
	Path string   // binary
	Args []string // arguments, without argv[0]
	Env  []string // full environment; nil inherits scry's
	Dir  string

	// Credential, when set, runs the child as that uid/gid (scry as root
	// runs its children unprivileged so Chromium keeps its sandbox).
	Credential *syscall.Credential

	// DeathSignal is sent to the child if scry dies without stopping it,
	// so no orphan outlives scry. Zero means SIGKILL.
	DeathSignal syscall.Signal

	// Logger receives the child's stdout and stderr, one record per line.
	Logger *slog.Logger
	// OutputLevel is the level of those records.
	OutputLevel slog.Level
	// Classify, if not nil, picks the level of each line instead, so a
	// noisy child's chatter can go to debug and its fatal lines to error.
	Classify func(line string) slog.Level

	// AfterExit, if not nil, runs with the child's pid once it has exited
	// and been reaped, before Done is closed: the place to clean up what a
	// child killed without warning leaves behind.
	AfterExit func(pid int)
}

// Process is a running child.
type Process struct {
	Name  string
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
	err   error
	start time.Time
	log   *slog.Logger
	out   []*lineWriter
	tail  *tail
	after func(pid int)
}

// Start starts the child described by spec.
func Start(spec Spec) (*Process, error) {
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("proc", spec.Name)
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	tl := &tail{}
	stdout := newLineWriter(log, spec.OutputLevel, spec.Classify, "stdout", tl)
	stderr := newLineWriter(log, spec.OutputLevel, spec.Classify, "stderr", tl)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Descendants inherit these pipes (Chromium's zygotes, crashpad); one
	// that outlives the leader must not hide the leader's exit.
	cmd.WaitDelay = 2 * time.Second
	death := spec.DeathSignal
	if death == 0 {
		death = syscall.SIGKILL
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  death,
		Credential: spec.Credential,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Process{
		Name:  spec.Name,
		cmd:   cmd,
		done:  make(chan struct{}),
		start: time.Now(),
		log:   log,
		out:   []*lineWriter{stdout, stderr},
		tail:  tl,
		after: spec.AfterExit,
	}
	log.Debug("started", "pid", cmd.Process.Pid, "path", spec.Path)
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	for _, w := range p.out {
		w.Flush()
	}
	p.state = p.cmd.ProcessState
	p.err = describeExit(p.Name, p.state, err)
	if p.after != nil {
		p.after(p.cmd.Process.Pid)
	}
	close(p.done)
}

func describeExit(name string, st *os.ProcessState, err error) error {
	if st == nil {
		return fmt.Errorf("%s: wait: %w", name, err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("%s killed by signal %s", name, ws.Signal())
	}
	if st.ExitCode() != 0 {
		return fmt.Errorf("%s exited with status %d", name, st.ExitCode())
	}
	return nil
}

// LastOutput returns the child's last few lines of output (stdout and
// stderr, oldest first, each cut to a few hundred bytes): what to show
// beside an unexpected exit, since a child's chatter may be logged at a
// level that is off.
func (p *Process) LastOutput() []string { return p.tail.lines() }

// Pid returns the child's pid, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started returns when the child was started.
func (p *Process) Started() time.Time { return p.start }

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err describes how the child ended: nil for exit status 0. Valid after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// ExitCode is the child's exit status the way a shell reports it: 128+N for
// a death by signal N. Valid after Done.
func (p *Process) ExitCode() int {
	<-p.done
	return ExitCode(p.state)
}

// ExitCode maps a process state to a shell-style exit code.
func ExitCode(st *os.ProcessState) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Signal sends sig to the child's whole process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s %s: %w", p.Name, sig, err)
	}
	return nil
}

// Stop asks the child's process group to end with SIGTERM, waits up to grace,
// then kills the group. It returns when the child has been reaped or ctx ends.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	if p.Exited() {
		p.killGroup()
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		p.killGroup() // stragglers that ignored the leader's exit
		return nil
	case <-t.C:
		p.log.Warn("did not stop in time, killing", "grace", grace)
	case <-ctx.Done():
	}
	p.killGroup()
	// SIGKILL cannot be ignored: reaping takes milliseconds unless the
	// process is stuck in the kernel, and the caller's budget is spent.
	select {
	case <-p.done:
		return nil
	case <-time.After(reapWait):
		return fmt.Errorf("stop %s: pid %d not reaped %v after SIGKILL (stuck in the kernel?)", p.Name, p.Pid(), reapWait)
	}
}

// reapWait bounds the wait for a child after SIGKILL.
const reapWait = time.Second

// killGroup sends SIGKILL to the group, reaching children left behind.
func (p *Process) killGroup() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
}
