"""A contract's concurrency limit, across threads of one process (processes: patterns)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import runaway_guard as rg
from tests.helpers import contract


def test_no_more_than_the_limit_run_at_once(tmp_path: Path) -> None:
    with rg.Guard(f"sqlite:///{tmp_path / 'ledger.db'}") as guard:
        limited = contract(guard, concurrency=2, queue_timeout=30)
        lock = threading.Lock()
        in_flight = peak = 0

        def work() -> None:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1

        threads = [threading.Thread(target=limited.call, args=(work,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert 2 == peak
        assert 0 == limited.in_flight()


def test_waiting_for_a_slot_is_bounded() -> None:
    clock = rg.testing.FakeClock()
    with rg.Guard("memory://", clock=clock) as guard:
        limited = contract(guard, concurrency=1, queue_timeout=2)
        held = limited.hold()
        with pytest.raises(rg.ConcurrencyLimitReached, match="all 1 concurrency slots"):
            limited.call(lambda: None)
        assert sum(clock.sleeps) <= 2
        held.settle()
        assert 7 == limited.call(lambda: 7)


def test_a_refused_call_frees_its_slot(guard: rg.Guard) -> None:
    limited = contract(guard, concurrency=1, max_calls_per_run=1)
    limited.call(lambda: None)
    with pytest.raises(rg.BudgetExceeded):
        limited.call(lambda: None)
    assert 0 == limited.in_flight()


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), -1])
def test_the_wait_for_a_slot_needs_a_finite_deadline(timeout: float) -> None:
    with rg.Guard("memory://") as guard, pytest.raises(rg.ContractError, match="queue_timeout"):
        contract(guard, concurrency=1, queue_timeout=timeout)


def test_renewing_a_hold_keeps_its_concurrency_slot() -> None:
    clock = rg.testing.FakeClock()
    with rg.Guard("memory://", clock=clock) as guard:
        limited = contract(guard, concurrency=1, hold_lease=60, queue_timeout=0)
        streaming = limited.hold()
        for _ in range(5):  # a stream that lasts five leases, renewed as it goes
            clock.advance(50)
            assert streaming.renew()
        with pytest.raises(rg.ConcurrencyLimitReached):
            limited.hold()
        streaming.settle()
        limited.hold().settle()
