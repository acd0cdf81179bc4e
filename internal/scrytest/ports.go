package scrytest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Port is a loopback TCP port held for the caller: a socket bound to
// 127.0.0.1:port with SO_REUSEADDR that never listens. The kernel hands the
// port to no one else meanwhile (neither as an ephemeral port of an
// outgoing connection nor to another bind to port 0), yet a program that
// binds it with SO_REUSEADDR and listens — Go's net.Listen, Chromium's
// DevTools server, x11vnc, socat's reuseaddr — gets it. So a port can be
// named in scry's environment without the closed-then-reused race.
type Port struct {
	N  int
	fd int
}

// Reserve holds a free loopback port until Close.
func Reserve() (*Port, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	return &Port{N: sa.(*syscall.SockaddrInet4).Port, fd: fd}, nil
}

// String is the port number.
func (p *Port) String() string { return strconv.Itoa(p.N) }

// Close lets the port go.
func (p *Port) Close() error {
	if p == nil || p.fd < 0 {
		return nil
	}
	err := syscall.Close(p.fd)
	p.fd = -1
	return err
}

var (
	displayMu   sync.Mutex
	nextDisplay = 140 + os.Getpid()%600
)

// FreeDisplay picks an X display number with no socket and no lock file,
// never the same one twice in this process. Another program can still take
// it before Xvfb does; Run starts again on another one when that happens.
func FreeDisplay() (string, error) {
	displayMu.Lock()
	defer displayMu.Unlock()
	for range 1000 {
		nextDisplay++
		if nextDisplay > 2000 {
			nextDisplay = 140
		}
		n := nextDisplay
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		return ":" + strconv.Itoa(n), nil
	}
	return "", errors.New("no free X display between :140 and :2000")
}
