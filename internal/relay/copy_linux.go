package relay

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// streamCopy copies src to dst until src ends and returns the bytes
// copied: copyHalf's copy when it has no Reader or Buf of its own to use.
//
// Why not io.Copy (splice(2)) or conn.Read/conn.Write: every syscall Go
// makes through the syscall package runs entersyscall, and when the whole
// process was idle, as a relay between two messages is, the runtime's
// sysmon thread is in its deep sleep and entersyscall wakes it (a futex
// wake on the message's path); sysmon then sleeps 20 µs, finds nothing to
// do and goes back to deep sleep, to be woken by the next message. strace
// counted about 1.5 futex and 2-3 nanosleep calls per message in a Go
// relay, none in socat, and on a 2-core VM shared with Chromium those
// wake-ups cost the round trip ~30 µs against socat (docs/benchmarks.md).
//
// So the copy issues read(2) and write(2) as raw syscalls on the sockets,
// which Go keeps non-blocking (they never block: EAGAIN means wait), and
// waits for readiness through the netpoller with RawConn.Read/Write, as
// net.Conn does. Per message that is epoll_pwait, read and write, socat's
// pselect, read and write. Anything but two syscall.Conns takes io.Copy
// (splice(2) between two *net.TCPConn).
func streamCopy(dst net.Conn, src io.Reader) (int64, error) {
	sc, ok1 := src.(syscall.Conn)
	dc, ok2 := dst.(syscall.Conn)
	if !ok1 || !ok2 {
		return io.Copy(dst, src)
	}
	rs, err := sc.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	rd, err := dc.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	buf := make([]byte, 32<<10)
	var total int64
	for {
		var n int
		var rerr syscall.Errno
		if err := rs.Read(func(fd uintptr) bool {
			n, rerr = rawIO(syscall.SYS_READ, fd, buf)
			return rerr != syscall.EAGAIN
		}); err != nil {
			return total, err
		}
		if rerr != 0 {
			return total, rerr
		}
		if n == 0 {
			return total, nil // EOF
		}
		for off := 0; off < n; {
			var w int
			var werr syscall.Errno
			if err := rd.Write(func(fd uintptr) bool {
				w, werr = rawIO(syscall.SYS_WRITE, fd, buf[off:n])
				return werr != syscall.EAGAIN
			}); err != nil {
				return total, err
			}
			if werr != 0 {
				return total, werr
			}
			off += w
			total += int64(w)
		}
	}
}

// rawIO is read(2) or write(2) of b on fd without entersyscall; the fd is
// non-blocking, so it returns at once. EINTR is retried.
func rawIO(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != syscall.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(r), 0
		}
	}
}

// Raw returns c with Read and Write done as streamCopy does them: raw
// read(2) and write(2), waiting for readiness through the netpoller, so
// an idle connection's next message does not wake the runtime's sysmon
// (see streamCopy). For the agent door's scoped connections, which read
// frames rather than copy bytes. c itself is returned if it is not a
// syscall.Conn.
func Raw(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{Conn: c, rc: rc}
}

type rawConn struct {
	net.Conn
	rc syscall.RawConn
}

func (c *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	if err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawIO(syscall.SYS_READ, fd, b)
		return errno != syscall.EAGAIN
	}); err != nil {
		return 0, err
	}
	switch {
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(b []byte) (int, error) {
	total := 0
	for total < len(b) {
		var n int
		var errno syscall.Errno
		if err := c.rc.Write(func(fd uintptr) bool {
			n, errno = rawIO(syscall.SYS_WRITE, fd, b[total:])
			return errno != syscall.EAGAIN
		}); err != nil {
			return total, err
		}
		if errno != 0 {
			return total, errno
		}
		total += n
	}
	return total, nil
}

// CloseWrite half-closes c, as its TCP connection does.
func (c *rawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
