"""A small HTTP/1.1 load generator on keep-alive sockets (asyncio), for 127.0.0.1 only.

wrk measures throughput in ``serve_bench.py``; this client does what wrk cannot: a steady,
open-loop request rate (``--rate``), where every request has a due time and its latency is
counted from that time (so a stalled server cannot hide behind a slower send rate), and a
count of every answer that is not 2xx and every request that failed (refused or reset
connection, timeout, truncated answer). ``--concurrency N`` instead runs N closed loops as
fast as the server answers, which measures this client's own ceiling against a fast server.

    .venv/bin/python benchmarks/loadgen.py --url http://127.0.0.1:8080/invocations \\
        --body body.json --rate 200 --seconds 20

Prints one JSON object: sent, answered by status, failed (by reason), achieved rate,
latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["Result", "closed_loop", "constant_rate", "raw_post"]


def raw_post(host: str, port: int, path: str, body: bytes) -> bytes:
    """One keep-alive ``POST`` with a JSON body, as bytes on the wire."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


@dataclass
class Result:
    """What a run saw."""

    seconds: float = 0.0
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        ordered = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) \
                if ordered else None

        return {
            "seconds": round(self.seconds, 2), "sent": self.sent, "ok_2xx": ok,
            "non_2xx": sum(self.statuses.values()) - ok,
            "failed": sum(self.failures.values()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "rate_per_s": round(sum(self.statuses.values()) / self.seconds, 1)
            if self.seconds else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
        }


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(connection: _Connection, raw: bytes, due: float, timeout: float,
               result: Result) -> None:
    try:
        status = await asyncio.wait_for(connection.request(raw), timeout)
    except TimeoutError:
        result.failures["timeout"] += 1
        connection.close()
        return
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        result.failures[type(exc).__name__] += 1
        connection.close()
        return
    result.statuses[status] += 1
    result.latencies.append(time.perf_counter() - due)


async def constant_rate(url: str, body: bytes, rate: float, seconds: float, *,
                        connections: int = 64, timeout: float = 10.0) -> Result:
    """Send ``rate`` requests a second for ``seconds``, open loop, on a pool of sockets."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = raw_post(host, port, parts.path or "/", body)
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(host, port))
    result = Result()
    tasks = []

    async def fire(due: float) -> None:
        connection = await pool.get()  # waiting for a free socket counts in the latency
        try:
            await _one(connection, raw, due, timeout, result)
        finally:
            pool.put_nowait(connection)

    started = time.perf_counter()
    total = int(rate * seconds)
    for index in range(total):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(due)))
        result.sent += 1
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return result


async def closed_loop(url: str, body: bytes, concurrency: int, seconds: float, *,
                      timeout: float = 10.0) -> Result:
    """``concurrency`` loops, each sending its next request when the last one is answered."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = raw_post(host, port, parts.path or "/", body)
    result = Result()
    started = time.perf_counter()
    deadline = started + seconds

    async def loop() -> None:
        connection = _Connection(host, port)
        while time.perf_counter() < deadline:
            result.sent += 1
            await _one(connection, raw, time.perf_counter(), timeout, result)
        connection.close()

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path")
    parser.add_argument("--body", type=Path, required=True, help="a JSON file to POST")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="requests a second, open loop")
    mode.add_argument("--concurrency", type=int, help="closed loops, as fast as answered")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("only 127.0.0.1 is allowed")
    body = args.body.read_bytes()
    try:
        import uvloop  # the client's own ceiling is higher on it

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if args.rate:
        result = asyncio.run(constant_rate(args.url, body, args.rate, args.seconds))
    else:
        result = asyncio.run(closed_loop(args.url, body, args.concurrency, args.seconds))
    sys.stdout.write(json.dumps(result.summary()) + "\n")


if __name__ == "__main__":
    main()
