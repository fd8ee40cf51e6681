"""Where zlib finds a raw DEFLATE stream wrong, for zlibsplit_test.go.

usage: zlibsplit.py < streams > verdicts

Each stream on stdin is a 4-byte big-endian length and the bytes, which
are fed to a zlib inflater (raw, 15-bit window) one byte at a time. For
each, one line: the number of bytes fed when zlib reported an error, 0 if
the stream ended, -1 if it neither ended nor failed.
"""
import struct
import sys
import zlib

data = sys.stdin.buffer.read()
i = 0
out = []
while i < len(data):
    (n,) = struct.unpack(">I", data[i : i + 4])
    rec = data[i + 4 : i + 4 + n]
    i += 4 + n
    z = zlib.decompressobj(-15)
    res = -1
    for k in range(len(rec)):
        try:
            z.decompress(rec[k : k + 1])
        except zlib.error:
            res = k + 1
            break
        if z.eof:
            res = 0
            break
    out.append(str(res))
sys.stdout.write("\n".join(out) + "\n")
