package main

import (
	"os"
	"syscall"
	"unsafe"
)

// makeRaw turns off the terminal f's line editing and echo (ICANON, ECHO),
// so that connect's line editor gets every key, and returns the function
// that restores the terminal. Signals (Ctrl-C), output processing and the
// mapping of Enter to '\n' stay on.
func makeRaw(f *os.File) (restore func(), err error) {
	fd := f.Fd()
	var old syscall.Termios
	if err := termios(fd, syscall.TCGETS, &old); err != nil {
		return nil, err
	}
	t := old
	t.Lflag &^= syscall.ICANON | syscall.ECHO
	t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
	if err := termios(fd, syscall.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { termios(fd, syscall.TCSETS, &old) }, nil
}

func termios(fd, req uintptr, t *syscall.Termios) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(t))); e != 0 {
		return e
	}
	return nil
}

// termWidth returns the number of columns of the terminal f, or 0.
func termWidth(f *os.File) int {
	var ws struct{ rows, cols, x, y uint16 }
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws))); e != 0 {
		return 0
	}
	return int(ws.cols)
}
