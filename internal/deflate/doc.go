// Package deflate implements the permessage-deflate WebSocket extension
// (RFC 7692): parsing and negotiating its Sec-WebSocket-Extensions
// parameters, and compressing and decompressing messages.
//
// # Negotiation
//
// [ParseOffers] and [Accept] are the server's side, [Offer] and
// [ParseResponse] the client's. [Params] is one parsed offer or response and
// renders back to a header element with [Params.String].
//
// # Codecs
//
// WebSocket messages are mostly small, and DEFLATE libraries are built for
// streams: on a 1 KiB message compress/flate spends most of its time
// building Huffman tables with algorithms made for large blocks, and
// resetting state a message does not need. So at level 1, the default,
// messages go through the package's own encoder (encode.go), and every
// message is inflated by its own decoder (inflate.go); other levels use
// compress/flate's writer. Both are checked against compress/flate and
// zlib in the tests and fuzz targets. BenchmarkCompress, BenchmarkDecompress
// and bench/flatecmp measure them.
//
// # Memory
//
// A connection never keeps an encoder (about 140 KB), a flate.Writer (0.7
// to 1.2 MB) or an inflater (about 45 KB) between messages: they come from
// pools for the length of one message. With context takeover (RFC 7692
// §7.1.1) the window must outlive the message, so each side keeps what it
// needs of it:
//
//   - A [Decompressor] keeps the last 2^windowBits bytes it produced (32 KiB
//     at the default 15 bits) and loads them into the inflater's window
//     before each message, which is what the peer's compressor may refer to.
//   - A [Compressor] at level 1 keeps a stream (stream.go): the last
//     min(2^windowBits, 8 KiB) bytes it compressed, in a buffer of 12 KiB
//     (up to 16 KiB if it sends messages over 4 KiB), and its match index,
//     8 KiB, so that a message finds earlier ones without their being
//     indexed again: 20 to 24 KiB. Looking back the whole 32 KiB window
//     found no more (see maxReach).
//   - A [Compressor] at other levels keeps at most the last 2 KiB it
//     compressed, and a pooled writer is primed by compressing them into a
//     discarding sink, so that the message can refer to them: stdlib has
//     no Reset with a dictionary, and NewWriterDict allocates a whole
//     writer. The peer's window holds everything we sent, so referring to
//     less of it than allowed is always valid; 2 KiB keeps the priming cost
//     near that of a 2 KiB message and gets most of the ratio (see
//     maxPrime). When a compressor gets back from the pool the very writer
//     it used last, that writer's state already continues its stream and no
//     priming is done, as for a connection that writes alone.
//
// Buffers grow as messages arrive, so a connection that has sent nothing
// holds no history at all.
//
// # Window bits
//
// When the peer limits our window below 15 bits (server_max_window_bits
// for a server, client_max_window_bits for a client), a level 1
// [Compressor] with context takeover keeps its references within it.
// compress/flate cannot compress with a window smaller than 32 KiB, so at
// other levels, and at level 1 without takeover, a [Compressor] uses
// flate.HuffmanOnly, which emits no back references at all and so honours
// every window size, at the cost of ratio: without takeover the output
// must not depend on the window, so that one compressed form serves every
// connection at the same [Compressor.Level]. Such offers are accepted
// rather than declined. For decompression the inflater accepts any
// distance back to 32 KiB; the window bits only bound the history kept,
// which is never below 512 bytes because peers built on zlib compress with
// 9 bits when 8 was agreed.
//
// A Compressor or Decompressor serves one direction of one connection and is
// not safe for concurrent use.
package deflate
