//go:build !linux

package relay

import (
	"io"
	"net"
)

// streamCopy copies src to dst until src ends (see copy_linux.go for why
// Linux does it differently).
func streamCopy(dst net.Conn, src io.Reader) (int64, error) { return io.Copy(dst, src) }

// Raw returns c (see copy_linux.go).
func Raw(c net.Conn) net.Conn { return c }
