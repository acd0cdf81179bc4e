package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable keeps the README's configuration table true
// to Vars: one row per variable, in the same order, with its default, and
// no row for a variable scry does not read.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| `([^`]*)` \\|")
	var got []Var
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		def := m[2]
		if def == `""` {
			def = ""
		}
		got = append(got, Var{Name: m[1], Default: def})
	}
	for i := 0; i < max(len(got), len(Vars)); i++ {
		var g, w Var
		if i < len(got) {
			g = got[i]
		}
		if i < len(Vars) {
			w = Var{Name: Vars[i].Name, Default: Vars[i].Default}
		}
		if g != w {
			t.Errorf("README.md configuration row %d: got %s=%q, want %s=%q (Vars, in --help order)", i+1, g.Name, g.Default, w.Name, w.Default)
		}
	}
}

// TestREADMENamesRiskyFlags: the README's CHROME_EXTRA_FLAGS row names
// every flag scry warns about.
func TestREADMENamesRiskyFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `CHROME_EXTRA_FLAGS` |") {
			row = line
		}
	}
	for _, r := range riskyFlags {
		if !strings.Contains(row, "`--"+r.name) {
			t.Errorf("README.md's CHROME_EXTRA_FLAGS row does not name --%s, which scry warns about", r.name)
		}
	}
}
