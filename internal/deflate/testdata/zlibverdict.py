"""zlib's verdict on raw DEFLATE streams, for reference_test.go.

usage: zlibverdict.py LIMIT < cases > verdicts

Each case on stdin is a history (a preset dictionary) and a stream, each a
4-byte big-endian length and the bytes. For each, one line of output says
what zlib's raw inflate (32 KiB window) made of it, with at most LIMIT bytes
of output: "end <hex>" (the final block ended; the output), "limit <hex>"
(LIMIT bytes came out; the first LIMIT), "short" (no error, but the input
ended before the final block) or "invalid <zlib's message>".
"""
import struct
import sys
import zlib

limit = int(sys.argv[1])
data = sys.stdin.buffer.read()
i = 0


def take():
    global i
    (n,) = struct.unpack(">I", data[i : i + 4])
    b = data[i + 4 : i + 4 + n]
    i += 4 + n
    return b


while i < len(data):
    hist, stream = take(), take()
    z = zlib.decompressobj(-15, zdict=hist) if hist else zlib.decompressobj(-15)
    try:
        out = z.decompress(stream, limit)
    except zlib.error as e:
        print("invalid", e)
        continue
    if len(out) >= limit:
        print("limit", out[:limit].hex())
    elif z.eof:
        print("end", out.hex())
    else:
        print("short")
