"""Test doubles for the pattern tests: a provider that counts, and errors shaped like SDKs'."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import runaway_guard as rg


class ProviderError(Exception):
    """An error shaped like an SDK's: a status code, and headers on a response."""

    def __init__(self, status: int, *, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.headers = {"retry-after": retry_after} if retry_after is not None else {}


class Provider:
    """A paid endpoint: counts the requests that reach it, thread-safely.

    `fail` decides per request (numbered from 1) what to raise instead of answering;
    `delay` is a real pause inside each request, for tests where overlap is the point.
    """

    def __init__(
        self,
        fail: Callable[[int, object], BaseException | None] | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self.requests: list[object] = []
        self._fail = fail
        self._delay = delay

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def __call__(self, payload: object = None) -> object:
        with self._lock:
            self.requests.append(payload)
            number = len(self.requests)
        if self._delay:
            time.sleep(self._delay)
        error = self._fail(number, payload) if self._fail is not None else None
        if error is not None:
            raise error
        return f"result:{payload}"


def charged(guard: rg.Guard, *, contract: str | None = None) -> rg.Money:
    """Everything the spend log charged (optionally for one contract), from the ledger."""
    nanos = sum(row.actual for row in guard.ledger.spend(contract=contract))
    return rg.Money(nanos, guard.currency)


def paid_calls(guard: rg.Guard) -> int:
    """Attempts the spend log charged more than $0 for."""
    return sum(1 for row in guard.ledger.spend() if row.actual > 0)
