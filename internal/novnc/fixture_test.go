package novnc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/scrytest"
	"github.com/dataplanelabs/scry/internal/vnc"
)

// childUID is the unprivileged user the X server and x11vnc run as when the
// tests run as root, as scry itself does.
const childUID, childGID = 1000, 1000

func needBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed: apt-get install xvfb x11vnc novnc websockify", n)
		}
	}
}

// asChild makes cmd run as the unprivileged child user when we are root.
func asChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: childUID, Gid: childGID}
	}
}

// childDir returns a fresh directory the child user owns.
func childDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "scry-novnc-test-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, childUID, childGID); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return dir
}

// stopChild stops a child's process group politely, then forcibly.
func stopChild(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		t.Logf("%s did not stop on SIGTERM within 2s; killing it", cmd.Path)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// startXvfb starts Xvfb on a free display :2100-:2199 and returns it. Xvfb
// reports readiness by writing the display number to -displayfd.
func startXvfb(t testing.TB, width, height int) string {
	t.Helper()
	needBinaries(t, "Xvfb")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Above the integration harness's :140-:2000 (scrytest.FreeDisplay),
	// whose scrys run while these tests do.
	start := 2100 + int(time.Now().UnixNano()%100)
	for i := range 100 {
		n := 2100 + (start-2100+i)%100
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		display := ":" + strconv.Itoa(n)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatalf("%v", err)
		}
		out := &scrytest.LogBuffer{}
		cmd := exec.Command("Xvfb", display, "-screen", "0", fmt.Sprintf("%dx%dx24", width, height),
			"-nolisten", "tcp", "-noreset", "-displayfd", "3")
		cmd.ExtraFiles = []*os.File{pw}
		cmd.Stdout, cmd.Stderr = out, out
		asChild(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start Xvfb: %v", err)
		}
		pw.Close()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		ready := make(chan string, 1)
		go func() {
			var b [16]byte
			n, _ := pr.Read(b[:]) // EOF when Xvfb exits
			ready <- strings.TrimSpace(string(b[:n]))
		}()
		select {
		case got := <-ready:
			if got == "" {
				<-exited
				pr.Close()
				t.Logf("Xvfb %s did not start (display busy?): %s", display, out.String())
				continue
			}
			t.Cleanup(func() {
				stopChild(t, cmd, exited)
				pr.Close()
				if t.Failed() {
					t.Logf("Xvfb %s output:\n%s", display, out.String())
				}
			})
			return display
		case <-ctx.Done():
			stopChild(t, cmd, exited)
			t.Fatalf("Xvfb %s not ready: %v\n%s", display, ctx.Err(), out.String())
		}
	}
	t.Fatalf("no free X display in :100-:199")
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startX11vnc starts x11vnc on display, configured by internal/vnc, and
// returns its address once it answers with an RFB banner.
func startX11vnc(t testing.TB, display, password string) string {
	t.Helper()
	addr, _ := runX11vnc(t, display, password, freePort(t))
	return addr
}

// runX11vnc starts x11vnc on port and returns its address and a func that
// stops it (also called at cleanup).
func runX11vnc(t testing.TB, display, password string, port int, extra ...string) (string, func()) {
	t.Helper()
	needBinaries(t, "x11vnc")
	dir := childDir(t)
	opts := vnc.Options{Display: display, Port: port}
	if password != "" {
		uid, gid := -1, -1
		if os.Geteuid() == 0 {
			uid, gid = childUID, childGID
		}
		path, err := vnc.WritePasswordFile(dir, password, uid, gid)
		if err != nil {
			t.Fatalf("%v", err)
		}
		opts.PasswordFile = path
	}
	out := &scrytest.LogBuffer{}
	cmd := exec.Command("x11vnc", append(vnc.Args(opts), extra...)...)
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = out, out
	asChild(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start x11vnc: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() { once.Do(func() { stopChild(t, cmd, exited) }) }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("x11vnc output:\n%s", out.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-exited:
			wcancel()
		case <-wctx.Done():
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port))
	err := vnc.WaitReady(wctx, addr)
	wcancel()
	if err != nil {
		select {
		case <-exited:
			err = errors.Join(err, fmt.Errorf("x11vnc exited: %v", waitErr))
		default:
		}
		t.Fatalf("x11vnc not ready: %v\n%s", err, out.String())
	}
	return addr, stop
}
