"""The protocol's test scenarios, one named test per row, with real counts and costs.

| scenario                                    | expected                                     |
|---------------------------------------------|----------------------------------------------|
| empty input list                            | 0 calls, $0, return before authenticating    |
| input list longer than the max              | rejected whole, non-retriable, no call       |
| all calls fail with 4xx                     | one attempt each, no retry, error surfaced   |
| all calls fail with 5xx                     | bounded retries, cost <= attempts x unit,    |
|                                             | an alert when retries are exhausted          |
| concurrent invocation of the same job       | deduplicated by key: the second costs $0     |
| network partition mid-batch                 | finished work banked; resume does not        |
|                                             | charge it again                              |
| provider rate limit (429)                   | Retry-After respected; retries in one layer  |
| webhook retried by the provider             | idempotent at the handler boundary           |
| local dev pointing at the prod key          | per-environment caps: cents, not dollars     |
| cron fires while the previous run executes  | the overlap is refused, at $0                |
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.patterns._fakes import Provider, ProviderError, charged, paid_calls

FLUX_PRICE = "$0.05"
FAL_CAP = "Fal dashboard spend limit, $50/day"
MAX_IMAGES_PER_RUN = 50


def images_contract(guard: rg.Guard, **options: Any) -> rg.Contract:
    """The campaign's cost contract: $0.05 x 50 images = $2.50 per run, 3 at a time."""
    options.setdefault("max_calls_per_run", MAX_IMAGES_PER_RUN)
    options.setdefault("concurrency", 3)
    return guard.contract("flux-pro", price=FLUX_PRICE, provider_cap=FAL_CAP, **options)


def prompt_key(campaign: str) -> rg.Idempotency:
    return rg.Idempotency(
        key=lambda prompt: f"{campaign}:{hashlib.sha1(prompt.encode()).hexdigest()}"
    )


def test_empty_input_list_makes_no_call_costs_nothing_and_never_authenticates(
    mem: rg.Guard,
) -> None:
    logins = 0
    provider = Provider()

    def generate(prompt: str) -> object:
        nonlocal logins
        logins += 1  # the client authenticates on first use
        return provider(prompt)

    images = images_contract(mem)
    assert [] == mem.map(images(generate), [], max_items=MAX_IMAGES_PER_RUN, concurrency=3)
    assert (0, 0, rg.parse_money("$0")) == (logins, provider.calls, charged(mem))
    assert ([], []) == (mem.status(), list(mem.ledger.spend()))


def test_input_list_longer_than_max_is_rejected_whole_and_not_retried(mem: rg.Guard) -> None:
    provider = Provider()
    images = images_contract(mem)(provider)
    prompts = [f"prompt {n}" for n in range(MAX_IMAGES_PER_RUN + 1)]
    with pytest.raises(rg.TooManyItems) as info:
        mem.map(images, prompts, max_items=MAX_IMAGES_PER_RUN, concurrency=3)
    assert isinstance(info.value, rg.NonRetriableError)
    assert (0, rg.parse_money("$0")) == (provider.calls, charged(mem))
    assert "51 items > max_items=50: rejected whole" in str(info.value)


def test_all_calls_failing_with_4xx_make_one_attempt_each_and_surface_the_error(
    mem: rg.Guard,
) -> None:
    provider = Provider(fail=lambda _, __: ProviderError(422))
    images = images_contract(mem, retry=rg.Retry(5))(provider)
    with pytest.raises(rg.FanOutFailed) as info:
        mem.map(images, ["a", "b", "c"], max_items=10, concurrency=3, on_error="continue")
    assert 3 == provider.calls  # one attempt each: a 4xx is never retried
    assert [422, 422, 422] == [e.status_code for e in info.value.errors.values()]  # type: ignore[attr-defined]
    assert rg.parse_money("$0") == charged(mem)  # the provider rejected them: nothing billed
    assert ["released"] * 3 == [row.outcome for row in mem.ledger.spend()]


def test_all_calls_failing_with_5xx_retry_within_attempts_times_unit_and_alert(
    mem: rg.Guard, clock: FakeClock
) -> None:
    alerts: list[rg.Event] = []
    mem.subscribe(
        lambda event: alerts.append(event) if isinstance(event, rg.RetriesGaveUp) else None
    )
    provider = Provider(fail=lambda _, __: ProviderError(503))
    retry = rg.Retry(3, backoff=1, jitter="none")
    # breaker=False isolates the retry bound; with the breaker on, it would open sooner.
    images = images_contract(mem, retry=retry, breaker=False)(provider)
    with pytest.raises(rg.FanOutFailed) as info:
        mem.map(images, ["a", "b"], max_items=10, concurrency=1, on_error="continue")
    assert 6 == provider.calls  # 2 items x 3 attempts
    assert rg.parse_money("$0.30") == charged(mem)  # <= attempts x unit = 6 x $0.05
    assert [1.0, 2.0, 1.0, 2.0] == clock.sleeps
    assert 2 == len(alerts)  # one alert per item whose retries ran out
    assert all(isinstance(e, rg.RetriesExhausted) for e in info.value.errors.values())


def test_concurrent_invocation_of_the_same_job_costs_nothing_the_second_time(
    tmp_path: Path,
) -> None:
    """Two workers get the same event at once; the second replays the first's images."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    waiting = threading.Event()

    class SignallingClock(rg.SystemClock):
        def sleep(self, seconds: float) -> None:
            waiting.set()  # the second invocation is waiting on the first's claims
            super().sleep(seconds)

    provider = Provider()
    claimed = threading.Barrier(4)  # the first invocation's three calls, and the test

    def generate(prompt: str) -> object:
        claimed.wait(10)
        assert waiting.wait(10), "the second invocation never overlapped the first"
        return provider(prompt)

    def invocation(guard: rg.Guard, run: str) -> tuple[list[object], rg.Money]:
        images = images_contract(guard, idempotency=prompt_key("campaign-42"))
        with guard.run(run) as scope:
            made = guard.map(images(generate), ["a", "b", "c"], max_items=50, concurrency=3)
            return made, scope.spent()

    with rg.Guard(url) as first, rg.Guard(url, clock=SignallingClock()) as second:
        with ThreadPoolExecutor(1) as pool:
            leader = pool.submit(invocation, first, "event-1-delivery-1")
            claimed.wait(10)  # the first invocation holds all three keys
            replayed, second_cost = invocation(second, "event-1-delivery-2")
            made, first_cost = leader.result(10)
        assert made == replayed == ["result:a", "result:b", "result:c"]
        assert (rg.parse_money("$0.15"), rg.parse_money("$0")) == (first_cost, second_cost)
        assert (3, 3) == (provider.calls, paid_calls(first))


def test_network_partition_mid_batch_banks_the_cost_and_resume_does_not_recharge(
    guard: rg.Guard,
) -> None:
    partitioned = True

    def fail(number: int, prompt: object) -> BaseException | None:
        if partitioned and prompt == "p6":
            return ConnectionResetError("connection reset by peer")
        return None

    provider = Provider(fail=fail)
    images = images_contract(guard, idempotency=prompt_key("campaign-7"))(provider)
    prompts = [f"p{n}" for n in range(10)]
    with guard.run("campaign-7"), pytest.raises(rg.FanOutFailed) as info:
        guard.map(images, prompts, max_items=50, concurrency=1)
    assert [0, 1, 2, 3, 4, 5] == sorted(info.value.results)
    # Six images, and the attempt cut off mid-request: it may have been billed.
    banked = charged(guard)
    assert rg.parse_money("$0.35") == banked

    partitioned = False
    with guard.run("campaign-7-resume"):
        made = guard.map(images, prompts, max_items=50, concurrency=1)
    assert [f"result:p{n}" for n in range(10)] == made
    assert rg.parse_money("$0.20") == charged(guard) - banked  # only p6..p9 were paid for
    assert 1 == provider.requests.count("p0")


def test_rate_limit_429_waits_as_retry_after_says_and_retries_in_one_layer(
    mem: rg.Guard, clock: FakeClock
) -> None:
    provider = Provider(
        fail=lambda n, _: ProviderError(429, retry_after="7") if n in (1, 3) else None
    )
    images = images_contract(mem, retry=rg.Retry(3))(provider)
    assert ["result:a", "result:b"] == mem.map(images, ["a", "b"], max_items=10, concurrency=1)
    assert [7.0, 7.0] == clock.sleeps
    assert 4 == provider.calls  # 2 items x 2 attempts: the fan-out itself never retries
    assert rg.parse_money("$0.10") == charged(mem)  # the 429s were not billed


def test_rate_limit_429_asking_for_too_long_gives_up_without_sleeping(
    mem: rg.Guard, clock: FakeClock
) -> None:
    provider = Provider(fail=lambda _, __: ProviderError(429, retry_after="3600"))
    images = images_contract(mem, retry=rg.Retry(5, retry_after_cap=60))(provider)
    with pytest.raises(rg.RetriesExhausted, match="asked to wait 3600s"):
        images("a")
    assert ([], 1) == (clock.sleeps, provider.calls)


def test_webhook_retried_by_the_provider_is_handled_once(guard: rg.Guard) -> None:
    sms = Provider()
    send = guard.contract(
        "send-sms",
        price="$0.0075",
        max_calls_per_run=100,
        provider_cap="Twilio account usage trigger, $20/day",
    )

    @guard.idempotent(key=lambda event: f"stripe:{event['id']}")
    def on_payment_succeeded(event: dict[str, str]) -> dict[str, str]:
        return {"sms": str(send.call(sms, event["phone"]))}

    event = {"id": "evt_3PqX", "phone": "+31600000000"}
    # The provider did not see our 200 in time and delivered the event twice more.
    responses = [on_payment_succeeded(event) for _ in range(3)]
    assert [{"sms": "result:+31600000000"}] * 3 == responses
    assert (1, rg.parse_money("$0.0075")) == (sms.calls, charged(guard))


def test_webhook_whose_first_handling_failed_is_handled_by_the_redelivery(
    guard: rg.Guard,
) -> None:
    sms = Provider(fail=lambda n, _: ProviderError(500) if n == 1 else None)
    send = guard.contract(
        "send-sms", price="$0.0075", max_calls_per_run=100, provider_cap="Twilio trigger"
    )

    @guard.idempotent(key=lambda event: f"stripe:{event['id']}")
    def on_payment_succeeded(event: dict[str, str]) -> str:
        return str(send.call(sms, event["phone"]))

    event = {"id": "evt_9", "phone": "+31611111111"}
    with pytest.raises(ProviderError):
        on_payment_succeeded(event)
    assert ["result:+31611111111"] * 2 == [on_payment_succeeded(event) for _ in range(2)]
    assert 2 == sms.calls


def test_dev_key_against_prod_caps_costs_cents_not_dollars(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_ENV", "dev")
    provider = Provider()
    with rg.Guard(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as guard:
        images = guard.contract(
            "flux-pro",
            price=FLUX_PRICE,
            max_calls_per_run=1000,
            max_per_day="$50.00",
            provider_cap=FAL_CAP,
            environments={"dev": {"max_per_day": "$0.50"}},
        )
        runaway = [f"test prompt {n}" for n in range(1000)]  # a local loop gone wrong
        with pytest.raises(rg.FanOutFailed) as info:
            guard.map(images(provider), runaway, max_items=1000, concurrency=1)
        assert isinstance(info.value.__cause__, rg.BudgetExceeded)
        assert "dev" == images.spec.environment
        assert (10, rg.parse_money("$0.50")) == (provider.calls, charged(guard))


def test_cron_firing_while_the_previous_run_executes_is_refused_at_no_cost(
    guard: rg.Guard,
) -> None:
    provider = Provider()
    images = images_contract(guard)(provider)

    def nightly(run: str) -> list[object]:
        with guard.job("nightly-campaign", max_runs_per_day=24), guard.run(run):
            return guard.map(images, ["a", "b"], max_items=50, concurrency=3)

    with guard.job("nightly-campaign", max_runs_per_day=24):  # the 23:00 run, still going
        images("still working")
        with pytest.raises(rg.JobOverlap):
            nightly("nightly-2026-11-22T23:30")  # cron fires again at 23:30
    assert (1, rg.parse_money("$0.05")) == (provider.calls, charged(guard))
    assert ["result:a", "result:b"] == nightly("nightly-2026-11-23T00:30")
