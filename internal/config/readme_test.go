package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable keeps the README's configuration table true.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := "\n" + string(b)
	for _, v := range Vars {
		def := v.Default
		if def == "" {
			def = `""`
		}
		row := "\n| `" + v.Name + "` | `" + def + "` |"
		if n := strings.Count(readme, "\n| `"+v.Name+"` |"); n != 1 || !strings.Contains(readme, row) {
			t.Errorf("README.md: want exactly one row starting %q, found %d rows for %s", row, n, v.Name)
		}
	}
}
