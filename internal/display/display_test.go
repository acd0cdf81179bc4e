package display

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataplanelabs/scry/internal/config"
	"github.com/dataplanelabs/scry/internal/supervise"
)

func TestArgs(t *testing.T) {
	tests := []struct {
		display string
		screen  config.Screen
		want    []string // must appear as a contiguous run
	}{
		{":99", config.Screen{Width: 1440, Height: 900, Depth: 24}, []string{"-screen", "0", "1440x900x24"}},
		{":1", config.Screen{Width: 800, Height: 600, Depth: 16}, []string{"-screen", "0", "800x600x16"}},
	}
	for _, tt := range tests {
		t.Run(tt.display, func(t *testing.T) {
			args := Args(tt.display, tt.screen)
			if len(args) == 0 || args[0] != tt.display {
				t.Fatalf("Args = %q, want the display first", args)
			}
			for _, run := range [][]string{tt.want, {"-nolisten", "tcp"}, {"-noreset"}} {
				if !containsRun(args, run) {
					t.Errorf("Args = %q, want %q", args, run)
				}
			}
			if slices.Contains(args, "-listen") || slices.Contains(args, "-ac") {
				t.Errorf("Args = %q open the display up", args)
			}
		})
	}
}

func containsRun(s, run []string) bool {
	for i := 0; i+len(run) <= len(s); i++ {
		if slices.Equal(s[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

func TestSocketPath(t *testing.T) {
	tests := map[string]string{
		":0":   "/tmp/.X11-unix/X0",
		":99":  "/tmp/.X11-unix/X99",
		":123": "/tmp/.X11-unix/X123",
	}
	for display, want := range tests {
		if got := SocketPath(display); got != want {
			t.Errorf("SocketPath(%q) = %q, want %q", display, got, want)
		}
	}
}

// freeDisplay returns a display number with no socket and no lock file,
// starting at from.
func freeDisplay(t *testing.T, from int) string {
	t.Helper()
	// Above the integration harness's :140-:2000 (scrytest.FreeDisplay),
	// whose scrys run while these tests do.
	from += 2000
	abstract, _ := os.ReadFile("/proc/net/unix")
	for n := from; n < from+200; n++ {
		d := fmt.Sprintf(":%d", n)
		if _, err := os.Lstat(SocketPath(d)); err == nil {
			continue
		}
		if _, err := os.Lstat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		// An X server in another mount namespace (this package's own
		// tests make some) shows only by its abstract socket.
		if bytes.Contains(abstract, fmt.Appendf(nil, "@/tmp/.X11-unix/X%d\n", n)) {
			continue
		}
		return d
	}
	t.Fatal("no free display")
	return ""
}

// fakeX listens on display's socket and answers the connection setup with
// reply (nil: close without answering).
func fakeX(t *testing.T, display string, reply []byte) {
	t.Helper()
	if err := PrepareSocketDir(); err != nil {
		t.Skipf("no X socket directory: %v", err)
	}
	l, err := net.Listen("unix", SocketPath(display))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", SocketPath(display), err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req [12]byte
				if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 'l' || binary.LittleEndian.Uint16(req[2:]) != 11 {
					return
				}
				_, _ = c.Write(reply)
			}()
		}
	}()
}

func TestProbe(t *testing.T) {
	refusal := append([]byte{0, byte(len("No protocol specified")), 11, 0, 0, 0, 0, 0}, "No protocol specified"...)
	tests := []struct {
		name    string
		reply   []byte
		wantErr string // "" means success
	}{
		{"accepted", []byte{1, 0, 11, 0, 0, 0, 0, 0}, ""},
		{"refused", refusal, "No protocol specified"},
		{"wants authentication", []byte{2, 0, 0, 0, 0, 0, 0, 0}, "authentication"},
		{"hangs up", nil, "setup reply"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			display := freeDisplay(t, 700+20*i)
			fakeX(t, display, tt.reply)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Probe(ctx, display, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Probe = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Probe = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestProbeNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Probe(ctx, freeDisplay(t, 800), nil); err == nil {
		t.Fatal("Probe of a display nobody serves succeeded")
	}
	if err := CheckFree(freeDisplay(t, 800)); err != nil {
		t.Fatalf("CheckFree of a free display: %v", err)
	}
}

func TestCheckFreeNamesTheOwner(t *testing.T) {
	display := freeDisplay(t, 820)
	fakeX(t, display, []byte{1, 0, 11, 0, 0, 0, 0, 0})
	lock := fmt.Sprintf("/tmp/.X%s-lock", strings.TrimPrefix(display, ":"))
	if err := os.WriteFile(lock, []byte("      4242\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(lock) })
	err := CheckFree(display)
	if err == nil {
		t.Fatal("CheckFree of a served display succeeded")
	}
	for _, want := range []string{"DISPLAY=" + display, "pid 4242"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFree = %q, want it to mention %q", err, want)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startXvfb runs a real Xvfb on a free display, trying the next one if
// another test took it first.
func startXvfb(t *testing.T) (string, *supervise.Process) {
	t.Helper()
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed")
	}
	if err := PrepareSocketDir(); err != nil {
		t.Skipf("no X socket directory: %v", err)
	}
	from := 600
	for range 5 {
		display := freeDisplay(t, from)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := Probe(ctx, display, nil)
		cancel()
		if err == nil {
			t.Fatalf("Probe of %s succeeded before Xvfb started", display)
		}
		p, err := supervise.Start(supervise.Spec{
			Name: "xvfb", Path: xvfb, Args: Args(display, config.Screen{Width: 640, Height: 480, Depth: 24}),
			Logger: discard(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
		err = WaitReady(ctx, display, nil, p)
		cancel()
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.Stop(ctx, 5*time.Second)
			})
			return display, p
		}
		if !p.Exited() {
			t.Fatalf("WaitReady: %v", err)
		}
		t.Logf("Xvfb on %s exited (%v); trying another display", display, err)
		n, _ := config.ParseDisplay(display)
		from = n + 1
	}
	t.Fatal("could not start Xvfb")
	return "", nil
}

func TestXvfb(t *testing.T) {
	display, p := startXvfb(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Probe(ctx, display, nil); err != nil {
		t.Fatalf("Probe after WaitReady: %v", err)
	}
	err := CheckFree(display)
	if err == nil || !strings.Contains(err.Error(), "DISPLAY="+display) {
		t.Fatalf("CheckFree = %v, want an error naming DISPLAY=%s", err, display)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", p.Pid())) {
		t.Errorf("CheckFree = %q, want it to name Xvfb's pid %d", err, p.Pid())
	}
	if err := p.Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := CheckFree(display); err != nil {
		t.Errorf("CheckFree after Xvfb stopped: %v", err)
	}
}

func TestWaitReadyXvfbExits(t *testing.T) {
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed")
	}
	display := freeDisplay(t, 900)
	p, err := supervise.Start(supervise.Spec{
		Name: "xvfb", Path: xvfb, Args: append(Args(display, config.Screen{Width: 640, Height: 480, Depth: 24}), "-no-such-option"),
		Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = WaitReady(ctx, display, nil, p)
	if err == nil || !strings.Contains(err.Error(), "xvfb exited before accepting clients") {
		t.Fatalf("WaitReady = %v, want it to report Xvfb's exit", err)
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	p, err := supervise.Start(supervise.Spec{Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "exec sleep 1000"}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), time.Second) })
	display := freeDisplay(t, 950)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = WaitReady(ctx, display, nil, p)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), display) {
		t.Fatalf("WaitReady = %v, want a deadline error naming %s", err, display)
	}
}
