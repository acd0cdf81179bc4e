package metrics

import (
	"os"
	"strconv"
	"strings"
)

// TreeRSS sums the resident memory of pid and all its descendants, read
// from /proc. Chromium's renderers are descendants of the browser process
// (through its zygotes), so this is the browser's whole footprint. Each
// process counts its proportional set size (shared pages split between
// the processes sharing them); summing plain RSS would count Chromium's
// shared pages once per process, several times over. Plain RSS is the
// fallback where smaps_rollup cannot be read.
func TreeRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	children := map[int][]int{}
	rss := map[int]int64{}
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
		children[ppid] = append(children[ppid], p)
		rss[p] = pages * page
	}
	var total int64
	stack := []int{pid}
	seen := map[int]bool{}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		total += pss(p, rss[p])
		stack = append(stack, children[p]...)
	}
	return total
}

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
