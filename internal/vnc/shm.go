package vnc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// x11vnc reads the screen through MIT-SHM: it creates System V shared memory
// segments (about 47 of them, 9 MB in all, for a 1440x900 screen) and marks
// them for removal only when it exits cleanly. A SIGKILLed or crashed x11vnc
// leaves them behind, and they outlive it: inside a container until the
// container ends, on a host until reboot. Each restart of a crashed x11vnc
// leaks another set, and once the kernel's segment limit (kernel.shmmni,
// 4096) is reached every new x11vnc fails with "shmget: No space left on
// device" and the human door stays shut. So scry removes a dead x11vnc's
// segments itself.

// shmTable is where Linux lists the System V shared memory segments.
const shmTable = "/proc/sysvipc/shm"

// RemoveSegmentsOf marks for removal (IPC_RMID) every System V shared memory
// segment that process pid created. Call it once pid has exited and been
// reaped: a segment still attached elsewhere (the X server keeps one until it
// notices the client is gone) is destroyed at its last detach. It returns how
// many segments it removed. A segment that disappears meanwhile is not an
// error.
func RemoveSegmentsOf(pid int) (int, error) {
	ids, err := SegmentsOf(pid)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM):
			// already gone
		default:
			errs = append(errs, fmt.Errorf("remove shared memory segment %d of pid %d: %w", id, pid, err))
		}
	}
	return n, errors.Join(errs...)
}

// SegmentsOf returns the ids of the System V shared memory segments that
// process pid created and that still exist.
func SegmentsOf(pid int) ([]int, error) {
	f, err := os.Open(shmTable)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no System V IPC in this kernel: nothing can leak
	}
	if err != nil {
		return nil, fmt.Errorf("list shared memory segments: %w", err)
	}
	defer f.Close()
	ids, err := segmentsOf(f, pid)
	if err != nil {
		return nil, fmt.Errorf("list shared memory segments in %s: %w", shmTable, err)
	}
	return ids, nil
}

// segmentsOf returns the ids of the segments in a /proc/sysvipc/shm listing
// whose creator (cpid) is pid. The columns are found by name in the header
// line, not by position.
func segmentsOf(r io.Reader, pid int) ([]int, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return nil, errors.Join(errors.New("empty listing"), sc.Err())
	}
	idCol, cpidCol := -1, -1
	for i, name := range strings.Fields(sc.Text()) {
		switch name {
		case "shmid":
			idCol = i
		case "cpid":
			cpidCol = i
		}
	}
	if idCol < 0 || cpidCol < 0 {
		return nil, fmt.Errorf("header %q has no shmid or cpid column", sc.Text())
	}
	want := strconv.Itoa(pid)
	var ids []int
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= max(idCol, cpidCol) || f[cpidCol] != want {
			continue
		}
		id, err := strconv.Atoi(f[idCol])
		if err != nil {
			return nil, fmt.Errorf("bad shmid %q", f[idCol])
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}
