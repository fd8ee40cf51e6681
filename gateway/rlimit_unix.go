//go:build unix

package gateway

import "syscall"

// fileLimit returns the process's soft limit on open files (RLIMIT_NOFILE),
// or 0 if it cannot be read. Go raises the soft limit to the hard one at
// start, so this is the number of descriptors the process may really use.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}
