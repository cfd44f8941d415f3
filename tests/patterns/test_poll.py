"""Bounded polling: a deadline, and so a count, and every poll priced."""

from __future__ import annotations

from typing import Any

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.helpers import contract
from tests.patterns._fakes import ProviderError, charged


class Job:
    """A render job that reports done on its `ready_at`-th status check."""

    def __init__(self, ready_at: int | None, clock: FakeClock | None = None, takes: float = 0):
        self.ready_at = ready_at
        self.checks = 0
        self.clock = clock
        self.takes = takes

    def status(self) -> dict[str, Any]:
        self.checks += 1
        if self.clock is not None:
            self.clock.advance(self.takes)
        done = self.ready_at is not None and self.checks >= self.ready_at
        return {"status": "done" if done else "running", "check": self.checks}


def done(result: dict[str, Any]) -> bool:
    return bool(result["status"] == "done")


def status_contract(guard: rg.Guard, **options: Any) -> rg.Contract:
    options.setdefault("price", "$0.01")
    options.setdefault("max_calls_per_run", 100)
    return contract(guard, "render-status", **options)


def test_poll_returns_the_first_result_that_satisfies_until(
    mem: rg.Guard, clock: FakeClock
) -> None:
    job = Job(ready_at=3)
    result = mem.poll(
        job.status, until=done, interval=30, max_wait=600, contract=status_contract(mem)
    )
    assert {"status": "done", "check": 3} == result
    assert ([30.0, 30.0], rg.parse_money("$0.03")) == (clock.sleeps, charged(mem))


def test_poll_stops_at_ceil_max_wait_over_interval_polls(mem: rg.Guard, clock: FakeClock) -> None:
    job = Job(ready_at=None)
    with pytest.raises(rg.PollTimedOut) as info:
        mem.poll(job.status, until=done, interval=30, max_wait=600, contract=status_contract(mem))
    timed_out = info.value
    assert (20, 20, 570.0) == (job.checks, timed_out.polls, timed_out.waited)
    assert {"status": "running", "check": 20} == timed_out.last
    assert [30.0] * 19 == clock.sleeps
    assert rg.parse_money("$0.20") == charged(mem)  # ceil(600 / 30) x $0.01
    assert "at most ceil(600 / 30) = 20 polls" in str(timed_out)


def test_the_deadline_binds_first_when_polls_are_slow(mem: rg.Guard, clock: FakeClock) -> None:
    job = Job(ready_at=None, clock=clock, takes=50)
    with pytest.raises(rg.PollTimedOut) as info:
        mem.poll(job.status, until=done, interval=30, max_wait=600, contract=status_contract(mem))
    # Polls start at 0, 80, ..., 560 s; the ninth would start at 640 s, past the deadline.
    assert (8, 610.0) == (info.value.polls, info.value.waited)


def test_the_poll_count_is_computed_exactly(mem: rg.Guard) -> None:
    job = Job(ready_at=None)
    with pytest.raises(rg.PollTimedOut):
        mem.poll(job.status, until=done, interval=0.1, max_wait=0.7, contract=status_contract(mem))
    assert 7 == job.checks


def test_a_decorated_poll_function_is_priced_by_its_contract(mem: rg.Guard) -> None:
    job = Job(ready_at=2)
    status = status_contract(mem, price="$0.002")(job.status)
    mem.poll(status, until=done, interval=5, max_wait=60)
    assert rg.parse_money("$0.004") == charged(mem)


def test_an_unpriced_poll_is_refused(mem: rg.Guard) -> None:
    job = Job(ready_at=1)
    with pytest.raises(rg.ContractError, match="every poll is a paid call"):
        mem.poll(job.status, until=done, interval=5, max_wait=60)
    assert 0 == job.checks


def test_the_contracts_own_bounds_still_apply(mem: rg.Guard) -> None:
    job = Job(ready_at=None)
    capped = status_contract(mem, max_calls_per_run=5)
    with mem.run("render"), pytest.raises(rg.BudgetExceeded):
        mem.poll(job.status, until=done, interval=1, max_wait=3600, contract=capped)
    assert 5 == job.checks


def test_a_failing_poll_raises_at_once(mem: rg.Guard) -> None:
    def status() -> dict[str, Any]:
        raise ProviderError(404)

    with pytest.raises(ProviderError):
        mem.poll(status, until=done, interval=5, max_wait=60, contract=status_contract(mem))


@pytest.mark.parametrize(
    ("interval", "max_wait", "message"),
    [(0, 60, "interval must be"), (5, 0, "max_wait must be"), (5, float("nan"), "max_wait")],
)
def test_bad_poll_bounds_are_refused(
    mem: rg.Guard, interval: float, max_wait: float, message: str
) -> None:
    job = Job(ready_at=1)
    with pytest.raises(rg.ContractError, match=message):
        mem.poll(
            job.status,
            until=done,
            interval=interval,
            max_wait=max_wait,
            contract=status_contract(mem),
        )
    assert 0 == job.checks


def test_poll_refuses_a_coroutine_function(mem: rg.Guard) -> None:
    async def status() -> dict[str, Any]:
        return {}

    with pytest.raises(rg.ContractError, match="apoll"):
        mem.poll(status, until=done, interval=5, max_wait=60, contract=status_contract(mem))  # type: ignore[misc]


async def test_apoll_polls_a_coroutine_within_the_same_bounds(
    mem: rg.Guard, clock: FakeClock
) -> None:
    checks = 0

    async def status() -> dict[str, Any]:
        nonlocal checks
        checks += 1
        return {"status": "running"}

    with pytest.raises(rg.PollTimedOut):
        await mem.apoll(status, until=done, interval=10, max_wait=55, contract=status_contract(mem))
    assert (6, [10.0] * 5) == (checks, clock.sleeps)


async def test_apoll_returns_when_done(mem: rg.Guard) -> None:
    job = Job(ready_at=2)

    @status_contract(mem)
    async def status() -> dict[str, Any]:
        return job.status()

    assert "done" == (await mem.apoll(status, until=done, interval=1, max_wait=10))["status"]
