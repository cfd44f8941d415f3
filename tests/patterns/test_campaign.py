"""The campaign incident from the protocol, replayed overnight on a fake clock.

A function generates one image per prompt at $0.05. Its prompt list comes from a callback
with a bug: on every retry it returns the list so far with as many prompts again
appended, so the scheduler's retries see 40, 80, 160 and 320 prompts. Unguarded, the
four attempts cost (40 + 80 + 160 + 320) x $0.05 = $30.00, every time the event fires.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.patterns._fakes import Provider, ProviderError

PRICE = "$0.05"
MAX_IMAGES_PER_RUN = 50  # cost contract: 50 x $0.05 = $2.50 per run
SCHEDULER_RETRIES = 3  # four attempts: 40, 80, 160, 320 prompts
RETRY_AT = ["23:00", "23:30", "01:00", "03:00"]  # the scheduler's backoff over the night


class FlakyCampaign:
    """The callback with the doubling bug, and a results table that keeps failing."""

    def __init__(self) -> None:
        self.fetches = 0

    def fetch_prompts(self) -> list[str]:
        self.fetches += 1
        return [f"campaign 42, prompt {n}" for n in range(40 * 2 ** (self.fetches - 1))]

    def save(self, images: list[object]) -> None:
        raise ProviderError(503)  # the transient database error that triggers each retry


def scheduler(clock: FakeClock, fn: Callable[[int], None], *, retries: int) -> int:
    """An Inngest-like runner: retries on any error except a non-retriable one."""
    attempts = 0
    for attempt in range(1 + retries):
        clock.set(f"2026-11-{22 if attempt < 2 else 23}T{RETRY_AT[attempt]}:00+00:00")
        attempts += 1
        try:
            fn(attempt)
            return attempts
        except rg.NonRetriableError:
            return attempts
        except Exception:  # the scheduler being modelled retries anything else
            continue
    return attempts


def night_report(guard: rg.Guard) -> dict[str, object]:
    """What the ledger says the night cost, 23:00 to 07:00."""
    since = datetime.fromisoformat("2026-11-22T23:00:00+00:00").timestamp()
    until = datetime.fromisoformat("2026-11-23T07:00:00+00:00").timestamp()
    rows = list(guard.ledger.spend(since=since, until=until))
    return {
        "cost": rg.Money(sum(row.actual for row in rows), guard.currency),
        "paid_calls": sum(1 for row in rows if row.outcome == "settled"),
        "outcomes": Counter(row.outcome for row in rows),
    }


def campaign(
    guard: rg.Guard, max_items: int
) -> tuple[FlakyCampaign, Provider, Callable[[int], None]]:
    flaky, fal = FlakyCampaign(), Provider()
    images = guard.contract(
        "fal-flux-pro",
        price=PRICE,
        max_calls_per_run=MAX_IMAGES_PER_RUN,
        concurrency=3,
        provider_cap="Fal dashboard spend limit, $50/day (set 2026-05-22)",
        idempotency=rg.Idempotency(
            key=lambda prompt: f"campaign-42:{hashlib.sha1(prompt.encode()).hexdigest()}"
        ),
    )
    generate = images(fal)

    def generate_campaign(attempt: int) -> None:
        prompts = flaky.fetch_prompts()
        # Every retry reopens the same run: the campaign has one allowance, not one per retry.
        with guard.run("campaign-42"):
            made = guard.map(generate, prompts, max_items=max_items, concurrency=3)
        flaky.save(made)

    return flaky, fal, generate_campaign


def test_the_doubling_list_is_stopped_at_the_per_run_cap(guard: rg.Guard, clock: FakeClock) -> None:
    """Even with max_items set too high, the contract's per-run cap ends the night at $2.50."""
    flaky, fal, generate_campaign = campaign(guard, max_items=1_000)
    attempts = scheduler(clock, generate_campaign, retries=SCHEDULER_RETRIES)
    report = night_report(guard)
    print(f"\nnight of 2026-11-22, per-run cap only: {report}")
    assert (4, 4) == (attempts, flaky.fetches)  # 40, 80, 160 and 320 prompts
    assert rg.parse_money("$2.50") == report["cost"]
    assert (50, 50) == (report["paid_calls"], fal.calls)
    assert len(set(fal.requests)) == fal.calls  # and no image was paid for twice
    unguarded = rg.parse_money(PRICE) * (40 + 80 + 160 + 320)
    assert rg.parse_money("$30.00") == unguarded


def test_max_items_rejects_the_doubled_list_whole_and_ends_the_retries(
    guard: rg.Guard, clock: FakeClock
) -> None:
    """With MAX_IMAGES_PER_RUN as the fan-out bound, the night costs the first 40 images."""
    flaky, fal, generate_campaign = campaign(guard, max_items=MAX_IMAGES_PER_RUN)
    attempts = scheduler(clock, generate_campaign, retries=SCHEDULER_RETRIES)
    report = night_report(guard)
    print(f"\nnight of 2026-11-22, with max_items: {report}")
    assert (2, 2) == (attempts, flaky.fetches)  # 80 > 50: non-retriable, so no 3rd attempt
    assert rg.parse_money("$2.00") == report["cost"]
    assert (40, 40) == (report["paid_calls"], fal.calls)


def test_a_retry_of_the_same_list_replays_what_it_paid_for(
    guard: rg.Guard, clock: FakeClock
) -> None:
    """Without the doubling bug, the retries replay the 40 images at $0."""
    flaky, fal, generate_campaign = campaign(guard, max_items=MAX_IMAGES_PER_RUN)
    flaky.fetch_prompts = lambda: [f"campaign 42, prompt {n}" for n in range(40)]  # type: ignore[method-assign]
    attempts = scheduler(clock, generate_campaign, retries=SCHEDULER_RETRIES)
    report = night_report(guard)
    assert (4, 40, rg.parse_money("$2.00")) == (attempts, fal.calls, report["cost"])
