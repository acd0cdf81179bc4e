package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// sandboxFix names the three ways out when user namespaces are blocked.
const sandboxFix = "run with the shipped seccomp profile deploy/seccomp/scry.json " +
	"(docker/podman: --security-opt seccomp=deploy/seccomp/scry.json; Kubernetes: seccompProfile: {type: Localhost, localhostProfile: profiles/scry.json}), " +
	"or on a runtime/node that allows unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1; user.max_user_namespaces above 0), " +
	"or, only inside a confined pod, CHROME_EXTRA_FLAGS=--no-sandbox"

// SandboxHint explains, in one line, what to do when Chromium dies at start
// because its sandbox cannot create user namespaces ("No usable sandbox!",
// "Failed to move to new namespace").
func SandboxHint() string {
	return "Chromium's sandbox needs unprivileged user namespaces, which this container or host blocks: " + sandboxFix
}

// errNoProbe means the user-namespace test could not be run at all.
var errNoProbe = errors.New("cannot test")

func checkSandbox(ctx context.Context, env Env) Result {
	uid, gid, _ := env.target()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	probe := env.userNS
	if probe == nil {
		probe = probeUserNS
	}
	err := probe(pctx, uid, gid)
	why := sandboxReasons(env)

	if env.Config.HasExtraFlag("no-sandbox") {
		r := Result{Status: Warn, Detail: "sandbox disabled by flag (--no-sandbox in CHROME_EXTRA_FLAGS); only inside a confined pod"}
		if err == nil {
			r.Detail += fmt.Sprintf("; uid %d can create user namespaces here, so the flag is not needed", uid)
			r.Fix = "remove --no-sandbox from CHROME_EXTRA_FLAGS"
		} else {
			r.Fix = "keep it only in a pod with dropped capabilities, no privilege escalation and a NetworkPolicy; to turn the sandbox back on, " + sandboxFix
		}
		return r
	}
	switch {
	case err == nil:
		r := Result{Status: Pass, Detail: fmt.Sprintf("uid %d can create user namespaces; Chromium's sandbox stays on", uid)}
		if v := sysctl(env, "kernel/apparmor_restrict_unprivileged_userns"); v == "1" {
			r.Status = Warn
			r.Detail += ", but kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu) may still deny them to Chromium"
			r.Fix = "if Chromium reports No usable sandbox: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile that allows userns for chromium"
		}
		return r
	case errors.Is(err, errNoProbe):
		return Result{Status: Warn, Detail: fmt.Sprintf("%v (%s)", err, why),
			Fix: "install util-linux (unshare) to run this test; if Chromium reports No usable sandbox: " + sandboxFix}
	}
	return Result{Status: Fail,
		Detail: fmt.Sprintf("uid %d cannot create a user namespace (%v), so Chromium's sandbox cannot start: %s", uid, err, why),
		Fix:    sandboxFix}
}

// probeUserNS checks that uid:gid can create a user namespace, the way
// Chromium does. As that uid: clone with CLONE_NEWUSER|CLONE_NEWPID|
// CLONE_NEWNET (Chromium's namespace sandbox). For another uid (scry is
// root, Chromium runs as CHILD_UID): util-linux's unshare --user run as
// that uid (Chromium's unshare(CLONE_NEWUSER)); a namespace root creates
// would prove nothing, since the kernel's limits apply to unprivileged
// callers.
func probeUserNS(ctx context.Context, uid, gid int) error {
	tru := ""
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if _, err := os.Stat(p); err == nil {
			tru = p
			break
		}
	}
	if tru == "" {
		return fmt.Errorf("%w: no /bin/true", errNoProbe)
	}
	var cmd *exec.Cmd
	if uid == os.Geteuid() {
		cmd = exec.CommandContext(ctx, tru)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		}
	} else {
		unshare := ""
		for _, p := range []string{"/usr/bin/unshare", "/bin/unshare"} {
			if _, err := os.Stat(p); err == nil {
				unshare = p
				break
			}
		}
		if unshare == "" {
			return fmt.Errorf("%w as uid %d: util-linux's unshare not found", errNoProbe, uid)
		}
		cmd = exec.CommandContext(ctx, unshare, "--user", tru)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		}
	}
	// No secrets (VNC_PASSWORD) reach the probe.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			if len(msg) > 200 {
				msg = msg[:200]
			}
			return errors.New(msg)
		}
		return err
	}
	return nil
}

// sandboxReasons explains why user namespaces would be blocked: a seccomp
// filter (a container runtime's default profile) or a kernel setting.
func sandboxReasons(env Env) string {
	var why []string
	if seccompMode(env) == "2" {
		why = append(why, "a seccomp filter is active (Docker's default and Kubernetes RuntimeDefault profiles refuse CLONE_NEWUSER)")
	}
	if sysctl(env, "kernel/unprivileged_userns_clone") == "0" {
		why = append(why, "kernel.unprivileged_userns_clone=0")
	}
	if sysctl(env, "user/max_user_namespaces") == "0" {
		why = append(why, "user.max_user_namespaces=0")
	}
	if sysctl(env, "kernel/apparmor_restrict_unprivileged_userns") == "1" {
		why = append(why, "kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu AppArmor)")
	}
	if len(why) == 0 {
		return "no seccomp filter or sysctl here explains it (an outer container or security module?)"
	}
	return strings.Join(why, "; ")
}

func sysctl(env Env, name string) string {
	b, err := env.read("/proc/sys/" + name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// seccompMode returns the Seccomp: field of /proc/self/status: 0 none,
// 1 strict, 2 filter.
func seccompMode(env Env) string {
	b, err := env.read("/proc/self/status")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
