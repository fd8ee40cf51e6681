//go:build unix

package browser

import (
	"net"
	"syscall"
)

// holdSocket returns a descriptor of its own for c's socket.
func holdSocket(c net.Conn) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	held := -1
	raw.Control(func(fd uintptr) {
		if d, err := syscall.Dup(int(fd)); err == nil {
			syscall.CloseOnExec(d)
			held = d
		}
	})
	return held, held >= 0
}

// dropSocket shuts the socket down, whatever other descriptors it has,
// and closes fd.
func dropSocket(fd int) {
	syscall.Shutdown(fd, syscall.SHUT_RDWR)
	syscall.Close(fd)
}

func closeHeld(fd int) { syscall.Close(fd) }
