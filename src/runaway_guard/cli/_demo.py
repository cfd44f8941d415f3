"""`runaway-guard demo`: watch the guard stop a runaway bill, offline, in seconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
from rich.console import Console

from runaway_guard.cli._app import app
from runaway_guard.demo import SCENARIOS


@app.command()
@click.option(
    "--scenario",
    type=click.Choice(list(SCENARIOS)),
    default=next(iter(SCENARIOS)),
    show_default=True,
    help="Which incident to replay: the overnight retry loop, the doubling campaign "
    "fan-out, or the agent loop.",
)
def demo(scenario: str) -> None:
    """Replay a real incident, naive and guarded, against a local fake metered API.

    No network and no API key: a fake metered API runs on 127.0.0.1, the ledger is a
    SQLite file in a temporary folder, and the hours pass on a virtual clock. Every
    number printed comes from the fake provider's meter and the guard's ledger.
    """
    chosen = SCENARIOS[scenario]
    console = Console()
    started = time.monotonic()
    console.print(f"[bold]{chosen.name}[/bold]: {chosen.title}")
    with tempfile.TemporaryDirectory(prefix="runaway-guard-demo-") as folder:
        chosen.play(Path(folder), console)
    console.print(f"[dim]real time: {time.monotonic() - started:.1f}s[/dim]")
    click.get_current_context().exit(0)
