package deflate

import "errors"

// ErrCorrupt is returned, wrapped with the flate error text, by the reader
// from [Decompressor.Reader] when a message is not valid DEFLATE data after
// the 00 00 ff ff tail is appended (RFC 7692 §7.2.2). The connection should
// fail; close code 1007 is usual.
var ErrCorrupt = errors.New("duplex: invalid compressed data")
