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
from datetime import UTC, datetime
from typing import Any

from runaway_guard._budget import check_name
from runaway_guard._errors import CircuitOpen, ContractError, KillSwitchEngaged, LedgerError
from runaway_guard._policy import Breaker
from runaway_guard.ledger import Ledger

__all__ = [
    "breaker_key",
    "claim_probe",
    "clear_kill",
    "gate_key",
    "is_gate",
    "kill_error",
    "kill_key",
    "normalise_scope",
    "record_failure",
    "set_kill",
    "successes_key",
    "unclaim_probe",
    "who",
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
#
# Two records per contract. `breaker:<name>` counts consecutive upstream failures; a
# success deletes it. `gate:breaker:<name>` exists while the breaker is open or
# half-open, and is one of the hold's blockers, so an open breaker costs nothing extra
# to check. The caller that finds an open gate past its cooldown turns it half-open by
# compare-and-set and becomes the one probe: it alone places its hold without the gate.


def breaker_key(contract: str) -> str:
    return f"breaker:{contract}"


def successes_key(contract: str) -> str:
    return f"contract:{contract}|successes|total"


def gate_key(contract: str) -> str:
    return f"gate:breaker:{contract}"


def is_gate(key: str) -> bool:
    return key.startswith("gate:breaker:")


def claim_probe(
    ledger: Ledger, contract: str, policy: Breaker, *, now: float
) -> tuple[str, str] | None:
    """Become the half-open probe, or raise `CircuitOpen` saying when to come back.

    Returns ``(gate before, gate now)`` so a probe that is refused before it is sent
    can hand the gate back (`unclaim_probe`); None when the breaker closed meanwhile.
    """
    key = gate_key(contract)
    for _ in range(_CAS_TRIES):
        record = ledger.get_state(key, now=now)
        if record is None:
            return None  # closed meanwhile: an ordinary attempt
        gate = json.loads(record.value)
        if gate["state"] == "open" and now < gate["until"]:
            raise CircuitOpen(
                f"contract {contract!r} circuit breaker is open after {gate['failures']} "
                f"consecutive upstream failures; one probe goes through at "
                f"{_iso(gate['until'])} (fix the upstream, or wait)"
            )
        if gate["state"] == "half_open" and now < gate["probe_until"]:
            raise CircuitOpen(
                f"contract {contract!r} circuit breaker is half-open and another caller is "
                f"probing the upstream; try again after {_iso(gate['probe_until'])}"
            )
        probing = json.dumps(
            {**gate, "state": "half_open", "probe_until": now + policy.probe_timeout}
        )
        if ledger.cas_state(key, expected_version=record.version, value=probing, now=now):
            return record.value, probing
    raise LedgerError(f"breaker of {contract!r}: too much contention on the ledger")


def unclaim_probe(ledger: Ledger, contract: str, claimed: tuple[str, str], *, now: float) -> None:
    """Hand back a probe that was never sent (a budget or a kill switch refused it).

    Without this the gate would say "another caller is probing" for `probe_timeout`.
    Only our own half-open gate is put back; anything newer is left alone.
    """
    before, ours = claimed
    record = ledger.get_state(gate_key(contract), now=now)
    if record is not None and record.value == ours:
        ledger.cas_state(gate_key(contract), expected_version=record.version, value=before, now=now)


def record_failure(
    ledger: Ledger, contract: str, policy: Breaker, *, probing: bool, now: float
) -> tuple[int, float] | None:
    """Count an upstream failure; returns ``(failures, until)`` when it opened the gate.

    The streak restarts when the contract's success count moved since it began.
    """
    key = breaker_key(contract)
    counted = ledger.counters([successes_key(contract)]).get(successes_key(contract))
    successes = counted.settled if counted else 0
    for _ in range(_CAS_TRIES):
        record = ledger.get_state(key, now=now)
        streak = json.loads(record.value) if record else {"failures": 0, "since": successes}
        failures = streak["failures"] + 1 if streak.get("since") == successes else 1
        version = record.version if record else 0
        value = json.dumps({"failures": failures, "since": successes})
        if ledger.cas_state(key, expected_version=version, value=value, now=now):
            break
    else:
        raise LedgerError(f"breaker of {contract!r}: too much contention on the ledger")
    if not probing and failures < policy.failures:
        return None
    until = now + policy.cooldown
    gate = json.dumps({"state": "open", "failures": failures, "until": until, "probe_until": 0.0})
    for _ in range(_CAS_TRIES):
        current = ledger.get_state(gate_key(contract), now=now)
        if current is not None and not probing and json.loads(current.value)["state"] == "open":
            return None  # another caller opened it first
        version = current.version if current else 0
        if ledger.cas_state(gate_key(contract), expected_version=version, value=gate, now=now):
            return failures, until
    raise LedgerError(f"breaker of {contract!r}: too much contention on the ledger")


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
