// Package app wires scry together: configuration, the supervised children
// (Xvfb, Chromium, x11vnc) and the two doors (CDP bridge, noVNC).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/doctor"
)

// ExitError carries the exit code main should use.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Version is set at build time with -ldflags "-X .../internal/app.Version=...".
var Version = "dev"

// Run is scry's whole life: it returns when scry should exit.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			usage(stdout)
			return nil
		case "-version", "--version", "version":
			fmt.Fprintln(stdout, "scry", Version)
			return nil
		case "doctor":
			// A bad configuration is one of the things doctor reports.
			if doctor.Run(ctx, doctor.Env{Getenv: getenv}, stdout) {
				return &ExitError{Code: 1, Err: errors.New("doctor found problems: fix the FAIL lines above")}
			}
			return nil
		default:
			usage(stderr)
			return &ExitError{Code: 2, Err: fmt.Errorf("unknown argument %q: scry is configured through the environment (see above)", args[0])}
		}
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("configuration: %w\n(run scry --help for every variable and its default)", err)}
	}
	log := newLogger(stderr, cfg)
	for _, f := range cfg.RiskyFlags() {
		log.Warn("CHROME_EXTRA_FLAGS switches a browser protection off", "flag", f.Flag, "risk", f.Risk)
	}
	warnKeptGroups(log, os.Geteuid(), setgroupsAllowed(os.ReadFile), syscall.Getgroups)
	s := &scry{cfg: cfg, log: log, logOut: stderr, getenv: getenv}
	return s.run(ctx)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `scry %s: a persistent, logged-in, agent-drivable browser.

scry runs Xvfb, one headful Chromium and x11vnc, and serves two doors:
CDP for agents on CDP_PORT, and noVNC for a human on NOVNC_PORT.

  scry           run (the container's entrypoint)
  scry doctor    check the machine and configuration without starting anything
  scry --version

It is configured only through the environment:

`, Version)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tPURPOSE")
	for _, v := range config.Vars {
		def := v.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Purpose)
	}
	tw.Flush()
	fmt.Fprint(w, `
CDP is root-equivalent access to every account this browser is logged into:
never publish CDP_PORT or NOVNC_PORT beyond 127.0.0.1 or a ClusterIP.
`)
}

// auditLog is the audit trail's logger (AUDIT_LOG): JSON lines marked
// "log":"audit" in scry's log stream, whatever LOG_FORMAT and LOG_LEVEL
// say (AUDIT_LOG alone decides what it writes).
func (s *scry) auditLog() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s.logOut, nil)).With("log", "audit")
}

func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// childCredential decides who the children run as. As root, scry drops them
// to CHILD_UID so Chromium keeps its sandbox; otherwise they run as scry.
//
// The children get no supplementary groups (an empty list, setgroups(0)):
// started under sudo, scry has root's, gid 0 among them, and the children
// would keep them. Only where setgroups(2) is denied, in a user namespace
// whose /proc/self/setgroups says "deny", would that fail with EPERM and
// stop every child from starting; there they keep the namespace's groups.
func childCredential(cfg *config.Config) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if cfg.ChildUID == 0 {
		return nil, errors.New("CHILD_UID=0: Chromium refuses to run as root with its sandbox on; set CHILD_UID to an unprivileged uid such as 1000")
	}
	return &syscall.Credential{
		Uid: uint32(cfg.ChildUID), Gid: uint32(cfg.ChildGID),
		Groups: []uint32{}, NoSetGroups: !setgroupsAllowed(os.ReadFile),
	}, nil
}

// warnKeptGroups says which supplementary groups the children keep where
// childCredential cannot drop them: scry runs as root, in a user namespace
// that denies setgroups(2). The children can then open whatever those
// groups can.
func warnKeptGroups(log *slog.Logger, euid int, setgroupsOK bool, getgroups func() ([]int, error)) {
	if euid != 0 || setgroupsOK {
		return
	}
	gids, err := getgroups()
	if err != nil {
		log.Warn("setgroups(2) is denied in this user namespace: the children keep scry's supplementary groups, which cannot be listed", "err", err)
		return
	}
	if len(gids) == 0 {
		return
	}
	names := make([]string, len(gids))
	for i, g := range gids {
		names[i] = strconv.Itoa(g)
		if gr, err := user.LookupGroupId(names[i]); err == nil {
			names[i] += "(" + gr.Name + ")"
		}
	}
	log.Warn("setgroups(2) is denied in this user namespace: the children keep scry's supplementary groups; "+
		"start scry without them (not through sudo, say) or where setgroups is allowed",
		"groups", strings.Join(names, " "))
}

// setgroupsAllowed reports whether this process may call setgroups(2):
// not in a user namespace where it was denied (user_namespaces(7)). The
// file is missing on kernels older than 3.19, which have no such denial.
func setgroupsAllowed(readFile func(string) ([]byte, error)) bool {
	b, err := readFile("/proc/self/setgroups")
	return err != nil || strings.TrimSpace(string(b)) != "deny"
}

// childEnv is the children's environment: environ (scry's, as
// os.Environ gives it) minus its secrets, plus the display and a home the
// child uid can write.
func childEnv(environ []string, display, home string) []string {
	secret := map[string]bool{"VNC_PASSWORD": true, "CDP_TOKEN": true}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if secret[k] || k == "DISPLAY" || (home != "" && (k == "HOME" || strings.HasPrefix(k, "XDG_"))) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DISPLAY="+display)
	if home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }
