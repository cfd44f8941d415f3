"""`runaway-guard demo`: see the guard stop a runaway loop, offline, in a second."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from runaway_guard._errors import BudgetExceeded
from runaway_guard._guard import Guard
from runaway_guard.cli._app import app
from runaway_guard.testing import FakeClock


@app.command()
def demo() -> None:
    """Run a guarded loop against a fake paid call on a temporary SQLite ledger."""
    with tempfile.TemporaryDirectory(prefix="runaway-guard-demo-") as folder:
        ledger = Path(folder) / "ledger.db"
        clock = FakeClock("2026-11-22T23:00:00+00:00")
        with Guard(f"sqlite:///{ledger}", clock=clock) as guard:
            enrich = guard.contract(
                "record-enrich",
                price="$0.002",
                max_calls_per_run=80,
                max_per_day="$1.00",
                provider_cap="OpenAI org usage limit, $25/month",
            )
            click.echo(enrich.summary())
            calls = 0

            @enrich
            def complete(payload: int) -> int:
                nonlocal calls
                calls += 1
                clock.advance(1.0)
                return payload

            with guard.run("nightly-2026-11-22") as run:
                refused = None
                for payload in range(10_000):  # a loop that "obviously terminates"
                    try:
                        complete(payload)
                    except BudgetExceeded as exc:
                        refused = exc
                        break
                click.echo(f"\npaid calls made: {calls}, spent: {run.spent()}")
                click.echo(f"stopped by: {refused}")
