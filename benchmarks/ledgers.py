"""Guarded-call latency and throughput on every ledger backend, in one run.

Run from the repository root: ``python -m benchmarks.ledgers`` (``--quick`` for fewer
calls). Needs Redis and PostgreSQL on 127.0.0.1 (or ``--redis URL`` / ``--postgres
URL``); a backend whose server is down is reported as skipped.

For each backend it prints the latency of one guarded no-op call (hold + settle: two
ledger operations) as p50 and p99 over single calls, the aggregate guarded calls per
second of 1 and of 8 processes calling at once, and, for the network backends, the p50
of two bare round trips to the same server (PING, SELECT 1): the floor under a guarded
call on this machine at this moment. The memory ledger is per process, so
its 8-process figure is 8 independent ledgers. Each run uses a fresh Redis key prefix or
PostgreSQL schema and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import runaway_guard as rg
from benchmarks._report import Figure
from benchmarks.overhead import _guarded

TARGET_P50_US = {"redis": 400.0, "postgres": 2000.0}


def latencies_us(url: str, calls: int) -> list[float]:
    """Wall time of each of `calls` guarded no-op calls, after a short warm-up."""
    guard, guarded = _guarded(url)
    try:
        for _ in range(min(200, calls)):
            guarded()
        samples = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            guarded()
            samples.append((time.perf_counter_ns() - start) / 1000)
        return samples
    finally:
        guard.close()


def floor_us(backend: str, url: str, calls: int) -> float | None:
    """p50 of two bare round trips (PING / SELECT 1): what a hold + settle cannot beat."""
    samples: list[float] = []
    if backend == "redis":
        import redis

        client = redis.Redis.from_url(url.split("?", 1)[0])
        try:
            for _ in range(calls):
                start = time.perf_counter_ns()
                client.ping()
                client.ping()
                samples.append((time.perf_counter_ns() - start) / 1000)
        finally:
            client.close()
    elif backend == "postgres":
        import psycopg

        with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
            for _ in range(calls):
                start = time.perf_counter_ns()
                conn.execute("SELECT 1")
                conn.execute("SELECT 1")
                samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples) if samples else None


def _throughput_worker(url: str, calls: int, start_at: float) -> tuple[float, float]:
    """Set up, wait for the common start, make `calls` guarded calls: (start, end)."""
    guard, guarded = _guarded(url)
    try:
        guarded()  # connect and prepare before the clock starts
        while time.time() < start_at:
            time.sleep(0.001)
        begin = time.time()
        for _ in range(calls):
            guarded()
        return begin, time.time()
    finally:
        guard.close()


def calls_per_second(url: str, processes: int, calls: int) -> float:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        start_at = time.time() + 3.0 + processes * 0.5  # after every worker has spawned
        futures = [pool.submit(_throughput_worker, url, calls, start_at) for _ in range(processes)]
        spans = [f.result(timeout=600) for f in futures]
    elapsed = max(end for _, end in spans) - min(begin for begin, _ in spans)
    return processes * calls / elapsed


@dataclass
class Row:
    backend: str
    p50: float | None = None
    p99: float | None = None
    one: float | None = None
    eight: float | None = None
    floor: float | None = None
    note: str = ""


def _reachable(url: str) -> bool:
    import socket

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return True
    except OSError:
        return False


@contextmanager
def _redis(base: str) -> Iterator[str]:
    import redis

    prefix = f"rgbench_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(base)
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
        client.close()


@contextmanager
def _postgres(base: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    schema = f"rgbench_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?schema={schema}&pool_size=2"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def _store(backend: str, folder: Path, args: argparse.Namespace) -> Iterator[str]:
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
    elif backend == "redis":
        with _redis(args.redis) as url:
            yield url
    else:
        with _postgres(args.postgres) as url:
            yield url


def rows(args: argparse.Namespace) -> list[Row]:
    calls = 1000 if args.quick else 5000
    per_process = 500 if args.quick else 2000
    rows = []
    for backend in ("memory", "sqlite", "redis", "postgres"):
        server = {"redis": args.redis, "postgres": args.postgres}.get(backend)
        if server is not None and not _reachable(server):
            rows.append(Row(backend, note=f"skipped: {server} unreachable"))
            continue
        with tempfile.TemporaryDirectory() as folder:
            with _store(backend, Path(folder), args) as url:
                rg.Guard(url).close()  # create the schema before any timing
                samples = latencies_us(url, calls)
                quantiles = statistics.quantiles(samples, n=100)
                row = Row(backend, statistics.median(samples), quantiles[98])
                row.floor = floor_us(backend, url, calls)
                row.one = calls_per_second(url, 1, per_process)
            # A fresh store for the 8-process run, so both runs start alike.
            with _store(backend, Path(folder), args) as url:
                rg.Guard(url).close()
                row.eight = calls_per_second(url, 8, per_process)
        rows.append(row)
    return rows


def measure(quick: bool) -> list[Figure]:
    """The figures with targets, for `python -m benchmarks`, on the default servers."""
    args = argparse.Namespace(
        quick=quick,
        redis="redis://127.0.0.1:6379/0",
        postgres="postgresql://postgres@127.0.0.1:5432/test",
    )
    figures = []
    for row in rows(args):
        if row.p50 is None:
            figures.append(Figure(f"{row.backend}: {row.note}", 0.0, "", "", False))
            continue
        target = TARGET_P50_US.get(row.backend)
        figures.append(
            Figure(
                f"{row.backend} guarded call p50",
                row.p50,
                "us",
                f"<= {target:.0f} us" if target is not None else "",
                None if target is None else row.p50 <= target,
            )
        )
        figures.append(Figure(f"{row.backend} guarded call p99", row.p99 or 0.0, "us"))
        for label, value in (("1 process", row.one), ("8 processes", row.eight)):
            if value is not None:
                figures.append(Figure(f"{row.backend} calls/s, {label}", value, "calls/s"))
        if row.floor is not None:
            figures.append(Figure(f"{row.backend} two bare round trips p50", row.floor, "us"))
    return figures


def render(found: list[Row]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    header = (
        f"{'backend':<9} {'p50 us':>9} {'p99 us':>9}  {'target p50':<18} "
        f"{'1 proc calls/s':>15} {'8 procs calls/s':>16} {'2 round trips p50 us':>21}"
    )
    lines = [
        "guarded no-op call (hold + settle), latency per call and aggregate throughput",
        "",
        header,
        "-" * len(header),
    ]
    for row in found:
        target = TARGET_P50_US.get(row.backend)
        verdict = ""
        if target is not None and row.p50 is not None:
            verdict = "ok" if row.p50 <= target else "MISSED"
        target_text = f"<= {target:.0f} us {verdict}" if target is not None else ""
        lines.append(
            f"{row.backend:<9} {num(row.p50, '9.1f')} {num(row.p99, '9.1f')}  "
            f"{target_text:<18} {num(row.one, '15,.0f')} {num(row.eight, '16,.0f')} "
            f"{num(row.floor, '21.1f')}" + (f"  {row.note}" if row.note else "")
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(render(rows(args)))


if __name__ == "__main__":
    main()
