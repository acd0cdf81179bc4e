package display

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
)

// runXvfb runs the Xvfb component on a free display until it is ready.
func runXvfb(t *testing.T, from int, auth ...*Authority) (*Xvfb, <-chan error) {
	t.Helper()
	path, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed")
	}
	if err := PrepareSocketDir(); err != nil {
		t.Skipf("no X socket directory: %v", err)
	}
	x := &Xvfb{
		Display: freeDisplay(t, from), Screen: config.Screen{Width: 640, Height: 480, Depth: 24},
		Path: path, Logger: discard(),
	}
	if len(auth) > 0 {
		x.Authority = auth[0]
	}
	ran := make(chan error, 1)
	go func() { ran <- x.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		x.Close(ctx)
	})
	select {
	case <-x.Ready():
	case err := <-ran:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb not ready after 30 s")
	}
	return x, ran
}

// Close stops Xvfb and Run returns nil: a stop asked for is no failure.
func TestXvfbClose(t *testing.T) {
	x, ran := runXvfb(t, 900)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Probe(ctx, x.Display, x.cookie()); err != nil {
		t.Fatalf("ready, but the display does not answer: %v", err)
	}
	x.Close(ctx)
	if err := <-ran; err != nil {
		t.Errorf("Run after Close: %v, want nil", err)
	}
	if !x.Process().Exited() {
		t.Error("Xvfb still running after Close")
	}
}

// An Xvfb that dies on its own is Run's error.
func TestXvfbDeathIsRunsError(t *testing.T) {
	x, ran := runXvfb(t, 950)
	if err := syscall.Kill(x.Process().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err == nil {
		t.Error("Run returned nil after Xvfb was killed")
	}
}

// With an Authority, only a client that presents the cookie gets in: one
// without it, or with another, is refused, and the display counts as
// served for CheckFree.
func TestXvfbAuthority(t *testing.T) {
	dir := t.TempDir()
	a, err := NewAuthority(dir, ":0", -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(a.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cookie file %s: %v, %v; want mode 0600", a.Path, err, fi)
	}
	if _, err := NewAuthority(dir, ":0", -1, -1); err == nil {
		t.Error("NewAuthority overwrote an existing file")
	}
	x, _ := runXvfb(t, 1000, a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Probe(ctx, x.Display, a.Cookie); err != nil {
		t.Fatalf("Probe with the cookie: %v", err)
	}
	if err := Probe(ctx, x.Display, nil); !errors.Is(err, errRefused) {
		t.Errorf("Probe without a cookie = %v, want a refusal", err)
	}
	if err := Probe(ctx, x.Display, make([]byte, 16)); !errors.Is(err, errRefused) {
		t.Errorf("Probe with a wrong cookie = %v, want a refusal", err)
	}
	if err := CheckFree(x.Display); err == nil {
		t.Error("CheckFree of a display that refuses scry said it was free")
	}
}
