"""Jobs: cron and self-scheduling work that cannot overlap itself or run away.

Two records in the ledger, shared by every process and host on it:

- a lease lock (a concurrency slot of size 1, ``job:<name>``): a second invocation while
  one runs is refused (``overlap="refuse"``) or waits for it, bounded
  (``overlap="wait"``). A run that crashed holds the lock only until its lease ends; a
  live run renews its lease from a heartbeat thread.
- a daily run count (``job-runs:<name>:day:<date>``, in the guard's time zone): a job
  that re-enqueues itself is stopped at `max_runs_per_day` by a row in the ledger, not
  by a counter in the code that a restart resets.

A run counts when it starts, whatever its outcome. A refused invocation counts nothing.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

from runaway_guard._budget import Period, check_count, check_name, window_for
from runaway_guard._errors import BudgetExceeded, ContractError, JobOverlap, LedgerError
from runaway_guard._holds import new_id
from runaway_guard.patterns._common import POLL_FIRST, POLL_MAX, ledger_call, polls_within, seconds

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["DEFAULT_JOB_LEASE", "Job", "JobRun", "Overlap"]

logger = logging.getLogger("runaway_guard")

F = TypeVar("F", bound=Callable[..., Any])

Overlap = Literal["refuse", "wait"]

DEFAULT_JOB_LEASE: Final = 300.0
"""Seconds a job's lock outlives a run that stopped renewing it (crashed)."""
DEFAULT_JOB_WAIT: Final = 60.0
_CAS_TRIES: Final = 16


@dataclass
class JobRun:
    """One run of a job, as `with guard.job(...) as run` gives it.

    Attributes:
        job: the job's name.
        number: this run's number today (1 for the first), counted in the ledger.
        max_runs_per_day: the job's daily bound.
        day: the window the count belongs to, e.g. ``day:2026-11-22``.
        holder: this run's id on the job's lock.
        started: when the run took the lock (guard clock, epoch seconds).
    """

    job: str
    number: int
    max_runs_per_day: int
    day: str
    holder: str
    started: float
    _job: Job = field(repr=False)

    def renew(self) -> bool:
        """Extend the lock's lease now; False when the lock was lost (the lease had ended)."""
        return self._job.renew(self.holder)


class _Heartbeat:
    """Renews a live run's lease a few times per lease, on a daemon thread (real time)."""

    def __init__(self, job: Job, holder: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat,
            args=(job, holder),
            name=f"runaway-guard-job-{job.name}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self, job: Job, holder: str) -> None:
        while not self._stop.wait(job.lease / 3):
            try:
                if not job.renew(holder):
                    logger.error(
                        "runaway-guard: job %r lost its lock (its lease of %gs ended before a "
                        "renewal); another run may overlap this one",
                        job.name,
                        job.lease,
                    )
                    return
            except LedgerError:
                logger.warning("runaway-guard could not renew job %r", job.name, exc_info=True)


class Job:
    """A named job: a lease lock and a daily run count in the ledger.

    Use it as a context manager (``with`` or ``async with``) around one run, or as a
    decorator of the job's function: every call is then one run.

    Args:
        guard: the guard whose ledger and clock the job uses.
        name: the job's name, shared by every process that runs it.
        max_runs_per_day: the most runs that may start per day (guard time zone).
        overlap: ``"refuse"`` a run while another holds the lock (`JobOverlap`), or
            ``"wait"`` for it, at most `wait` seconds.
        wait: seconds to wait with ``overlap="wait"`` (60 by default).
        lease: seconds the lock outlives a run that stopped renewing it.
        heartbeat: renew the lease from a background thread while the run is live; turn
            it off only if you call `JobRun.renew()` yourself.
    """

    def __init__(
        self,
        guard: Guard,
        name: str,
        *,
        max_runs_per_day: int,
        overlap: Overlap = "refuse",
        wait: float | None = None,
        lease: float = DEFAULT_JOB_LEASE,
        heartbeat: bool = True,
    ) -> None:
        self.guard = guard
        self.name = check_name(name, "job name")
        self.max_runs_per_day = check_count(max_runs_per_day, "max_runs_per_day")
        if overlap not in ("refuse", "wait"):
            raise ContractError(
                f"job {name!r}: overlap must be 'refuse' or 'wait', not {overlap!r}"
            )
        if overlap == "refuse" and wait is not None:
            raise ContractError(f"job {name!r}: wait= applies to overlap='wait' only")
        self.overlap: Overlap = overlap
        self.wait = seconds(DEFAULT_JOB_WAIT if wait is None else wait, f"job {name!r} wait")
        self.lease = seconds(lease, f"job {name!r} lease", positive=True)
        self.heartbeat = heartbeat
        self._slot = f"job:{name}"
        self._current: contextvars.ContextVar[tuple[JobRun, _Heartbeat | None] | None] = (
            contextvars.ContextVar(f"runaway_guard_job_{id(self)}", default=None)
        )

    # -- ledger operations ----------------------------------------------------------------------
    def _try_lock(self, holder: str) -> bool:
        now = self.guard.clock.now()
        return self.guard.ledger.acquire_slot(
            self._slot, limit=1, holder=holder, now=now, lease_until=now + self.lease
        )

    def renew(self, holder: str) -> bool:
        """Extend `holder`'s lease; False when the lock is held by someone else now."""
        return self._try_lock(holder)

    def running(self) -> bool:
        """True while a run of this job holds a live lease, in any process."""
        return self.guard.ledger.slots_in_use(self._slot, now=self.guard.clock.now()) > 0

    def _count_key(self, window: str) -> str:
        return f"job-runs:{self.name}:{window}"

    def runs_today(self) -> int:
        """Runs started today (guard time zone), as counted in the ledger."""
        now = self.guard.clock.now()
        window = window_for(Period.DAY, now, self.guard.tz, "")
        record = self.guard.ledger.get_state(self._count_key(window.key), now=now)
        return int(record.value) if record is not None else 0

    def _count_run(self) -> tuple[int, str]:
        """Count one more run today, or raise `BudgetExceeded` when none is left."""
        ledger = self.guard.ledger
        now = self.guard.clock.now()
        window = window_for(Period.DAY, now, self.guard.tz, "")
        key = self._count_key(window.key)
        for _ in range(_CAS_TRIES):
            record = ledger.get_state(key, now=now)
            runs = int(record.value) if record is not None else 0
            if runs + 1 > self.max_runs_per_day:
                raise BudgetExceeded(
                    budget=f"job {self.name!r} runs-per-day budget",
                    unit="runs",
                    limit=f"{self.max_runs_per_day} runs",
                    spent=f"{runs} runs",
                    held="0 runs",
                    asked="1 run",
                    window=window.key,
                    hint=(
                        f"raise max_runs_per_day or wait for {window.describe_end(self.guard.tz)}"
                        "; a job that keeps re-scheduling itself is the usual cause"
                    ),
                )
            version = record.version if record is not None else 0
            if ledger.cas_state(
                key, expected_version=version, value=str(runs + 1), now=now, expires=window.end
            ):
                return runs + 1, window.key
        raise LedgerError(f"job {self.name!r}: too much contention on its run count")

    def _overlapping(self, waited: float) -> JobOverlap:
        if self.overlap == "refuse":
            detail = "overlap='refuse'; use overlap='wait' to queue behind it"
        else:
            detail = f"waited {waited:g}s (overlap='wait', wait={self.wait:g}s)"
        return JobOverlap(
            f"job {self.name!r} is already running (its lease of {self.lease:g}s is live): "
            f"{detail}. This invocation made no call. A run that crashed frees the lock when "
            "its lease ends",
            job=self.name,
        )

    def _admit(self, holder: str, started: float) -> JobRun:
        try:
            number, day = self._count_run()
        except BaseException:
            self.guard.ledger.release_slot(self._slot, holder=holder)
            raise
        return JobRun(self.name, number, self.max_runs_per_day, day, holder, started, self)

    # -- entering and leaving a run ------------------------------------------------------------
    def _lock_sync(self, holder: str) -> None:
        clock = self.guard.clock
        started = clock.now()
        pause = POLL_FIRST
        for _ in range(polls_within(self.wait) if self.overlap == "wait" else 1):
            if self._try_lock(holder):
                return
            if self.overlap == "refuse" or clock.now() + pause > started + self.wait:
                break
            clock.sleep(pause)
            pause = min(pause * 2, POLL_MAX)
        raise self._overlapping(clock.now() - started)

    async def _lock_async(self, holder: str) -> None:
        clock = self.guard.clock
        started = clock.now()
        pause = POLL_FIRST
        attempt = functools.partial(self._try_lock, holder)
        for _ in range(polls_within(self.wait) if self.overlap == "wait" else 1):
            if await ledger_call(self.guard, attempt):
                return
            if self.overlap == "refuse" or clock.now() + pause > started + self.wait:
                break
            await clock.asleep(pause)
            pause = min(pause * 2, POLL_MAX)
        raise self._overlapping(clock.now() - started)

    def _check_not_entered(self) -> None:
        if self._current.get() is not None:
            raise ContractError(
                f"job {self.name!r} is already entered here: a run cannot contain another "
                "run of the same job"
            )

    def _begin(self, run: JobRun) -> JobRun:
        beat = _Heartbeat(self, run.holder) if self.heartbeat else None
        if beat is not None:
            beat.start()
        self._current.set((run, beat))
        return run

    def _leave(self) -> JobRun:
        entered = self._current.get()
        assert entered is not None, "a job is left only after it was entered"
        self._current.set(None)
        run, beat = entered
        if beat is not None:
            beat.stop()
        return run

    def _release(self, run: JobRun) -> None:
        try:
            self.guard.ledger.release_slot(self._slot, holder=run.holder)
        except LedgerError:
            logger.warning(
                "runaway-guard could not release job %r; its lock ends with its lease (%gs)",
                self.name,
                self.lease,
                exc_info=True,
            )

    def __enter__(self) -> JobRun:
        self._check_not_entered()
        holder = new_id()
        self._lock_sync(holder)
        return self._begin(self._admit(holder, self.guard.clock.now()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release(self._leave())

    async def __aenter__(self) -> JobRun:
        self._check_not_entered()
        holder = new_id()
        await self._lock_async(holder)
        admit = functools.partial(self._admit, holder, self.guard.clock.now())
        return self._begin(await ledger_call(self.guard, admit))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._leave()
        await ledger_call(self.guard, functools.partial(self._release, run))

    def __call__(self, fn: F) -> F:
        """Decorate a job function: every call of it is one run of this job."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, run_sync)

    def __repr__(self) -> str:
        return (
            f"Job({self.name!r}, max_runs_per_day={self.max_runs_per_day}, "
            f"overlap={self.overlap!r})"
        )
