"""Shared by echo_server.py and client.py: the options, payloads and close
codes of duplex's interop protocol (../README.md). Written for the
websockets package's asyncio API as Debian 12 ships it (10.4)."""

import argparse
import os

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]


# Waits scale with the bytes of a step, as in the Go tests (testkit.Timeout,
# which sets these variables): DUPLEX_TEST_WAIT_MS plus n bytes at
# DUPLEX_TEST_RATE bytes a second. DUPLEX_TEST_RUN_MS bounds a whole run.
_WAIT_BASE = int(os.environ.get("DUPLEX_TEST_WAIT_MS") or 20000) / 1000
_WAIT_RATE = int(os.environ.get("DUPLEX_TEST_RATE") or 256 << 10)
RUN_SECONDS = int(os.environ.get("DUPLEX_TEST_RUN_MS") or 600000) / 1000


def wait(n=0):
    """Seconds to wait for a step that moves n bytes."""
    return _WAIT_BASE + n / _WAIT_RATE


def close_reason(code):
    return f"reason {code} ✓"


def pattern(n):
    """The payload of "cmd:fragmented n": a 32-bit linear congruential
    generator from seed 1, bits 16-23 of each step, the same bytes as the
    Go tests' pattern()."""
    out = bytearray(n)
    x = 1
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def add_compression_flags(parser):
    parser.add_argument(
        "--compression",
        choices=["none", "default", "custom"],
        default="default",
        help="none: compression=None; default: websockets' defaults; "
        "custom: permessage-deflate with the flags below",
    )
    parser.add_argument("--server-no-context-takeover", action="store_true")
    parser.add_argument("--client-no-context-takeover", action="store_true")
    parser.add_argument("--server-max-window-bits", type=int)
    parser.add_argument("--client-max-window-bits", type=int)


def compression_kwargs(args, server):
    """The keyword arguments for websockets.serve or websockets.connect."""
    if args.compression == "none":
        return {"compression": None}
    if args.compression == "default":
        return {"compression": "deflate"}
    factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
    kwargs = dict(
        server_no_context_takeover=args.server_no_context_takeover,
        client_no_context_takeover=args.client_no_context_takeover,
        server_max_window_bits=args.server_max_window_bits,
    )
    if args.client_max_window_bits is not None:
        kwargs["client_max_window_bits"] = args.client_max_window_bits
    return {"compression": None, "extensions": [factory(**kwargs)]}


def parser(description):
    p = argparse.ArgumentParser(description=description)
    add_compression_flags(p)
    return p
