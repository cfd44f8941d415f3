"""Small helpers shared by tests."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import runaway_guard as rg
from runaway_guard.testing import FakeClock


def contract(guard: rg.Guard, name: str = "enrich", **options: object) -> rg.Contract:
    """A contract with the provider cap filled in, for tests about other things."""
    options.setdefault("price", "$0.002")
    options.setdefault("provider_cap", "test provider cap, $25/month")
    if "max_calls_per_run" not in options and "max_per_run" not in options:
        options["max_calls_per_run"] = 1000
    return guard.contract(name, **options)  # type: ignore[arg-type]


def kill_when_ready(target: Callable[..., object], args: tuple[object, ...], ready: Path) -> None:
    """Start `target(*args)` in a spawned process, SIGKILL it once it creates `ready`."""
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=target, args=args)
    child.start()
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "the child never got ready"
        assert child.is_alive(), "the child died before getting ready"
        time.sleep(0.05)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert -signal.SIGKILL == child.exitcode


def assert_the_killed_hold_is_reaped(url: str) -> None:
    """After `_workers.hold_and_hang` was killed: its $0.25 hold is reaped at its estimate."""
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
