"""Small helpers the pattern modules share."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeVar

from runaway_guard._errors import ContractError
from runaway_guard._offload import offload

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["POLL_FIRST", "POLL_MAX", "ceil_div", "ledger_call", "polls_within", "seconds"]

T = TypeVar("T")

POLL_FIRST: Final = 0.005
"""First pause when waiting on the ledger for someone else (a claim, a job lease)."""
POLL_MAX: Final = 0.25
"""Longest pause between two looks at the ledger."""


async def ledger_call(
    guard: Guard, op: Callable[[], T], undo: Callable[[T], object] | None = None
) -> T:
    """A ledger operation from async code, never orphaned: see `runaway_guard._offload`."""
    return await offload(guard.ledger.remote, op, undo)


def seconds(value: object, what: str, *, positive: bool = False) -> float:
    """A finite number of seconds (not negative; above 0 when `positive`), or ContractError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{what} must be a number of seconds, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "above 0" if positive else "0 or more"
        raise ContractError(f"{what} must be a finite number of seconds, {bound}; got {value!r}")
    return number


def ceil_div(total: float, step: float) -> int:
    """``ceil(total / step)`` in decimal arithmetic: 0.7 / 0.1 is 7, not 8."""
    return math.ceil(Decimal(str(total)) / Decimal(str(step)))


def polls_within(wait: float) -> int:
    """The most looks at the ledger a wait of `wait` seconds can take, backing off."""
    doublings = math.ceil(math.log2(POLL_MAX / POLL_FIRST)) + 1
    return ceil_div(wait, POLL_MAX) + doublings + 1
