"""A real SMTP server (aiosmtpd) in a process of its own, fast or deliberately slow.

``python -m bench.smtp_sink --port N`` prints ``READY`` once listening, then one
line per accepted message: ``M <order id> <kind> <unix time>``. It reads commands
on stdin: ``delay <seconds>`` changes how long each message takes to be accepted
(the wait is in the DATA phase, as a slow relay would), ``quit`` stops it.
Running it apart keeps its CPU out of the load generator's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from email.parser import BytesHeaderParser

from aiosmtpd.smtp import SMTP

_parser = BytesHeaderParser()


class Handler:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        content: bytes = envelope.content  # type: ignore[attr-defined]
        head, _, _ = content.partition(b"\r\n\r\n")
        headers = _parser.parsebytes(head + b"\r\n\r\n")
        order_id = headers.get("X-Order-Id", "-") or "-"
        kind = headers.get("X-Email-Kind", "-") or "-"
        sys.stdout.write(f"M {order_id} {kind} {time.time():.6f}\n")
        sys.stdout.flush()
        return "250 OK"


async def serve(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    handler = Handler(delay)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-sink", ident="bench-sink"), "127.0.0.1", port
    )
    print("READY", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            command, *args = line.decode().split()
            if command == "delay":
                handler.delay = float(args[0])
                print(f"DELAY {handler.delay}", flush=True)
            elif command == "quit":
                break
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.smtp_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.port, args.delay))
    except ImportError:
        asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
