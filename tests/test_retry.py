"""Retries bounded by attempts, money and time; classification; Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest

import runaway_guard as rg
from runaway_guard._classify import http_date
from runaway_guard.testing import FakeClock
from tests.helpers import contract


class HTTPFailure(Exception):
    """Shaped like an SDK status error: a status code and a response with headers."""

    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.response = type("Response", (), {"headers": dict(headers or {})})()


def failing(*errors: BaseException, then: object = "ok") -> Callable[[], object]:
    """A callable that raises `errors` in turn, then returns `then`; counts its calls."""
    queue = list(errors)

    def call() -> object:
        call.calls += 1  # type: ignore[attr-defined]
        if queue:
            raise queue.pop(0)
        return then

    call.calls = 0  # type: ignore[attr-defined]
    return call


def test_an_always_503_upstream_is_called_exactly_attempts_times(
    guard: rg.Guard, clock: FakeClock
) -> None:
    retrying = contract(
        guard, price="$0.01", retry=rg.Retry(5, backoff=1, backoff_cap=8, seed=3), breaker=False
    )
    upstream = failing(*[HTTPFailure(503) for _ in range(99)])
    with guard.run("r") as run, pytest.raises(rg.RetriesExhausted) as info:
        retrying.call(upstream)
    assert 5 == upstream.calls  # type: ignore[attr-defined]
    assert 4 == len(clock.sleeps)
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= min(8.0, 2.0 ** (attempt - 1))
    error = info.value
    assert "attempts" == error.reason
    assert isinstance(error.__cause__, HTTPFailure)
    assert ["server_error"] * 5 == [a.outcome for a in error.attempts]
    assert rg.parse_money("$0.05") == run.spent()  # a 5xx may have been billed
    assert "gave up after 5 attempt(s)" in str(error)


def test_a_400_is_called_once_and_surfaces_as_is(guard: rg.Guard, clock: FakeClock) -> None:
    retrying = contract(guard, retry=rg.Retry(5))
    upstream = failing(HTTPFailure(400))
    with pytest.raises(HTTPFailure):
        retrying.call(upstream)
    assert (1, []) == (upstream.calls, clock.sleeps)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "waited"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "0"}, 0.0),
    ],
)
def test_a_429_waits_as_retry_after_says(
    guard: rg.Guard, clock: FakeClock, headers: dict[str, str], waited: float
) -> None:
    retrying = contract(guard, retry=rg.Retry(3))
    upstream = failing(HTTPFailure(429, headers))
    assert "ok" == retrying.call(upstream)
    assert [waited] == clock.sleeps


def test_a_retry_after_http_date_is_honoured(guard: rg.Guard, clock: FakeClock) -> None:
    when = clock.datetime() + timedelta(seconds=7)
    retrying = contract(guard, retry=rg.Retry(3))
    assert "ok" == retrying.call(failing(HTTPFailure(429, {"Retry-After": http_date(when)})))
    assert [7.0] == clock.sleeps


def test_a_429_asking_for_longer_than_the_cap_gives_up_without_sleeping(
    guard: rg.Guard, clock: FakeClock
) -> None:
    retrying = contract(guard, retry=rg.Retry(5, retry_after_cap=60))
    upstream = failing(HTTPFailure(429, {"Retry-After": "200"}))
    with pytest.raises(rg.RetriesExhausted, match="asked to wait 200s") as info:
        retrying.call(upstream)
    assert ([], "retry_after", 1) == (clock.sleeps, info.value.reason, upstream.calls)  # type: ignore[attr-defined]


def test_a_429_is_released_not_charged(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$0.50", retry=rg.Retry(3))
    with guard.run("r") as run:
        retrying.call(failing(HTTPFailure(429, {"Retry-After": "1"})))
        assert rg.parse_money("$0.50") == run.spent()


def test_the_money_bound_stops_attempts_that_remain(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$0.10", retry=rg.Retry(5, max_cost="$0.25"), breaker=False)
    upstream = failing(*[HTTPFailure(502) for _ in range(9)])
    with pytest.raises(
        rg.RetriesExhausted, match=r"would pass the retry money bound \$0.25"
    ) as info:
        retrying.call(upstream)
    assert (2, "money") == (upstream.calls, info.value.reason)  # type: ignore[attr-defined]


def test_the_money_bound_defaults_to_the_run_cap(guard: rg.Guard) -> None:
    retrying = contract(
        guard, price="$0.10", max_per_run="$0.30", retry=rg.Retry(10), breaker=False
    )
    upstream = failing(*[TimeoutError("slow") for _ in range(20)])
    with pytest.raises(rg.RetriesExhausted) as info:
        retrying.call(upstream)
    assert (3, "money") == (upstream.calls, info.value.reason)  # type: ignore[attr-defined]


def test_the_elapsed_bound_stops_attempts(guard: rg.Guard, clock: FakeClock) -> None:
    retrying = contract(
        guard, retry=rg.Retry(10, backoff=10, jitter="none", max_elapsed=25), breaker=False
    )
    upstream = failing(*[ConnectionResetError() for _ in range(20)])
    with pytest.raises(rg.RetriesExhausted) as info:
        retrying.call(upstream)
    assert "elapsed" == info.value.reason
    assert [10.0] == clock.sleeps  # 10 s, then 20 s more would pass 25 s
    assert 2 == upstream.calls  # type: ignore[attr-defined]


def test_a_connection_refused_is_released_and_retried(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$1.00", retry=rg.Retry(2))
    with guard.run("r") as run:
        assert "ok" == retrying.call(failing(ConnectionRefusedError()))
        assert rg.parse_money("$1.00") == run.spent()
    outcomes = [(row.outcome, row.actual, row.error) for row in guard.ledger.spend()]
    assert [("released", 0, "ConnectionRefusedError"), ("settled", 10**9, "")] == outcomes


def test_a_timeout_after_sending_is_charged_its_estimate(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$1.00", retry=rg.Retry(2))
    with guard.run("r") as run:
        retrying.call(failing(TimeoutError()))
        assert rg.parse_money("$2.00") == run.spent()


def test_what_a_failure_is_charged_is_configurable(guard: rg.Guard) -> None:
    lenient = contract(
        guard, price="$1.00", retry=rg.Retry(2), charge=rg.Charge(server_error="release")
    )
    with guard.run("r") as run:
        lenient.call(failing(HTTPFailure(500)))
        assert rg.parse_money("$1.00") == run.spent()


def test_other_exceptions_are_not_retried(guard: rg.Guard) -> None:
    retrying = contract(guard, retry=rg.Retry(5))
    upstream = failing(ValueError("bad json"))
    with pytest.raises(ValueError, match="bad json"):
        retrying.call(upstream)
    assert 1 == upstream.calls  # type: ignore[attr-defined]


def test_retry_if_overrides_the_classification(guard: rg.Guard) -> None:
    retrying = contract(
        guard,
        retry=rg.Retry(3, retry_if=lambda exc: isinstance(exc, ValueError) or None),
    )
    upstream = failing(ValueError("flaky parse"), ValueError("flaky parse"))
    assert "ok" == retrying.call(upstream)
    assert 3 == upstream.calls  # type: ignore[attr-defined]


def test_non_retriable_error_stops_at_once(guard: rg.Guard) -> None:
    retrying = contract(guard, retry=rg.Retry(5, retry_if=lambda exc: True))
    upstream = failing(rg.NonRetriableError("prompt count 320 exceeds MAX_IMAGES_PER_RUN=50"))
    with pytest.raises(rg.NonRetriableError):
        retrying.call(upstream)
    assert 1 == upstream.calls  # type: ignore[attr-defined]


def test_a_budget_refusal_during_retries_names_the_last_error(guard: rg.Guard) -> None:
    retrying = contract(guard, max_calls_per_run=2, retry=rg.Retry(5, max_cost="$1"), breaker=False)
    with guard.run("r"), pytest.raises(rg.BudgetExceeded) as info:
        retrying.call(failing(*[HTTPFailure(503) for _ in range(5)]))
    assert isinstance(info.value.__cause__, HTTPFailure)


def test_interrupts_are_charged_and_never_retried(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$0.30", retry=rg.Retry(5))
    with guard.run("r") as run:
        with pytest.raises(KeyboardInterrupt):
            retrying.call(failing(KeyboardInterrupt()))
        assert rg.parse_money("$0.30") == run.spent()


def test_async_retries_follow_the_same_bounds(guard: rg.Guard, clock: FakeClock) -> None:
    retrying = contract(guard, retry=rg.Retry(4, backoff=1, jitter="none"), breaker=False)
    calls = 0

    @retrying
    async def complete() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise HTTPFailure(503)

    with pytest.raises(rg.RetriesExhausted):
        asyncio.run(complete())
    assert (4, [1.0, 2.0, 4.0]) == (calls, clock.sleeps)


def test_events_report_retries_and_giving_up(guard: rg.Guard) -> None:
    events: list[rg.Event] = []
    guard.subscribe(events.append)
    retrying = contract(guard, retry=rg.Retry(2), breaker=False)
    with pytest.raises(rg.RetriesExhausted):
        retrying.call(failing(HTTPFailure(500), HTTPFailure(500)))
    scheduled = [e for e in events if isinstance(e, rg.RetryScheduled)]
    gave_up = [e for e in events if isinstance(e, rg.RetriesGaveUp)]
    assert [(1, "server_error")] == [(e.attempt, e.kind) for e in scheduled]
    assert [(2, "attempts")] == [(e.attempts, e.reason) for e in gave_up]


def test_exhaustion_lists_each_attempt_with_its_cost(guard: rg.Guard) -> None:
    retrying = contract(guard, price="$0.02", retry=rg.Retry(3), breaker=False)
    with pytest.raises(rg.RetriesExhausted) as info:
        retrying.call(failing(HTTPFailure(503), HTTPFailure(429), TimeoutError()))
    text = str(info.value)
    assert "#1 server_error $0.02: HTTPFailure (HTTP 503)" in text
    assert "#2 rate_limited $0.00: HTTPFailure (HTTP 429)" in text
    assert "#3 timeout $0.02: TimeoutError" in text


def test_http_date_helper_round_trips() -> None:
    when = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert "Sun, 22 Nov 2026 23:00:00 GMT" == http_date(when)


def test_a_retry_money_bound_of_zero_allows_no_paid_retry(guard: rg.Guard) -> None:
    """$0 is a bound, never 'unset': a falsy Money must not fall through to max_per_run."""
    retrying = contract(
        guard, price="$0.10", max_per_run="$1", retry=rg.Retry(5, max_cost="$0"), breaker=False
    )
    upstream = failing(*[HTTPFailure(503) for _ in range(9)])
    with pytest.raises(rg.RetriesExhausted) as info:
        retrying.call(upstream)
    assert (1, "money") == (upstream.calls, info.value.reason)  # type: ignore[attr-defined]
