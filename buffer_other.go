//go:build !unix

package duplex

import "errors"

// rawReads: elsewhere an idle Conn waits in a plain Read, with a buffer.
const rawReads = false

// readFromFD is never called where rawReads is false.
func (b *bufReader) readFromFD(fd uintptr) bool {
	b.rawN, b.rawErr = 0, errors.ErrUnsupported
	return true
}
