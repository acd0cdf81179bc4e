package metrics

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// helperMiB is what the helper process allocates and touches: private
// memory, so its PSS is all of it.
const helperMiB = 64

// TestMain doubles as the helper: with SCRY_PSS_HELPER set, the test
// binary holds helperMiB of touched memory until its stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("SCRY_PSS_HELPER") == "1" {
		b := make([]byte, helperMiB<<20)
		for i := range b {
			b[i] = byte(i)
		}
		fmt.Println("ready")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Fprintln(os.Stderr, b[len(b)-1])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TreePSS counts descendants, not only the process it is given: with a
// grandchild holding helperMiB (as Chromium's renderers are the browser's
// grandchildren, through a zygote), this process's tree weighs that much
// more than this process alone, and the grandchild's own tree is at least
// what it touched.
func TestTreePSSSumsDescendants(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// sh stays as the parent ("; :" keeps it from exec'ing the helper).
	cmd := exec.Command("sh", "-c", `"$0" -test.run='^$'; :`, exe)
	cmd.Env = append(os.Environ(), "SCRY_PSS_HELPER=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper: %q %v", line, err)
	}

	shell := cmd.Process.Pid
	var helper int
	for _, p := range descendants(shell) {
		if p != shell {
			helper = p
		}
	}
	if helper == 0 {
		t.Fatalf("no grandchild under sh (pid %d)", shell)
	}
	const want = helperMiB << 20
	if got := TreePSS(helper); got < want {
		t.Errorf("TreePSS(helper) = %d MiB, want at least the %d MiB it touched", got>>20, helperMiB)
	}
	self := pss(os.Getpid(), 0)
	tree := TreePSS(os.Getpid())
	// Allow a few MiB for this process's own drift between the reads.
	if tree < self+want-(8<<20) {
		t.Errorf("TreePSS(self) = %d MiB, this process alone %d MiB: the grandchild's %d MiB are not summed", tree>>20, self>>20, helperMiB)
	}
	if TreePSS(0) != 0 || TreePSS(-1) != 0 {
		t.Error("no pid should be 0 bytes")
	}
}
