"""websockets client for duplex's interop tests. It runs the scripted
exchange of ../README.md against the duplex echo server at URL and exits 0
when every echo and close matched, 1 with the reason on stderr otherwise."""

import asyncio
import json
import os
import sys

import websockets

from peer import CLOSE_CODES, RUN_SECONDS, close_reason, compression_kwargs, parser, pattern, wait


class Failure(Exception):
    pass


def prose(n):
    words = "the quick brown fox jumps over a lazy dog while duplex echoes frames ✓ über naïve café".split()
    out, size, i = [], 0, 0
    while size < n:
        w = words[(i * 7) % len(words)] + " "
        out.append(w)
        size += len(w.encode())
        i += 1
    return "".join(out)


def size(m):
    return len(m.encode()) if isinstance(m, str) else len(m)


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return f"{kind}, {len(m)} {'chars' if kind == 'text' else 'bytes'}"


async def echo(ws, name, message, fragments=None):
    """Sends message (str is text), in fragments when given, and checks the
    echo."""
    await ws.send(fragments if fragments is not None else message)
    got = await asyncio.wait_for(ws.recv(), wait(2 * size(message)))
    if type(got) is not type(message) or got != message:
        raise Failure(f"echo of {name} ({describe(message)}) came back as {describe(got)}")


async def expect_text(ws, want, what):
    got = await asyncio.wait_for(ws.recv(), wait())
    if got != want:
        raise Failure(f"{what}: got {got!r:.200}; want {want!r}")


async def run(args, kwargs):
    base = args.url
    connect = lambda path: websockets.connect(
        base + path, max_size=64 << 20, ping_interval=None, open_timeout=wait(), close_timeout=wait(), **kwargs
    )
    async with connect("/c/main") as ws:
        print("EXTENSIONS", [e.name for e in ws.extensions], flush=True)
        messages = [
            ("text", "hello, peer"),
            ("utf-8 text", "héllo wörld ✓ 🚀 日本語"),
            ("binary", bytes([0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF])),
            ("empty text", ""),
            ("empty binary", b""),
            ("125 bytes", pattern(125)),
            ("126 bytes", pattern(126)),
            ("65535 bytes", pattern(65535)),
            ("65536 bytes", pattern(65536)),
            ("200 KiB text", prose(200 << 10)),
            ("large binary", os.urandom(args.big_size)),
        ]
        for name, m in messages:
            await echo(ws, name, m)

        # websockets sends each item of an iterable as a frame.
        text = prose(300000)
        await echo(ws, "fragmented text", text, [text[i:i + 1000] for i in range(0, len(text), 1000)])
        await ws.send("cmd:fragmented 300000")
        got = await asyncio.wait_for(ws.recv(), wait(300000))
        if got != pattern(300000):
            raise Failure("cmd:fragmented: wrong payload")

        # websockets pings duplex: the waiter resolves on the matching pong.
        waiter = await ws.ping(b"websockets ping")
        try:
            await asyncio.wait_for(waiter, wait())
        except asyncio.TimeoutError:
            raise Failure(f"no pong from duplex within {wait():.0f}s")
        # duplex pings websockets, which answers by itself.
        await ws.send("cmd:ping")
        await expect_text(ws, "pong", "cmd:ping")

        # A burst of similar messages, pipelined: context takeover at work.
        burst = []
        for i in range(300):
            s = json.dumps({"seq": i, "user": f"user-{i % 20}", "channel": "general", "text": prose(50 + (i * 37) % 1500)})
            burst.append(s.encode() if i % 7 == 3 else s)
        for m in burst:
            await ws.send(m)
        burst_bytes = sum(size(m) for m in burst)
        for i, m in enumerate(burst):
            got = await asyncio.wait_for(ws.recv(), wait(2 * burst_bytes if i == 0 else 0))
            if got != m:
                raise Failure(f"burst message {i} came back different")

        await ws.close(1000, "done")
        if ws.close_code != 1000:
            raise Failure(f"closing main: duplex answered {ws.close_code}; want 1000")

    if args.no_close_codes:
        return
    for code in CLOSE_CODES:
        reason = close_reason(code)
        # websockets closes; duplex answers with the same code.
        async with connect(f"/c/client-close-{code}") as ws:
            await ws.close(code, reason)
            if ws.close_code != code:
                raise Failure(f"websockets closed with {code}; duplex answered {ws.close_code}")
        # duplex closes; websockets reports its code and reason.
        async with connect(f"/c/server-close-{code}") as ws:
            await ws.send(f"cmd:close {code} {reason}")
            await asyncio.wait_for(ws.wait_closed(), wait())
            if ws.close_code != code or ws.close_reason != reason:
                raise Failure(
                    f"duplex closed with {code} {reason!r}; websockets saw {ws.close_code} {ws.close_reason!r}"
                )
    # What duplex saw of websockets' closes.
    async with connect("/c/control") as ws:
        for code in CLOSE_CODES:
            await ws.send(f"cmd:closed client-close-{code}")
            await expect_text(ws, f"{code} {close_reason(code)}", f"cmd:closed client-close-{code}")


def main():
    p = parser(__doc__)
    p.add_argument("url", help="ws://127.0.0.1:PORT of a duplex echo server")
    p.add_argument("--no-close-codes", action="store_true")
    p.add_argument("--big-size", type=int, default=16 << 20, help="size of the large message")
    args = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args, compression_kwargs(args, server=False)), RUN_SECONDS))
    except Failure as e:
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:
        print(f"client.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
