"""Render the demo's scenarios with rich: the comparison, what stopped the guard, the rest.

Every number shown here was measured by a run (the fake provider's meter, the ledger,
the alerts delivered); only the caps come from configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runaway_guard._money import Money
from runaway_guard.alerts import Severity
from runaway_guard.demo._agent import AgentResult, AgentRun
from runaway_guard.demo._campaign import CampaignResult, CampaignRun
from runaway_guard.demo._overnight import PRICE, NightResult, RunOutcome

__all__ = ["clock_time", "render_agent", "render_campaign", "render_night"]

_BAR = 44
_LEDGER = "spent, per the guard's ledger"
_SEVERITY_STYLES = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "red"}


def clock_time(when: float, *, seconds: bool = False) -> str:
    """Virtual epoch seconds as a UTC wall-clock time: ``23:01`` (or ``23:01:43``)."""
    return datetime.fromtimestamp(when, tz=UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def _comparison(
    title: str,
    paid: str,
    counts: tuple[int, int],
    billed: tuple[Money, Money],
    ledger: tuple[str, Money | None],
) -> Table:
    """Naive against guarded: paid requests and the bill, then the guard's own count."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("naive", justify="right")
    table.add_column("with runaway-guard", justify="right")
    table.add_row(f"{paid} (provider's meter)", f"{counts[0]:,}", f"{counts[1]:,}")
    table.add_row("billed", str(billed[0]), str(billed[1]))
    label, spent = ledger
    table.add_row(label, "-", str(spent) if spent is not None else "-")
    return table


# -- overnight ------------------------------------------------------------------------------------


def _finish(outcome: RunOutcome) -> str:
    if outcome.finished_at is not None:
        return f"finished at {clock_time(outcome.finished_at)}"
    return f"not finished by 07:00 ({outcome.records_done} records done)"


def _night_table(result: NightResult) -> Table:
    naive, guarded = result.naive, result.guarded
    table = _comparison(
        "One night, 23:00 to 07:00, same buggy loop",
        "paid requests",
        (naive.requests, guarded.requests),
        (naive.billed, guarded.billed),
        (_LEDGER, guarded.ledger_spent),
    )
    table.add_row("records enriched", str(naive.records_done), str(guarded.records_done))
    table.add_row("the job", _finish(naive), _finish(guarded))
    table.add_row("alerts sent", "-", str(len(guarded.alerts)))
    return table


def _stops(outcome: RunOutcome) -> Panel:
    lines = Text()
    for when, kind, text in outcome.stops:
        lines.append(f"{clock_time(when)}  ", style="bold")
        lines.append(f"{kind}: ", style="yellow")
        lines.append(f"{text}\n")
    if not outcome.stops:
        lines.append("nothing: the job ran within its contract")
    lines.rstrip()
    return Panel(lines, title="What stopped the guarded run", title_align="left")


def _alerts(outcome: RunOutcome) -> Panel:
    lines = Text()
    for alert in outcome.alerts:
        lines.append(f"{clock_time(alert.at, seconds=True)}  ", style="bold")
        lines.append(f"{alert.severity!s:<8} ", style=_SEVERITY_STYLES[alert.severity])
        lines.append(f"{alert.title}\n")
    if not outcome.alerts:
        lines.append("none")
    lines.rstrip()
    return Panel(
        lines,
        title="The alerts that fired (rg.Alerts, delivered to a Python function)",
        title_align="left",
    )


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
    lines.rstrip()
    return Panel(
        lines, title="Spend by hour, as the provider's dashboard shows it", title_align="left"
    )


def render_night(result: NightResult, console: Console) -> None:
    """The overnight retry loop: the contract, both nights, the stops, alerts, the cliff."""
    console.print(Panel(result.contract_summary, title="The contract", title_align="left"))
    console.print(
        Group(
            _night_table(result),
            _stops(result.guarded),
            _alerts(result.guarded),
            _chart(result),
        )
    )


# -- campaign -------------------------------------------------------------------------------------


def _attempts(run: CampaignRun, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("attempt")
    table.add_column("at")
    table.add_column("prompts", justify="right")
    table.add_column("paid", justify="right")
    table.add_column("replayed", justify="right")
    table.add_column("then")
    for attempt in run.attempts:
        table.add_row(
            attempt.label,
            clock_time(attempt.at),
            str(attempt.prompts),
            str(attempt.requests),
            str(attempt.replayed),
            attempt.outcome,
        )
    return table


def _campaign_table(result: CampaignResult) -> Table:
    naive, guarded = result.naive, result.guarded
    table = _comparison(
        "One campaign event, the queue retrying, the same buggy prompt query",
        "images paid for",
        (naive.requests, guarded.requests),
        (naive.billed, guarded.billed),
        (_LEDGER, guarded.ledger_spent),
    )
    table.add_row("per-run image cap used", "-", guarded.cap_used or "-")
    table.add_row("campaign images saved", str(naive.images_saved), str(guarded.images_saved))
    return table


def _campaign_stop(run: CampaignRun) -> Panel:
    lines = Text()
    if run.stop is None:
        lines.append("nothing: every attempt ran within the contract")
    else:
        when, why = run.stop
        lines.append(f"{clock_time(when)}  ", style="bold")
        lines.append("guard.map: ", style="yellow")
        lines.append(why)
        lines.append(
            "\nTooManyItems is a NonRetriableError, so the queue stopped retrying the job."
        )
    for attempt in run.attempts:
        if attempt.replayed:
            lines.append(
                f"\nThe {attempt.label} at {clock_time(attempt.at)} reopened the event's run: "
                f"{attempt.replayed} of its {attempt.prompts} images came from idempotency "
                f"records at $0, {attempt.requests} were paid for again."
            )
    return Panel(lines, title="What stopped the guarded job", title_align="left")


def render_campaign(result: CampaignResult, console: Console) -> None:
    """The doubling campaign: the contract, each attempt of each run, the totals."""
    console.print(Panel(result.contract_summary, title="The contract", title_align="left"))
    console.print(
        Group(
            _attempts(result.naive, "Naive: every prompt at once, no key, no cap"),
            _attempts(result.guarded, "With runaway-guard: guard.map, keys, one run per event"),
            _campaign_table(result),
            _campaign_stop(result.guarded),
        )
    )


# -- agent ----------------------------------------------------------------------------------------


def _ended(run: AgentRun) -> str:
    return f"{clock_time(run.ended_at)}: {run.ended_by}"


def _agent_table(result: AgentResult) -> Table:
    naive, guarded = result.naive, result.guarded
    table = _comparison(
        "One support ticket, the same scripted agent",
        "WHOIS lookups",
        (naive.lookups, guarded.lookups),
        (naive.billed, guarded.billed),
        ("spent on the ticket, per the ledger", guarded.ledger_spent),
    )
    table.add_row("traceroutes run", f"{naive.traceroutes:,}", f"{guarded.traceroutes:,}")
    table.add_row("refusals the model read", str(len(naive.refusals)), str(len(guarded.refusals)))
    table.add_row("ended", _ended(naive), _ended(guarded))
    return table


def _calls(run: AgentRun) -> Panel:
    lines = Text()
    for call in run.calls:
        arguments = ", ".join(f"{key}={value!r}" for key, value in call.arguments.items())
        lines.append(f"{clock_time(call.at, seconds=True)}  ", style="bold")
        lines.append(f"{call.tool}({arguments})  ")
        style = "green" if call.outcome == "ok" else "yellow"
        lines.append(f"{call.outcome}\n", style=style)
    lines.rstrip()
    return Panel(lines, title="The guarded ticket, call by call", title_align="left")


def _refusal(run: AgentRun) -> Panel:
    text = "\n".join(run.refusals) if run.refusals else "none"
    return Panel(text, title="What the model read instead of a result", title_align="left")


def _halt(run: AgentRun) -> Panel:
    if run.halt is None:
        return Panel(run.ended_by, title="What halted the ticket", title_align="left")
    lines = Text()
    lines.append("LoopDetected: ", style="yellow")
    lines.append(str(run.halt).split("\n", 1)[0] + "\n")
    lines.append("signature: ", style="bold")
    lines.append(run.halt.signature)
    return Panel(lines, title="What halted the ticket", title_align="left")


def render_agent(result: AgentResult, console: Console) -> None:
    """The agent loop: the caps, both tickets, the guarded calls, refusal and halt."""
    console.print(Panel("\n".join(result.rules), title="The agent guard", title_align="left"))
    console.print(
        Group(
            _agent_table(result),
            _calls(result.guarded),
            _refusal(result.guarded),
            _halt(result.guarded),
        )
    )
