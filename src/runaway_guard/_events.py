"""Events the guard emits, for alerts, metrics and logs.

Listeners are plain callables (`EventListener`). A listener that raises is logged and
ignored: an event never breaks or blocks a paid call. Listeners run on the calling
thread, so a slow one must hand work off (the alert notifiers do). Events are plain
slotted dataclasses, not frozen ones, because `Settled` is built on every call when
anyone listens; treat them as read-only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runaway_guard.ledger import CounterState, HoldInfo, HoldLine

__all__ = [
    "AnomalyTripped",
    "BreakerClosed",
    "BreakerOpened",
    "CallRefused",
    "CostAboveEstimate",
    "Event",
    "EventListener",
    "HoldReaped",
    "KillSwitchCleared",
    "KillSwitchSet",
    "RetriesGaveUp",
    "RetryScheduled",
    "Settled",
]

logger = logging.getLogger("runaway_guard")


@dataclass(slots=True)
class Event:
    """Base class of every event. `at` is the guard clock's time (epoch seconds)."""

    at: float


@dataclass(slots=True)
class Settled(Event):
    """An attempt ended and was charged. `counters` are the touched budgets afterwards."""

    contract: str
    run: str
    attempt: int
    outcome: str
    estimate: int
    actual: int
    currency: str
    counters: tuple[tuple[HoldLine, CounterState], ...]


@dataclass(slots=True)
class CallRefused(Event):
    """A call was refused before it was made; `error` says why (nothing was spent)."""

    contract: str
    run: str
    error: Exception


@dataclass(slots=True)
class CostAboveEstimate(Event):
    """The actual cost came out above the worst-case estimate; the actual was recorded."""

    contract: str
    run: str
    estimate: int
    actual: int
    currency: str


@dataclass(slots=True)
class HoldReaped(Event):
    """A hold's holder vanished; it was charged at its estimate."""

    hold: HoldInfo
    currency: str


@dataclass(slots=True)
class KillSwitchSet(Event):
    """A kill switch was engaged, by a person or by an anomaly trip."""

    scope: str
    reason: str
    by: str


@dataclass(slots=True)
class KillSwitchCleared(Event):
    """A kill switch was revived."""

    scope: str
    by: str


@dataclass(slots=True)
class BreakerOpened(Event):
    """A contract's circuit breaker opened after consecutive upstream failures."""

    contract: str
    failures: int
    until: float


@dataclass(slots=True)
class BreakerClosed(Event):
    """A half-open probe succeeded and closed the contract's circuit breaker."""

    contract: str


@dataclass(slots=True)
class AnomalyTripped(Event):
    """Calls in the current hour passed the declared expectation times the factor."""

    contract: str
    calls: int
    expected: int
    factor: str


@dataclass(slots=True)
class RetryScheduled(Event):
    """A failed attempt will be retried after `delay` seconds."""

    contract: str
    attempt: int
    delay: float
    kind: str


@dataclass(slots=True)
class RetriesGaveUp(Event):
    """A call's retries ran out; `reason` names the bound that did."""

    contract: str
    attempts: int
    reason: str


class EventListener(Protocol):
    """A callable that receives every event a guard emits."""

    def __call__(self, event: Event, /) -> None: ...


class Dispatcher:
    """Fans events out to listeners; a failing listener is logged, never raised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.listeners: tuple[EventListener, ...] = ()

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        with self._lock:
            self.listeners = (*self.listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self.listeners = tuple(x for x in self.listeners if x is not listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a listener must never break a paid call
                logger.exception("runaway-guard event listener %r failed on %r", listener, event)
