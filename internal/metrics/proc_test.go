package metrics

import (
	"os"
	"os/exec"
	"testing"
)

func TestTreeRSSCountsDescendants(t *testing.T) {
	self := TreeRSS(os.Getpid())
	if self <= 0 {
		t.Fatalf("TreeRSS(self) = %d", self)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if child := TreeRSS(cmd.Process.Pid); child <= 0 {
		t.Errorf("TreeRSS(child) = %d", child)
	}
	if TreeRSS(0) != 0 || TreeRSS(-1) != 0 {
		t.Error("no pid should be 0 bytes")
	}
}
