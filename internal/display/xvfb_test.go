package display

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
)

// runXvfb runs the Xvfb component on a free display until it is ready.
func runXvfb(t *testing.T, from int) (*Xvfb, <-chan error) {
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
	if err := Probe(ctx, x.Display); err != nil {
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
