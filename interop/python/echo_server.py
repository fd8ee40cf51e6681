"""websockets echo server for duplex's interop tests. It listens on
127.0.0.1:0, prints "PORT <n>" and serves the command protocol of
../README.md until killed."""

import asyncio
import sys

import websockets

from peer import compression_kwargs, parser, pattern, wait

# What each connection's close frame said, by the id in its path.
closes = {}


def close_entry(cid):
    if cid not in closes:
        closes[cid] = asyncio.get_running_loop().create_future()
    return closes[cid]


async def command(ws, text):
    cmd, _, arg = text[len("cmd:"):].partition(" ")
    if cmd == "ping":
        payload = b"websockets ping"
        # The pong waiter resolves only on a pong with this payload.
        waiter = await ws.ping(payload)
        try:
            await asyncio.wait_for(waiter, wait())
            await ws.send("pong")
        except asyncio.TimeoutError:
            await ws.send("no pong")
    elif cmd == "fragmented":
        p = pattern(int(arg))
        await ws.send(p[i:i + 4096] for i in range(0, len(p), 4096))
    elif cmd == "close":
        code, _, reason = arg.partition(" ")
        await ws.close(int(code), reason)
    elif cmd == "closed":
        try:
            seen = await asyncio.wait_for(asyncio.shield(close_entry(arg)), wait())
        except asyncio.TimeoutError:
            seen = f"none: connection {arg} has not ended"
        await ws.send(seen)
    else:
        await ws.send(f"unknown command {cmd!r}")


async def handler(ws, path=None):
    path = ws.path
    cid = path[len("/c/"):] if path.startswith("/c/") else path
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("cmd:"):
                await command(ws, msg)
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        entry = close_entry(cid)
        if not entry.done():
            if ws.close_code in (1005, 1006):
                entry.set_result(f"none: close code {ws.close_code}")
            else:
                entry.set_result(f"{ws.close_code} {ws.close_reason}")


async def main():
    args = parser(__doc__).parse_args()
    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        max_size=64 << 20,
        ping_interval=None,
        close_timeout=wait(),
        **compression_kwargs(args, server=True),
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
