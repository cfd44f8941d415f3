"""What the guard adds to a call: memory and SQLite ledgers against tenacity.

Run: ``python -m benchmarks.overhead`` (``--quick`` for fewer rounds, ``--alerts`` to
watch every guard with `rg.Alerts` and default thresholds, as a configured app would).

Prints, in one run: a bare call, a guarded no-op on the memory ledger and on SQLite, a
no-op under tenacity's ``Retrying(stop=stop_after_attempt(5))``, the ratios, and the
latency of placing a hold on an empty SQLite ledger and on one whose spend log holds
1,000,000 rows. Times are medians of several rounds (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tenacity import Retrying, stop_after_attempt

import runaway_guard as rg
from benchmarks._report import Figure, render

TITLE = "guard overhead per call (median of rounds)"
TARGET_SQLITE_US = 250.0
TARGET_HISTORY_RATIO = 1.2


def _per_call_us(fn: Callable[[], object], calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(samples)


def _noop() -> None:
    return None


def _guarded(url: str, alerts: bool = False) -> tuple[rg.Guard, Callable[[], None]]:
    guard = rg.Guard(url)
    if alerts:  # thresholds checked on every settle; the caps below are never reached
        rg.Alerts(guard, [rg.alerts.Log("benchmarks.alerts")])
    contract = guard.contract(
        "bench",
        price="$0.000001",
        max_calls_per_run=10**12,
        max_per_day="$1000000",
        provider_cap="benchmark: no provider",
    )
    return guard, contract(_noop)


def _hold_latency_us(url: str, holds: int, rounds: int, alerts: bool = False) -> float:
    guard, _ = _guarded(url, alerts)
    contract = guard.contracts["bench"]
    samples = []
    with guard.run("bench"):
        for _ in range(rounds):
            elapsed = 0
            for _ in range(holds):
                start = time.perf_counter_ns()
                hold = contract.hold()
                elapsed += time.perf_counter_ns() - start
                hold.settle()
            samples.append(elapsed / holds / 1000)
    guard.close()
    return statistics.median(samples)


def _fill_spend_log(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO spend (ts, hold_id, call_id, contract, run, attempt, estimate, actual, "
            "tokens, outcome, error) VALUES (?, ?, ?, 'bench', 'history', 1, 1000, 1000, 0, "
            "'settled', '')",
            ((1_700_000_000 + n, f"h{n}", f"c{n}") for n in range(rows)),
        )


def measure(quick: bool, alerts: bool = False) -> list[Figure]:
    calls = 5_000 if quick else 20_000
    sqlite_calls = 1_000 if quick else 4_000
    rounds = 3 if quick else 7
    history = 1_000_000
    figures = []
    bare = _per_call_us(_noop, calls, rounds)
    retrying = Retrying(stop=stop_after_attempt(5))
    tenacity = _per_call_us(lambda: retrying(_noop), calls, rounds)
    with tempfile.TemporaryDirectory() as folder:
        guard, guarded = _guarded("memory://", alerts)
        with guard.run("bench"):
            memory = _per_call_us(guarded, calls, rounds)
        sqlite_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        guard, guarded = _guarded(sqlite_url, alerts)
        with guard.run("bench"):
            sqlite = _per_call_us(guarded, sqlite_calls, rounds)
        guard.close()

        empty_url = f"sqlite:///{Path(folder) / 'empty.db'}"
        full_path = Path(folder) / "full.db"
        rg.Guard(f"sqlite:///{full_path}").close()
        _fill_spend_log(full_path, history)
        hold_empty = _hold_latency_us(empty_url, sqlite_calls, rounds, alerts)
        hold_full = _hold_latency_us(f"sqlite:///{full_path}", sqlite_calls, rounds, alerts)

    tenacity_overhead = tenacity - bare
    memory_overhead = memory - bare
    figures.append(Figure("bare call", bare, "us", "", None))
    figures.append(
        Figure("tenacity Retrying(stop_after_attempt(5)) no-op", tenacity, "us", "", None)
    )
    figures.append(
        Figure(
            "guarded no-op, memory ledger",
            memory,
            "us",
            f"overhead <= tenacity's ({tenacity_overhead:.2f} us)",
            memory_overhead <= tenacity_overhead,
        )
    )
    figures.append(
        Figure(
            "memory overhead / tenacity overhead",
            memory_overhead / tenacity_overhead,
            "x",
            "<= 1.0",
            memory_overhead <= tenacity_overhead,
        )
    )
    figures.append(
        Figure(
            "guarded no-op, SQLite ledger (hold + settle)",
            sqlite,
            "us",
            f"<= {TARGET_SQLITE_US:.0f} us",
            sqlite <= TARGET_SQLITE_US,
        )
    )
    figures.append(Figure("SQLite hold, empty spend log", hold_empty, "us", "", None))
    figures.append(Figure(f"SQLite hold, {history:,} spend-log rows", hold_full, "us", "", None))
    figures.append(
        Figure(
            "hold latency ratio, full / empty",
            hold_full / hold_empty,
            "x",
            f"<= {TARGET_HISTORY_RATIO}",
            hold_full / hold_empty <= TARGET_HISTORY_RATIO,
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--alerts", action="store_true", help="watch each guard with rg.Alerts")
    args = parser.parse_args()
    title = TITLE + (", with alerts" if args.alerts else "")
    print(render(title, measure(args.quick, args.alerts)))


if __name__ == "__main__":
    main()
