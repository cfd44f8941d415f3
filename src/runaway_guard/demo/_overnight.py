"""The overnight retry loop, naive and guarded, against the fake metered API.

Both runs execute the same buggy loop from the first incident (retry at once, forever,
swallowing every exception). The guarded run only adds a contract around the call. The
night runs on a virtual clock: 23:00 to 07:00 in a few seconds of real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from runaway_guard._errors import BudgetExceeded, KillSwitchEngaged
from runaway_guard._events import BreakerOpened, CallRefused, Event, RetriesGaveUp
from runaway_guard._guard import Guard
from runaway_guard._money import Money, parse_money
from runaway_guard._policy import Breaker, Retry
from runaway_guard.alerts import Alert, Alerts, Callback
from runaway_guard.demo._server import FakeMeteredAPI
from runaway_guard.testing import FakeClock

__all__ = ["NightResult", "run_overnight"]

NIGHT = "2026-11-22T23:00:00+00:00"
HOURS = 8
RECORDS = 80
PRICE = parse_money("$0.002")
LOOP_SECONDS = 2.0  # one pass of the caller's loop: re-read the record, log, go again
FLAKY_AFTER = 60.0  # the upstream turns flaky a minute into the job ...
FLAKY_FOR = HOURS * 3600 - 20 * 60  # ... and recovers twenty minutes before 07:00


@dataclass
class RunOutcome:
    """One run of the nightly job, as the provider billed it and as the guard saw it."""

    name: str
    records_done: int = 0
    requests: int = 0
    billed: Money = field(default_factory=lambda: Money(0))
    finished_at: float | None = None
    by_hour: dict[int, int] = field(default_factory=dict)
    ledger_spent: Money | None = None
    stops: list[tuple[float, str, str]] = field(default_factory=list)
    """(virtual time, kind, what happened): the first time each kind of stop happened."""
    alerts: list[Alert] = field(default_factory=list)
    """The alerts delivered while the run went on, in the order they were raised."""


@dataclass
class NightResult:
    naive: RunOutcome
    guarded: RunOutcome
    contract_summary: str
    start: float
    end: float


def nightly_job(
    complete: Callable[[dict[str, int]], object], clock: FakeClock, morning: float
) -> tuple[int, float | None]:
    """The job as written in the incident. Returns (records done, finish time)."""
    done_records = 0
    for number in range(RECORDS):
        done = False
        while not done:
            if clock.now() >= morning:  # the operator arrives and stops it
                return done_records, None
            clock.advance(LOOP_SECONDS)
            try:
                complete({"record": number})
                done = True
            # The incident's bug, replayed on purpose: retry at once, forever, whatever
            # went wrong.
            except Exception:  # noqa: S112
                continue
        done_records += 1
    return done_records, clock.now()


def run_overnight(folder: Path) -> NightResult:
    """Run the naive night and the guarded night; every number comes from these runs."""
    start = datetime.fromisoformat(NIGHT).timestamp()
    morning = start + HOURS * 3600
    with FakeMeteredAPI(
        price=PRICE, flaky_from=start + FLAKY_AFTER, flaky_until=start + FLAKY_AFTER + FLAKY_FOR
    ) as api:
        naive = RunOutcome("naive")
        clock = FakeClock(start)
        with api.client("naive", clock) as client:
            naive.records_done, naive.finished_at = nightly_job(client.post, clock, morning)

        guarded = RunOutcome("guarded")
        clock = FakeClock(start)
        with (
            Guard(f"sqlite:///{folder / 'ledger.db'}", clock=clock) as guard,
            api.client("guarded", clock) as client,
        ):
            enrich = guard.contract(
                "record-enrich",
                price=PRICE,
                max_calls_per_run=100,  # 80 records, and room for 20 retries
                max_per_day="$0.50",
                retry=Retry(5, backoff=2, backoff_cap=60),
                breaker=Breaker(failures=5, cooldown=300),
                provider_cap="OpenAI org usage limit, $25/month (set 2026-11-01)",
            )
            # Real alerts, delivered for real, to a function instead of a phone.
            alerts = Alerts(guard, [Callback(guarded.alerts.append)], thresholds=(50, 90, 100))
            guard.subscribe(lambda event: _note(guarded, event))
            with guard.run("nightly-2026-11-22") as run:
                guarded.records_done, guarded.finished_at = nightly_job(
                    enrich(client.post), clock, morning
                )
                guarded.ledger_spent = run.spent()
            summary = enrich.summary()
            # Delivery runs on worker threads: wait for it before anything is printed.
            alerts.flush()
            alerts.close()

    for outcome in (naive, guarded):
        outcome.requests = api.meter.requests[outcome.name]
        outcome.billed = api.meter.billed(outcome.name)
        outcome.by_hour = dict(api.meter.by_hour.get(outcome.name, {}))
    guarded.alerts.sort(key=lambda alert: alert.at)
    return NightResult(naive, guarded, summary, start, morning)


def _note(outcome: RunOutcome, event: Event) -> None:
    """Keep the first time each kind of stop happened: that is the story of the night."""
    if isinstance(event, BreakerOpened):
        kind = "breaker"
        text = f"circuit breaker opened after {event.failures} consecutive upstream failures"
    elif isinstance(event, RetriesGaveUp):
        kind, text = "retries", f"retries gave up after {event.attempts} attempts"
    elif isinstance(event, CallRefused) and isinstance(event.error, BudgetExceeded):
        kind, text = "budget", str(event.error)
    elif isinstance(event, CallRefused) and isinstance(event.error, KillSwitchEngaged):
        kind, text = "kill switch", str(event.error)
    else:
        return
    if all(seen != kind for _, seen, _ in outcome.stops):
        outcome.stops.append((event.at, kind, text))
