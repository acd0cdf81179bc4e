package metrics

import (
	"os"
	"strconv"
	"strings"
)

// TreePSS sums the memory of pid and all its descendants, read from
// /proc. Chromium's renderers, GPU and utility processes are descendants
// of the browser process (through its zygotes), so this is the browser's
// whole footprint (less crashpad's handlers, which are reparented away).
// Each process counts its proportional set size (PSS: a shared page is
// split between the processes sharing it, so it counts once in the sum);
// summing plain RSS would count Chromium's shared pages once per process,
// several times over. Plain RSS is the fallback for a process whose
// smaps_rollup cannot be read.
func TreePSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	procs := readProcs()
	var total int64
	for _, p := range procs.tree(pid) {
		total += pss(p, procs.rss[p])
	}
	return total
}

// procTable is /proc at one moment: each process's children and RSS.
type procTable struct {
	children map[int][]int
	rss      map[int]int64
}

func readProcs() procTable {
	t := procTable{children: map[int][]int{}, rss: map[int]int64{}}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return t
	}
	page := int64(os.Getpagesize())
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which may contain spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		t.children[ppid] = append(t.children[ppid], p)
		t.rss[p] = pages * page
	}
	return t
}

// tree is pid and all its descendants.
func (t procTable) tree(pid int) []int {
	var out []int
	stack := []int{pid}
	seen := map[int]bool{}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		stack = append(stack, t.children[p]...)
	}
	return out
}

// descendants is pid and all its descendants now.
func descendants(pid int) []int { return readProcs().tree(pid) }

// pss is pid's proportional set size, or rss if it cannot be read.
func pss(pid int, rss int64) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return rss
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return rss
			}
			return kb << 10
		}
	}
	return rss
}
