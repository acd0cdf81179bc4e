// Package doctor is scry's preflight: it checks, without starting anything,
// the things users get wrong when they deploy scry (missing packages, a
// seccomp profile that kills Chromium's sandbox, a profile volume the
// browser cannot write or other uids can, ports in use, flags that switch a
// protection off) and says, one line each, how to fix them. Where another
// package owns a fact (finding a binary, a display in use) doctor asks it. `scry doctor` prints every check; at start scry runs only the checks
// that would make it fail anyway, so the error names the fix instead of a
// Chromium crash.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/dataplanelabs/scry/internal/config"
)

// Status is a check's verdict.
type Status int

const (
	Pass Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Warn:
		return "WARN"
	default:
		return "FAIL"
	}
}

// Result is one check's verdict. Fix says what to do next; it is set for
// every Fail and for the warnings that have a remedy.
type Result struct {
	Name   string
	Status Status
	Detail string
	Fix    string
}

// String renders the result the way Run prints it: a status line, then the
// fix indented under it.
func (r Result) String() string {
	s := fmt.Sprintf("%-4s  %s: %s", r.Status, r.Name, r.Detail)
	if r.Fix != "" && r.Status != Pass {
		s += "\n      fix: " + r.Fix
	}
	return s
}

// Check is one preflight check. Fatal checks are the ones that would make
// scry fail at start anyway; Fatal runs only those.
type Check struct {
	Name  string
	Fatal bool
	Run   func(ctx context.Context, env Env) Result
}

// Env is what the checks look at. Zero fields mean the real thing.
type Env struct {
	// Config is scry's configuration; nil reads it with Getenv.
	Config *config.Config
	// Getenv reads the environment when Config is nil (os.Getenv).
	Getenv func(string) string
	// LookPath finds binaries (exec.LookPath).
	LookPath func(string) (string, error)
	// Euid is scry's effective uid (os.Geteuid); it decides whether the
	// children run as CHILD_UID or as scry itself.
	Euid func() int

	// Test hooks.
	egid     func() int
	statfs   func(path string, st *syscall.Statfs_t) error
	readFile func(string) ([]byte, error)
	userNS   func(ctx context.Context, uid, gid int) error
	shmDir   string
}

// Checks lists every check in the order Run prints them.
func Checks() []Check {
	return []Check{
		{Name: "chromium", Fatal: true, Run: binary(config.Chromium)},
		{Name: "Xvfb", Fatal: true, Run: binary(config.Xvfb)},
		{Name: "x11vnc", Fatal: true, Run: binary(config.X11vnc)},
		{Name: "noVNC", Fatal: true, Run: checkNoVNC},
		{Name: "child uid", Fatal: true, Run: checkChildUID},
		{Name: "sandbox", Fatal: true, Run: checkSandbox},
		{Name: "/dev/shm", Run: checkShm},
		{Name: "CHROME_EXTRA_FLAGS", Run: checkRiskyFlags},
		{Name: "PROFILE_DIR", Fatal: true, Run: checkProfile},
		{Name: "PROFILE_DIR mode", Fatal: true, Run: checkProfileMode},
		{Name: "PROFILE_DIR space", Fatal: true, Run: checkProfileSpace},
		{Name: "VNC_PASSWORD", Run: checkVNCPassword},
		{Name: "CDP_TOKEN", Run: checkCDPToken},
		{Name: "CDP_PORT", Fatal: true, Run: port("CDP_PORT", "", func(c *config.Config) int { return c.CDPPort })},
		{Name: "CDP_INTERNAL_PORT", Fatal: true, Run: port("CDP_INTERNAL_PORT", "127.0.0.1", func(c *config.Config) int { return c.CDPInternalPort })},
		{Name: "NOVNC_PORT", Fatal: true, Run: port("NOVNC_PORT", "", func(c *config.Config) int { return c.NoVNCPort })},
		{Name: "VNC_PORT", Fatal: true, Run: port("VNC_PORT", "127.0.0.1", func(c *config.Config) int { return c.VNCPort })},
		{Name: "CDP_NOAUTH_PORT", Fatal: true, Run: optionalPort("CDP_NOAUTH_PORT", "127.0.0.1", func(c *config.Config) int { return c.CDPNoAuthPort })},
		{Name: "DISPLAY", Fatal: true, Run: checkDisplay},
	}
}

// Run runs every check and prints one line each to w. It reports whether
// any check failed.
func Run(ctx context.Context, env Env, w io.Writer) (failed bool) {
	resolved, err := env.resolve()
	if err != nil {
		fmt.Fprintln(w, configResult(err))
		// One bad variable should not hide every other finding: go on
		// with the defaults of the variables the error names, if that
		// makes a configuration.
		bad := namedVars(err)
		if len(bad) == 0 {
			return true
		}
		getenv := env.getenv
		env.Getenv = func(k string) string {
			if slices.Contains(bad, k) {
				return ""
			}
			return getenv(k)
		}
		if resolved, err = env.resolve(); err != nil {
			return true
		}
		fmt.Fprintf(w, "      (the checks below use the defaults of %s)\n", strings.Join(bad, ", "))
		failed = true
	}
	for _, c := range Checks() {
		r := run(ctx, resolved, c)
		fmt.Fprintln(w, r)
		if r.Status == Fail {
			failed = true
		}
	}
	return failed
}

// namedVars returns the variables a configuration error names as NAME=.
func namedVars(err error) []string {
	msg := err.Error()
	var names []string
	for _, v := range config.Vars {
		for i := 0; ; {
			j := strings.Index(msg[i:], v.Name+"=")
			if j < 0 {
				break
			}
			j += i
			// A whole name: VNC_PORT= inside NOVNC_PORT= is not it.
			if j == 0 || !isNameByte(msg[j-1]) {
				names = append(names, v.Name)
				break
			}
			i = j + 1
		}
	}
	return names
}

func isNameByte(b byte) bool { return b == '_' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' }

// Fatal runs the checks that would make scry fail at start (binaries, the
// sandbox's user namespaces unless --no-sandbox, the profile directory and
// who else may write it, the child uid, its ports and its display) and returns their failures, in the
// words `scry doctor` uses, or nil.
func Fatal(ctx context.Context, env Env) error {
	env, err := env.resolve()
	if err != nil {
		return errors.New(oneLine(configResult(err)))
	}
	var errs []error
	for _, c := range Checks() {
		if !c.Fatal {
			continue
		}
		if r := run(ctx, env, c); r.Status == Fail {
			errs = append(errs, errors.New(oneLine(r)))
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, env Env, c Check) Result {
	r := c.Run(ctx, env)
	if r.Name == "" {
		r.Name = c.Name
	}
	return r
}

func oneLine(r Result) string {
	s := r.Name + ": " + r.Detail
	if r.Fix != "" {
		s += "; fix: " + r.Fix
	}
	return s
}

func configResult(err error) Result {
	return Result{
		Name:   "config",
		Status: Fail,
		Detail: strings.ReplaceAll(err.Error(), "\n", "; "),
		Fix:    "correct the variables named above (scry --help lists them all)",
	}
}

// resolve reads the configuration when it was not given.
func (e Env) resolve() (Env, error) {
	if e.Config == nil {
		cfg, err := config.FromEnv(e.getenv)
		if err != nil {
			return e, err
		}
		e.Config = cfg
	}
	return e, nil
}

func (e Env) getenv(k string) string {
	if e.Getenv != nil {
		return e.Getenv(k)
	}
	return os.Getenv(k)
}

func (e Env) lookPath(name string) (string, error) {
	if e.LookPath != nil {
		return e.LookPath(name)
	}
	return exec.LookPath(name)
}

func (e Env) euid() int {
	if e.Euid != nil {
		return e.Euid()
	}
	return os.Geteuid()
}

func (e Env) egidOf() int {
	if e.egid != nil {
		return e.egid()
	}
	return os.Getegid()
}

func (e Env) statfsOf(path string, st *syscall.Statfs_t) error {
	if e.statfs != nil {
		return e.statfs(path, st)
	}
	return syscall.Statfs(path, st)
}

func (e Env) read(path string) ([]byte, error) {
	if e.readFile != nil {
		return e.readFile(path)
	}
	return os.ReadFile(path)
}

// target is the uid:gid Chromium will run as: CHILD_UID when scry is root,
// scry itself otherwise.
func (e Env) target() (uid, gid int, root bool) {
	if e.euid() == 0 {
		return e.Config.ChildUID, e.Config.ChildGID, true
	}
	return e.euid(), e.egidOf(), false
}
