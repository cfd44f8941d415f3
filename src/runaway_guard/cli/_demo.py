"""`runaway-guard demo`: watch the guard stop a runaway bill, offline, in seconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
from rich.console import Console

from runaway_guard.cli._app import app
from runaway_guard.demo import render_night, run_overnight


@app.command()
def demo() -> None:
    """Replay the overnight retry loop, naive and guarded, against a local fake API.

    No network and no API key: a fake metered API runs on 127.0.0.1, the ledger is a
    SQLite file in a temporary folder, and eight hours pass on a virtual clock.
    """
    console = Console()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runaway-guard-demo-") as folder:
        with console.status("replaying the night of 2026-11-22 (23:00 to 07:00)..."):
            result = run_overnight(Path(folder))
        render_night(result, console)
    console.print(f"[dim]real time: {time.monotonic() - started:.1f}s[/dim]")
    click.get_current_context().exit(0)
