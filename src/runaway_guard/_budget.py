"""Budgets: a limit in money, calls or tokens, on a scope, over a window.

A window is a *key*, not a timer: the day budget of 2026-11-22 is the counter
``...|day:2026-11-22``, and the next day simply writes to a new key. Nothing ever needs
a reset job, and a counter never has to be summed from the spend log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runaway_guard._errors import ContractError
from runaway_guard._money import (
    Money,
    MoneyLike,
    Rates,
    floor_nanos,
    format_amount,
    parse_money,
)

__all__ = ["Budget", "Period", "Unit", "Window", "check_count", "timezone", "window_for"]


class Unit(enum.StrEnum):
    """What a budget counts."""

    MONEY = "money"
    CALLS = "calls"
    TOKENS = "tokens"
    SUCCESSES = "successes"
    """Attempts that got an answer; tracked (never limited) for the circuit breaker."""


class Period(enum.StrEnum):
    """The window a budget's counter covers."""

    RUN = "run"
    """The lifetime of the enclosing run (`guard.run(...)`)."""
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    """ISO weeks, Monday to Sunday."""
    MONTH = "month"
    TOTAL = "total"
    """Forever: a lifetime cap."""


_CALENDAR: Final = (Period.HOUR, Period.DAY, Period.WEEK, Period.MONTH)


@dataclass(frozen=True, slots=True)
class Window:
    """One concrete window: its counter key and when it ends (epoch seconds, or None)."""

    key: str
    end: float | None

    def describe_end(self, tz: ZoneInfo) -> str:
        if self.end is None:
            return ""
        local = datetime.fromtimestamp(self.end, tz=tz)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def timezone(name: str) -> ZoneInfo:
    """The `ZoneInfo` called `name`, or a `ContractError` that says how to spell one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ContractError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Amsterdam'"
        ) from exc


def window_for(period: Period, now: float, tz: ZoneInfo, run_path: str) -> Window:
    """The window of `period` that contains `now` (in `tz`), or the run's own window."""
    if period is Period.RUN:
        return Window(f"run:{run_path}", None)
    if period is Period.TOTAL:
        return Window("total", None)
    local = datetime.fromtimestamp(now, tz=tz)
    if period is Period.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0)
        key = f"hour:{start:%Y-%m-%dT%H}"
        # Step in UTC so a DST change does not produce a 0- or 2-hour window.
        end = start.astimezone(UTC) + timedelta(hours=1)
        return Window(key, end.timestamp())
    if period is Period.DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(f"day:{start:%Y-%m-%d}", _local_midnight(start + timedelta(days=1), tz))
    if period is Period.WEEK:
        year, week, weekday = local.isocalendar()
        start = (local - timedelta(days=weekday - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return Window(f"week:{year}-W{week:02d}", _local_midnight(start + timedelta(days=7), tz))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Window(f"month:{start:%Y-%m}", _local_midnight(following, tz))


def _local_midnight(day: datetime, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def check_count(value: object, what: str) -> int:
    """A non-negative integer bound, or a `ContractError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{what} must be a whole number (an integer bound), got {value!r}")
    if value < 0:
        raise ContractError(f"{what} must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class Budget:
    """A limit on a scope over a window. A limit of 0 admits nothing.

    Build one with `Budget.money`, `Budget.calls` or `Budget.tokens`:

    >>> print(Budget.money("$5.00", per="day", scope="tenant:acme"))
    $5.00 per day on tenant:acme

    Args:
        limit: `Money` for money budgets, an `int` for calls and tokens.
        unit: what is counted.
        per: the window (`"run"`, `"hour"`, `"day"`, `"week"`, `"month"`, `"total"`).
        scope: whose budget this is (``"global"``, ``"tenant:acme"``). None means the
            owner's own scope: the contract's, or the run's.
        option: the setting that produced this budget, named in errors ("max_per_day").
    """

    limit: Money | int
    unit: Unit
    per: Period = Period.RUN
    scope: str | None = None
    option: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", Unit(self.unit))
        object.__setattr__(self, "per", _period(self.per))
        if self.unit is Unit.MONEY:
            if not isinstance(self.limit, Money):
                raise ContractError(f"a money budget needs a Money limit, got {self.limit!r}")
            if self.limit.nanos < 0:
                raise ContractError(f"budget limit must not be negative, got {self.limit}")
        else:
            check_count(self.limit, f"{self.unit} budget limit")
        if self.scope is not None:
            check_name(self.scope, "budget scope")

    @classmethod
    def money(
        cls, limit: MoneyLike, *, per: Period | str = Period.RUN, scope: str | None = None
    ) -> Budget:
        """A cap on money spent per window, e.g. ``Budget.money("$1.00", per="day")``."""
        return cls(parse_money(limit, what="budget limit"), Unit.MONEY, _period(per), scope)

    @classmethod
    def calls(
        cls, limit: int, *, per: Period | str = Period.RUN, scope: str | None = None
    ) -> Budget:
        """A cap on the number of paid attempts per window."""
        return cls(check_count(limit, "calls budget limit"), Unit.CALLS, _period(per), scope)

    @classmethod
    def tokens(
        cls, limit: int, *, per: Period | str = Period.RUN, scope: str | None = None
    ) -> Budget:
        """A cap on tokens (input plus output) per window."""
        return cls(check_count(limit, "tokens budget limit"), Unit.TOKENS, _period(per), scope)

    def limit_units(self, currency: str, rates: Rates | None = None) -> int:
        """The limit as the integer the ledger compares against.

        A money limit in another currency is converted with `rates`, rounding *down*:
        a converted cap never admits more than the one written.
        """
        if isinstance(self.limit, Money):
            if self.limit.currency == currency:
                return self.limit.nanos
            rate = (rates or {}).get(self.limit.currency)
            if rate is None:
                raise ContractError(
                    f"budget limit {self.limit} is in {self.limit.currency} but the ledger "
                    f"counts {currency}; write it in {currency} or pass exchange_rates="
                    f"{{'{self.limit.currency}': Decimal('...')}} to the Guard"
                )
            return floor_nanos(self.limit.amount * rate)
        return self.limit

    def render(self, amount: int, currency: str) -> str:
        """Render an integer amount of this budget's unit for people."""
        return render_units(self.unit, amount, currency)

    def __str__(self) -> str:
        limit = str(self.limit) if isinstance(self.limit, Money) else f"{self.limit} {self.unit}"
        scope = f" on {self.scope}" if self.scope else ""
        return f"{limit} per {self.per}{scope}"


def render_units(unit: Unit, amount: int, currency: str) -> str:
    if unit is Unit.MONEY:
        return format_amount(amount, currency)
    return f"{amount} {unit}" if unit is Unit.TOKENS else f"{amount} call{'s' * (amount != 1)}"


def check_name(name: object, what: str) -> str:
    """Names end up inside ledger keys: no separators, no empty strings."""
    if not isinstance(name, str) or not name.strip():
        raise ContractError(f"{what} must be a non-empty string, got {name!r}")
    bad = {"|", "\n", "\r", "\x00"} & set(name)
    if bad:
        raise ContractError(f"{what} {name!r} must not contain {sorted(bad)}")
    return name


def _period(value: Period | str) -> Period:
    try:
        return Period(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in Period)
        raise ContractError(f"unknown budget window {value!r}; choose one of {choices}") from None


CALENDAR_PERIODS: Final = _CALENDAR
