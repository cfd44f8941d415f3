"""Arithmetic every backend shares, so each backend only moves integers around."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence

from runaway_guard.ledger._protocol import (
    HoldInfo,
    HoldLine,
    HoldRequest,
    Outcome,
    Refusal,
    SpendRecord,
)

__all__ = [
    "REAPED_RETENTION",
    "counter_deltas",
    "first_refusal",
    "hold_from_request",
    "lines_from_json",
    "lines_to_json",
    "spend_row",
]

REAPED_RETENTION = 7 * 86400.0
"""How long a reaped hold waits for a late settle before it is forgotten (seconds)."""


def first_refusal(
    lines: Sequence[HoldLine], states: Mapping[str, tuple[int, int]]
) -> Refusal | None:
    """The first line that does not fit: ``settled + held + amount > limit``.

    Lines sharing a key are summed first, so a request that touches one counter twice
    cannot slip past it.
    """
    asked: dict[str, int] = {}
    for line in lines:
        asked[line.key] = asked.get(line.key, 0) + line.amount
    for line in lines:
        if line.limit is None:
            continue
        settled, held = states.get(line.key, (0, 0))
        if settled + held + asked[line.key] > line.limit:
            return Refusal(line, settled, held)
    return None


def counter_deltas(
    lines: Iterable[HoldLine], actual: Mapping[str, int], *, reaped: bool
) -> list[tuple[str, int, int]]:
    """(key, settled delta, held delta) per line for a settle.

    A live hold moves its amount out of `held` and the actual into `settled`. A reaped
    hold was already charged its amount as settled, so only the difference moves.
    """
    deltas = []
    for line in lines:
        real = actual.get(line.unit, 0)
        if reaped:
            deltas.append((line.key, real - line.amount, 0))
        else:
            deltas.append((line.key, real, -line.amount))
    return deltas


def hold_from_request(request: HoldRequest) -> HoldInfo:
    return HoldInfo(
        hold_id=request.hold_id,
        lines=request.lines,
        created=request.now,
        lease_until=request.lease_until,
        status="held",
        contract=request.contract,
        run=request.run,
        call_id=request.call_id,
        attempt=request.attempt,
        estimate=request.estimate,
    )


def spend_row(
    hold: HoldInfo | HoldRequest,
    actual: Mapping[str, int],
    *,
    now: float,
    outcome: Outcome,
    error: str,
    reaped: bool,
) -> SpendRecord:
    """The spend-log row for ending `hold` (a correction row when it had been reaped)."""
    money = actual.get("money", 0)
    tokens = actual.get("tokens", 0)
    if reaped:
        estimated_tokens = sum(line.amount for line in _first_per_unit(hold.lines, "tokens"))
        money, tokens, outcome = money - hold.estimate, tokens - estimated_tokens, Outcome.CORRECTED
    return SpendRecord(
        ts=now,
        hold_id=hold.hold_id,
        call_id=hold.call_id,
        contract=hold.contract,
        run=hold.run,
        attempt=hold.attempt,
        estimate=hold.estimate,
        actual=money,
        tokens=tokens,
        outcome=str(outcome),
        error=error,
    )


def reap_actual(hold: HoldInfo) -> dict[str, int]:
    """The per-unit actuals a reaped hold is charged: its full estimate."""
    actual: dict[str, int] = {"money": hold.estimate}
    for unit in ("calls", "tokens"):
        line = next(iter(_first_per_unit(hold.lines, unit)), None)
        if line is not None:
            actual[unit] = line.amount
    return actual


def _first_per_unit(lines: Iterable[HoldLine], unit: str) -> list[HoldLine]:
    for line in lines:
        if line.unit == unit:
            return [line]
    return []


@functools.lru_cache(maxsize=256)
def lines_to_json(lines: tuple[HoldLine, ...]) -> str:
    return json.dumps([[ln.key, ln.amount, ln.limit, ln.unit, ln.expires] for ln in lines])


@functools.lru_cache(maxsize=256)
def lines_from_json(text: str) -> tuple[HoldLine, ...]:
    return tuple(HoldLine(k, a, lim, u, e) for k, a, lim, u, e in json.loads(text))
