package doctor

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/display"
)

// otherUID is a uid that owns nothing on the test machine.
const otherUID = 4242

// testEnv is an Env in which every check passes: scry "runs as root" with
// CHILD_UID=otherUID, binaries are "installed", the profile is a fresh
// temp dir, the ports and display are free. vars override the environment.
func testEnv(t *testing.T, vars map[string]string) Env {
	t.Helper()
	novnc := t.TempDir()
	writeFile(t, filepath.Join(novnc, "core", "rfb.js"))
	writeFile(t, filepath.Join(novnc, "vnc.html"))
	ports := freePorts(t, "", "127.0.0.1", "", "127.0.0.1")
	env := map[string]string{
		"PROFILE_DIR":       reachableDir(t),
		"NOVNC_DIR":         novnc,
		"CDP_PORT":          ports[0],
		"CDP_INTERNAL_PORT": ports[1],
		"NOVNC_PORT":        ports[2],
		"VNC_PORT":          ports[3],
		"DISPLAY":           freeDisplay(t, 4242),
		"VNC_PASSWORD":      "hunter2",
		"CDP_TOKEN":         "a-test-token-of-32-characters-xx",
		"CHILD_UID":         strconv.Itoa(otherUID),
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return Env{
		Config:   cfg,
		LookPath: func(name string) (string, error) { return "/usr/bin/" + name, nil },
		Euid:     func() int { return 0 },
		egid:     func() int { return 0 },
		statfs: func(_ string, st *syscall.Statfs_t) error {
			*st = syscall.Statfs_t{Bsize: 4096, Blocks: 1 << 20, Bavail: 1 << 20} // 4 GiB
			return nil
		},
		readFile: func(string) ([]byte, error) { return nil, fs.ErrNotExist },
		userNS:   func(context.Context, int, int) error { return nil },
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reachableDir is a temp dir whose parents any uid can cross, as a real
// volume mount point would be.
func reachableDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// freePorts returns a free port on each host, all different: every
// listener stays open until the last is taken, since a port closed at
// once may be the kernel's next pick (the checks want them distinct and
// free, so none is held after).
func freePorts(t *testing.T, hosts ...string) []string {
	t.Helper()
	var ports []string
	for _, host := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports
}

func checkByName(t *testing.T, name string) Check {
	t.Helper()
	for _, c := range Checks() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return Check{}
}

func runCheck(t *testing.T, name string, env Env) Result {
	t.Helper()
	return run(context.Background(), env, checkByName(t, name))
}

func assertResult(t *testing.T, r Result, want Status, substrs ...string) {
	t.Helper()
	if r.Status != want {
		t.Errorf("status %v, want %v: %s", r.Status, want, r)
	}
	for _, s := range substrs {
		if !strings.Contains(r.String(), s) {
			t.Errorf("%q missing from:\n%s", s, r)
		}
	}
	if r.Status == Fail && r.Fix == "" {
		t.Errorf("a failure without a fix: %s", r)
	}
}

func TestAllPass(t *testing.T) {
	var out bytes.Buffer
	if Run(context.Background(), testEnv(t, nil), &out) {
		t.Errorf("Run failed:\n%s", out.String())
	}
	if n := strings.Count(out.String(), "PASS  "); n != len(Checks()) {
		t.Errorf("%d PASS lines, want %d:\n%s", n, len(Checks()), out.String())
	}
}

func TestBinaries(t *testing.T) {
	tests := []struct {
		check, missing string
		vars           map[string]string
		want           []string
	}{
		{"chromium", "chromium chromium-browser google-chrome", nil, []string{"apt-get install chromium", "CHROMIUM_PATH"}},
		{"chromium", "", map[string]string{"CHROMIUM_PATH": "/nonexistent/chrome"}, []string{"/nonexistent/chrome", "CHROMIUM_PATH"}},
		{"Xvfb", "Xvfb", nil, []string{"Xvfb not found", "apt-get install xvfb"}},
		{"x11vnc", "x11vnc", nil, []string{"x11vnc not found", "apt-get install x11vnc"}},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			env := testEnv(t, tt.vars)
			env.LookPath = func(name string) (string, error) {
				if strings.Contains(" "+tt.missing+" ", " "+name+" ") {
					return "", errors.New("not found")
				}
				return "/usr/bin/" + name, nil
			}
			assertResult(t, runCheck(t, tt.check, env), Fail, tt.want...)
		})
	}
	t.Run("chromium not executable", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "chromium")
		writeFile(t, p)
		assertResult(t, runCheck(t, "chromium", testEnv(t, map[string]string{"CHROMIUM_PATH": p})), Fail, "not an executable")
	})
}

func TestNoVNC(t *testing.T) {
	empty := t.TempDir()
	half := t.TempDir()
	writeFile(t, filepath.Join(half, "vnc.html"))
	for _, dir := range []string{empty, half, "/nonexistent/novnc"} {
		env := testEnv(t, map[string]string{"NOVNC_DIR": dir})
		assertResult(t, runCheck(t, "noVNC", env), Fail, dir, "core/rfb.js", "apt-get install novnc", "NOVNC_DIR")
	}
	assertResult(t, runCheck(t, "noVNC", testEnv(t, nil)), Pass)
}

func TestChildUID(t *testing.T) {
	tests := []struct {
		euid     int
		childUID string
		want     Status
	}{
		{0, "0", Fail},
		{0, "1000", Pass},
		{1000, "0", Pass}, // CHILD_UID only applies to root
	}
	for _, tt := range tests {
		env := testEnv(t, map[string]string{"CHILD_UID": tt.childUID})
		env.Euid = func() int { return tt.euid }
		r := runCheck(t, "child uid", env)
		assertResult(t, r, tt.want)
		if tt.want == Fail {
			assertResult(t, r, Fail, "CHILD_UID=0", "1000")
		}
	}
}

func TestSandbox(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	threeWays := []string{"deploy/seccomp/scry.json", "--security-opt seccomp=deploy/seccomp/scry.json",
		"seccompProfile: {type: Localhost, localhostProfile:", "kernel.unprivileged_userns_clone=1",
		"user.max_user_namespaces", "--no-sandbox", "confined pod"}
	tests := []struct {
		name  string
		probe error
		proc  map[string]string
		flags string
		want  Status
		subs  []string
	}{
		{name: "allowed", want: Pass, subs: []string{"uid 4242 can create user namespaces"}},
		{name: "seccomp", probe: syscall.EPERM, proc: map[string]string{"/proc/self/status": "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n"},
			want: Fail, subs: append([]string{"uid 4242 cannot create a user namespace", "operation not permitted", "seccomp filter"}, threeWays...)},
		{name: "debian sysctl", probe: syscall.EPERM, proc: map[string]string{"/proc/sys/kernel/unprivileged_userns_clone": "0\n"},
			want: Fail, subs: append([]string{"kernel.unprivileged_userns_clone=0"}, threeWays...)},
		{name: "max zero", probe: syscall.ENOSPC, proc: map[string]string{"/proc/sys/user/max_user_namespaces": "0\n"},
			want: Fail, subs: []string{"user.max_user_namespaces=0"}},
		{name: "unexplained", probe: syscall.EPERM, want: Fail, subs: []string{"no seccomp filter or sysctl"}},
		{name: "no-sandbox blocked", probe: syscall.EPERM, flags: "--no-sandbox", want: Warn,
			subs: []string{"sandbox disabled by flag", "only inside a confined pod", "deploy/seccomp/scry.json"}},
		{name: "no-sandbox needless", flags: "--foo -no-sandbox", want: Warn, subs: []string{"remove --no-sandbox"}},
		{name: "cannot test", probe: errNoProbe, want: Warn, subs: []string{"cannot test"}},
		{name: "ubuntu apparmor", proc: map[string]string{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"},
			want: Warn, subs: []string{"apparmor_restrict_unprivileged_userns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t, map[string]string{"CHROME_EXTRA_FLAGS": tt.flags})
			var probed []int
			env.userNS = func(_ context.Context, uid, gid int) error {
				probed = append(probed, uid, gid)
				return tt.probe
			}
			env.readFile = files(tt.proc)
			assertResult(t, runCheck(t, "sandbox", env), tt.want, tt.subs...)
			if len(probed) != 2 || probed[0] != otherUID || probed[1] != otherUID {
				t.Errorf("probed as %v, want uid:gid %d:%d", probed, otherUID, otherUID)
			}
		})
	}
	t.Run("non-root probes itself", func(t *testing.T) {
		env := testEnv(t, nil)
		env.Euid = func() int { return 1234 }
		env.egid = func() int { return 5678 }
		var got []int
		env.userNS = func(_ context.Context, uid, gid int) error { got = []int{uid, gid}; return nil }
		runCheck(t, "sandbox", env)
		if len(got) != 2 || got[0] != 1234 || got[1] != 5678 {
			t.Errorf("probed as %v, want 1234:5678", got)
		}
	})
	if h := SandboxHint(); strings.Contains(h, "\n") || !strings.Contains(h, "deploy/seccomp/scry.json") || !strings.Contains(h, "--no-sandbox") || !strings.Contains(h, "unprivileged_userns_clone") {
		t.Errorf("SandboxHint() = %q", h)
	}
}

func TestShm(t *testing.T) {
	tests := []struct {
		blocks uint64
		err    error
		want   Status
	}{
		{blocks: 64 << 20 / 4096, want: Warn},
		{blocks: 1 << 30 / 4096, want: Pass},
		{err: fs.ErrNotExist, want: Warn},
	}
	for _, tt := range tests {
		env := testEnv(t, nil)
		env.statfs = func(_ string, st *syscall.Statfs_t) error {
			*st = syscall.Statfs_t{Bsize: 4096, Blocks: tt.blocks}
			return tt.err
		}
		r := runCheck(t, "/dev/shm", env)
		assertResult(t, r, tt.want)
		if tt.want == Warn {
			assertResult(t, r, Warn, "--shm-size=1g", "medium: Memory")
		}
	}
}

func TestProfile(t *testing.T) {
	root := os.Geteuid() == 0
	// self is the non-root uid scry "runs as" in the non-root cases: a uid
	// owning nothing when the tests run as root, else the test's own uid.
	self := os.Geteuid()
	if root {
		self = otherUID
	}
	chown := func(t *testing.T, p string, uid int) {
		t.Helper()
		if root {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	nonRoot := func(env *Env) {
		env.Euid = func() int { return self }
		env.egid = func() int { return self }
	}

	tests := []struct {
		name      string
		setup     func(t *testing.T) string // returns PROFILE_DIR
		nonRoot   bool
		needsRoot bool
		want      Status
		subs      []string
	}{
		{name: "root, existing dir of another uid", setup: reachableDir,
			want: Pass, subs: []string{"scry (root) gives it to 4242:4242"}},
		{name: "root, missing dir", setup: func(t *testing.T) string { return filepath.Join(reachableDir(t), "p") },
			want: Pass, subs: []string{"does not exist yet"}},
		{name: "root, missing parents", setup: func(t *testing.T) string { return filepath.Join(reachableDir(t), "a", "p") },
			want: Fail, subs: []string{"mode 0700", "mkdir -p -m 0755"}},
		{name: "root, parent closed to the child uid", setup: func(t *testing.T) string {
			d := reachableDir(t)
			if err := os.Mkdir(filepath.Join(d, "closed"), 0o700); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(d, "closed", "p")
		}, want: Fail, subs: []string{"not reachable by uid 4242", "closed is mode 0700", "chmod o+x"}},
		{name: "not a directory", setup: func(t *testing.T) string {
			p := filepath.Join(reachableDir(t), "file")
			writeFile(t, p)
			return p
		}, want: Fail, subs: []string{"not a directory"}},
		{name: "non-root, own dir", nonRoot: true, setup: func(t *testing.T) string {
			d := filepath.Join(reachableDir(t), "p")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			chown(t, d, self)
			return d
		}, want: Pass, subs: []string{"writable by uid"}},
		{name: "non-root, dir 0500", nonRoot: true, setup: func(t *testing.T) string {
			d := filepath.Join(reachableDir(t), "p")
			if err := os.Mkdir(d, 0o500); err != nil {
				t.Fatal(err)
			}
			chown(t, d, self)
			t.Cleanup(func() { os.Chmod(d, 0o700) })
			return d
		}, want: Fail, subs: []string{"not writable by uid", "mode 0500", "chown -R", "init container"}},
		{name: "non-root, dir of another uid", nonRoot: true, needsRoot: true, setup: reachableDir,
			want: Fail, subs: []string{"not writable by uid 4242", "owned by 0:0", "chown -R 4242:4242"}},
		{name: "non-root, old volume", nonRoot: true, needsRoot: true, setup: func(t *testing.T) string {
			d := filepath.Join(reachableDir(t), "p")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(d, "Default"), 0o700); err != nil {
				t.Fatal(err)
			}
			chown(t, d, self)
			return d
		}, want: Fail, subs: []string{"holds Default", "chown -R 4242:4242"}},
		{name: "non-root, missing dir, writable parent", nonRoot: true, setup: func(t *testing.T) string {
			d := reachableDir(t)
			chown(t, d, self)
			return filepath.Join(d, "a", "p")
		}, want: Pass, subs: []string{"can create it"}},
		{name: "non-root, missing dir, read-only parent", nonRoot: true, setup: func(t *testing.T) string {
			d := filepath.Join(reachableDir(t), "ro")
			if err := os.Mkdir(d, 0o555); err != nil {
				t.Fatal(err)
			}
			chown(t, d, self)
			t.Cleanup(func() { os.Chmod(d, 0o700) })
			return filepath.Join(d, "p")
		}, want: Fail, subs: []string{"cannot create it", "mkdir -p", "chown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsRoot && !root {
				t.Skip("needs root to make files of another uid")
			}
			env := testEnv(t, map[string]string{"PROFILE_DIR": tt.setup(t)})
			if tt.nonRoot {
				nonRoot(&env)
			}
			assertResult(t, runCheck(t, "PROFILE_DIR", env), tt.want, tt.subs...)
		})
	}

	t.Run("read-only filesystem", func(t *testing.T) {
		env := testEnv(t, nil)
		env.statfs = func(_ string, st *syscall.Statfs_t) error {
			*st = syscall.Statfs_t{Bsize: 4096, Blocks: 1 << 20, Bavail: 1 << 20, Flags: stRdonly}
			return nil
		}
		assertResult(t, runCheck(t, "PROFILE_DIR", env), Fail, "read-only filesystem", "mount a writable volume")
	})
}

func TestProfileSpace(t *testing.T) {
	tests := []struct {
		free uint64
		want Status
	}{
		{10 << 20, Fail},
		{200 << 20, Warn},
		{2 << 30, Pass},
	}
	for _, tt := range tests {
		env := testEnv(t, map[string]string{"PROFILE_DIR": filepath.Join(reachableDir(t), "missing")})
		env.statfs = func(_ string, st *syscall.Statfs_t) error {
			*st = syscall.Statfs_t{Bsize: 4096, Blocks: 1 << 30, Bavail: tt.free / 4096}
			return nil
		}
		assertResult(t, runCheck(t, "PROFILE_DIR space", env), tt.want)
	}
}

func TestVNCPassword(t *testing.T) {
	tests := []struct {
		pw   string
		want Status
		sub  string
	}{
		{"", Warn, "unset"},
		{"correcthorse", Warn, "only the first 8"},
		{"s3cret", Pass, "set"},
	}
	for _, tt := range tests {
		env := testEnv(t, map[string]string{"VNC_PASSWORD": tt.pw})
		var out bytes.Buffer
		Run(context.Background(), env, &out)
		r := runCheck(t, "VNC_PASSWORD", env)
		assertResult(t, r, tt.want, tt.sub)
		if tt.pw != "" && strings.Contains(out.String(), tt.pw) {
			t.Errorf("the password leaked:\n%s", out.String())
		}
	}
}

func TestCDPToken(t *testing.T) {
	const token = "0123456789abcdef-secret"
	assertResult(t, runCheck(t, "CDP_TOKEN", testEnv(t, map[string]string{"CDP_TOKEN": ""})), Warn, "unset", "CDP_TOKEN_FILE")
	env := testEnv(t, map[string]string{"CDP_TOKEN": token})
	assertResult(t, runCheck(t, "CDP_TOKEN", env), Pass, "set")
	var out bytes.Buffer
	Run(context.Background(), env, &out)
	if strings.Contains(out.String(), token) {
		t.Errorf("the token leaked:\n%s", out.String())
	}
}

// CDP_NOAUTH_PORT unset is a door that stays shut, not "any free port".
func TestNoAuthPortOff(t *testing.T) {
	assertResult(t, runCheck(t, "CDP_NOAUTH_PORT", testEnv(t, nil)), Pass, "off")
}

func TestPortsInUse(t *testing.T) {
	all, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	lo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	portOf := func(ln net.Listener) string { return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) }

	tests := []struct{ name, port string }{
		{"CDP_PORT", portOf(all)},
		{"NOVNC_PORT", portOf(lo)}, // all interfaces includes loopback
		{"CDP_INTERNAL_PORT", portOf(lo)},
		{"VNC_PORT", portOf(all)},
		{"CDP_NOAUTH_PORT", portOf(lo)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t, map[string]string{tt.name: tt.port})
			assertResult(t, runCheck(t, tt.name, env), Fail, tt.port, "address already in use", "set "+tt.name+" to a free port")
			// scry refuses at start in the same words.
			err := Fatal(context.Background(), env)
			if err == nil || !strings.Contains(err.Error(), tt.name+": "+tt.port+" cannot be bound") ||
				!strings.Contains(err.Error(), "set "+tt.name+" to a free port") {
				t.Errorf("Fatal = %v, want doctor's line for %s", err, tt.name)
			}
		})
	}
}

// freeDisplay returns ":N" for the first N from "from" with no X socket.
func freeDisplay(t *testing.T, from int) string {
	t.Helper()
	for n := from; n < from+100; n++ {
		d := ":" + strconv.Itoa(n)
		if _, err := os.Lstat(display.SocketPath(d)); errors.Is(err, fs.ErrNotExist) {
			return d
		}
	}
	t.Fatalf("no free display from :%d", from)
	return ""
}

func TestDisplay(t *testing.T) {
	d := freeDisplay(t, 4300)
	env := testEnv(t, map[string]string{"DISPLAY": d})
	assertResult(t, runCheck(t, "DISPLAY", env), Pass, d+" free")

	if err := display.PrepareSocketDir(); err != nil {
		t.Skipf("no X socket directory: %v", err)
	}
	sock := display.SocketPath(d)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", sock, err)
	}
	t.Cleanup(func() { os.Remove(sock) })
	n, _ := config.ParseDisplay(d)
	assertResult(t, runCheck(t, "DISPLAY", env), Fail, "DISPLAY="+d+" is already served", sock+" answers",
		"set DISPLAY to a free display such as :"+strconv.Itoa(n+1))

	// A stale socket nobody answers is free: Xvfb replaces it.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	assertResult(t, runCheck(t, "DISPLAY", env), Pass, d+" free")
}

func TestRunAndFatalSpeakAlike(t *testing.T) {
	env := testEnv(t, map[string]string{"CHILD_UID": "0", "VNC_PASSWORD": ""})
	env.LookPath = func(name string) (string, error) {
		if name == "Xvfb" {
			return "", errors.New("not found")
		}
		return "/usr/bin/" + name, nil
	}
	var out bytes.Buffer
	if !Run(context.Background(), env, &out) {
		t.Fatal("Run reported no failure")
	}
	want := "FAIL  Xvfb: Xvfb not found in PATH\n      fix: apt-get install xvfb (Debian package xvfb)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("Run output lacks %q:\n%s", want, out.String())
	}
	if got := strings.Count(out.String(), "\n") - strings.Count(out.String(), "\n      fix: "); got != len(Checks()) {
		t.Errorf("%d status lines, want one per check (%d):\n%s", got, len(Checks()), out.String())
	}

	err := Fatal(context.Background(), env)
	if err == nil {
		t.Fatal("Fatal = nil")
	}
	for _, s := range []string{
		"Xvfb: Xvfb not found in PATH; fix: apt-get install xvfb",
		"child uid: scry runs as root and CHILD_UID=0",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Fatal error lacks %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), "VNC_PASSWORD") {
		t.Errorf("Fatal reported a warning: %v", err)
	}
}

func TestNamedVars(t *testing.T) {
	err := errors.New(`NOVNC_PORT="x": want a port; SCREEN="big": want WxHxDEPTH`)
	if got := namedVars(err); !slices.Equal(got, []string{"NOVNC_PORT", "SCREEN"}) {
		t.Errorf("namedVars = %v, want NOVNC_PORT and SCREEN (not VNC_PORT)", got)
	}
}

func TestBadConfig(t *testing.T) {
	env := Env{Getenv: func(k string) string {
		if k == "SCREEN" {
			return "big"
		}
		return ""
	}}
	var out bytes.Buffer
	if !Run(context.Background(), env, &out) || !strings.HasPrefix(out.String(), `FAIL  config: SCREEN="big"`) {
		t.Errorf("Run output:\n%s", out.String())
	}
	// The other checks still run, on SCREEN's default.
	if !strings.Contains(out.String(), "defaults of SCREEN") || !strings.Contains(out.String(), "  DISPLAY:") {
		t.Errorf("a bad SCREEN hid the other checks:\n%s", out.String())
	}
	if err := Fatal(context.Background(), env); err == nil || !strings.Contains(err.Error(), `SCREEN="big"`) {
		t.Errorf("Fatal = %v", err)
	}
}

// TestRealRun runs every check for real on this machine: the Debian
// packages are installed and the kernel allows user namespaces, so the
// sandbox check must not fail (as root it probes CHILD_UID=1000).
func TestRealRun(t *testing.T) {
	ports := freePorts(t, "", "127.0.0.1", "", "127.0.0.1")
	env := map[string]string{
		"PROFILE_DIR":       filepath.Join(reachableDir(t), "profile"),
		"CDP_PORT":          ports[0],
		"CDP_INTERNAL_PORT": ports[1],
		"NOVNC_PORT":        ports[2],
		"VNC_PORT":          ports[3],
	}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	var out bytes.Buffer
	Run(context.Background(), Env{Getenv: getenv}, &out)
	t.Logf("scry doctor on this machine:\n%s", out.String())
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "FAIL  sandbox") || strings.HasPrefix(line, "FAIL  config") {
			t.Errorf("%s", line)
		}
	}
	if !strings.Contains(out.String(), "  sandbox: ") {
		t.Errorf("no sandbox line:\n%s", out.String())
	}
}

// TestRealBlockedUserNS runs the real probe where the kernel really refuses
// user namespaces: this test binary re-runs itself inside a user namespace
// whose user.max_user_namespaces is 0.
func TestRealBlockedUserNS(t *testing.T) {
	if os.Getenv("SCRY_DOCTOR_BLOCKED_NS") == "1" {
		env := testEnv(t, map[string]string{"CHILD_UID": "0"})
		env.Euid, env.egid, env.userNS, env.readFile = nil, nil, nil, nil
		assertResult(t, runCheck(t, "sandbox", env), Fail,
			"cannot create a user namespace", "user.max_user_namespaces=0", "deploy/seccomp/scry.json")
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no util-linux unshare")
	}
	cmd := exec.Command(unshare, "--user", "--map-root-user", "sh", "-c",
		`echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -test.run='^TestRealBlockedUserNS$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "SCRY_DOCTOR_BLOCKED_NS=1")
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "--- FAIL") {
		t.Skipf("cannot make a user namespace with no room for more here: %v: %s", err, out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRealBlockedUserNS") {
		t.Errorf("inside the namespace: %v\n%s", err, out)
	}
}

// TestProfileMode: a PROFILE_DIR (or .scry) other uids can write is refused,
// by doctor and at start, with the chmod that fixes it. At 0777 another uid
// planted a cookies.json that scry restored into the browser.
func TestProfileMode(t *testing.T) {
	root := os.Geteuid() == 0
	mkdir := func(t *testing.T, p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	// groupOf gives p to the gid the browser runs as in testEnv (otherUID).
	groupOf := func(t *testing.T, p string) {
		t.Helper()
		if err := os.Chown(p, -1, otherUID); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		dir, st   os.FileMode // 0: absent
		ownGroup  bool        // the dirs' group is the browser's gid
		needsRoot bool
		want      Status
		subs      []string // "DIR" stands for PROFILE_DIR
	}{
		{name: "0700", dir: 0o700, st: 0o700, want: Pass},
		{name: "missing", want: Pass},
		{name: "0755, no .scry yet", dir: 0o755, want: Pass},
		{name: "world-writable", dir: 0o777, want: Fail,
			subs: []string{"DIR is mode 0777", "cookie snapshot", "fix: chmod go-w DIR"}},
		// Sticky or not: another uid can still create .scry before scry does.
		{name: "world-writable, sticky", dir: os.ModeSticky | 0o777, want: Fail, subs: []string{"chmod go-w DIR"}},
		{name: "only others", dir: 0o757, want: Fail, subs: []string{"mode 0757", "fix: chmod o-w DIR"}},
		{name: "a foreign group", dir: 0o770, want: Fail, subs: []string{"mode 0770", "fix: chmod g-w DIR"}},
		{name: ".scry world-writable", dir: 0o700, st: 0o777, want: Fail,
			subs: []string{"DIR/.scry is mode 0777", "fix: chmod go-w DIR/.scry"}},
		{name: "both", dir: 0o777, st: 0o777, want: Fail, subs: []string{"fix: chmod go-w DIR DIR/.scry"}},
		{name: "fsGroup: the browser's group, setgid", dir: os.ModeSetgid | 0o775, st: 0o770, ownGroup: true, needsRoot: true, want: Pass},
		{name: "fsGroup volume that was 0777", dir: os.ModeSetgid | 0o777, st: 0o770, ownGroup: true, needsRoot: true, want: Fail,
			subs: []string{"fix: chmod o-w DIR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsRoot && !root {
				t.Skip("needs root to give a directory to another group")
			}
			dir := filepath.Join(reachableDir(t), "profile")
			if tt.dir != 0 {
				mkdir(t, dir, tt.dir)
				if tt.ownGroup {
					groupOf(t, dir)
				}
			}
			if tt.st != 0 {
				mkdir(t, filepath.Join(dir, ".scry"), tt.st)
				if tt.ownGroup {
					groupOf(t, filepath.Join(dir, ".scry"))
				}
			}
			env := testEnv(t, map[string]string{"PROFILE_DIR": dir})
			var subs []string
			for _, s := range tt.subs {
				subs = append(subs, strings.ReplaceAll(s, "DIR", dir))
			}
			r := runCheck(t, "PROFILE_DIR mode", env)
			assertResult(t, r, tt.want, subs...)
			if tt.want == Fail {
				// scry refuses at start in the same words.
				err := Fatal(context.Background(), env)
				if err == nil || !strings.Contains(err.Error(), "PROFILE_DIR mode: "+r.Detail+"; fix: "+r.Fix) {
					t.Errorf("Fatal = %v, want doctor's line %q", err, oneLine(r))
				}
			}
		})
	}
	t.Run("non-root is told who may chmod", func(t *testing.T) {
		dir := reachableDir(t)
		mkdir(t, dir, 0o777)
		env := testEnv(t, map[string]string{"PROFILE_DIR": dir})
		env.Euid = func() int { return otherUID }
		env.egid = func() int { return otherUID }
		assertResult(t, runCheck(t, "PROFILE_DIR mode", env), Fail, "chmod go-w "+dir, "as the owner or root", "init container")
	})
}

// TestRiskyFlagsWarn: flags that switch a protection off are named, with
// their risk, as a warning; they do not stop scry.
func TestRiskyFlagsWarn(t *testing.T) {
	assertResult(t, runCheck(t, "CHROME_EXTRA_FLAGS", testEnv(t, map[string]string{"CHROME_EXTRA_FLAGS": "--lang=en"})), Pass, "1 extra flags, none")
	env := testEnv(t, map[string]string{"CHROME_EXTRA_FLAGS": "--lang=en --no-sandbox --disable-web-security --remote-allow-origins=*"})
	assertResult(t, runCheck(t, "CHROME_EXTRA_FLAGS", env), Warn,
		"--no-sandbox: Chromium's renderer sandbox is off", "--disable-web-security: the same-origin policy is off",
		"--remote-allow-origins=*: web pages", "CDP_ALLOWED_ORIGINS",
		"fix: remove --no-sandbox --disable-web-security --remote-allow-origins=* from CHROME_EXTRA_FLAGS")
	var out bytes.Buffer
	Run(context.Background(), env, &out)
	if !strings.Contains(out.String(), "WARN  CHROME_EXTRA_FLAGS: --no-sandbox: ") {
		t.Errorf("doctor prints no warning line for the flags:\n%s", out.String())
	}
	if err := Fatal(context.Background(), env); err != nil {
		t.Errorf("Fatal = %v: risky flags warn, they do not stop scry", err)
	}
}

// TestDoorsOnAnyPort: port 0 for a door means any free port, not a failure.
func TestDoorsOnAnyPort(t *testing.T) {
	env := testEnv(t, map[string]string{"CDP_PORT": "0", "NOVNC_PORT": "0"})
	for _, name := range []string{"CDP_PORT", "NOVNC_PORT"} {
		assertResult(t, runCheck(t, name, env), Pass, "any free port")
	}
}
