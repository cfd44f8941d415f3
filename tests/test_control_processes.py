"""The breaker and kill switches cross process boundaries through one SQLite ledger."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from tests import _workers

pytestmark = pytest.mark.slow


def test_a_breaker_opened_in_one_process_is_open_in_another(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert 3 == pool.submit(_workers.fail_until_breaker_opens, url).result(timeout=120)
    with rg.Guard(url) as guard:
        flaky = _workers.flaky_contract(guard)
        calls: list[int] = []
        with pytest.raises(rg.CircuitOpen, match="open after 3 consecutive"):
            flaky.call(lambda: calls.append(1))
        assert [] == calls


def test_a_kill_switch_from_one_process_stops_another_at_its_next_attempt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    log = tmp_path / "calls.log"
    log.touch()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        worker = pool.submit(_workers.call_until_killed, url, str(log))
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 5:
            assert time.monotonic() < deadline, "the worker never started calling"
            assert not worker.done(), worker.result()
            time.sleep(0.01)
        with rg.Guard(url) as guard:
            guard.kill("contract:record-enrich", "stop the overnight job", by="test")
        seen_at_kill = len(log.read_text().splitlines())
        made, error = worker.result(timeout=60)
    # One call may have been in flight when the switch was set; none may start after.
    assert seen_at_kill <= made <= seen_at_kill + 1
    assert "stop the overnight job" in error
