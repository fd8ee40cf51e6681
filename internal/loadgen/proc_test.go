package loadgen

import (
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
