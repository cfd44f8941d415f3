"""The doubling campaign, naive and guarded, against a fake image API on 127.0.0.1.

The protocol's canonical incident, replayed: a queued job generates one image per
prompt of a campaign at $0.05 an image. The prompt query has a bug: on a retry it
returns the previous attempt's list with that list appended again, so the list doubles
on every retry (40, 80, 160, 320). That night the database is failing over, so the job's last
step (saving the image URLs) fails, and the queue retries the job. In the morning the
on-call engineer replays the event.

The naive job fans every prompt out at once and pays for every image of every attempt.
The guarded job is the same job with a cost contract (50 images and $2.50 per run, 3 at
a time, an idempotency key per prompt), `guard.map` with ``max_items`` and a
concurrency limit, and one run per event, reopened by every retry and the replay.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from runaway_guard._errors import NonRetriableError
from runaway_guard._guard import Guard
from runaway_guard._money import Money, parse_money
from runaway_guard._policy import Retry
from runaway_guard.demo._server import FakeMeteredAPI, MeteredClient
from runaway_guard.patterns import Idempotency
from runaway_guard.testing import FakeClock

__all__ = ["CampaignResult", "run_campaign"]

EVENING: Final = "2026-05-21T22:00:00+00:00"
CAMPAIGN: Final = "spring-launch"
EVENT_ID: Final = "evt-01J8Z3"
PRICE: Final = parse_money("$0.05")
PROMPTS: Final = 40
MAX_IMAGES_PER_RUN: Final = 50  # $0.05 x 50 = $2.50 per run
CONCURRENCY: Final = 3
QUEUE_RETRIES: Final = 3  # the queue's retry policy: 1 + 3 attempts
QUEUE_BACKOFF: Final = (60.0, 600.0, 3600.0)  # seconds before retry 1, 2, 3
DATABASE_DOWN_FOR: Final = 5 * 3600.0  # a failover that lasts until 03:00
REPLAY_AT: Final = "2026-05-22T07:00:00+00:00"  # the on-call engineer replays the event


class DatabaseUnavailable(ConnectionError):
    """The campaign database is failing over: a transient error, worth a retry."""


@dataclass
class Attempt:
    """One execution of the job, as the queue started it."""

    label: str
    at: float
    prompts: int = 0
    requests: int = 0
    """Paid requests the provider metered during this attempt."""
    replayed: int = 0
    """Images answered from an idempotency record, at $0."""
    outcome: str = ""


@dataclass
class CampaignRun:
    """One night of the job, as the provider billed it and as the guard saw it."""

    name: str
    attempts: list[Attempt] = field(default_factory=list)
    requests: int = 0
    billed: Money = field(default_factory=lambda: Money(0))
    ledger_spent: Money | None = None
    images_saved: int = 0
    """Prompts whose image reached the campaign database."""
    stop: tuple[float, str] | None = None
    """(virtual time, why): what ended the retries, if the guard did."""
    cap_used: str = ""
    """The per-run call cap as the ledger counts it: ``40 calls of 50 calls``."""


@dataclass
class CampaignResult:
    naive: CampaignRun
    guarded: CampaignRun
    contract_summary: str
    start: float


class Database:
    """The campaign's database: 40 prompts, unavailable for writes during a failover."""

    def __init__(self, clock: FakeClock, down_from: float, down_until: float) -> None:
        self.clock = clock
        self.down_from = down_from
        self.down_until = down_until
        self.saved: dict[str, str] = {}
        self._previous: list[str] = []

    def fetch_prompts(self, attempt: int) -> list[str]:
        """The prompts, read with the incident's bug."""
        prompts = [f"{CAMPAIGN} banner {n:02d}: a fox in spring light" for n in range(PROMPTS)]
        if attempt > 1 and self._previous:
            # The bug: a retry returns the previous attempt's list with itself appended.
            prompts = self._previous + self._previous
        self._previous = prompts
        return list(prompts)

    def save(self, urls: dict[str, str]) -> None:
        if self.down_from <= self.clock.now() < self.down_until:
            raise DatabaseUnavailable("campaign database is failing over; write refused")
        self.saved.update(urls)


Job = Callable[[int], None]
"""The job: gets the attempt number from the queue."""


def run_queue(job: Job, clock: FakeClock, run: CampaignRun, *, label: str = "") -> None:
    """The queue: run `job`; after a failure, retry it on its schedule, at most 3 times.

    A `NonRetriableError` ends the retries at once, as Inngest's does.
    """
    for attempt in range(1, QUEUE_RETRIES + 2):
        record = Attempt(label or f"attempt {attempt}", clock.now())
        run.attempts.append(record)
        try:
            job(attempt)
        except NonRetriableError as exc:
            record.outcome = f"{type(exc).__name__}: not retried"
            run.stop = (record.at, str(exc))
            return
        except Exception as exc:
            why = "save failed" if isinstance(exc, DatabaseUnavailable) else type(exc).__name__
            if attempt > QUEUE_RETRIES:
                record.outcome = f"{why}; queue gives up"
                return
            pause = QUEUE_BACKOFF[attempt - 1]
            record.outcome = f"{why}; retry in {_duration(pause)}"
            clock.advance(pause)
            continue
        record.outcome = "done"
        return


def _naive_job(
    database: Database, client: MeteredClient, run: CampaignRun, requests: Callable[[], int]
) -> Job:
    def job(attempt: int) -> None:
        record = run.attempts[-1]
        before = requests()
        prompts = database.fetch_prompts(attempt)
        record.prompts = len(prompts)
        try:
            # Promise.all(prompts.map(generate)): every prompt in flight at once.
            with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
                urls = list(pool.map(lambda p: str(client.post({"prompt": p})["url"]), prompts))
        finally:
            client.close()  # the attempt's connections end with it
            record.requests = requests() - before
        database.save(dict(zip(prompts, urls, strict=True)))

    return job


def _guarded_job(
    guard: Guard,
    database: Database,
    generate: Callable[[str], str],
    run: CampaignRun,
    requests: Callable[[], int],
    generated: Callable[[], int],
) -> Job:
    def job(attempt: int) -> None:
        record = run.attempts[-1]
        before, generated_before = requests(), generated()
        # One run per event: a retry (or a replay) reopens it and continues its counters,
        # so the per-run cap counts every attempt of the event together.
        with guard.run(f"campaign-{EVENT_ID}"):
            prompts = database.fetch_prompts(attempt)
            record.prompts = len(prompts)
            try:
                urls = guard.map(
                    generate, prompts, max_items=MAX_IMAGES_PER_RUN, concurrency=CONCURRENCY
                )
            finally:
                record.requests = requests() - before
        record.replayed = len(urls) - (generated() - generated_before)
        database.save(dict(zip(prompts, urls, strict=True)))

    return job


class _Counter:
    """A count shared by worker threads."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def run_campaign(folder: Path) -> CampaignResult:
    """Run the naive night and the guarded night; every number comes from these runs."""
    start = datetime.fromisoformat(EVENING).timestamp()
    replay_at = datetime.fromisoformat(REPLAY_AT).timestamp()

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        digest = hashlib.sha256(str(payload.get("prompt")).encode()).hexdigest()[:12]
        return {"url": f"https://images.example/{CAMPAIGN}/{digest}.png"}

    with FakeMeteredAPI(price=PRICE, path="/v1/images", respond=answer) as api:
        naive = CampaignRun("naive")
        clock = FakeClock(start)
        database = Database(clock, start, start + DATABASE_DOWN_FOR)
        with api.client("naive", clock, advance=False) as client:
            job = _naive_job(database, client, naive, lambda: api.meter.requests["naive"])
            run_queue(job, clock, naive)
            clock.set(replay_at)
            run_queue(job, clock, naive, label="replay")
        naive.images_saved = len(database.saved)

        guarded = CampaignRun("guarded")
        clock = FakeClock(start)
        database = Database(clock, start, start + DATABASE_DOWN_FOR)
        with (
            Guard(f"sqlite:///{folder / 'ledger.db'}", clock=clock) as guard,
            api.client("guarded", clock, advance=False) as client,
        ):
            images = guard.contract(
                "campaign-images",
                price=PRICE,
                max_calls_per_run=MAX_IMAGES_PER_RUN,
                max_per_day="$20.00",
                concurrency=CONCURRENCY,
                retry=Retry(3, backoff=2, backoff_cap=30),
                provider_cap="image provider dashboard spend limit, $50/day",
                idempotency=Idempotency(key=lambda prompt: f"{CAMPAIGN}:{_digest(prompt)}"),
            )
            generated = _Counter()

            @images
            def generate(prompt: str) -> str:
                url = str(client.post({"prompt": prompt})["url"])
                generated.add()
                return url

            job = _guarded_job(
                guard,
                database,
                generate,
                guarded,
                lambda: api.meter.requests["guarded"],
                lambda: generated.value,
            )
            run_queue(job, clock, guarded)
            clock.set(replay_at)
            run_queue(job, clock, guarded, label="replay")
            with guard.run(f"campaign-{EVENT_ID}") as run:
                guarded.ledger_spent = run.spent()
                per_run = f"contract:{images.name}|calls|run:{run.path}"
            for budget in guard.status():
                if budget.key == per_run and budget.limit is not None:
                    used = budget.render(budget.settled)
                    guarded.cap_used = f"{used} of {budget.render(budget.limit)}"
            summary = images.summary()
        guarded.images_saved = len(database.saved)

    for outcome in (naive, guarded):
        outcome.requests = api.meter.requests[outcome.name]
        outcome.billed = api.meter.billed(outcome.name)
    return CampaignResult(naive, guarded, summary, start)


def _digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"
