package loadgen

import (
	"net"
	"os"
	"runtime"
	"testing"
)

func TestProcSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	x := 0
	for i := range 50_000_000 {
		x += i ^ x
	}
	_ = x
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU(self) = %v, %v; want > 0", cpu, err)
	}
	rss, anon, err := procMem(os.Getpid())
	if err != nil || rss < 1<<20 || anon <= 0 || anon > rss {
		t.Errorf("procMem(self) = %d, %d, %v; want at least 1 MiB, with an anonymous part below it", rss, anon, err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU(-1) succeeded; want an error")
	}
}

func TestListenerPID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	pid, err := ListenerPID(port)
	if err != nil || pid != os.Getpid() {
		t.Errorf("ListenerPID(%d) = %d, %v; want this process, %d", port, pid, err, os.Getpid())
	}
	ln.Close()
	if pid, err := ListenerPID(port); err == nil {
		t.Errorf("ListenerPID of a closed port = %d; want an error", pid)
	}
}
