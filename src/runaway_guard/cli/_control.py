"""`kill`, `revive` and `reap`: stop spending in one command, resume it, end dead holds."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import click
from rich.table import Table

from runaway_guard._control import normalise_scope
from runaway_guard._errors import ContractError
from runaway_guard.cli._app import app
from runaway_guard.cli._common import Session, fail, operator_options, session
from runaway_guard.ledger import HoldInfo, redact_url

_REAP_BATCHES: Final = 1000
"""Reap calls per command (each reaps up to 100 holds): a bound, not a target."""


def _scope(value: str) -> str:
    try:
        return normalise_scope(value)
    except ContractError as exc:
        raise click.BadParameter(str(exc), param_hint="SCOPE") from None


@app.command()
@operator_options
@click.argument("scope")
@click.option("--reason", required=True, help="Why: quoted in every refusal, for whoever revives.")
@click.option("--by", "author", help="Who engaged it (default: user@host pid N).")
def kill(
    ledger_url: str | None, config_path: Path | None, scope: str, reason: str, author: str | None
) -> None:
    """Engage a kill switch: every process sharing the ledger refuses covered calls at its
    next attempt, until `revive`.

    SCOPE is 'global' (every call), 'contract:NAME' (one call site) or 'run:PATH' (a run
    and the runs nested in it). Alerts configured in the configuration file are sent.
    """
    scope = _scope(scope)
    if not reason.strip():
        raise click.BadParameter("say why, for whoever revives it", param_hint="--reason")
    with session(ledger_url, config_path, alerts=True) as s:
        url = redact_url(s.guard.ledger.url)
        if s.guard.kill(scope, reason, by=author):
            s.console.print(
                f"kill switch engaged on {scope}: every process sharing {url} refuses covered "
                "calls at its next attempt."
            )
            s.console.print(f"revive with: runaway-guard revive {scope}")
            return
        existing = next(k for k in s.guard.kill_switches() if k.scope == scope)
        s.console.print(
            f"kill switch on {scope} was already engaged by {existing.by} at "
            f"{s.local(existing.at)}: {existing.reason}"
        )


@app.command()
@operator_options
@click.argument("scope")
@click.option("--by", "author", help="Who revived it (default: user@host pid N).")
def revive(
    ledger_url: str | None, config_path: Path | None, scope: str, author: str | None
) -> None:
    """Clear a kill switch: calls it covered are admitted again at their next attempt.

    SCOPE is the one given to `kill`: 'global', 'contract:NAME' or 'run:PATH'. Exits 1
    when no kill switch was engaged on SCOPE (`status` lists the engaged ones).
    """
    scope = _scope(scope)
    with session(ledger_url, config_path, alerts=True) as s:
        engaged = [k.scope for k in s.guard.kill_switches()]
        if s.guard.revive(scope, by=author):
            s.console.print(f"kill switch on {scope} cleared; covered calls are admitted again.")
            return
        others = f"; engaged: {', '.join(engaged)}" if engaged else "; none is engaged"
        fail(f"no kill switch was engaged on {scope}{others}", code=1)


@app.command()
@operator_options
@click.option(
    "--dry-run", is_flag=True, help="List the holds whose lease ended, without reaping them."
)
def reap(ledger_url: str | None, config_path: Path | None, dry_run: bool) -> None:
    """Reap expired holds now: charge each hold whose lease ended at its full estimate.

    A hold outlives its lease when its process died during the paid call; the call may
    have been billed, so its estimate is charged. A late settle from a process that was
    only slow corrects the charge. Guards also reap on their own, every `reap_every`
    seconds; this does it at once. Alerts configured in the configuration file are sent.
    """
    with session(ledger_url, config_path, alerts=not dry_run) as s:
        now = s.guard.clock.now()
        if dry_run:
            holds = s.guard.ledger.holds()
            expired = [h for h in holds if h.status == "held" and h.lease_until < now]
            _print_holds(s, expired, dry_run=True)
            return
        reaped: list[HoldInfo] = []
        for _ in range(_REAP_BATCHES):
            batch = s.guard.reap()
            reaped += batch
            if len(batch) < 100:
                break
        _print_holds(s, reaped, dry_run=False)


def _print_holds(s: Session, holds: list[HoldInfo], *, dry_run: bool) -> None:
    if not holds:
        s.console.print("no expired holds: nothing to reap")
        return
    table = Table()
    for column in ("hold", "contract", "run", "attempt", "estimate", "lease ended"):
        right = column in ("attempt", "estimate")
        table.add_column(column, justify="right" if right else "left")
    for hold in holds:
        table.add_row(
            hold.hold_id,
            hold.contract,
            hold.run,
            str(hold.attempt),
            s.amount(hold.estimate),
            s.local(hold.lease_until),
        )
    s.console.print(table)
    total = s.amount(sum(h.estimate for h in holds))
    if dry_run:
        s.console.print(
            f"{len(holds)} hold(s) would be reaped, {total} charged at their estimates "
            "(run without --dry-run to reap them)"
        )
    else:
        s.console.print(f"reaped {len(holds)} hold(s), {total} charged at their estimates")
