package scrytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrUnavailable wraps the reasons scry cannot run here: a program missing
// from PATH, or scry not building.
var ErrUnavailable = errors.New("scry cannot run here")

// CheckTools reports which of the programs named are missing from PATH.
func CheckTools(bins ...string) error {
	var missing []string
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in PATH: run `make deps` (or apt-get install -y chromium xvfb x11vnc novnc socat)",
			ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// Build compiles ./cmd/scry into dir and returns the binary's path, or
// returns $SCRY_BIN when it is set.
func Build(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("SCRY_BIN"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "scry")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dataplanelabs/scry/cmd/scry").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: build scry: %v\n%s", ErrUnavailable, err, out)
	}
	return bin, nil
}
