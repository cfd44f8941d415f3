"""The exception tree.

```
RunawayGuardError
├── ContractError (ValueError)       a declaration or an input is wrong: fix the code
│   ├── ConfigError                  a configuration file or variable is wrong
│   └── TooManyItems                 a fan-out list is longer than max_items (also a
│                                    NonRetriableError: a scheduler must not retry it)
├── GuardRefused                     the guard refused a call before it was made
│   ├── BudgetExceeded               the worst-case cost does not fit a budget
│   ├── KillSwitchEngaged            an operator (or an anomaly trip) stopped the scope
│   ├── CircuitOpen                  the upstream failed too often; cooling down
│   ├── LoopDetected                 the same call keeps being repeated
│   ├── ConcurrencyLimitReached      no slot freed up in time
│   ├── DuplicateInFlight            the same idempotency key is still running elsewhere
│   └── JobOverlap                   the job is already running (overlap="refuse")
├── RetriesExhausted                 attempts or money for retries ran out
│   └── ReconnectsExhausted          a stream dropped more often than max_reconnects
├── FanOutFailed                     items of guard.map failed; finished results attached
├── PollTimedOut                     a poll's condition stayed false until max_wait
├── FallbackExhausted                every provider of a fallback chain failed
├── NonRetriableError                raise it to stop retries at once
└── LedgerError                      the ledger misbehaved
    └── LedgerUnavailable            the ledger cannot be reached: calls are refused
```

Every refusal happens *before* the paid call, so catching `GuardRefused` is safe:
nothing was spent by the refused call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AttemptRecord",
    "BudgetExceeded",
    "CircuitOpen",
    "ConcurrencyLimitReached",
    "ConfigError",
    "ContractError",
    "DuplicateInFlight",
    "FallbackExhausted",
    "FanOutFailed",
    "GuardRefused",
    "JobOverlap",
    "KillSwitchEngaged",
    "LedgerError",
    "LedgerUnavailable",
    "LoopDetected",
    "NonRetriableError",
    "PollTimedOut",
    "ReconnectsExhausted",
    "RetriesExhausted",
    "RunawayGuardError",
    "TooManyItems",
]


class RunawayGuardError(Exception):
    """Base class of every error raised by runaway-guard."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__, self.args))


class ContractError(RunawayGuardError, ValueError):
    """A declaration or an input value is wrong; the message names the value and the fix."""


class ConfigError(ContractError):
    """A configuration file or environment variable is wrong."""


class GuardRefused(RunawayGuardError):
    """The guard refused a call before making it; nothing was spent on it."""


class BudgetExceeded(GuardRefused):
    """The call's worst-case cost does not fit one of its budgets.

    Attributes:
        budget: the budget's description, e.g. ``contract 'record-enrich' day budget``.
        unit: ``"money"``, ``"calls"`` or ``"tokens"``.
        limit: the limit, as text in the budget's unit.
        spent: settled so far in the current window, as text.
        held: held by calls in flight, as text.
        asked: what this call asked for, as text.
        window: the window key (``day:2026-11-22``, ``run:nightly``).
        hint: what to change.
        scope: whose budget it is: ``"contract:NAME"``, ``"run:PATH"``, ``"global"``, or
            a custom scope such as ``"tenant:acme"``.
    """

    def __init__(
        self,
        *,
        budget: str,
        unit: str,
        limit: str,
        spent: str,
        held: str,
        asked: str,
        window: str,
        hint: str,
        scope: str = "",
    ) -> None:
        self.budget = budget
        self.scope = scope
        self.unit = unit
        self.limit = limit
        self.spent = spent
        self.held = held
        self.asked = asked
        self.window = window
        self.hint = hint
        super().__init__(
            f"{budget}: {spent} spent + {held} held + {asked} asked > {limit} limit ({hint})"
        )


class KillSwitchEngaged(GuardRefused):
    """A kill switch covers this call. It stays engaged until revived."""

    def __init__(self, *, scope: str, reason: str, by: str, at: str) -> None:
        self.scope = scope
        self.reason = reason
        self.by = by
        self.at = at
        super().__init__(
            f"kill switch on {scope!r} engaged by {by} at {at}: {reason} "
            f"(revive with guard.revive({scope!r}) or `runaway-guard revive {scope}`)"
        )


class CircuitOpen(GuardRefused):
    """The circuit breaker of a contract is open: its upstream failed repeatedly."""


class LoopDetected(GuardRefused):
    """The same call signature repeated too often within a window of recent calls."""

    def __init__(self, message: str, *, signature: str = "", trail: Sequence[str] = ()) -> None:
        self.signature = signature
        self.trail = list(trail)
        super().__init__(message)


class ConcurrencyLimitReached(GuardRefused):
    """No concurrency slot became free within the allowed wait."""


@dataclass(frozen=True)
class AttemptRecord:
    """What one attempt of a call did, for `RetriesExhausted`."""

    attempt: int
    outcome: str
    cost: str
    error: str

    def __str__(self) -> str:
        return f"#{self.attempt} {self.outcome} {self.cost}: {self.error}"


class RetriesExhausted(RunawayGuardError):
    """The retry bounds ran out; chained to the last error.

    Attributes:
        attempts: one `AttemptRecord` per attempt made.
        reason: which bound ran out.
    """

    def __init__(self, message: str, *, attempts: Sequence[AttemptRecord], reason: str) -> None:
        self.attempts = list(attempts)
        self.reason = reason
        lines = "\n".join(f"  {a}" for a in self.attempts)
        super().__init__(f"{message}\n{lines}" if lines else message)


class NonRetriableError(RunawayGuardError):
    """Raise this (or a subclass) inside a guarded function to stop retries at once."""


class LedgerError(RunawayGuardError):
    """The ledger failed in a way that is not a refusal."""


class LedgerUnavailable(LedgerError):
    """The ledger cannot be reached. The guard fails closed: no call is made."""


class TooManyItems(ContractError, NonRetriableError):
    """A fan-out list is longer than its `max_items`: rejected whole, before any call.

    Attributes:
        count: how many items there were (at least `max_items + 1` for an iterator,
            which is read no further than that).
        max_items: the declared bound.
    """

    def __init__(self, message: str, *, count: int, max_items: int) -> None:
        self.count = count
        self.max_items = max_items
        super().__init__(message)


class DuplicateInFlight(GuardRefused):
    """A call with the same idempotency key is still running; waiting for it timed out."""

    def __init__(self, message: str, *, key: str) -> None:
        self.key = key
        super().__init__(message)


class JobOverlap(GuardRefused):
    """A job is already running (its lease is live) and this invocation may not overlap."""

    def __init__(self, message: str, *, job: str) -> None:
        self.job = job
        super().__init__(message)


class ReconnectsExhausted(RetriesExhausted):
    """A stream failed more often than its `max_reconnects`; chained to the last error."""


class FanOutFailed(RunawayGuardError):
    """Items of a fan-out failed. Chained to the first failure.

    Attributes:
        results: finished results by input index.
        errors: the failures by input index.
        not_started: input indexes that were never called.
        total: how many items the fan-out was given.
    """

    def __init__(
        self,
        message: str,
        *,
        results: Mapping[int, Any],
        errors: Mapping[int, BaseException],
        not_started: Sequence[int],
        total: int,
    ) -> None:
        self.results = dict(results)
        self.errors = dict(errors)
        self.not_started = list(not_started)
        self.total = total
        super().__init__(message)


class PollTimedOut(RunawayGuardError):
    """A poll's `until` condition stayed false for `max_wait`; no more polls are made.

    Attributes:
        polls: how many polls were made (and paid for).
        waited: seconds from the first poll to giving up.
        last: the result of the last poll.
    """

    def __init__(self, message: str, *, polls: int, waited: float, last: Any) -> None:
        self.polls = polls
        self.waited = waited
        self.last = last
        super().__init__(message)


class FallbackExhausted(RunawayGuardError):
    """Every provider of a fallback chain failed. Chained to the last failure.

    Attributes:
        errors: ``(contract name, exception)`` per provider tried, in order.
    """

    def __init__(self, message: str, *, errors: Sequence[tuple[str, BaseException]]) -> None:
        self.errors = list(errors)
        super().__init__(message)


def _rebuild(cls: type[Exception], state: dict[str, Any], args: tuple[Any, ...]) -> Exception:
    # Keyword-only constructors do not survive pickling by default; errors cross
    # process boundaries in multiprocessing tests and worker pools.
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    exc.args = args
    return exc
