#!/usr/bin/env python3
"""An upstream with a fixed latency, for the batch figures: every POST gets the bench's
fixed completion (`spec.completion_body()`) after `--delay` seconds; it also records when
each request arrived. nginx cannot wait before answering (no echo_sleep in nginx-light),
so this is a small asyncio server instead: HTTP/1.1, keep-alive, Content-Length bodies
only, which is all the clients under test send. Standard library only.

    python3 bench/slow_target.py --port 18481 --delay 0.1 [--cpu 0]
    curl -s http://127.0.0.1:18481/stats     # {"count": N, "arrivals": [seconds since the first, ...]}

It prints `ready` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import spec  # noqa: E402


class Upstream(asyncio.Protocol):
    """One connection: parse requests as they arrive, answer each after the delay, in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending = 0  # answers scheduled, not yet written (HTTP/1.1: in order; they are equal anyway)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            self.answer(head.split(" ", 2)[:2])

    def answer(self, request_line: list[str]) -> None:
        method, path = (request_line + ["", ""])[:2]
        if method == "GET" and path.startswith("/stats"):
            self.write(200, json.dumps(self.server.stats()).encode())
            return
        self.server.arrived()
        if self.server.delay > 0:
            asyncio.get_running_loop().call_later(self.server.delay, self.write, 200, self.server.body)
        else:
            self.write(200, self.server.body)

    def write(self, status: int, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, len(body), body))


class Server:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.body = spec.completion_body().encode()
        self.times: list[float] = []

    def arrived(self) -> None:
        self.times.append(time.monotonic())

    def stats(self) -> dict:
        first = self.times[0] if self.times else 0.0
        return {"count": len(self.times), "arrivals": [round(t - first, 6) for t in self.times]}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=18481)
    p.add_argument("--delay", type=float, default=0.1, help="seconds before each answer")
    p.add_argument("--cpu", type=int, default=-1, help="pin to this CPU")
    args = p.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    server = Server(args.delay)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Upstream(server), spec.HOST, args.port, backlog=4096,
                                        reuse_address=True)
    print("ready", flush=True)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
