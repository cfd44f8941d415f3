"""Several real processes on one SQLite ledger: no overshoot, and crashed holds end."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from tests import _workers
from tests.helpers import assert_the_killed_hold_is_reaped, kill_when_ready

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
    kill_when_ready(_workers.hold_and_hang, (url, str(ready)), ready)
    assert_the_killed_hold_is_reaped(url)
