"""What an alert says: its kind, how urgent it is, a title, and the numbers behind it."""

from __future__ import annotations

import enum
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Alert", "AlertKind", "Severity", "describe_counter"]


class Severity(enum.IntEnum):
    """How urgent an alert is. The values are the `logging` levels of the same name."""

    INFO = 20
    WARNING = 30
    CRITICAL = 50

    @classmethod
    def parse(cls, value: Severity | str) -> Severity:
        """``"info"``, ``"warning"`` or ``"critical"`` (any case), or a `Severity`."""
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {value!r}; choose 'info', 'warning' or 'critical'"
            ) from None

    def __str__(self) -> str:
        return self.name.lower()


class AlertKind(enum.StrEnum):
    """Why an alert was raised."""

    THRESHOLD = "threshold"
    """A budget's settled spend reached one of its thresholds in the current window."""
    EXHAUSTED = "exhausted"
    """A call was refused because a budget is full: calls are being refused now."""
    KILL_SWITCH = "kill_switch"
    """A kill switch was engaged (by an operator or an anomaly trip)."""
    REVIVED = "revived"
    """A kill switch was cleared."""
    BREAKER_OPENED = "breaker_opened"
    """A contract's circuit breaker opened after repeated upstream failures."""
    COST_ABOVE_ESTIMATE = "cost_above_estimate"
    """A call cost more than its worst-case estimate: the price is wrong."""
    HOLD_REAPED = "hold_reaped"
    """A holder died; its hold was charged at the estimate."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """A call gave up after its retry bound ran out."""


@dataclass(frozen=True)
class Alert:
    """One alert, as every notifier receives it.

    Attributes:
        kind: why it was raised.
        severity: how urgent it is; notifiers skip alerts below their `min_severity`.
        title: one line that says what happened and the key number.
        detail: the numbers behind it and what to do, a line or two.
        at: when it was raised (epoch seconds, the guard's clock).
        key: a stable identifier: the same crossing in another process has the same key,
            so a receiver can deduplicate a delivery that was retried.
        fields: the facts as strings (``budget``, ``contract``, ``spent``, ``limit`` ...).
    """

    kind: AlertKind
    severity: Severity
    title: str
    detail: str
    at: float
    key: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def when(self) -> str:
        """`at` as ``2026-11-22 23:04:05 UTC``."""
        return datetime.fromtimestamp(self.at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def text(self) -> str:
        """The alert as plain text, for chat messages and logs."""
        lines = [f"[runaway-guard {self.severity.name}] {self.title}"]
        if self.detail:
            lines.append(self.detail)
        where = [f"at {self.when()}", f"host {self.fields.get('host', '?')}"]
        if self.fields.get("environment"):
            where.append(f"environment {self.fields['environment']}")
        lines.append(", ".join(where))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON object (the webhook notifier's body)."""
        return {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "title": self.title,
            "detail": self.detail,
            "text": self.text(),
            "at": self.when(),
            "timestamp": self.at,
            "key": self.key,
            "fields": dict(self.fields),
        }


def describe_counter(key: str) -> str:
    """A counter key as people read it: ``contract 'record-enrich' day budget``."""
    scope, _, rest = key.partition("|")
    unit, _, window = rest.partition("|")
    period = window.split(":", 1)[0]
    kind, _, name = scope.partition(":")
    owner = f"{kind} {name!r}" if name else kind
    span = {"run": "per-run", "total": "lifetime"}.get(period, period)
    if unit == "money":
        return f"{owner} {span} budget"
    return f"{owner} {unit}-{'per-' if period not in ('run', 'total') else ''}{span} budget"


def host_name() -> str:
    """This host's name, for alerts from a fleet."""
    return socket.gethostname()
