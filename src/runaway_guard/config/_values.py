"""Reading values out of a parsed TOML document, with errors that name the file and key.

Every parser takes the raw value and a `Place` (the file, and the dotted key of the
value), and returns the library's own object: `Money`, `Budget`, `Retry`, `Breaker`,
`Charge`, `PerCall`. Each error says which file, which key, what is wrong, and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from runaway_guard._budget import Budget, Period, check_count, check_name
from runaway_guard._budget import timezone as zone_named
from runaway_guard._errors import ConfigError, ContractError
from runaway_guard._money import Money, parse_money
from runaway_guard._policy import Breaker, Charge, Retry
from runaway_guard._price import PerCall

__all__ = [
    "CAP_OPTIONS",
    "CONTRACT_OPTIONS",
    "Place",
    "parse_budget",
    "parse_contract_option",
]

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")

COUNT_CAPS: Final = (
    "max_calls_per_run",
    "max_tokens_per_run",
    "max_calls_per_hour",
    "max_calls_per_day",
    "max_tokens_per_day",
)
MONEY_CAPS: Final = ("max_per_run", "max_per_hour", "max_per_day", "max_per_month")
CAP_OPTIONS: Final = frozenset({*COUNT_CAPS, *MONEY_CAPS, "concurrency", "expected_calls_per_hour"})
"""What ``[env.NAME.contracts.CONTRACT]`` may set: the caps `environments=` accepts."""
CONTRACT_OPTIONS: Final = frozenset(
    {
        *CAP_OPTIONS,
        "price",
        "provider_cap",
        "budgets",
        "queue_timeout",
        "retry",
        "charge",
        "breaker",
        "hold_lease",
        "anomaly_factor",
    }
)
"""What ``[contracts.NAME]`` may set."""


@dataclass(frozen=True)
class Place:
    """A configuration file and the table prefix of its settings, for error messages."""

    file: str
    prefix: str = ""
    """``tool.runaway-guard`` inside a pyproject.toml, empty in runaway-guard.toml."""

    def key(self, *parts: str | int) -> str:
        """The dotted TOML key of a value, quoting parts that are not bare keys."""
        out = [self.prefix] if self.prefix else []
        for part in parts:
            if isinstance(part, int):
                out[-1] += f"[{part}]"
            else:
                out.append(part if _BARE_KEY.match(part) else f'"{part}"')
        return ".".join(out)

    def error(self, key: str, problem: str) -> ConfigError:
        """A `ConfigError` that reads ``FILE: KEY: PROBLEM; FIX``."""
        return ConfigError(f"{self.file}: {key}: {problem}" if key else f"{self.file}: {problem}")


def check_keys(table: Mapping[str, Any], allowed: Iterable[str], key: str, place: Place) -> None:
    """Refuse keys that mean nothing here, suggesting the closest known one."""
    known = sorted(allowed)
    for name in table:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise place.error(f"{key}.{name}" if key else name, f"unknown setting; {hint}")


def need_table(value: object, key: str, place: Place) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise place.error(key, f"must be a table ([{key}] or {{ ... }}), got {_shown(value)}")
    return value


def text(value: object, key: str, place: Place) -> str:
    if not isinstance(value, str) or not value.strip():
        raise place.error(key, f"must be a non-empty string in quotes, got {_shown(value)}")
    return value.strip()


def money(value: object, key: str, place: Place) -> Money:
    if isinstance(value, float):
        raise place.error(
            key, f'{value!r} is a float, which cannot hold money exactly; write "${value}"'
        )
    try:
        return parse_money(value, what="the amount")
    except ContractError as exc:
        raise place.error(key, f'{exc}; write an amount such as "$1.00" or "0.50 EUR"') from None


def count(value: object, key: str, place: Place, *, minimum: int = 0) -> int:
    try:
        number = check_count(value, "the value")
    except ContractError:
        raise place.error(
            key, f"must be a whole number (an integer bound), got {_shown(value)}"
        ) from None
    if number < minimum:
        raise place.error(key, f"must be at least {minimum}, got {number}")
    return number


def seconds(value: object, key: str, place: Place) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise place.error(key, f"must be a non-negative number of seconds, got {_shown(value)}")
    return float(value)


def decimal(value: object, key: str, place: Place) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise place.error(key, f'must be a number in quotes ("1.08") or an integer, got {value!r}')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise place.error(key, f"{value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise place.error(key, f"must be a positive number, got {value!r}")
    return number


def zone(value: object, key: str, place: Place) -> str:
    name = text(value, key, place)
    try:
        zone_named(name)
    except ContractError as exc:
        raise place.error(key, str(exc)) from None
    return name


def name(value: object, key: str, place: Place) -> str:
    try:
        return check_name(text(value, key, place), "the name")
    except ContractError as exc:
        raise place.error(key, str(exc)) from None


def parse_budget(value: object, key: str, place: Place) -> Budget:
    """``{ money = "$50", per = "day" }``, ``{ calls = 500, per = "hour", scope = "..." }``."""
    table = need_table(value, key, place)
    check_keys(table, ("money", "calls", "tokens", "per", "scope"), key, place)
    units = [unit for unit in ("money", "calls", "tokens") if unit in table]
    if len(units) != 1:
        raise place.error(key, 'set exactly one of money = "$50", calls = 500 or tokens = 1000000')
    if "per" not in table:
        raise place.error(
            key, f'needs per = one of {", ".join(repr(p.value) for p in Period)} (e.g. "day")'
        )
    per = table["per"]
    if per not in {p.value for p in Period}:
        raise place.error(
            f"{key}.per", f"unknown window {per!r}; choose one of {', '.join(p for p in Period)}"
        )
    scope = name(table["scope"], f"{key}.scope", place) if "scope" in table else None
    unit = units[0]
    if unit == "money":
        return Budget.money(money(table["money"], f"{key}.money", place), per=per, scope=scope)
    limit = count(table[unit], f"{key}.{unit}", place)
    if unit == "calls":
        return Budget.calls(limit, per=per, scope=scope)
    return Budget.tokens(limit, per=per, scope=scope)


def _retry(value: object, key: str, place: Place) -> Retry:
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(count(value, key, place, minimum=1))
    table = need_table(value, key, place)
    allowed = (
        "attempts",
        "max_cost",
        "max_elapsed",
        "backoff",
        "backoff_cap",
        "jitter",
        "retry_after_cap",
    )
    check_keys(table, allowed, key, place)
    if "attempts" not in table:
        raise place.error(
            key,
            "has no attempts: a retry without an attempt cap is unbounded; "
            "write attempts = 3 (the first attempt included)",
        )
    options: dict[str, Any] = {"attempts": count(table["attempts"], f"{key}.attempts", place)}
    if options["attempts"] < 1:
        raise place.error(f"{key}.attempts", "must be at least 1 (the first attempt counts)")
    if "max_cost" in table:
        options["max_cost"] = money(table["max_cost"], f"{key}.max_cost", place)
    for option in ("max_elapsed", "backoff", "backoff_cap", "retry_after_cap"):
        if option in table:
            options[option] = seconds(table[option], f"{key}.{option}", place)
    if "jitter" in table:
        if table["jitter"] not in ("full", "none"):
            raise place.error(f"{key}.jitter", 'choose "full" or "none"')
        options["jitter"] = table["jitter"]
    return Retry(**options)


def _breaker(value: object, key: str, place: Place) -> Breaker | bool:
    if isinstance(value, bool):
        return value
    table = need_table(value, key, place)
    check_keys(table, ("failures", "cooldown", "probe_timeout"), key, place)
    options: dict[str, Any] = {}
    if "failures" in table:
        options["failures"] = count(table["failures"], f"{key}.failures", place, minimum=1)
    for option in ("cooldown", "probe_timeout"):
        if option in table:
            options[option] = seconds(table[option], f"{key}.{option}", place)
    return Breaker(**options)


def _charge(value: object, key: str, place: Place) -> Charge:
    table = need_table(value, key, place)
    allowed = list(Charge.__dataclass_fields__)
    check_keys(table, allowed, key, place)
    for kind, mode in table.items():
        if mode not in ("release", "estimate"):
            raise place.error(f"{key}.{kind}", f'choose "release" or "estimate", got {mode!r}')
    return Charge(**table)


def _price(value: object, key: str, place: Place) -> PerCall:
    return PerCall(money(value, key, place))


def parse_contract_option(option: str, value: object, key: str, place: Place) -> Any:
    """One ``[contracts.NAME]`` setting as the object `Guard.contract` takes."""
    if option in COUNT_CAPS or option == "expected_calls_per_hour":
        return count(value, key, place)
    if option == "concurrency":
        return count(value, key, place, minimum=1)
    if option in MONEY_CAPS:
        return money(value, key, place)
    if option == "price":
        return _price(value, key, place)
    if option == "provider_cap":
        return text(value, key, place)
    if option == "budgets":
        if not isinstance(value, list):
            raise place.error(key, 'must be a list: budgets = [{ money = "$5", per = "day" }]')
        return tuple(parse_budget(item, f"{key}[{n}]", place) for n, item in enumerate(value))
    if option in ("queue_timeout", "hold_lease"):
        number = seconds(value, key, place)
        if option == "hold_lease" and number <= 0:
            raise place.error(key, "must be a positive number of seconds")
        return number
    if option == "retry":
        return _retry(value, key, place)
    if option == "breaker":
        return _breaker(value, key, place)
    if option == "charge":
        return _charge(value, key, place)
    if option == "anomaly_factor":
        factor = decimal(value, key, place)
        if factor < 1:
            raise place.error(key, f"must be at least 1, got {value!r}")
        return factor
    raise AssertionError(option)  # pragma: no cover: keys are checked first


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
