"""Kill switches and circuit breakers: small state records in the ledger.

Both live in the ledger so every process sharing it sees them at its next attempt.
Kill switches are checked inside the hold itself (as blockers of `Ledger.reserve`), so
they cost no extra round trip. Breaker transitions use compare-and-set on one record,
retried a bounded number of times when another process wins the race.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runaway_guard._budget import check_name
from runaway_guard._errors import CircuitOpen, ContractError, KillSwitchEngaged, LedgerError
from runaway_guard._policy import Breaker
from runaway_guard.ledger import Ledger, StateRecord

__all__ = [
    "BreakerView",
    "breaker_admit",
    "breaker_key",
    "breaker_record",
    "kill_error",
    "kill_key",
    "normalise_scope",
    "set_kill",
]

_CAS_TRIES = 16


def who() -> str:
    """``user@host pid N``: who set a kill switch, for the error that quotes it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def normalise_scope(scope: str) -> str:
    """``"global"``, ``"contract:NAME"`` or ``"run:PATH"``; anything else is an error."""
    check_name(scope, "kill switch scope")
    if scope == "global" or scope.startswith(("contract:", "run:")):
        if scope.endswith(":"):
            raise ContractError(f"kill switch scope {scope!r} names nothing after the colon")
        return scope
    raise ContractError(
        f"kill switch scope {scope!r}: write 'global', 'contract:NAME' or 'run:PATH'"
    )


def kill_key(scope: str) -> str:
    return f"kill:{scope}"


def set_kill(ledger: Ledger, scope: str, *, reason: str, by: str, now: float) -> bool:
    """Engage the kill switch on `scope`. False when it was engaged already."""
    value = json.dumps({"reason": reason, "by": by, "at": now})
    for _ in range(_CAS_TRIES):
        current = ledger.get_state(kill_key(scope), now=now)
        if current is not None:
            return False
        if ledger.cas_state(kill_key(scope), expected_version=0, value=value, now=now):
            return True
    raise LedgerError(f"could not set the kill switch on {scope!r}: too much contention")


def clear_kill(ledger: Ledger, scope: str, *, now: float) -> bool:
    """Revive `scope`. False when no kill switch was engaged."""
    for _ in range(_CAS_TRIES):
        current = ledger.get_state(kill_key(scope), now=now)
        if current is None:
            return False
        if ledger.cas_state(kill_key(scope), expected_version=current.version, value=None, now=now):
            return True
    raise LedgerError(f"could not revive {scope!r}: too much contention")


def kill_error(key: str, value: str) -> KillSwitchEngaged:
    """The error for a hold refused by the kill switch record `key`."""
    scope = key.removeprefix("kill:")
    try:
        data: dict[str, Any] = json.loads(value)
    except ValueError:
        data = {"reason": value}
    at = data.get("at")
    when = (
        datetime.fromtimestamp(float(at), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(at, int | float)
        else "an unknown time"
    )
    return KillSwitchEngaged(
        scope=scope,
        reason=str(data.get("reason", "")),
        by=str(data.get("by", "unknown")),
        at=when,
    )


# -- circuit breaker -------------------------------------------------------------------------


def breaker_key(contract: str) -> str:
    return f"breaker:{contract}"


@dataclass(frozen=True, slots=True)
class BreakerView:
    """What `breaker_admit` saw: whether this attempt probes, and the record's version."""

    probe: bool
    dirty: bool
    """True when the record holds failures or a half-open state a success should clear."""


def breaker_admit(ledger: Ledger, contract: str, policy: Breaker, *, now: float) -> BreakerView:
    """Let an attempt through, make it the half-open probe, or raise `CircuitOpen`."""
    key = breaker_key(contract)
    for _ in range(_CAS_TRIES):
        record = ledger.get_state(key, now=now)
        if record is None:
            return BreakerView(probe=False, dirty=False)
        state = _load(record)
        if state["state"] == "closed":
            return BreakerView(probe=False, dirty=state["failures"] > 0)
        if state["state"] == "open" and now < state["until"]:
            raise CircuitOpen(
                f"contract {contract!r} circuit breaker is open after {state['failures']} "
                f"consecutive upstream failures; it lets one probe through at "
                f"{_iso(state['until'])} (fix the upstream, or wait)"
            )
        if state["state"] == "half_open" and now < state["probe_until"]:
            raise CircuitOpen(
                f"contract {contract!r} circuit breaker is half-open and another caller is "
                f"probing the upstream; try again after {_iso(state['probe_until'])}"
            )
        probing = {**state, "state": "half_open", "probe_until": now + policy.probe_timeout}
        if ledger.cas_state(
            key, expected_version=record.version, value=json.dumps(probing), now=now
        ):
            return BreakerView(probe=True, dirty=True)
    raise LedgerError(f"breaker of {contract!r}: too much contention on the ledger")


def breaker_record(
    ledger: Ledger, contract: str, policy: Breaker, *, upstream_failed: bool, now: float
) -> tuple[str, int, float] | None:
    """Record an attempt's outcome. Returns ``("opened", failures, until)`` or
    ``("closed", 0, 0)`` when this call changed the breaker's state, else None."""
    key = breaker_key(contract)
    for _ in range(_CAS_TRIES):
        record = ledger.get_state(key, now=now)
        state = _load(record) if record is not None else None
        version = record.version if record is not None else 0
        if not upstream_failed:
            if state is None:
                return None
            if ledger.cas_state(key, expected_version=version, value=None, now=now):
                return ("closed", 0, 0.0) if state["state"] != "closed" else None
            continue
        failures = (state["failures"] if state else 0) + 1
        reopen = state is not None and state["state"] == "half_open"
        if reopen or failures >= policy.failures:
            until = now + policy.cooldown
            new = {"state": "open", "failures": failures, "until": until, "probe_until": 0.0}
            if ledger.cas_state(key, expected_version=version, value=json.dumps(new), now=now):
                return ("opened", failures, until)
            continue
        if state is not None and state["state"] == "open":
            return None  # a straggler from before the breaker opened
        new = {"state": "closed", "failures": failures, "until": 0.0, "probe_until": 0.0}
        if ledger.cas_state(key, expected_version=version, value=json.dumps(new), now=now):
            return None
    raise LedgerError(f"breaker of {contract!r}: too much contention on the ledger")


def _load(record: StateRecord) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.value)
    data.setdefault("failures", 0)
    data.setdefault("until", 0.0)
    data.setdefault("probe_until", 0.0)
    data.setdefault("state", "closed")
    return data


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
