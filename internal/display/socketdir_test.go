package display

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

// The tests below reproduce issue 14 item 9: under a read-only root with a
// tmpfs /tmp, the image's /tmp/.X11-unix arrived as mode 1755 (root), Xvfb
// running as uid 1000 said "failed to create listener" and kept running, and
// scry waited out its whole start-up timeout before blaming a deadline.

func wantMode(t *testing.T, dir string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeSticky); got != want {
		t.Fatalf("%s has mode %s, want %s", dir, modeString(got), modeString(want))
	}
}

func TestPrepareSocketDirCreatesSticky(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".X11-unix")
	if err := prepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o777|os.ModeSticky)
}

// An empty tmpfs /tmp as uid 1000: scry creates the directory itself, and
// the umask must not leave it 0755.
func TestPrepareSocketDirFixesItsOwnDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".X11-unix")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := prepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o777|os.ModeSticky)
}

func TestPrepareSocketDirRefusesAForeignDir(t *testing.T) {
	if os.Getenv("SCRY_TEST_PREPARE_DIR") != "" {
		return // the child's half runs in TestMain-less mode below
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory owned by another uid")
	}
	base, err := os.MkdirTemp("", "scry-x11dir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, ".X11-unix")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// The test binary again, as uid 65534, running prepareSocketDir on the
	// root-owned 1755 directory.
	bin := filepath.Join(base, "display.test")
	copyFile(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run", "^TestPrepareSocketDirChild$")
	cmd.Env = append(os.Environ(), "SCRY_TEST_PREPARE_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"mode 1755 owned by uid 0", "uid 65534", "chmod 1777"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("prepareSocketDir's error does not say %q:\n%s", want, out)
		}
	}
}

// TestPrepareSocketDirChild is the uid 65534 half of the test above.
func TestPrepareSocketDirChild(t *testing.T) {
	dir := os.Getenv("SCRY_TEST_PREPARE_DIR")
	if dir == "" {
		t.Skip("helper for TestPrepareSocketDirRefusesAForeignDir")
	}
	err := prepareSocketDir(dir)
	if err == nil {
		t.Fatal("prepareSocketDir accepted a 1755 directory this uid cannot write")
	}
	t.Log("ERROR: " + err.Error())
	os.Stdout.WriteString(err.Error() + "\n")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A real Xvfb, as an unprivileged uid, in a private mount namespace whose
// /tmp is a tmpfs holding a root-owned 1755 /tmp/.X11-unix: what podman
// --read-only --tmpfs /tmp gave the old image. WaitReady must report the
// listener failure and the directory, not wait for its deadline.
func TestWaitReadyXvfbCannotListen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	display := freeDisplay(t, 700)
	script := `mount -t tmpfs -o mode=1777 tmpfs /tmp && install -d -o root -g root -m 1755 /tmp/.X11-unix && ` +
		`exec setpriv --reuid 65534 --regid 65534 --clear-groups "$@"`
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", xvfb},
		Args(display, config.Screen{Width: 640, Height: 480, Depth: 24})...)
	p, err := supervise.Start(supervise.Spec{Name: "xvfb", Path: "unshare", Args: args, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx, 5*time.Second)
	})
	// Generous: the test is that the answer comes from Xvfb's own words,
	// not from this deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = WaitReady(ctx, display, nil, p)
	if err == nil {
		t.Fatal("WaitReady succeeded although Xvfb could not create its socket")
	}
	if ctx.Err() != nil {
		t.Fatalf("WaitReady waited for its deadline: %v", err)
	}
	if p.Exited() {
		t.Fatalf("Xvfb exited (%v); this test needs one that keeps running without a socket: %v", p.Err(), err)
	}
	for _, want := range []string{"xvfb cannot listen", "failed to create listener"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitReady = %q, want it to contain %q", err, want)
		}
	}
	t.Logf("WaitReady: %v", err)
}
