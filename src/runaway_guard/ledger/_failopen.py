"""Opt-in fail-open: while the shared ledger is down, admit calls up to a local cap.

The default, and the promise of the design, is fail closed: no ledger, no call. Some
fleets prefer to keep serving through a short ledger outage and accept a bounded risk.
``?fail_open=AMOUNT`` on a Redis or PostgreSQL URL wraps the ledger in `FailOpenLedger`:

- while the ledger is unreachable, each process admits calls as long as the money it
  spent or holds *without the ledger* stays within AMOUNT (in the ledger's currency);
  past it, calls are refused with `LedgerUnavailable` as usual;
- such calls skip every shared budget and kill switch: the fleet may overshoot its
  budgets by up to AMOUNT per process, for as long as the outage lasts;
- once the ledger answers again, each call admitted that way is written to it (a hold
  without limits, settled at once, so the spend log and counters show it) and its
  amount leaves the local cap; a process that dies before that loses the record.

Every admission without the ledger is logged as a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation

from runaway_guard._errors import LedgerUnavailable
from runaway_guard.ledger._protocol import (
    Blocked,
    Claim,
    CounterState,
    HoldInfo,
    HoldRequest,
    Ledger,
    Outcome,
    Refusal,
    SettleResult,
    SpendRecord,
    StateRecord,
)

__all__ = ["FailOpenLedger", "parse_fail_open"]

logger = logging.getLogger("runaway_guard")

_NANOS = 10**9


def parse_fail_open(value: str) -> int:
    """``fail_open=5`` or ``fail_open=0.50``: an amount of the ledger currency, in nanos."""
    try:
        amount = Decimal(value.strip().lstrip("$"))
    except InvalidOperation:
        raise ValueError("must be an amount of the ledger's currency, e.g. 5 or 0.50") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("must be a positive amount of the ledger's currency")
    return int(amount * _NANOS)


@dataclasses.dataclass(slots=True)
class _Unrecorded:
    """A call admitted without the ledger and ended: to be written when it is back."""

    request: HoldRequest
    actual: dict[str, int]
    now: float
    outcome: Outcome
    error: str


class FailOpenLedger:
    """Wraps a network ledger; see the module docstring for the trade it makes.

    Args:
        inner: the shared ledger.
        cap: the most money (nano-units) this process may spend or hold without it.
    """

    remote = True

    def __init__(self, inner: Ledger, cap: int) -> None:
        self.inner = inner
        self.url = inner.url
        self.cap = cap
        self._lock = threading.Lock()
        self._local: dict[str, HoldRequest] = {}
        self._unrecorded: list[_Unrecorded] = []
        self.unaccounted = 0
        """Money held or spent without the ledger and not yet written to it."""

    # -- holds: where fail-open applies --------------------------------------------------------
    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        try:
            outcome = self.inner.reserve(request)
        except LedgerUnavailable as exc:
            with self._lock:
                if self.unaccounted + request.estimate > self.cap:
                    raise LedgerUnavailable(
                        f"{exc}; the fail-open allowance of this process is used up "
                        f"({self.unaccounted} + {request.estimate} > {self.cap} nano-units "
                        "spent or held without the ledger)"
                    ) from exc
                self.unaccounted += request.estimate
                self._local[request.hold_id] = request
                used = self.unaccounted
            logger.warning(
                "runaway-guard FAIL-OPEN: the ledger at %s is unreachable; admitting %r "
                "without it (%d of %d nano-units of this process's allowance used; shared "
                "budgets and kill switches are not checked)",
                self.url,
                request.contract,
                used,
                self.cap,
            )
            return None
        self._record()  # it answers again: write what was done without it
        return outcome

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
        with self._lock:
            request = self._local.pop(hold_id, None)
            if request is not None:
                self.unaccounted += actual.get("money", 0) - request.estimate
                self._unrecorded.append(_Unrecorded(request, dict(actual), now, outcome, error))
        if request is None:
            return self.inner.settle(
                hold_id,
                actual,
                now=now,
                outcome=outcome,
                error=error,
                report=report,
                clear=clear,
            )
        return SettleResult("settled")

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        return self.settle(
            hold_id,
            {},
            now=now,
            outcome=Outcome.RELEASED,
            error=error,
            report=report,
            clear=clear,
        )

    def _record(self) -> None:
        """Write the calls made without the ledger to it, oldest first, while it answers.

        Called after an operation of the ledger succeeded, so an outage costs no extra
        waits; a failure leaves the rest for the next time.
        """
        if not self._unrecorded:
            return
        with self._lock:
            while self._unrecorded:
                item = self._unrecorded[0]
                lines = tuple(dataclasses.replace(ln, limit=None) for ln in item.request.lines)
                try:
                    # Ids make both steps safe to repeat after a failure half-way.
                    self.inner.reserve(dataclasses.replace(item.request, lines=lines, blockers=()))
                    self.inner.settle(
                        item.request.hold_id,
                        item.actual,
                        now=item.now,
                        outcome=item.outcome,
                        error=item.error,
                        report=False,
                    )
                except LedgerUnavailable:
                    return
                self._unrecorded.pop(0)
                self.unaccounted -= item.actual.get("money", 0)

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        try:
            reaped = self.inner.reap(now=now, limit=limit)
        except LedgerUnavailable:
            return []  # nothing can be reaped now; the next reap will
        self._record()
        return reaped

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        if hold_id in self._local:
            return True
        return self.inner.renew(hold_id, lease_until=lease_until)

    def release_slot(self, name: str, *, holder: str) -> None:
        with contextlib.suppress(LedgerUnavailable):  # the slot's lease ends on its own
            self.inner.release_slot(name, holder=holder)

    # -- everything else: as the shared ledger says (fail closed) -----------------------------
    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        return self.inner.counters(keys)

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        return self.inner.list_counters(prefix, now=now)

    def holds(self) -> list[HoldInfo]:
        return self.inner.holds()

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        return self.inner.spend(since=since, until=until, contract=contract)

    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        return self.inner.get_state(key, now=now)

    def cas_state(
        self,
        key: str,
        *,
        expected_version: int,
        value: str | None,
        now: float,
        expires: float | None = None,
    ) -> bool:
        return self.inner.cas_state(
            key, expected_version=expected_version, value=value, now=now, expires=expires
        )

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]:
        return self.inner.list_states(prefix, now=now)

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        return self.inner.mark_once(key, now=now, expires=expires)

    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        return self.inner.acquire_slot(
            name, limit=limit, holder=holder, now=now, lease_until=lease_until
        )

    def slots_in_use(self, name: str, *, now: float) -> int:
        return self.inner.slots_in_use(name, now=now)

    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        return self.inner.claim(key, owner=owner, now=now, lease_until=lease_until)

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        return self.inner.complete(key, owner=owner, result=result, now=now, expires=expires)

    def abandon(self, key: str, *, owner: str) -> None:
        self.inner.abandon(key, owner=owner)

    def currency(self, default: str) -> str:
        return self.inner.currency(default)

    def close(self) -> None:
        self._record()
        if self._unrecorded:
            logger.warning(
                "runaway-guard FAIL-OPEN: closing with %d call(s) made without the ledger at "
                "%s and not written to it; they are missing from its spend log",
                len(self._unrecorded),
                self.url,
            )
        self.inner.close()

    def __repr__(self) -> str:
        return f"FailOpenLedger({self.inner!r}, cap={self.cap})"
