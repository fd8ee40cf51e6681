//go:build !linux

package main

import (
	"errors"
	"os"
)

// makeRaw is not implemented here: connect reads whole lines from the
// terminal, without its prompt.
func makeRaw(f *os.File) (restore func(), err error) {
	return nil, errors.New("no line editor on this system")
}

// termWidth is unknown here.
func termWidth(f *os.File) int { return 0 }
