"""A task cancelled while its ledger operation runs in a worker thread orphans nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import runaway_guard as rg
from tests.helpers import contract
from tests.ledger.conftest import drop_redis_prefix, fresh_name, redis_url

pytestmark = pytest.mark.redis


@pytest.fixture
def remote_guard() -> Iterator[rg.Guard]:
    prefix = fresh_name("cancel")
    guard = rg.Guard(redis_url(prefix))
    try:
        yield guard
    finally:
        guard.close()
        drop_redis_prefix(prefix)


def _settled(guard: rg.Guard, limited: rg.Contract) -> tuple[list[rg.ledger.HoldInfo], int]:
    """Holds in flight and slots in use, once the worker threads have finished."""
    deadline = time.monotonic() + 10
    while True:
        held = [h for h in guard.ledger.holds() if h.status == "held"]
        used = limited.in_flight()
        if (not held and not used) or time.monotonic() > deadline:
            return held, used
        time.sleep(0.05)


def test_timeouts_during_admission_leave_no_hold_and_no_slot(remote_guard: rg.Guard) -> None:
    limited = contract(remote_guard, price="$0.50", concurrency=5, queue_timeout=0)
    calls = 0

    async def paid() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    async def main() -> int:
        timed_out = 0
        with remote_guard.run("job"):
            for _ in range(100):
                try:
                    await asyncio.wait_for(limited.acall(paid), timeout=0.0003)
                except TimeoutError:
                    timed_out += 1
        return timed_out

    timed_out = asyncio.run(main())
    held, used = _settled(remote_guard, limited)
    assert ([], 0) == (held, used)
    assert timed_out > 0  # the test exercised cancellation at all
    charged = sum(row.actual for row in remote_guard.ledger.spend())
    assert 500_000_000 * calls == charged  # only calls that really ran were charged
