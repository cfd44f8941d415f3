"""The clock: wall time for windows and leases, and sleep, injectable per guard.

Tests and the demo hand a guard a `runaway_guard.testing.FakeClock`: budgets, windows,
leases, retries, back-offs, polls and breakers all read and wait on the guard's clock.
A few waits that pace a backend or a thread rather than the guard's decisions use real
time: the SQLite ledger's lock retries, network retries of the Redis and PostgreSQL
ledgers, the alert notifiers' deliveries, and the job heartbeat.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Where a guard reads the time and how it waits.

    `now` is wall-clock time in seconds since the epoch: windows and hold leases are
    shared across processes and hosts, so they need a shared notion of time.
    """

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds`."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"
