//go:build unix

package duplex

import "syscall"

// rawReads: an idle Conn on TCP parks on its socket without a buffer.
const rawReads = true

// readFromFD is the body of readRaw's RawConn.Read: it takes a pool buffer
// only when the socket has bytes, and asks to park otherwise.
func (b *bufReader) readFromFD(fd uintptr) bool {
	if b.pooled == nil {
		b.pooled = readPool.Get().(*[]byte)
	}
	for {
		b.rawN, b.rawErr = syscall.Read(int(fd), *b.pooled)
		if b.rawErr != syscall.EINTR {
			break
		}
	}
	if b.rawErr == syscall.EAGAIN {
		readPool.Put(b.pooled)
		b.pooled = nil
		return false // park until readable
	}
	return true
}
