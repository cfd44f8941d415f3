"""The ledger protocol: the only component that stores anything.

Every method is one atomic operation. Backends implement these primitives and nothing
else; the guard builds its behaviour (budgets, breakers, kill switches, idempotency,
concurrency) on top of them, so every backend behaves the same by construction and one
conformance suite (`tests/ledger/`) proves it.

Amounts are integers in the unit of their counter: nano-units of the ledger currency for
money, 1 per attempt for calls, token counts for tokens. Times are epoch seconds.
Operations are idempotent by id: placing a hold twice with the same `hold_id`, or settling
it twice, changes nothing the second time, so a backend may retry an operation whose
reply was lost without double counting.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Blocked",
    "Claim",
    "ClaimStatus",
    "CounterState",
    "HoldInfo",
    "HoldLine",
    "HoldRequest",
    "Ledger",
    "Outcome",
    "Refusal",
    "SettleResult",
    "SpendRecord",
    "StateRecord",
]


class Outcome(enum.StrEnum):
    """How a hold ended, as written to the spend log."""

    SETTLED = "settled"
    """The call returned; charged its actual cost."""
    FAILED = "failed"
    """The call failed after it may have been billed; charged its estimate."""
    RELEASED = "released"
    """The provider surely did not bill (it rejected the request); charged nothing."""
    REAPED = "reaped"
    """The holder vanished and the lease expired; charged its estimate."""
    CORRECTED = "corrected"
    """A late settle or release of a reaped hold; the row holds the difference."""


@dataclass(frozen=True, slots=True)
class HoldLine:
    """One counter a hold touches.

    Attributes:
        key: the counter key, ``scope|unit|window``.
        amount: what the hold asks of this counter.
        limit: the counter's limit, or None for a counter that only tracks.
        unit: ``"money"``, ``"calls"`` or ``"tokens"``.
        expires: when the counter's window ends (epoch seconds), if it does; backends
            may drop the counter some time after.
    """

    key: str
    amount: int
    limit: int | None
    unit: str
    expires: float | None = None


@dataclass(slots=True)
class HoldRequest:
    """Everything `Ledger.reserve` needs to place one hold atomically.

    (Records on the hot path are plain slotted dataclasses, not frozen ones: a frozen
    dataclass costs several times more to build, and these are built on every call.)

    `blockers` are state keys (kill switches) that refuse the hold while they exist.
    """

    hold_id: str
    lines: tuple[HoldLine, ...]
    now: float
    lease_until: float
    contract: str = ""
    run: str = ""
    call_id: str = ""
    attempt: int = 1
    estimate: int = 0
    blockers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why `reserve` placed nothing: a line that did not fit, or a blocker that exists."""

    line: HoldLine
    settled: int
    held: int


@dataclass(frozen=True, slots=True)
class Blocked:
    """`reserve` placed nothing because the state record `key` exists."""

    key: str
    value: str


@dataclass(slots=True)
class CounterState:
    """A counter: settled and held amounts, and the limit the last hold on it carried."""

    key: str
    settled: int
    held: int
    limit: int | None = None


@dataclass(slots=True)
class SettleResult:
    """What a settle, release or reap changed.

    Attributes:
        status: ``"settled"`` (applied), ``"corrected"`` (the hold had been reaped; the
            difference was applied), or ``"unknown"`` (no such hold, or already ended:
            nothing changed).
        counters: each touched counter after the change, with its line.
    """

    status: str
    counters: tuple[tuple[HoldLine, CounterState], ...] = ()
    cleared: tuple[str, ...] = ()
    """State keys from `clear` that existed and were deleted."""


@dataclass(slots=True)
class HoldInfo:
    """A hold as stored: in flight (``"held"``) or reaped and awaiting a late settle."""

    hold_id: str
    lines: tuple[HoldLine, ...]
    created: float
    lease_until: float
    status: str
    contract: str
    run: str
    call_id: str
    attempt: int
    estimate: int


@dataclass(slots=True)
class SpendRecord:
    """One row of the append-only spend log: one attempt, or one correction."""

    ts: float
    hold_id: str
    call_id: str
    contract: str
    run: str
    attempt: int
    estimate: int
    actual: int
    tokens: int
    outcome: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class StateRecord:
    """A small versioned record (kill switch, breaker, job state) for compare-and-set."""

    key: str
    version: int
    value: str
    expires: float | None = None


class ClaimStatus(enum.StrEnum):
    CLAIMED = "claimed"
    """The caller owns the key now and must `complete` or `abandon` it."""
    IN_FLIGHT = "in_flight"
    """Another owner holds the key and its lease has not expired."""
    DONE = "done"
    """The key completed; `result` holds the stored result."""


@dataclass(frozen=True, slots=True)
class Claim:
    status: ClaimStatus
    result: bytes | None = None
    owner: str = ""


@runtime_checkable
class Ledger(Protocol):
    """The storage every guard shares. See the module docstring for the contract.

    Attributes:
        url: the URL the ledger was built from, with any password removed.
        remote: True when operations cross a network; async callers then run them in a
            worker thread instead of blocking the event loop.
    """

    url: str
    remote: bool

    # -- holds and counters ------------------------------------------------------------
    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        """Place holds on every line, all or none. None means placed.

        For every line with a limit: refuse unless ``settled + held + amount <= limit``.
        A blocker that exists refuses before any line is looked at. Placing a hold
        whose id already exists changes nothing and returns None. The lines of one
        request have distinct keys (the guard merges budgets that share a counter).
        """
        ...

    def settle(
        self,
        hold_id: str,
        actual: Mapping[str, int],
        *,
        now: float,
        outcome: Outcome = Outcome.SETTLED,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        """End a hold at its actual amounts per unit (missing units charge 0).

        Moves each line's amount out of `held` and the actual into `settled`, deletes
        the hold and appends one spend-log row, in one transaction. A hold that was
        reaped is corrected by the difference instead; an unknown hold changes nothing.
        With `report`, the result carries every touched counter after the change
        (alerts need them); without it a backend may skip reading them back. The state
        records named in `clear` are deleted in the same transaction (a success closes
        the contract's circuit breaker), whether or not the hold was known.
        """
        ...

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        """End a hold that surely was not billed: settle with zero actuals, outcome released."""
        ...

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        """Charge holds whose lease ended before `now` at their full estimate.

        The holder may have died after the provider billed the call, so the estimate
        is charged. Reaped holds are kept (status ``"reaped"``) so a late settle can
        correct them. Returns the holds reaped by this call.
        """
        ...

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        """Extend the lease of a hold in flight. False when the hold is no longer held."""
        ...

    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        """Current state of the given counters; missing ones are absent from the result."""
        ...

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        """Every counter whose key starts with `prefix` (expired windows skipped when `now`)."""
        ...

    def holds(self) -> list[HoldInfo]:
        """Holds in flight or reaped-and-uncorrected, oldest first."""
        ...

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        """Spend-log rows in time order (off the hot path: reports and audits)."""
        ...

    # -- small state records: kill switches, breakers, job state ------------------------
    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        """The record at `key`, or None when absent or expired."""
        ...

    def cas_state(
        self,
        key: str,
        *,
        expected_version: int,
        value: str | None,
        now: float,
        expires: float | None = None,
    ) -> bool:
        """Write `value` (None deletes) only if the current version is `expected_version`.

        An absent or expired record has version 0. A successful write bumps the version.
        """
        ...

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]: ...

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        """True the first time `key` is marked (until it expires); False every later time."""
        ...

    # -- concurrency slots ---------------------------------------------------------------
    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        """Take one of `limit` slots of `name` for `holder`; expired slots are reclaimed."""
        ...

    def release_slot(self, name: str, *, holder: str) -> None: ...

    def slots_in_use(self, name: str, *, now: float) -> int: ...

    # -- idempotency records -------------------------------------------------------------
    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        """Claim `key` for `owner`, or report who has it and any stored result.

        A claim whose lease expired (its owner died) can be taken over.
        """
        ...

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        """Store the result of a claimed key until `expires`. False if `owner` lost it."""
        ...

    def abandon(self, key: str, *, owner: str) -> None:
        """Drop a claim after a failure so the next caller may run."""
        ...

    # -- lifecycle -----------------------------------------------------------------------
    def currency(self, default: str) -> str:
        """The ledger's currency, recorded as `default` the first time it is asked."""
        ...

    def close(self) -> None: ...
