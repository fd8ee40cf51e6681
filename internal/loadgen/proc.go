package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports; reading it would take
// sysconf(_SC_CLK_TCK), which needs cgo.
const clockTicks = 100

// procCPU returns the user plus system CPU time that process pid has used,
// summed over its threads, from fields 14 and 15 of /proc/PID/stat
// (proc(5)). Its resolution is 10ms, so runs should last seconds.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadgen: /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("loadgen: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(string(f[14-3]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[15-3]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadgen: /proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procMem returns the resident memory of process pid and its anonymous
// part, in bytes, from the VmRSS and RssAnon lines of /proc/PID/status.
// anon is 0 on kernels older than 4.5, which lack RssAnon.
func procMem(pid int) (rss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(name) != "VmRSS" && string(name) != "RssAnon") {
			continue
		}
		f := bytes.Fields(rest) // "1234 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("loadgen: /proc/%d/status: bad %s line", pid, name)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("loadgen: /proc/%d/status: bad %s line", pid, name)
		}
		if string(name) == "VmRSS" {
			rss = kb << 10
		} else {
			anon = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("loadgen: /proc/%d/status: no VmRSS line", pid)
	}
	return rss, anon, nil
}

// ListenerPID returns the ID of the process on this machine that listens
// on TCP port, from /proc/net/tcp and tcp6 and the sockets among each
// process's open files (proc(5)). It finds only processes whose files it
// may read: its user's, or all as root.
func ListenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for line := range bytes.Lines(b) {
			f := bytes.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || string(f[3]) != "0A" { // 0A: TCP_LISTEN
				continue
			}
			_, hexPort, ok := bytes.Cut(f[1], []byte(":"))
			if p, err := strconv.ParseUint(string(hexPort), 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			inodes["socket:["+string(f[9])+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("loadgen: no process listens on port %d here", port)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(dir + "/" + fd.Name()); err == nil && inodes[target] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("loadgen: the process listening on port %d is not readable (another user's?)", port)
}
