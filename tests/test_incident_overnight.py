"""Replay of the overnight retry loop: a flaky upstream and `while not done: ... continue`.

The upstream fails for eight simulated hours (23:00 to 07:00). Each failed request takes
about 6.2 s and each pass of the caller's loop about 0.5 s more, so the unguarded loop
makes ~4,300 paid calls by morning, as in the incident. The same loop around a guarded
call makes a bounded, stated number of paid attempts.
"""

from __future__ import annotations

from collections.abc import Callable

import runaway_guard as rg
from runaway_guard.testing import FakeClock

NIGHT_START = "2026-11-22T23:00:00+00:00"
FAILURE_SECONDS = 6.2
LOOP_SECONDS = 0.5
PRICE = rg.parse_money("$0.002")


class ServiceUnavailable(Exception):
    status_code = 503


class Upstream:
    """A metered endpoint that fails until 07:00, billing every request it receives."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.recovers_at = clock.now() + 8 * 3600
        self.requests = 0

    def complete(self, payload: str) -> str:
        self.requests += 1
        if self.clock.now() < self.recovers_at:
            self.clock.advance(FAILURE_SECONDS)
            raise ServiceUnavailable("upstream flaky")
        return payload.upper()


def overnight(clock: FakeClock, complete: Callable[[str], object]) -> bool:
    """The loop as written in the incident, plus the morning: the operator arrives."""
    morning = clock.now() + 8 * 3600
    done = False
    while not done:
        if clock.now() >= morning:
            return False
        clock.advance(LOOP_SECONDS)
        try:
            complete("record")
            done = True
        except Exception:  # the whole disaster, right here
            continue
    return True


def test_the_unguarded_loop_bills_thousands_of_calls() -> None:
    clock = FakeClock(NIGHT_START)
    upstream = Upstream(clock)
    overnight(clock, upstream.complete)
    assert 4_250 <= upstream.requests <= 4_350
    assert rg.parse_money("$8.50") <= PRICE * upstream.requests


def test_the_guarded_loop_makes_a_bounded_number_of_paid_attempts() -> None:
    clock = FakeClock(NIGHT_START)
    upstream = Upstream(clock)
    events: list[rg.Event] = []
    with rg.Guard("memory://", clock=clock) as guard:
        guard.subscribe(events.append)
        enrich = guard.contract(
            "record-enrich",
            price=PRICE,
            max_calls_per_run=80,
            max_per_day="$1.00",
            retry=rg.Retry(5, backoff=1, backoff_cap=30),
            breaker=rg.Breaker(failures=5, cooldown=60),
            provider_cap="OpenAI org usage limit, $25/month",
        )
        with guard.run("nightly-2026-11-22") as run:
            finished = overnight(clock, enrich(upstream.complete))
            spent = run.spent()
    assert not finished  # the job failed: loudly refused, instead of spending all night
    assert 80 == upstream.requests  # bounded by max_calls_per_run, not by the network
    assert PRICE * 80 == spent  # each failed 5xx may have been billed: charged in full
    assert any(isinstance(e, rg.BreakerOpened) for e in events)
    refusals = {type(e.error).__name__ for e in events if isinstance(e, rg.CallRefused)}
    assert {"CircuitOpen", "BudgetExceeded"} == refusals
