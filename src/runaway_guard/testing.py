"""Helpers for testing code that uses runaway-guard.

`FakeClock` is a clock that never really sleeps: `sleep` advances it and records the
request, so a test (or the demo) can replay eight hours of retries in milliseconds.

>>> from runaway_guard.testing import FakeClock
>>> clock = FakeClock("2026-11-22T23:00:00+00:00")
>>> clock.sleep(90)
>>> clock.sleeps
[90.0]
>>> clock.isoformat()
'2026-11-22T23:01:30+00:00'
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that advances only when told to, or when something sleeps on it.

    Thread-safe. `sleep` and `asleep` return at once after moving the time forward;
    `asleep` still yields to the event loop once, so other tasks get to run.

    Args:
        start: a `datetime`, an ISO 8601 string, or seconds since the epoch.
            Defaults to 2026-01-01 00:00 UTC.
    """

    def __init__(self, start: datetime | str | float = "2026-01-01T00:00:00+00:00") -> None:
        self._lock = threading.Lock()
        self._now = _to_epoch(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` without recording a sleep."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds}")
        with self._lock:
            self._now += seconds

    def set(self, when: datetime | str | float) -> None:
        """Jump to `when` (forward only)."""
        target = _to_epoch(when)
        with self._lock:
            if target < self._now:
                raise ValueError("time only moves forward")
            self._now = target

    def sleep(self, seconds: float) -> None:
        seconds = max(float(seconds), 0.0)
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def isoformat(self) -> str:
        return self.datetime().isoformat()

    def __repr__(self) -> str:
        return f"FakeClock({self.isoformat()!r})"


def _to_epoch(when: datetime | str | float) -> float:
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return float(when)
