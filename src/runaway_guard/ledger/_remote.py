"""What the network ledgers (Redis, PostgreSQL) share: URL options, op ids, retries.

A network ledger can lose a reply: the server applied the operation, the connection
dropped before the answer came back. Every operation is therefore safe to send twice.
Holds are idempotent by hold id; operations whose *answer* would change on a second run
(settle, reap, compare-and-set, mark, complete) also carry an op id, and the server keeps
their reply for `MEMO_TTL` seconds so a retry gets the same answer instead of a new one.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping
from typing import Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from runaway_guard._errors import ContractError, LedgerUnavailable
from runaway_guard.ledger import redact_url
from runaway_guard.ledger._common import REAPED_RETENTION

__all__ = [
    "ATTEMPTS",
    "COUNTER_GRACE",
    "MEMO_TTL",
    "STATE_GRACE",
    "OpIds",
    "retrying",
    "split_options",
    "unreachable",
]

T = TypeVar("T")

ATTEMPTS: Final = 3
"""Tries of one operation on a connection error: the first and two retries."""
_PAUSES: Final = (0.05, 0.25)

MEMO_TTL: Final = 600.0
"""Seconds the server remembers the reply of an operation, for a retry of it."""

COUNTER_GRACE: Final = REAPED_RETENTION + 86400.0
"""A calendar window's counter is dropped this long after the window ends (8 days).

Longer than any hold on it can last: a reaped hold waits at most `REAPED_RETENTION`
(7 days) for a late settle, so nothing still needs the counter when it goes.
"""

STATE_GRACE: Final = 86400.0
"""Expired state records, marks, claims and slots are dropped a day after they expire."""


class OpIds:
    """Op ids unique across processes: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


def split_options(
    url: str, ours: Mapping[str, Callable[[str], object]], passed: frozenset[str]
) -> tuple[str, dict[str, object]]:
    """Split a ledger URL into the URL for the driver and our own options.

    `ours` maps each option of runaway-guard to a converter; `passed` names the driver's
    options that may stay in the URL. Anything else is a `ContractError`.
    """
    parts = urlsplit(url)
    options: dict[str, object] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in ours:
            try:
                options[name] = ours[name](value)
            except (TypeError, ValueError) as exc:
                raise ContractError(
                    f"ledger URL option {name}={value!r} in {redact_url(url)!r}: {exc}"
                ) from None
        elif name in passed:
            rest.append((name, value))
        else:
            known = ", ".join(sorted([*ours, *passed]))
            raise ContractError(
                f"unknown ledger URL option {name!r} in {redact_url(url)!r}; known: {known}"
            )
    return parts._replace(query=urlencode(rest)).geturl(), options


def positive(value: str) -> float:
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError("must be a positive, finite number")
    return number


def non_negative(value: str) -> float:
    number = float(value)
    if not 0 <= number < float("inf"):
        raise ValueError("must be a finite number, 0 or more")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def unreachable(kind: str, url: str, exc: BaseException, check: str) -> LedgerUnavailable:
    """The error for a ledger server that did not answer; `url` must be redacted already."""
    detail = (str(exc).splitlines() or [""])[0]
    return LedgerUnavailable(
        f"the {kind} ledger at {url} is unreachable ({type(exc).__name__}: {detail}); "
        f"every guarded call is refused until it answers ({check})"
    )


def retrying(
    attempt: Callable[[], T],
    transient: tuple[type[BaseException], ...],
    fatal: tuple[type[BaseException], ...],
    fail: Callable[[BaseException], BaseException],
    recover: Callable[[], None] = lambda: None,
    other: tuple[type[BaseException], ...] = (),
) -> T:
    """Run `attempt` up to `ATTEMPTS` times while it raises a `transient` error.

    `attempt` must be safe to repeat (its operation carries its ids). `recover` runs
    before each retry (drop broken connections); `fail` turns the last transient error,
    or a `fatal` one (checked first: it may subclass a transient one), or any of `other`,
    into the error to raise.
    """
    for number in range(ATTEMPTS):
        try:
            return attempt()
        except fatal as exc:
            raise fail(exc) from exc
        except transient as exc:
            if number == ATTEMPTS - 1:
                raise fail(exc) from exc
            time.sleep(_PAUSES[number])
            recover()
        except other as exc:
            raise fail(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover
