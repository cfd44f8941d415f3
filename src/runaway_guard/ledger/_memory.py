"""An in-process ledger: for tests and single-process scripts. Forgets everything on exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from runaway_guard.ledger._common import (
    REAPED_RETENTION,
    counter_deltas,
    hold_from_request,
    reap_actual,
    spend_row,
)
from runaway_guard.ledger._protocol import (
    Blocked,
    Claim,
    ClaimStatus,
    CounterState,
    HoldInfo,
    HoldRequest,
    Outcome,
    Refusal,
    SettleResult,
    SpendRecord,
    StateRecord,
)

__all__ = ["MemoryLedger"]

_ZERO = (0, 0)


class MemoryLedger:
    """Every ledger operation under one lock, on plain dictionaries.

    Shared by threads of one process; not by processes. Use SQLite for that.
    """

    remote = False

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.Lock()
        self._counters: dict[str, list[int]] = {}
        self._limits: dict[str, int | None] = {}
        self._expires: dict[str, float] = {}
        self._holds: dict[str, HoldRequest] = {}
        self._reaped: dict[str, HoldInfo] = {}
        self._spend: list[SpendRecord] = []
        self._states: dict[str, StateRecord] = {}
        self._marks: dict[str, float | None] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._claims: dict[str, tuple[str, str, bytes | None, float]] = {}
        self._currency: str | None = None

    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        with self._lock:
            states = self._states
            for key in request.blockers:
                if key in states:
                    state = self._live_state(key, request.now)
                    if state is not None:
                        return Blocked(key, state.value)
            if request.hold_id in self._holds or request.hold_id in self._reaped:
                return None
            counters = self._counters
            for line in request.lines:
                if line.limit is not None:
                    settled, held = counters.get(line.key, _ZERO)
                    if settled + held + line.amount > line.limit:
                        return Refusal(line, settled, held)
            for line in request.lines:
                counter = counters.get(line.key)
                if counter is None:
                    counters[line.key] = [0, line.amount]
                    if line.expires is not None:
                        self._expires[line.key] = line.expires
                else:
                    counter[1] += line.amount
                self._limits[line.key] = line.limit
            # The request itself is the hold record; HoldInfo is built only for listings.
            self._holds[request.hold_id] = request
            return None

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
            return self._cleared(self._end(hold_id, actual, now, outcome, error, report), clear)

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        with self._lock:
            result = self._end(hold_id, {}, now, Outcome.RELEASED, error, report)
            return self._cleared(result, clear)

    def _cleared(self, result: SettleResult, clear: Sequence[str]) -> SettleResult:
        states = self._states
        if not clear or not states:
            return result
        cleared = tuple(key for key in clear if states.pop(key, None) is not None)
        return replace(result, cleared=cleared) if cleared else result

    def _end(
        self,
        hold_id: str,
        actual: Mapping[str, int],
        now: float,
        outcome: Outcome,
        error: str,
        report: bool,
    ) -> SettleResult:
        hold: HoldInfo | HoldRequest | None = self._holds.pop(hold_id, None)
        if hold is not None:
            for line in hold.lines:
                counter = self._counters[line.key]
                counter[0] += actual.get(line.unit, 0)
                counter[1] -= line.amount
            status = "settled"
        else:
            hold = self._reaped.pop(hold_id, None)
            if hold is None:
                return SettleResult("unknown")
            for key, settled, held in counter_deltas(hold.lines, actual, reaped=True):
                counter = self._counters.setdefault(key, [0, 0])
                counter[0] += settled
                counter[1] += held
            status = "corrected"
        self._spend.append(
            spend_row(
                hold, actual, now=now, outcome=outcome, error=error, reaped=status != "settled"
            )
        )
        if not report:
            return SettleResult(status)
        return SettleResult(status, tuple((line, self._state_of(line.key)) for line in hold.lines))

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        with self._lock:
            for hold_id, old in list(self._reaped.items()):
                if old.lease_until + REAPED_RETENTION < now:
                    del self._reaped[hold_id]
            expired = [r for r in self._holds.values() if r.lease_until < now]
            due = sorted(expired, key=lambda r: r.lease_until)[:limit]
            reaped: list[HoldInfo] = []
            for request in due:
                hold = hold_from_request(request)
                actual = reap_actual(hold)
                for key, settled, held in counter_deltas(hold.lines, actual, reaped=False):
                    counter = self._counters[key]
                    counter[0] += settled
                    counter[1] += held
                self._spend.append(
                    spend_row(hold, actual, now=now, outcome=Outcome.REAPED, error="", reaped=False)
                )
                del self._holds[request.hold_id]
                self._reaped[request.hold_id] = replace(hold, status="reaped")
                reaped.append(hold)
            return reaped

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        with self._lock:
            request = self._holds.get(hold_id)
            if request is None:
                return False
            self._holds[hold_id] = replace(request, lease_until=lease_until)
            return True

    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        with self._lock:
            return {key: self._state_of(key) for key in keys if key in self._counters}

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        with self._lock:
            return [
                self._state_of(key)
                for key in sorted(self._counters)
                if key.startswith(prefix)
                and (now is None or self._expires.get(key, float("inf")) > now)
            ]

    def holds(self) -> list[HoldInfo]:
        with self._lock:
            found = [hold_from_request(r) for r in self._holds.values()]
            found += self._reaped.values()
            return sorted(found, key=lambda h: (h.created, h.hold_id))

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        with self._lock:
            rows = list(self._spend)
        for row in sorted(rows, key=lambda r: r.ts):
            if since is not None and row.ts < since:
                continue
            if until is not None and row.ts >= until:
                continue
            if contract is not None and row.contract != contract:
                continue
            yield row

    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        with self._lock:
            return self._live_state(key, now)

    def cas_state(
        self,
        key: str,
        *,
        expected_version: int,
        value: str | None,
        now: float,
        expires: float | None = None,
    ) -> bool:
        with self._lock:
            current = self._live_state(key, now)
            version = current.version if current is not None else 0
            if version != expected_version:
                return False
            if value is None:
                self._states.pop(key, None)
            else:
                self._states[key] = StateRecord(key, version + 1, value, expires)
            return True

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]:
        with self._lock:
            return [
                state
                for key in sorted(self._states)
                if key.startswith(prefix) and (state := self._live_state(key, now)) is not None
            ]

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        with self._lock:
            if key in self._marks:
                until = self._marks[key]
                if until is None or until > now:
                    return False
            self._marks[key] = expires
            return True

    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        with self._lock:
            slots = self._slots.setdefault(name, {})
            for other, until in list(slots.items()):
                if until <= now:
                    del slots[other]
            if holder not in slots and len(slots) >= limit:
                return False
            slots[holder] = lease_until
            return True

    def release_slot(self, name: str, *, holder: str) -> None:
        with self._lock:
            self._slots.get(name, {}).pop(holder, None)

    def slots_in_use(self, name: str, *, now: float) -> int:
        with self._lock:
            return sum(1 for until in self._slots.get(name, {}).values() if until > now)

    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        with self._lock:
            record = self._claims.get(key)
            if record is not None:
                holder, status, result, until = record
                if status == "done" and until > now:
                    return Claim(ClaimStatus.DONE, result, holder)
                if status == "pending" and until > now and holder != owner:
                    return Claim(ClaimStatus.IN_FLIGHT, None, holder)
            self._claims[key] = (owner, "pending", None, lease_until)
            return Claim(ClaimStatus.CLAIMED, None, owner)

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        with self._lock:
            record = self._claims.get(key)
            if record is None or record[0] != owner or record[1] != "pending":
                return False
            self._claims[key] = (owner, "done", result, expires)
            return True

    def abandon(self, key: str, *, owner: str) -> None:
        with self._lock:
            record = self._claims.get(key)
            if record is not None and record[0] == owner and record[1] == "pending":
                del self._claims[key]

    def currency(self, default: str) -> str:
        with self._lock:
            if self._currency is None:
                self._currency = default
            return self._currency

    def close(self) -> None:
        """Nothing to close; the data lives as long as the object."""

    def _state_of(self, key: str) -> CounterState:
        settled, held = self._counters.get(key, (0, 0))
        return CounterState(key, settled, held, self._limits.get(key))

    def _live_state(self, key: str, now: float) -> StateRecord | None:
        state = self._states.get(key)
        if state is None or (state.expires is not None and state.expires <= now):
            return None
        return state

    def __repr__(self) -> str:
        return "MemoryLedger()"
