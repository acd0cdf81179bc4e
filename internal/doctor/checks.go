package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/display"
	"github.com/dataplanelabs/scry/internal/profile"
)

const (
	mib = 1 << 20
	gib = 1 << 30

	shmWant      = 1 * gib
	profileWarn  = 500 * mib
	profileFatal = 50 * mib
)

// binary checks that a program scry runs is installed, in the words of
// its lookup at start.
func binary(b config.Binary) func(context.Context, Env) Result {
	return func(_ context.Context, env Env) Result {
		path, err := env.Config.Lookup(b, env.lookPath)
		if err != nil {
			return failure(err)
		}
		return Result{Status: Pass, Detail: path}
	}
}

// failure is the verdict on an owning package's error: its Problem and Fix
// when it has them (config.LookupError, display.BusyError).
func failure(err error) Result {
	var f interface {
		Problem() string
		Fix() string
	}
	if errors.As(err, &f) {
		return Result{Status: Fail, Detail: f.Problem(), Fix: f.Fix()}
	}
	return Result{Status: Fail, Detail: err.Error()}
}

func checkNoVNC(_ context.Context, env Env) Result {
	dir := env.Config.NoVNCDir
	for _, f := range []string{"core/rfb.js", "vnc.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return Result{Status: Fail, Detail: fmt.Sprintf("NOVNC_DIR=%s has no %s", dir, f),
				Fix: "apt-get install novnc (Debian package novnc, files in /usr/share/novnc), or set NOVNC_DIR to a directory holding noVNC's core/rfb.js and vnc.html"}
		}
	}
	return Result{Status: Pass, Detail: dir}
}

func checkChildUID(_ context.Context, env Env) Result {
	cfg := env.Config
	if env.euid() != 0 {
		return Result{Status: Pass, Detail: fmt.Sprintf("scry runs as uid %d; its children run as the same uid (CHILD_UID applies only to root)", env.euid())}
	}
	if cfg.ChildUID == 0 {
		return Result{Status: Fail, Detail: "scry runs as root and CHILD_UID=0: Chromium refuses to run as root with its sandbox on",
			Fix: "set CHILD_UID to an unprivileged uid such as 1000, or run scry as a non-root user"}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("scry runs as root; its children run as %d:%d", cfg.ChildUID, cfg.ChildGID)}
}

func checkShm(_ context.Context, env Env) Result {
	dir := cmp.Or(env.shmDir, "/dev/shm")
	const fix = "docker/podman run --shm-size=1g; Kubernetes: mount an emptyDir {medium: Memory, sizeLimit: 1Gi} at /dev/shm"
	var st syscall.Statfs_t
	if err := env.statfsOf(dir, &st); err != nil {
		return Result{Status: Warn, Detail: fmt.Sprintf("%s: %v (scry passes --disable-dev-shm-usage, so Chromium falls back to /tmp)", dir, err), Fix: fix}
	}
	size := st.Blocks * uint64(st.Bsize)
	if size < shmWant {
		return Result{Status: Warn, Detail: fmt.Sprintf("%s is %s, below the 1 GiB the design asks for (scry passes --disable-dev-shm-usage, so this is slower, not fatal)", dir, humanSize(size)), Fix: fix}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s is %s", dir, humanSize(size))}
}

// checkProfile checks that the uid Chromium runs as will be able to reach
// and write PROFILE_DIR, without creating or changing anything.
func checkProfile(_ context.Context, env Env) Result {
	dir := filepath.Clean(env.Config.ProfileDir)
	uid, gid, root := env.target()
	self := env.euid()
	owner := fmt.Sprintf("%d:%d", uid, gid)

	existing, err := nearestExisting(dir)
	if err != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("%v: uid %d cannot look at it", err, self),
			Fix: fmt.Sprintf("make every parent of %s searchable by uid %d (chmod o+x), or set PROFILE_DIR elsewhere", dir, self)}
	}

	// Every existing parent must let the browser's uid through.
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && !allowed(fi, uid, gid, groupsOf(uid), 0o1) {
			st := fi.Sys().(*syscall.Stat_t)
			return Result{Status: Fail,
				Detail: fmt.Sprintf("%s is not reachable by uid %d: %s is mode %04o owned by %d:%d", dir, uid, p, fi.Mode().Perm(), st.Uid, st.Gid),
				Fix:    fmt.Sprintf("chmod o+x %s, or put PROFILE_DIR elsewhere", p)}
		}
		if p == "/" || p == "." {
			break
		}
	}

	var sfs syscall.Statfs_t
	if err := env.statfsOf(existing, &sfs); err == nil && sfs.Flags&stRdonly != 0 {
		return Result{Status: Fail, Detail: fmt.Sprintf("%s is on a read-only filesystem", dir),
			Fix: "mount a writable volume at " + dir}
	}

	if existing != dir {
		// scry creates it. Root's MkdirAll makes missing parents 0700
		// root-owned, which the child uid then cannot cross.
		if root {
			if filepath.Dir(dir) != existing && uid != 0 {
				return Result{Status: Fail,
					Detail: fmt.Sprintf("%s: %s does not exist; scry (root) would create it mode 0700, unreachable for uid %d", dir, filepath.Dir(dir), uid),
					Fix:    fmt.Sprintf("mkdir -p -m 0755 %s, or mount the volume at %s", filepath.Dir(dir), dir)}
			}
			return Result{Status: Pass, Detail: fmt.Sprintf("%s does not exist yet; scry (root) creates it for %s", dir, owner)}
		}
		fi, _ := os.Stat(existing)
		if !allowed(fi, self, gid, groupsOf(self), 0o3) {
			return Result{Status: Fail,
				Detail: fmt.Sprintf("%s does not exist and uid %d cannot create it: %s is %s", dir, self, existing, describe(fi)),
				Fix:    fmt.Sprintf("as root (or an init container): mkdir -p %s && chown %s %s; or mount a volume writable by uid %d at %s", dir, owner, dir, self, dir)}
		}
		return Result{Status: Pass, Detail: fmt.Sprintf("%s does not exist yet; uid %d can create it", dir, self)}
	}

	fi, err := os.Stat(dir)
	if err != nil {
		return Result{Status: Fail, Detail: err.Error(), Fix: "mount a volume at " + dir}
	}
	if !fi.IsDir() {
		return Result{Status: Fail, Detail: fmt.Sprintf("%s is not a directory", dir),
			Fix: "point PROFILE_DIR at a directory (the mounted volume)"}
	}
	if root {
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) == uid {
			return Result{Status: Pass, Detail: fmt.Sprintf("%s is owned by uid %d", dir, uid)}
		}
		return Result{Status: Pass, Detail: fmt.Sprintf("%s is owned by uid %d; scry (root) gives it to %s at start", dir, st.Uid, owner)}
	}
	chown := Result{Status: Fail,
		Fix: fmt.Sprintf("chown -R %s %s as root, e.g. once from an init container (Kubernetes: fsGroup: %d fixes a fresh volume); or run scry as root so it hands the profile to CHILD_UID itself",
			owner, dir, gid)}
	if !allowed(fi, self, gid, groupsOf(self), 0o3) {
		chown.Detail = fmt.Sprintf("%s is not writable by uid %d: it is %s", dir, self, describe(fi))
		return chown
	}
	// An old volume written by another uid: the top level tells.
	if bad := foreignEntry(dir, self, gid); bad != "" {
		chown.Detail = fmt.Sprintf("%s holds %s, not writable by uid %d", dir, bad, self)
		return chown
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s is writable by uid %d", dir, self)}
}

// checkProfileMode refuses a PROFILE_DIR, or its .scry, that uids other
// than the browser's can write: they could plant a cookie snapshot that scry
// restores into the logged-in browser, or files Chromium reads. A group may
// write only when it is the browser's own gid (Kubernetes' fsGroup makes a
// volume g+rws for the pod's group).
func checkProfileMode(_ context.Context, env Env) Result {
	dir := filepath.Clean(env.Config.ProfileDir)
	_, gid, _ := env.target()
	var details, fixes []string
	for _, p := range []string{dir, filepath.Join(dir, profile.StateDir)} {
		fi, err := os.Lstat(p)
		if p == dir {
			fi, err = os.Stat(p) // PROFILE_DIR itself may be a link to the volume
		}
		if err != nil || !fi.IsDir() {
			continue // missing: scry creates it 0700; not a directory: checkProfile or the lock says so
		}
		st := fi.Sys().(*syscall.Stat_t)
		w := ""
		if fi.Mode().Perm()&0o020 != 0 && int(st.Gid) != gid {
			w += "g"
		}
		if fi.Mode().Perm()&0o002 != 0 {
			w += "o"
		}
		if w == "" {
			continue
		}
		details = append(details, fmt.Sprintf("%s is %s", p, describe(fi)))
		if n := len(fixes); n > 0 && strings.HasPrefix(fixes[n-1], "chmod "+w+"-w ") {
			fixes[n-1] += " " + p
		} else {
			fixes = append(fixes, "chmod "+w+"-w "+p)
		}
	}
	if len(fixes) == 0 {
		return Result{Status: Pass, Detail: fmt.Sprintf("%s is writable by no other uid (nor any group but gid %d)", dir, gid)}
	}
	fix := strings.Join(fixes, " && ")
	if self := env.euid(); self != 0 {
		fix += fmt.Sprintf(" (as the owner or root, e.g. from an init container, if uid %d does not own it)", self)
	}
	return Result{Status: Fail,
		Detail: strings.Join(details, "; ") + ": other uids can write there and plant a cookie snapshot that scry would restore into the logged-in browser",
		Fix:    fix}
}

// stRdonly is ST_RDONLY in statfs(2)'s f_flags.
const stRdonly = 0x1

func checkProfileSpace(_ context.Context, env Env) Result {
	dir := filepath.Clean(env.Config.ProfileDir)
	existing, err := nearestExisting(dir)
	if err != nil {
		return Result{Status: Warn, Detail: err.Error()}
	}
	var st syscall.Statfs_t
	if err := env.statfsOf(existing, &st); err != nil {
		return Result{Status: Warn, Detail: fmt.Sprintf("statfs %s: %v", existing, err)}
	}
	free := st.Bavail * uint64(st.Bsize)
	fix := "free space on the volume or give PROFILE_DIR a bigger one (a profile with its cache grows to several hundred MiB)"
	switch {
	case free < profileFatal:
		return Result{Status: Fail, Detail: fmt.Sprintf("%s free on %s, below 50 MiB: Chromium would fail to write its profile", humanSize(free), existing), Fix: fix}
	case free < profileWarn:
		return Result{Status: Warn, Detail: fmt.Sprintf("%s free on %s, below 500 MiB", humanSize(free), existing), Fix: fix}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s free on %s", humanSize(free), existing)}
}

func checkVNCPassword(_ context.Context, env Env) Result {
	pw := env.Config.VNCPassword
	switch {
	case pw == "":
		return Result{Status: Warn, Detail: "unset: anyone who reaches NOVNC_PORT gets the logged-in browser without a password",
			Fix: "set VNC_PASSWORD (from a secret: the Kubernetes manifests read Secret scry-vnc)"}
	case len(pw) > 8:
		return Result{Status: Warn, Detail: "longer than 8 characters: VNC uses only the first 8",
			Fix: "use 8 characters and keep NOVNC_PORT off public networks"}
	}
	return Result{Status: Pass, Detail: "set"}
}

func checkCDPToken(_ context.Context, env Env) Result {
	set := env.Config.Tokens
	switch {
	case set.Len() == 0:
		return Result{Status: Warn, Detail: "unset: anyone who reaches CDP_PORT drives the logged-in browser; network isolation is the only guard",
			Fix: "keep CDP_PORT on 127.0.0.1 or a ClusterIP behind the NetworkPolicy, and set CDP_TOKEN_FILE (a mounted Secret) or CDP_TOKEN; give agents agent tokens (CDP_TOKENS_FILE)"}
	case set.Scoped():
		return Result{Status: Pass, Detail: fmt.Sprintf("%d tokens (%s): every request on CDP_PORT must carry one; agent and observer connections are checked command by command, audit %s",
			set.Len(), strings.Join(set.Names(), ", "), env.Config.AuditLog)}
	}
	return Result{Status: Pass, Detail: "set: every request on CDP_PORT must carry it (an admin token: it can export every cookie; agents are better off with agent tokens, CDP_TOKENS_FILE)"}
}

// checkRiskyFlags warns about the CHROME_EXTRA_FLAGS that switch off a
// protection of the logged-in browser; scry warns at start from the same
// list (config.RiskyFlags).
func checkRiskyFlags(_ context.Context, env Env) Result {
	risky := env.Config.RiskyFlags()
	if len(risky) == 0 {
		return Result{Status: Pass, Detail: fmt.Sprintf("%d extra flags, none switches a protection off", len(env.Config.ChromeExtraFlags))}
	}
	var details, flags []string
	for _, r := range risky {
		details = append(details, r.Flag+": "+r.Risk)
		flags = append(flags, r.Flag)
	}
	return Result{Status: Warn, Detail: strings.Join(details, "; "),
		Fix: "remove " + strings.Join(flags, " ") + " from CHROME_EXTRA_FLAGS unless you accept that risk for every login in this browser"}
}

// port checks that a door can be bound where scry binds it.
func port(name, host string, get func(*config.Config) int) func(context.Context, Env) Result {
	return func(_ context.Context, env Env) Result {
		n := get(env.Config)
		if n == 0 {
			return Result{Status: Pass, Detail: "0: any free port, logged when the door opens"}
		}
		where := "all interfaces"
		if host != "" {
			where = host
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(n)))
		if err != nil {
			return Result{Status: Fail, Detail: fmt.Sprintf("%d cannot be bound on %s: %v", n, where, errors.Unwrap(err)),
				Fix: fmt.Sprintf("stop whatever listens there (ss -ltnp 'sport = :%d'; another scry?) or set %s to a free port", n, name)}
		}
		ln.Close()
		return Result{Status: Pass, Detail: fmt.Sprintf("%d free on %s", n, where)}
	}
}

// optionalPort checks a port whose 0 means the door is off.
func optionalPort(name, host string, get func(*config.Config) int) func(context.Context, Env) Result {
	check := port(name, host, get)
	return func(ctx context.Context, env Env) Result {
		if get(env.Config) == 0 {
			return Result{Status: Pass, Detail: "off"}
		}
		return check(ctx, env)
	}
}

func checkDisplay(_ context.Context, env Env) Result {
	if err := display.CheckFree(env.Config.Display); err != nil {
		return failure(err)
	}
	return Result{Status: Pass, Detail: env.Config.Display + " free"}
}

// nearestExisting returns path or its closest existing parent.
func nearestExisting(path string) (string, error) {
	for p := path; ; p = filepath.Dir(p) {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if p == "/" || p == "." {
			return "", err
		}
	}
}

// allowed reports whether uid:gid (with groups) gets the permission bits
// want (4 read, 2 write, 1 search) on fi, from its mode alone: the same rule
// the kernel applies when no ACL is set. Root passes.
func allowed(fi fs.FileInfo, uid, gid int, groups []int, want uint32) bool {
	if uid == 0 {
		return true
	}
	st := fi.Sys().(*syscall.Stat_t)
	mode := uint32(fi.Mode().Perm())
	switch {
	case int(st.Uid) == uid:
		mode >>= 6
	case int(st.Gid) == gid || slices.Contains(groups, int(st.Gid)):
		mode >>= 3
	}
	return mode&want == want
}

// groupsOf returns the supplementary groups of uid when it is this
// process's own uid; for another uid they are unknown and ignored.
func groupsOf(uid int) []int {
	if uid != os.Geteuid() {
		return nil
	}
	g, _ := os.Getgroups()
	return g
}

// foreignEntry returns the first top-level entry of dir that uid cannot
// write (or enter), or "".
func foreignEntry(dir string, uid, gid int) string {
	f, err := os.Open(dir)
	if err != nil {
		return ""
	}
	defer f.Close()
	names, _ := f.Readdirnames(1000)
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 || (!fi.IsDir() && !fi.Mode().IsRegular()) {
			continue
		}
		want := uint32(0o2)
		if fi.IsDir() {
			want = 0o3
		}
		if !allowed(fi, uid, gid, groupsOf(uid), want) {
			return fmt.Sprintf("%s (%s)", n, describe(fi))
		}
	}
	return ""
}

func describe(fi fs.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("mode %04o owned by %d:%d", fi.Mode().Perm(), st.Uid, st.Gid)
}

func humanSize(n uint64) string {
	if n >= gib {
		return fmt.Sprintf("%.1f GiB", float64(n)/gib)
	}
	return fmt.Sprintf("%d MiB", n/mib)
}
