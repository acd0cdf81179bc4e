package clipboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// startXvfb runs a real Xvfb on a free display and returns ":N".
func startXvfb(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Skip("Xvfb not installed: apt-get install xvfb")
	}
	// Above the integration harness's :140-:2000 (scrytest.FreeDisplay),
	// whose scrys run while these tests do.
	for n := 2300 + os.Getpid()%200; n < 2700; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		d := fmt.Sprintf(":%d", n)
		cmd := exec.Command("Xvfb", d, "-screen", "0", "320x240x24", "-nolisten", "tcp", "-noreset")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := xgb.NewConnDisplay(d)
			if err == nil {
				c.Close()
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("Xvfb %s never accepted a client: %v", d, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the real condition
		}
	}
	t.Fatal("no free display")
	return ""
}

// reader is a second X client that asks for the selection, as Chromium does.
type reader struct {
	c   *xgb.Conn
	win xproto.Window
}

func newReader(t *testing.T, display string) *reader {
	t.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	id, _ := c.NewId()
	screen := xproto.Setup(c).DefaultScreen(c)
	if err := xproto.CreateWindowChecked(c, 0, xproto.Window(id), screen.Root, 0, 0, 1, 1, 0,
		xproto.WindowClassInputOnly, 0, 0, nil).Check(); err != nil {
		t.Fatal(err)
	}
	return &reader{c: c, win: xproto.Window(id)}
}

func (r *reader) atom(t *testing.T, name string) xproto.Atom {
	t.Helper()
	a, err := xproto.InternAtom(r.c, false, uint16(len(name)), name).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return a.Atom
}

// get converts selection to target and returns the property's type and
// bytes, or ok=false when the owner refused.
func (r *reader) get(t *testing.T, selection, target string) (typ xproto.Atom, data []byte, ok bool) {
	t.Helper()
	prop := r.atom(t, "SCRY_TEST")
	xproto.ConvertSelection(r.c, r.win, r.atom(t, selection), r.atom(t, target), prop, xproto.TimeCurrentTime)
	evc := make(chan xproto.SelectionNotifyEvent, 1)
	go func() {
		for {
			ev, err := r.c.WaitForEvent()
			if ev == nil && err == nil {
				return
			}
			if n, isN := ev.(xproto.SelectionNotifyEvent); isN {
				evc <- n
				return
			}
		}
	}()
	var n xproto.SelectionNotifyEvent
	select {
	case n = <-evc:
	case <-time.After(10 * time.Second):
		t.Fatalf("no SelectionNotify for %s/%s", selection, target)
	}
	if n.Property == xproto.AtomNone {
		return 0, nil, false
	}
	p, err := xproto.GetProperty(r.c, true, r.win, n.Property, xproto.GetPropertyTypeAny, 0, 1<<20).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return p.Type, p.Value, true
}

func TestOwnerAnswersLikeChromiumAsks(t *testing.T) {
	display := startXvfb(t)
	o, err := Open(display, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	r := newReader(t, display)
	if _, _, ok := r.get(t, "CLIPBOARD", "UTF8_STRING"); ok {
		t.Fatal("a selection before any paste")
	}
	const text = "pasted: héllo ✓"
	if err := o.Set(text); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"CLIPBOARD", "PRIMARY"} {
		typ, b, ok := r.get(t, sel, "UTF8_STRING")
		if !ok || typ != r.atom(t, "UTF8_STRING") || string(b) != text {
			t.Errorf("%s as UTF8_STRING: ok %v, %q", sel, ok, b)
		}
	}
	if _, b, ok := r.get(t, "CLIPBOARD", "text/plain;charset=utf-8"); !ok || string(b) != text {
		t.Errorf("text/plain;charset=utf-8: ok %v, %q", ok, b)
	}
	if typ, b, ok := r.get(t, "CLIPBOARD", "STRING"); !ok || typ != xproto.AtomString || string(b) != "pasted: h\xe9llo ?" {
		t.Errorf("STRING (Latin-1): ok %v, %q", ok, b)
	}
	typ, b, ok := r.get(t, "CLIPBOARD", "TARGETS")
	if !ok || typ != xproto.AtomAtom || len(b)%4 != 0 {
		t.Fatalf("TARGETS: ok %v, %d bytes", ok, len(b))
	}
	var targets []xproto.Atom
	for i := 0; i < len(b); i += 4 {
		targets = append(targets, xproto.Atom(xgb.Get32(b[i:])))
	}
	for _, want := range []string{"UTF8_STRING", "STRING", "text/plain;charset=utf-8"} {
		if !slices.Contains(targets, r.atom(t, want)) {
			t.Errorf("TARGETS lacks %s", want)
		}
	}
	if _, _, ok := r.get(t, "CLIPBOARD", "image/png"); ok {
		t.Error("image/png answered")
	}
	// A second paste replaces the first.
	if err := o.Set("second"); err != nil {
		t.Fatal(err)
	}
	if _, b, _ := r.get(t, "CLIPBOARD", "UTF8_STRING"); string(b) != "second" {
		t.Errorf("after a second paste: %q", b)
	}
	// The largest paste the X request limit allows comes back whole, the
	// next byte is refused, and the connection still works after both.
	big := strings.Repeat("a", o.max)
	if o.max < 200<<10 {
		t.Errorf("max %d, want about 256 KiB", o.max)
	}
	if err := o.Set(big); err != nil {
		t.Fatal(err)
	}
	if _, b, ok := r.get(t, "CLIPBOARD", "UTF8_STRING"); !ok || string(b) != big {
		t.Errorf("the largest paste: ok %v, %d bytes back, want %d", ok, len(b), len(big))
	}
	if err := o.Set(big + "a"); err == nil {
		t.Error("a paste over the request limit was accepted")
	}
	// Paste, as the human door calls it: queued, set by Run.
	o.Paste("queued")
	waitSelection(t, r, "queued")
}

// waitSelection polls CLIPBOARD until it reads want.
func waitSelection(t *testing.T, r *reader, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, b, _ := r.get(t, "CLIPBOARD", "UTF8_STRING"); string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CLIPBOARD never read %q", want)
		}
		time.Sleep(10 * time.Millisecond) // polling the real condition
	}
}

// TestCloseEndsRunQuietly: Close is a stop, not a failure.
func TestCloseEndsRunQuietly(t *testing.T) {
	o, err := Open(startXvfb(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	o.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

func TestLatin1(t *testing.T) {
	if got := Latin1ToUTF8([]byte("caf\xe9")); got != "café" {
		t.Errorf("Latin1ToUTF8 = %q", got)
	}
	if got := string(utf8ToLatin1([]byte("café ✓"))); got != "caf\xe9 ?" {
		t.Errorf("utf8ToLatin1 = %q", got)
	}
}
