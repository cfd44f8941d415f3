"""`runaway-guard report`: spend by hour, day, contract, run or tool, as a table and a chart.

Time buckets include the empty ones: an overnight runaway shows as a wall of tall
columns after hours of nothing, which is the shape an operator must see at a glance.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import click
from rich.table import Table
from rich.text import Text

from runaway_guard.cli._app import app
from runaway_guard.cli._common import (
    Session,
    bar,
    decimal_text,
    emit_json,
    fail,
    operator_options,
    parse_when,
    session,
)
from runaway_guard.ledger import SpendRecord, redact_url

__all__ = ["Bucket", "spend_by"]

TOOL_PREFIX: Final = "tool:"
"""Agent tools are contracts named ``tool:NAME``; ``--by tool`` groups those."""

GROUPINGS: Final = ("hour", "day", "contract", "run", "tool")
_DEFAULT_SPAN: Final = {"hour": "24h", "day": "30d"}
_MAX_BUCKETS: Final = {"hour": 24 * 31, "day": 3660}
_CHART_HEIGHT: Final = 8
_EIGHTHS: Final = " ▁▂▃▄▅▆▇█"


@dataclass
class Bucket:
    """What was spent in one hour, day, contract, run or tool."""

    label: str
    start: float | None = None
    """The bucket's start (epoch seconds) for hours and days."""
    calls: int = 0
    """Attempts made (every attempt counts, billed or not)."""
    spend: int = 0
    """Nano-units of the ledger currency charged, corrections included."""
    tokens: int = 0
    failed: int = 0
    released: int = 0
    reaped: int = 0


def spend_by(
    rows: Iterable[SpendRecord], *, by: str, since: float, until: float, tz: ZoneInfo
) -> tuple[list[Bucket], int]:
    """Group spend-log rows; returns the buckets and how many rows no bucket took.

    Hours and days cover [since, until) completely, empty buckets included, in time
    order; contracts, runs and tools come most expensive first.
    """
    timed = by in ("hour", "day")
    # Time buckets are keyed by their start: the hour repeated when clocks fall back
    # is two buckets with one wall-clock label.
    buckets: dict[str | float, Bucket] = {}
    if timed:
        for start in _starts(by, since, until, tz):
            buckets[start] = Bucket(_label(by, start, tz), start)
    skipped = 0
    for row in rows:
        key: str | float
        if timed:
            key = _floor(by, row.ts, tz).timestamp()
        elif by == "contract":
            key = row.contract
        elif by == "run":
            key = row.run
        elif row.contract.startswith(TOOL_PREFIX):
            key = row.contract.removeprefix(TOOL_PREFIX)
        else:
            skipped += 1
            continue
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = (
                Bucket(_label(by, row.ts, tz), float(key)) if timed else Bucket(str(key))
            )
        bucket.spend += row.actual
        bucket.tokens += row.tokens
        if row.outcome == "corrected":
            continue  # a correction changes what an attempt cost; it is not an attempt
        bucket.calls += 1
        if row.outcome == "failed":
            bucket.failed += 1
        elif row.outcome == "released":
            bucket.released += 1
        elif row.outcome == "reaped":
            bucket.reaped += 1
    found = list(buckets.values())
    if timed:
        found.sort(key=lambda b: b.start or 0.0)
        _disambiguate(found, tz)
    else:
        found.sort(key=lambda b: (-b.spend, -b.calls, b.label))
    return found, skipped


def _disambiguate(buckets: list[Bucket], tz: ZoneInfo) -> None:
    """Add the zone's abbreviation to labels that a DST change made appear twice."""
    seen: dict[str, int] = {}
    for bucket in buckets:
        seen[bucket.label] = seen.get(bucket.label, 0) + 1
    for bucket in buckets:
        if seen[bucket.label] > 1 and bucket.start is not None:
            bucket.label += f" {datetime.fromtimestamp(bucket.start, tz=tz):%Z}"


def _floor(by: str, when: float, tz: ZoneInfo) -> datetime:
    local = datetime.fromtimestamp(when, tz=tz)
    if by == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _starts(by: str, since: float, until: float, tz: ZoneInfo) -> list[float]:
    first = _floor(by, since, tz)
    starts = []
    if by == "hour":
        # Step in UTC: a DST change must not produce a missing or a doubled hour.
        moment = first.timestamp()
        while moment < until:
            starts.append(moment)
            moment += 3600
        return starts
    day = first.date()
    while True:
        moment = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        if moment >= until:
            return starts
        starts.append(moment)
        day += timedelta(days=1)


def _label(by: str, when: float, tz: ZoneInfo) -> str:
    start = _floor(by, when, tz)
    return f"{start:%Y-%m-%d %H:00}" if by == "hour" else f"{start:%Y-%m-%d}"


@app.command()
@operator_options
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="hour",
    show_default=True,
    help="Group spend by hour or day (in the configured time zone), contract, run, or agent "
    "tool (contracts named tool:NAME).",
)
@click.option(
    "--since",
    metavar="WHEN",
    help="Start of the period: 24h, 7d, 90m ago, or a time like '2026-11-22 23:00' "
    "(default: 24h for --by hour, 30d for --by day, else 7d).",
)
@click.option("--until", metavar="WHEN", help="End of the period (default: now).")
@click.option("--contract", metavar="NAME", help="Only this contract's spend.")
@click.option("--run", "run_path", metavar="PATH", help="Only this run's spend (nested included).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table: a table and a bar chart; csv and json: for scripts and spreadsheets.",
)
def report(
    ledger_url: str | None,
    config_path: Path | None,
    by: str,
    since: str | None,
    until: str | None,
    contract: str | None,
    run_path: str | None,
    fmt: str,
) -> None:
    """Report what was spent over a period, from the ledger's spend log.

    Each row counts attempts (billed or not), money charged, tokens, and attempts that
    failed, were released (not billed) or were reaped after a crash. Hours and days with
    no spend are listed too, so a sudden cliff stands out.
    """
    with session(ledger_url, config_path) as s:
        now = s.guard.clock.now()
        try:
            start = parse_when(since or _DEFAULT_SPAN.get(by, "7d"), s.tz, now)
            end = parse_when(until, s.tz, now) if until else now
        except click.BadParameter as exc:
            fail(exc.message)
        if end <= start:
            fail(f"--until ({s.local(end)}) must be after --since ({s.local(start)})")
        limit = _MAX_BUCKETS.get(by)
        if limit is not None and (end - start) / (3600 if by == "hour" else 86_400) > limit:
            fail(f"more than {limit} {by}s to report; use --by day or a shorter --since")
        rows: Iterable[SpendRecord] = s.guard.ledger.spend(
            since=start, until=end, contract=contract
        )
        if run_path is not None:
            rows = [r for r in rows if r.run == run_path or r.run.startswith(f"{run_path}/")]
        buckets, skipped = spend_by(rows, by=by, since=start, until=end, tz=s.tz)
        if fmt == "csv":
            _csv(buckets, by, s.guard.currency)
        elif fmt == "json":
            emit_json(
                {
                    "by": by,
                    "since": start,
                    "until": end,
                    "timezone": s.zone_name(),
                    "currency": s.guard.currency,
                    "rows": [_row(b) for b in buckets],
                    "total": _row(_total(buckets)),
                }
            )
        else:
            _table(s, buckets, by, start, end, skipped)


def _row(bucket: Bucket) -> dict[str, object]:
    data = asdict(bucket)
    data["spend"] = decimal_text(bucket.spend)
    return data


def _total(buckets: list[Bucket]) -> Bucket:
    total = Bucket("total")
    for b in buckets:
        total.calls += b.calls
        total.spend += b.spend
        total.tokens += b.tokens
        total.failed += b.failed
        total.released += b.released
        total.reaped += b.reaped
    return total


def _csv(buckets: list[Bucket], by: str, currency: str) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([by, "calls", "spend", "currency", "tokens", "failed", "released", "reaped"])
    for b in buckets:
        writer.writerow(
            [
                b.label,
                b.calls,
                decimal_text(b.spend),
                currency,
                b.tokens,
                b.failed,
                b.released,
                b.reaped,
            ]
        )


def _table(
    s: Session, buckets: list[Bucket], by: str, start: float, end: float, skipped: int
) -> None:
    out = s.console
    out.print(
        f"spend by {by}, {s.local(start)} to {s.local(end)} {s.zone_name()}, "
        f"ledger {redact_url(s.guard.ledger.url)}"
    )
    total = _total(buckets)
    if by == "tool" and skipped:
        out.print(f"({skipped} attempt(s) of contracts not named tool:NAME left out)")
    if not total.calls and not total.spend:
        out.print("no spend recorded in this period")
        return
    peak = max((b.spend for b in buckets), default=0)
    show_tokens = total.tokens > 0
    table = Table(show_footer=True)
    table.add_column(by, footer="total")
    table.add_column("calls", justify="right", footer=str(total.calls))
    table.add_column("spend", justify="right", footer=s.amount(total.spend))
    if show_tokens:
        table.add_column("tokens", justify="right", footer=str(total.tokens))
    table.add_column("failed", justify="right", footer=str(total.failed))
    table.add_column("reaped", justify="right", footer=str(total.reaped))
    table.add_column("")
    for b in buckets:
        cells: list[str | Text] = [b.label, str(b.calls), s.amount(b.spend)]
        if show_tokens:
            cells.append(str(b.tokens))
        cells += [str(b.failed), str(b.reaped), bar(b.spend / peak if peak > 0 else 0.0, 30)]
        table.add_row(*cells)
    out.print(table)
    if by in ("hour", "day"):
        for line in chart(s, buckets, by, out.width):
            out.print(line, no_wrap=True, overflow="crop")


def chart(s: Session, buckets: list[Bucket], by: str, width: int) -> list[Text]:
    """A column chart of spend per bucket, `_CHART_HEIGHT` lines tall."""
    peak = max((b.spend for b in buckets), default=0)
    axis = len(s.amount(peak))
    room = width - axis - 2
    if peak <= 0 or not buckets:
        return []
    if len(buckets) > room:
        return [Text(f"({len(buckets)} {by}s are too many to chart in {width} columns)")]
    column = 3 if len(buckets) * 3 <= room else 2 if len(buckets) * 2 <= room else 1
    levels = [round(b.spend / peak * _CHART_HEIGHT * 8) for b in buckets]
    lines = [Text(f"spend per {by} (tallest: {s.amount(peak)})", style="bold")]
    for row in range(_CHART_HEIGHT - 1, -1, -1):
        label = s.amount(peak) if row == _CHART_HEIGHT - 1 else ""
        line = Text(f"{label:>{axis}} │")
        for level in levels:
            filled = min(max(level - row * 8, 0), 8)
            cell = _EIGHTHS[filled]
            if row == 0 and level > 0 and filled == 0:
                cell = "▁"  # a small bucket still shows it spent something
            line.append(cell * max(column - 1, 1), style="red")
            if column > 1:
                line.append(" ")  # a gap between columns
        lines.append(line)
    lines.append(Text(f"{'':>{axis}} └" + "─" * (len(buckets) * column)))
    first, last = buckets[0].label, buckets[-1].label
    if by == "hour":
        first, last = first[5:], last[5:]  # 11-22 23:00: the day matters overnight
    gap = len(buckets) * column - len(first) - len(last)
    lines.append(Text(f"{'':>{axis}}  {first}{' ' * max(gap, 1)}{last}"))
    return lines
