"""A permessage-deflate peer built on zlib, for zlib_test.go.

usage: zlibpeer.py inflate|deflate BITS < messages > messages

Messages on stdin and stdout are each a 4-byte big-endian length and the
bytes. "inflate" decompresses each payload (the 00 00 ff ff tail appended)
with one zlib inflater whose window is exactly 2^BITS, as RFC 7692 §7.2.2
describes. "deflate" compresses each message with one zlib deflater (context
takeover, sync flush, tail removed); zlib refuses an 8-bit raw window, so 8
compresses with 9, as real peers do.
"""
import struct
import sys
import zlib

mode, bits = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
out = bytearray()
if mode == "inflate":
    z = zlib.decompressobj(-bits)
else:
    z = zlib.compressobj(6, zlib.DEFLATED, -max(bits, 9))
i = 0
while i < len(data):
    (n,) = struct.unpack(">I", data[i : i + 4])
    msg = data[i + 4 : i + 4 + n]
    i += 4 + n
    if mode == "inflate":
        res = z.decompress(msg + b"\x00\x00\xff\xff")
    else:
        res = z.compress(msg) + z.flush(zlib.Z_SYNC_FLUSH)
        assert res.endswith(b"\x00\x00\xff\xff")
        res = res[:-4]
    out += struct.pack(">I", len(res)) + res
sys.stdout.buffer.write(out)
