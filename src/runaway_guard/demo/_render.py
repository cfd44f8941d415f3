"""Render a demo night with rich: the comparison, what stopped the guard, the cliff."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runaway_guard.demo._overnight import PRICE, NightResult, RunOutcome, clock_time

__all__ = ["render_night"]

_BAR = 44


def _finish(outcome: RunOutcome) -> str:
    if outcome.finished_at is not None:
        return f"finished at {clock_time(outcome.finished_at)}"
    return f"not finished by 07:00 ({outcome.records_done} records done)"


def _comparison(result: NightResult) -> Table:
    table = Table(title="One night, 23:00 to 07:00, same buggy loop", title_justify="left")
    table.add_column("")
    table.add_column("naive loop", justify="right")
    table.add_column("with runaway-guard", justify="right")
    naive, guarded = result.naive, result.guarded
    table.add_row(
        "paid requests (provider's meter)", f"{naive.requests:,}", f"{guarded.requests:,}"
    )
    table.add_row("billed", str(naive.billed), str(guarded.billed))
    table.add_row(
        "spent, per the guard's ledger",
        "-",
        str(guarded.ledger_spent) if guarded.ledger_spent is not None else "-",
    )
    table.add_row("records enriched", str(naive.records_done), str(guarded.records_done))
    table.add_row("the job", _finish(naive), _finish(guarded))
    return table


def _stops(outcome: RunOutcome) -> Panel:
    lines = Text()
    for when, kind, text in outcome.stops:
        lines.append(f"{clock_time(when)}  ", style="bold")
        lines.append(f"{kind}: ", style="yellow")
        lines.append(f"{text}\n")
    if not outcome.stops:
        lines.append("nothing: the job ran within its contract")
    return Panel(lines, title="What stopped the guarded run", title_align="left")


def _chart(result: NightResult) -> Panel:
    hours = range(int(result.start // 3600) * 3600, int(result.end), 3600)
    top = max([*result.naive.by_hour.values(), *result.guarded.by_hour.values(), 1])
    lines = Text()
    for hour in hours:
        for outcome, style in ((result.naive, "red"), (result.guarded, "green")):
            count = outcome.by_hour.get(hour, 0)
            width = round(_BAR * count / top) if count else 0
            label = clock_time(hour) if outcome is result.naive else ""
            lines.append(f"{label:>5} {outcome.name:>7} ")
            lines.append("█" * width, style=style)
            lines.append(f" {PRICE * count}\n")
    return Panel(
        lines, title="Spend by hour, as the provider's dashboard shows it", title_align="left"
    )


def render_night(result: NightResult, console: Console) -> None:
    console.print(Panel(result.contract_summary, title="The contract", title_align="left"))
    console.print(Group(_comparison(result), _stops(result.guarded), _chart(result)))
