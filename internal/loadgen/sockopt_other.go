//go:build !linux

package loadgen

import "syscall"

// bindNoPort has no equivalent outside Linux.
func bindNoPort(network, address string, c syscall.RawConn) error { return nil }
