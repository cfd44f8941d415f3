"""Several real processes on one SQLite ledger: no overshoot, and crashed holds end."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests import _workers

pytestmark = pytest.mark.slow


def test_eight_processes_admit_exactly_the_cap(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    admitted = 537  # 8 x 200 = 1,600 attempts; the cap admits exactly 537
    cap = rg.parse_money(_workers.PRICE) * admitted
    rg.Guard(url).close()  # create the schema once, up front
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=8, mp_context=context) as pool:
        futures = [
            pool.submit(_workers.spend_until_refused, url, n, 200, str(cap)) for n in range(8)
        ]
        results = [f.result(timeout=300) for f in futures]
    assert [] == [error for _, _, errors in results for error in errors]
    assert admitted == sum(made for made, _, _ in results)
    assert 8 * 200 - admitted == sum(refused for _, refused, _ in results)
    with rg.Guard(url) as guard:
        (fleet,) = [s for s in guard.status() if s.scope == "fleet"]
        assert (cap.nanos, 0) == (fleet.settled, fleet.held)
        assert admitted == sum(1 for row in guard.ledger.spend() if row.outcome == "settled")


def test_a_killed_holder_is_reaped_at_its_estimate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_workers.hold_and_hang, args=(url, str(ready)))
    child.start()
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "the child never placed its hold"
        assert child.is_alive(), "the child died before placing its hold"
        time.sleep(0.05)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert -signal.SIGKILL == child.exitcode

    clock = FakeClock(time.time())
    with rg.Guard(url, clock=clock) as guard:
        (hold,) = guard.ledger.holds()
        assert ("crashy", "held") == (hold.contract, hold.status)
        assert [] == guard.reap()  # the lease (5 s) has not ended yet
        clock.advance(6)
        assert [hold.hold_id] == [h.hold_id for h in guard.reap()]
        counters = {s.key: s for s in guard.status()}
        run_money = counters["contract:crashy|money|run:doomed"]
        assert (250_000_000, 0) == (run_money.settled, run_money.held)
        assert [("reaped", 250_000_000)] == [(r.outcome, r.actual) for r in guard.ledger.spend()]
