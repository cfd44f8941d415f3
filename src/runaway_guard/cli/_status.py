"""`runaway-guard status`: every budget in its current window, holds, kill switches, breakers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from runaway_guard._budget import Period, Unit, render_units, window_for
from runaway_guard._guard import BudgetStatus, KillSwitch
from runaway_guard.alerts import describe_counter
from runaway_guard.cli._app import app
from runaway_guard.cli._common import (
    Session,
    bar,
    decimal_text,
    emit_json,
    operator_options,
    session,
)
from runaway_guard.ledger import HoldInfo, redact_url


@dataclass(frozen=True)
class Snapshot:
    """What `status` shows, read once from the ledger."""

    now: float
    budgets: list[BudgetStatus]
    holds: list[HoldInfo]
    kills: list[KillSwitch]
    breakers: list[dict[str, Any]]


_PERIODS = {p.value for p in Period if p not in (Period.RUN, Period.TOTAL)}


@app.command()
@operator_options
@click.option("--all", "show_all", is_flag=True, help="Also list counters that have no limit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--at",
    "at_text",
    metavar="WHEN",
    help="Show the windows current at this time instead of now (e.g. '2026-11-22 23:00').",
)
def status(
    ledger_url: str | None,
    config_path: Path | None,
    show_all: bool,
    fmt: str,
    at_text: str | None,
) -> None:
    """Show every budget in its current window with a fill bar, holds in flight, engaged
    kill switches and open circuit breakers.

    Fill is (settled + held) / limit: what is spent plus what calls in flight may
    still spend. Limits are the ones the applications last placed on each counter.
    """
    with session(ledger_url, config_path, at=at_text) as s:
        now = s.guard.clock.now()
        budgets = [
            b
            for b in s.guard.status()
            if b.unit != Unit.SUCCESSES and (show_all or b.limit is not None)
        ]
        budgets.sort(key=lambda b: (-(b.fill or 0.0), b.key))
        snapshot = Snapshot(
            now,
            budgets,
            [h for h in s.guard.ledger.holds() if h.status == "held"],
            s.guard.kill_switches(),
            _breakers(s, now),
        )
        if fmt == "json":
            emit_json(_as_json(s, snapshot))
            return
        _print(s, snapshot)


def _window_end(s: Session, window: str, now: float) -> float | None:
    kind = window.split(":", 1)[0]
    if kind not in _PERIODS:
        return None
    current = window_for(Period(kind), now, s.tz, "")
    # A counter written in another time zone has another key: do not guess its end.
    return current.end if current.key == window else None


def _breakers(s: Session, now: float) -> list[dict[str, Any]]:
    found = []
    for record in s.guard.ledger.list_states("gate:breaker:", now=now):
        gate = json.loads(record.value)
        found.append(
            {
                "contract": record.key.removeprefix("gate:breaker:"),
                "state": gate.get("state", "open"),
                "failures": gate.get("failures", 0),
                "until": gate.get("until"),
            }
        )
    return found


def _units(s: Session, unit: str, amount: int) -> str:
    return render_units(Unit(unit), amount, s.guard.currency)


def _print(s: Session, snapshot: Snapshot) -> None:
    now, budgets, holds = snapshot.now, snapshot.budgets, snapshot.holds
    kills, breakers = snapshot.kills, snapshot.breakers
    out = s.console
    env = f", environment {s.guard.environment}" if s.guard.environment else ""
    out.print(
        f"ledger {redact_url(s.guard.ledger.url)} ({s.guard.currency}{env}), "
        f"at {s.local(now)} {s.zone_name()}"
    )
    out.print()
    if kills:
        table = Table(title="KILL SWITCHES ENGAGED", title_justify="left", title_style="bold red")
        for column in ("scope", "reason", "by", "since"):
            table.add_column(column)
        for kill in kills:
            table.add_row(kill.scope, kill.reason, kill.by, s.local(kill.at))
        out.print(table)
    else:
        out.print("kill switches: none engaged")
    if breakers:
        table = Table(title="Open circuit breakers", title_justify="left", title_style="bold")
        for column in ("contract", "state", "failures", "probe after"):
            table.add_column(column)
        for gate in breakers:
            until = s.local(gate["until"]) if gate["until"] else "-"
            table.add_row(gate["contract"], gate["state"], str(gate["failures"]), until)
        out.print(table)
    else:
        out.print("circuit breakers: all closed")
    out.print()
    if budgets:
        table = Table(
            title="Budgets (current windows)",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
        )
        # Fold long names only when they must: scopes are what an operator reads first.
        table.add_column(
            "scope", overflow="fold", min_width=min(max(len(b.scope) for b in budgets), 36)
        )
        table.add_column(
            "window", overflow="fold", min_width=min(max(len(b.window) for b in budgets), 26)
        )
        table.add_column("spent", justify="right", no_wrap=True)
        table.add_column("held", justify="right", no_wrap=True)
        table.add_column("limit", justify="right", no_wrap=True)
        table.add_column("fill", no_wrap=True)
        table.add_column("resets", no_wrap=True, min_width=11)
        for b in budgets:
            end = _window_end(s, b.window, now)
            fill = b.fill
            gauge = Text()
            if fill is not None:
                gauge = bar(fill, 14)
                gauge.append(f" {fill * 100:3.0f}%")
            table.add_row(
                b.scope,
                b.window,
                _units(s, b.unit, b.settled),
                _units(s, b.unit, b.held),
                "-" if b.limit is None else _units(s, b.unit, b.limit),
                gauge,
                s.local(end)[5:] if end is not None else "-",
            )
        out.print(table)
    else:
        out.print("budgets: no counter in a current window")
    out.print()
    if holds:
        table = Table(title="Holds in flight", title_justify="left", title_style="bold")
        for column in ("contract", "run", "attempt", "estimate", "age", "lease"):
            table.add_column(
                column, justify="right" if column in ("attempt", "estimate") else "left"
            )
        for hold in holds:
            left = hold.lease_until - now
            lease = f"{left:.0f}s left" if left >= 0 else "EXPIRED (runaway-guard reap)"
            table.add_row(
                hold.contract,
                hold.run,
                str(hold.attempt),
                s.amount(hold.estimate),
                f"{max(now - hold.created, 0):.0f}s",
                lease,
            )
        out.print(table)
        total = sum(h.estimate for h in holds)
        out.print(f"{len(holds)} hold(s) in flight, {s.amount(total)} held in total")
    else:
        out.print("holds in flight: none")


def _as_json(s: Session, snapshot: Snapshot) -> dict[str, Any]:
    now, budgets, holds = snapshot.now, snapshot.budgets, snapshot.holds
    kills, breakers = snapshot.kills, snapshot.breakers

    def amount(unit: str, value: int | None) -> str | int | None:
        if value is None:
            return None
        return decimal_text(value) if unit == Unit.MONEY else value

    return {
        "ledger": redact_url(s.guard.ledger.url),
        "currency": s.guard.currency,
        "environment": s.guard.environment,
        "at": now,
        "budgets": [
            {
                "key": b.key,
                "budget": describe_counter(b.key),
                "scope": b.scope,
                "unit": b.unit,
                "window": b.window,
                "settled": amount(b.unit, b.settled),
                "held": amount(b.unit, b.held),
                "limit": amount(b.unit, b.limit),
                "fill": None if b.fill is None else round(b.fill, 4),
                "resets": _window_end(s, b.window, now),
            }
            for b in budgets
        ],
        "holds": [
            {
                "hold_id": h.hold_id,
                "contract": h.contract,
                "run": h.run,
                "attempt": h.attempt,
                "estimate": decimal_text(h.estimate),
                "created": h.created,
                "lease_until": h.lease_until,
                "expired": h.lease_until < now,
            }
            for h in holds
        ],
        "kill_switches": [
            {"scope": k.scope, "reason": k.reason, "by": k.by, "at": k.at} for k in kills
        ],
        "breakers": breakers,
    }
