package metrics

import (
	"github.com/prometheus/procfs"
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
	procs, err := procfs.AllProcs()
	if err != nil {
		return t
	}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // gone since the listing
		}
		t.children[st.PPID] = append(t.children[st.PPID], p.PID)
		t.rss[p.PID] = int64(st.ResidentMemory())
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
	p, err := procfs.NewProc(pid)
	if err != nil {
		return rss
	}
	r, err := p.ProcSMapsRollup()
	if err != nil {
		return rss
	}
	return int64(r.Pss)
}
