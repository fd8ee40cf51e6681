package redisbroker_test

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill cmd if the test binary dies first (a
// test timeout's panic skips TestMain's cleanup), so no redis-server
// outlives it.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
