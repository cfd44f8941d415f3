"""What the operator commands share: ``--ledger`` and ``--config``, opening the guard,
rendering amounts, times and fill bars.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.text import Text

from runaway_guard._budget import timezone as zone_named
from runaway_guard._clock import SystemClock
from runaway_guard._errors import ConfigError, RunawayGuardError
from runaway_guard._guard import Guard
from runaway_guard._money import format_amount
from runaway_guard.config import Config, load_config

__all__ = [
    "Session",
    "bar",
    "decimal_text",
    "emit_json",
    "fail",
    "operator_options",
    "parse_when",
    "session",
    "sqlite_path",
]

F = TypeVar("F", bound=Callable[..., Any])

_BLOCKS: Final = " ▏▎▍▌▋▊▉█"
_RELATIVE: Final = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def operator_options(fn: F) -> F:
    """Add ``--ledger`` and ``--config`` to a command."""
    fn = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Configuration file (default: $RUNAWAY_GUARD_CONFIG, else runaway-guard.toml "
        "or pyproject.toml [tool.runaway-guard], found from the current folder up).",
    )(fn)
    return click.option(
        "--ledger",
        "ledger_url",
        metavar="URL",
        help="Ledger URL, e.g. sqlite:///var/lib/app/ledger.db (default: $RUNAWAY_GUARD_LEDGER, "
        "then the configuration file, then the per-user SQLite file).",
    )(fn)


def fail(message: str, code: int = 2) -> None:
    """Print `message` to stderr and exit with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@dataclass
class Session:
    """An opened guard, the configuration it came from, and a console to print on."""

    guard: Guard
    config: Config
    console: Console

    @property
    def tz(self) -> ZoneInfo:
        return self.guard.tz

    def amount(self, nanos: int) -> str:
        """Nano-units of the ledger currency, for people: ``$0.16``."""
        return format_amount(nanos, self.guard.currency)

    def local(self, when: float) -> str:
        """An epoch time in the configured zone: ``2026-11-22 23:04``."""
        return f"{datetime.fromtimestamp(when, tz=self.tz):%Y-%m-%d %H:%M}"

    def zone_name(self) -> str:
        return str(self.tz.key)


def make_console() -> Console:
    """A console for stdout; 120 columns when it is not a terminal (pipes, tests)."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "120"))
    return Console(width=width, highlight=False, soft_wrap=False)


class FrozenClock(SystemClock):
    """The real clock, stopped at one moment: ``status --at`` looks at a past window."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


@contextmanager
def session(
    ledger_url: str | None,
    config_path: Path | None,
    *,
    alerts: bool = False,
    at: str | None = None,
) -> Iterator[Session]:
    """Open the ledger the options name, exit 2 with the reason when that fails.

    `at` (``--at``) stops the guard's clock at that time, so windows are those current
    then.

    A configuration file that fails to load stops the command, unless ``--ledger``
    names the ledger explicitly: then the command warns and goes on, so a broken file
    never prevents an operator from engaging a kill switch.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        if ledger_url is None:
            fail(f"{exc}\n(fix the file, or pass --ledger URL to act without it)")
        click.echo(f"warning: ignoring the configuration: {exc}", err=True)
        config = Config()
    url = config.ledger_url(explicit=ledger_url)
    _check_exists(url)
    clock: SystemClock = SystemClock()
    if at is not None:
        try:
            clock = FrozenClock(parse_when(at, zone_named(config.timezone), clock.now()))
        except click.BadParameter as exc:
            fail(f"--at {exc.message}")
    try:
        guard = Guard(url, clock=clock, timezone=config.timezone, environment=config.environment)
    except RunawayGuardError as exc:
        fail(str(exc))
    try:
        if alerts:
            try:
                config.attach_alerts(guard)
            except ConfigError as exc:
                click.echo(f"warning: alerts are off: {exc}", err=True)
        yield Session(guard, config, make_console())
    except RunawayGuardError as exc:
        fail(str(exc))
    finally:
        guard.close()


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names (options dropped), or None for other URLs."""
    if not url.lower().startswith("sqlite://"):
        return None
    path = url.split("://", 1)[1].split("?", 1)[0][1:]
    return Path(path) if path else None


def _check_exists(url: str) -> None:
    # Opening a SQLite URL creates the file: a typo must not yield an empty ledger that
    # reports no spend, or a kill switch on a ledger no process reads.
    path = sqlite_path(url)
    if path is not None and not path.exists():
        fail(
            f"no ledger at {path}: check --ledger, $RUNAWAY_GUARD_LEDGER or the configuration "
            f"file (ledger = 'sqlite:///...')"
        )


def parse_when(value: str, tz: ZoneInfo, now: float) -> float:
    """``24h``, ``7d``, ``90m``, ``2w`` ago, or an ISO date or time (naive: in `tz`)."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative[1]), relative[2]
        return now - timedelta(**{_UNITS[unit]: amount}).total_seconds()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: write a time like 2026-11-22, '2026-11-22 23:00' or a span ago "
            "like 24h, 7d, 90m"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def decimal_text(nanos: int) -> str:
    """Nano-units as an exact decimal string, for CSV and JSON: ``0.016``."""
    amount = Decimal(nanos).scaleb(-9).normalize()
    exponent = amount.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{amount:.{places}f}"


def bar(fraction: float, width: int = 20) -> Text:
    """A bar of `width` cells filled to `fraction` (capped at 1), coloured by how full."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    cells = "█" * full + (_BLOCKS[part] if part else "")
    cells = cells.ljust(width, "·")
    style = "red" if fraction >= 0.9 else "yellow" if fraction >= 0.5 else "green"
    return Text(cells, style=style)


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))
