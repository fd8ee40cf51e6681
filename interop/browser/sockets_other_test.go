//go:build !unix

package browser

import "net"

func holdSocket(c net.Conn) (int, bool) { return 0, false }
func dropSocket(fd int)                 {}
func closeHeld(fd int)                  {}
