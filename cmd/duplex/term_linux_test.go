package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/duplexws/duplex"
)

// openPTY opens a pseudo-terminal pair: the test types into and reads from
// master what a user's terminal would show; connect gets the slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		master.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		master.Close()
		t.Skipf("ptsname: %v", e)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Skipf("open the pty's slave: %v", err)
	}
	t.Cleanup(func() { slave.Close(); master.Close() })
	return master, slave
}

// screen collects what connect writes to the terminal.
func screen(t *testing.T, master *os.File) *syncBuffer {
	out := newSyncBuffer()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return out
}

// In a terminal, connect shows a prompt; a message that arrives while a
// line is half typed is printed above it and the half line is drawn again;
// Ctrl-D ends the input and the terminal's settings are restored.
func TestConnectTerminalPrompt(t *testing.T) {
	master, slave := openPTY(t)
	got := make(chan string, 4)
	typing := make(chan struct{})
	url := wsServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := duplex.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-typing
		c.Write(r.Context(), duplex.MessageText, []byte("news"))
		for {
			_, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			got <- string(p)
		}
	})
	var before syscall.Termios
	if err := termios(slave.Fd(), syscall.TCGETS, &before); err != nil {
		t.Fatal(err)
	}
	out := screen(t, master)
	done := make(chan int, 1)
	stderr := newSyncBuffer()
	go func() { done <- run(context.Background(), []string{"connect", url}, slave, slave, stderr) }()

	out.waitFor(t, "> ", 1)
	master.WriteString("hel")
	out.waitFor(t, "> hel", 1)
	close(typing)
	// OPOST turns "\n" into "\r\n" on the way to the screen.
	out.waitFor(t, "\r\x1b[K< news\r\n> hel", 1)
	master.WriteString("lo\r")
	select {
	case m := <-got:
		if m != "hello" {
			t.Errorf("the server got %q; want %q", m, "hello")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the line was not sent; screen %q", out)
	}
	master.WriteString("\x04")
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d; want 0 (stderr %q)", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Ctrl-D did not end connect; screen %q", out)
	}
	var after syscall.Termios
	if err := termios(slave.Fd(), syscall.TCGETS, &after); err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag {
		t.Errorf("terminal local flags %#x after connect; want %#x restored", after.Lflag, before.Lflag)
	}
	if strings.Contains(out.String(), "hello\r\n> hello") {
		t.Errorf("the typed line was echoed twice: %q", out)
	}
}
