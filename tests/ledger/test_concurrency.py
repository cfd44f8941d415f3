"""Threads racing on shared counters: exactly the cap is admitted, and nothing deadlocks.

Half the requests list their lines in the opposite order, so a backend that locked
counters in request order (instead of one global order) would deadlock here.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from runaway_guard.ledger import HoldLine, HoldRequest, Ledger
from tests.ledger.conftest import Opener

NOW = 1_800_000_000.0
THREADS = 8
TRIES = 40
CAP = 97  # holds that fit: 8 x 40 = 320 tries race for 97 places


def _lines(flip: bool) -> tuple[HoldLine, ...]:
    lines = (
        HoldLine("a|calls|total", 1, CAP, "calls"),
        HoldLine("m|money|total", 10, CAP * 10, "money"),
        HoldLine("z|calls|total", 1, None, "calls"),
    )
    return lines[::-1] if flip else lines


def test_racing_threads_admit_exactly_the_cap_without_deadlock(open_ledger: Opener) -> None:
    ledger = open_ledger()
    start = threading.Barrier(THREADS)

    def worker(number: int) -> int:
        placed = 0
        start.wait()
        for attempt in range(TRIES):
            hold_id = f"t{number}-{attempt}"
            lines = _lines(flip=(number + attempt) % 2 == 1)
            if ledger.reserve(HoldRequest(hold_id, lines, NOW, NOW + 60)) is None:
                placed += 1
                if attempt % 3 == 0:  # some end at once, with money still due
                    ledger.settle(hold_id, {"money": 10, "calls": 1}, now=NOW)
        return placed

    with ThreadPoolExecutor(THREADS) as pool:
        placed = sum(pool.map(worker, range(THREADS)))
    assert CAP == placed
    assert (CAP, CAP * 10) == _used(ledger)


def _used(ledger: Ledger) -> tuple[int, int]:
    found = ledger.counters(["a|calls|total", "m|money|total"])
    calls, money = found["a|calls|total"], found["m|money|total"]
    return calls.settled + calls.held, money.settled + money.held
