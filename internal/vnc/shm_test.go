package vnc

import (
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSegmentsOf(t *testing.T) {
	const listing = `       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
         0     393216   600                155648 13905 13900      0  1000  1000  1000  1000 1796106724 1796106725 1796106724                     0                     0
         0     393217   600                159744 13905 13900      1  1000  1000  1000  1000 1796106724 1796106725 1796106724                     0                     0
         0     393218   600                159744 139050 13905      0  1000  1000  1000  1000 1796106724 1796106725 1796106724                     0                     0
         0     393219   600                159744 42 13905      0  1000  1000  1000  1000 1796106724 1796106725 1796106724                     0                     0
`
	got, err := segmentsOf(strings.NewReader(listing), 13905)
	if err != nil {
		t.Fatal(err)
	}
	// Attached or not, both of 13905's segments; not 139050's (a prefix
	// match) nor the one whose lpid is 13905.
	if want := []int{393216, 393217}; !slices.Equal(got, want) {
		t.Fatalf("segmentsOf = %v, want %v", got, want)
	}
	if _, err := segmentsOf(strings.NewReader("key id perms\n"), 1); err == nil {
		t.Fatal("a header without shmid/cpid was accepted")
	}
}

// TestRemoveSegmentsOf creates real segments as this process and removes
// them by its pid.
func TestRemoveSegmentsOf(t *testing.T) {
	if _, err := os.Stat(shmTable); err != nil {
		t.Skipf("no System V shared memory here: %v", err)
	}
	var ids []int
	for range 2 {
		id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		if err != nil {
			t.Skipf("cannot create a shared memory segment: %v", err)
		}
		ids = append(ids, id)
		t.Cleanup(func() { unix.SysvShmCtl(id, unix.IPC_RMID, nil) })
	}
	// One of them attached, as the X server keeps x11vnc's for a moment.
	addr, err := unix.SysvShmAttach(ids[0], 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := RemoveSegmentsOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n < len(ids) {
		t.Fatalf("removed %d segments, want at least %d", n, len(ids))
	}
	// The unattached one is gone; the attached one only marked, and gone
	// once detached.
	if _, err := unix.SysvShmCtl(ids[1], unix.IPC_STAT, &unix.SysvShmDesc{}); err == nil {
		t.Fatalf("segment %d still exists after RemoveSegmentsOf", ids[1])
	}
	if err := unix.SysvShmDetach(addr); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.SysvShmCtl(ids[0], unix.IPC_STAT, &unix.SysvShmDesc{}); err == nil {
		t.Fatalf("segment %d still exists after its last detach", ids[0])
	}
	if n, err := RemoveSegmentsOf(os.Getpid()); err != nil || n != 0 {
		t.Fatalf("second RemoveSegmentsOf = %d, %v; want 0, nil", n, err)
	}
}
