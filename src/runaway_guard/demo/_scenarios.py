"""The demo's scenarios by name: what each replays, and how to run and print it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from rich.console import Console

from runaway_guard.demo._agent import run_agent
from runaway_guard.demo._campaign import run_campaign
from runaway_guard.demo._overnight import run_overnight
from runaway_guard.demo._render import render_agent, render_campaign, render_night

__all__ = ["SCENARIOS", "Scenario"]

R = TypeVar("R")


@dataclass(frozen=True)
class Scenario(Generic[R]):
    """One replayed incident.

    Attributes:
        name: what ``runaway-guard demo --scenario`` calls it.
        title: one line that says what is replayed.
        status: shown while it runs.
        run: runs the naive and the guarded version with a ledger in the given folder.
        render: prints what `run` measured.
    """

    name: str
    title: str
    status: str
    run: Callable[[Path], R]
    render: Callable[[R, Console], None]

    def play(self, folder: Path, console: Console) -> None:
        """Run both versions (with a spinner), then print them."""
        with console.status(self.status):
            result = self.run(folder)
        self.render(result, console)


SCENARIOS: Final[dict[str, Scenario[Any]]] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "overnight",
            "A nightly job meets a flaky API and retries at once, forever, swallowing every error.",
            "replaying the night of 2026-11-22 (23:00 to 07:00)...",
            run_overnight,
            render_night,
        ),
        Scenario(
            "campaign",
            "An image campaign job whose prompt list doubles on every retry of the queue "
            "(40, 80, 160, 320), $0.05 an image.",
            "replaying the campaign night of 2026-05-21 (22:00 to the 07:00 replay)...",
            run_campaign,
            render_campaign,
        ),
        Scenario(
            "agent",
            "A support agent surveys a network it does not know: traceroute after "
            "traceroute, a paid WHOIS lookup for every hop.",
            "replaying ticket T-4821 (Sunday 06:14 to 17:32)...",
            run_agent,
            render_agent,
        ),
    )
}
"""Every scenario, by name; the first is the default."""
