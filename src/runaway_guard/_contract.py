"""Cost contracts: one paid call site, declared, with its own arithmetic checked.

A `ContractSpec` is pure data. It knows its price, its budgets and its policies, can say
what its worst case is (`max_calls_per_run x unit price`), and renders itself as the
cost-contract text a reviewer reads (`summary()`). The guard binds it to a ledger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runaway_guard._budget import Budget, Period, Unit, check_count, check_name
from runaway_guard._errors import ContractError
from runaway_guard._money import Money, MoneyLike, parse_money
from runaway_guard._policy import NO_RETRY, Breaker, Charge, Retry
from runaway_guard._price import PerCall, Price, PriceLike, as_price

__all__ = ["DEFAULT_LEASE", "ContractSpec", "declare_contract"]

DEFAULT_LEASE = 900.0
"""Seconds a hold lives without its holder before it may be reaped (15 minutes)."""

_OPTIONS: tuple[tuple[str, Unit, Period], ...] = (
    ("max_calls_per_run", Unit.CALLS, Period.RUN),
    ("max_per_run", Unit.MONEY, Period.RUN),
    ("max_tokens_per_run", Unit.TOKENS, Period.RUN),
    ("max_calls_per_hour", Unit.CALLS, Period.HOUR),
    ("max_per_hour", Unit.MONEY, Period.HOUR),
    ("max_calls_per_day", Unit.CALLS, Period.DAY),
    ("max_per_day", Unit.MONEY, Period.DAY),
    ("max_tokens_per_day", Unit.TOKENS, Period.DAY),
    ("max_per_month", Unit.MONEY, Period.MONTH),
)


@dataclass(frozen=True)
class ContractSpec:
    """A declared paid call site. Build it with `declare_contract` (or `guard.contract`)."""

    name: str
    price: Price
    provider_cap: str
    max_calls_per_run: int | None = None
    max_per_run: Money | None = None
    max_tokens_per_run: int | None = None
    max_calls_per_hour: int | None = None
    max_per_hour: Money | None = None
    max_calls_per_day: int | None = None
    max_per_day: Money | None = None
    max_tokens_per_day: int | None = None
    max_per_month: Money | None = None
    extra_budgets: tuple[Budget, ...] = ()
    concurrency: int | None = None
    retry: Retry = NO_RETRY
    charge: Charge = field(default_factory=Charge)
    breaker: Breaker | None = field(default_factory=Breaker)
    hold_lease: float = DEFAULT_LEASE
    expected_calls_per_hour: int | None = None
    anomaly_factor: Decimal = Decimal(3)
    derived: frozenset[str] = frozenset()
    """Options computed from the others (``max_per_run`` from calls x price)."""
    environment: str | None = None
    """The environment whose caps were applied (``RUNAWAY_GUARD_ENV``), if it had any."""
    environments: tuple[str, ...] = ()
    """Environments the declaration has caps for."""

    @property
    def unit_price(self) -> Money | None:
        """The flat price per call, when the price is flat."""
        return self.price.amount if isinstance(self.price, PerCall) else None

    def budgets(self) -> tuple[Budget, ...]:
        """Every budget the contract declares, each tagged with the option that set it."""
        found = []
        for option, unit, period in _OPTIONS:
            value = getattr(self, option)
            if value is not None:
                found.append(Budget(value, unit, period, None, option=option))
        return (*found, *self.extra_budgets)

    def worst_case_per_run(self) -> Money | None:
        """The most one run can spend on this contract, from the bounds alone."""
        candidates = []
        if self.max_per_run is not None:
            candidates.append(self.max_per_run)
        unit = self.unit_price
        if unit is not None and self.max_calls_per_run is not None:
            candidates.append(unit * self.max_calls_per_run)
        return min(candidates, key=lambda m: m.nanos) if candidates else None

    def summary(self) -> str:
        """The cost contract as text: the numbers a reviewer checks before deploying."""
        unit = self.unit_price
        rows: list[tuple[str, str]] = [("price", str(self.price))]

        def note(option: str) -> str:
            return " (derived)" if option in self.derived else ""

        if self.max_calls_per_run is not None:
            rows.append(
                ("max calls per run", f"{self.max_calls_per_run}{note('max_calls_per_run')}")
            )
        if self.max_per_run is not None:
            text = str(self.max_per_run)
            if unit is not None and self.max_calls_per_run is not None:
                product = unit * self.max_calls_per_run
                text += f" (calls x price = {self.max_calls_per_run} x {unit} = {product})"
                if product > self.max_per_run and unit.nanos:
                    binding = self.max_per_run.nanos // unit.nanos
                    text += f"; the money cap binds first, at {binding} calls"
            rows.append(("max per run", text + note("max_per_run")))
        for option, label in (
            ("max_tokens_per_run", "max tokens per run"),
            ("max_calls_per_hour", "max calls per hour"),
            ("max_per_hour", "max per hour"),
            ("max_calls_per_day", "max calls per day"),
            ("max_per_day", "max per day"),
            ("max_tokens_per_day", "max tokens per day"),
            ("max_per_month", "max per month"),
        ):
            value = getattr(self, option)
            if value is not None:
                rows.append((label, str(value)))
        rows.extend(("budget", str(budget)) for budget in self.extra_budgets)
        rows.append(("provider hard cap", self.provider_cap))
        rows.append(
            ("concurrency", "unbounded" if self.concurrency is None else str(self.concurrency))
        )
        rows.append(("retries", self.retry.describe()))
        if self.breaker is not None:
            rows.append(
                (
                    "circuit breaker",
                    f"opens after {self.breaker.failures} failures, "
                    f"{self.breaker.cooldown:g}s cooldown",
                )
            )
        if self.expected_calls_per_hour is not None:
            rows.append(
                (
                    "anomaly trip",
                    f"kill switch if calls in an hour > {self.expected_calls_per_hour} x "
                    f"{self.anomaly_factor}",
                )
            )
        if self.environments:
            rows.append(
                (
                    "environments",
                    f"caps for {', '.join(self.environments)}; applied: "
                    f"{self.environment or 'none (the declared caps)'}",
                )
            )
        worst = self.worst_case_per_run()
        if worst is not None:
            rows.append(("worst case per run", str(worst)))
        width = max(len(label) for label, _ in rows)
        lines = [f"cost contract: {self.name}"]
        lines.extend(f"  {label + ':':<{width + 1}} {value}" for label, value in rows)
        return "\n".join(lines)


def _money_option(value: MoneyLike | None, option: str) -> Money | None:
    return None if value is None else parse_money(value, what=option)


def _count_option(value: int | None, option: str) -> int | None:
    return None if value is None else check_count(value, option)


def declare_contract(
    name: str,
    *,
    price: PriceLike,
    provider_cap: str | None = None,
    max_calls_per_run: int | None = None,
    max_per_run: MoneyLike | None = None,
    max_tokens_per_run: int | None = None,
    max_calls_per_hour: int | None = None,
    max_per_hour: MoneyLike | None = None,
    max_calls_per_day: int | None = None,
    max_per_day: MoneyLike | None = None,
    max_tokens_per_day: int | None = None,
    max_per_month: MoneyLike | None = None,
    budgets: tuple[Budget, ...] | list[Budget] = (),
    concurrency: int | None = None,
    retry: Retry | int | None = None,
    charge: Charge | None = None,
    breaker: Breaker | bool | None = True,
    hold_lease: float = DEFAULT_LEASE,
    expected_calls_per_hour: int | None = None,
    anomaly_factor: Decimal | int | str = 3,
    environments: Mapping[str, Mapping[str, Any]] | None = None,
    environment: str | None = None,
) -> ContractSpec:
    """Validate a contract declaration and derive what it leaves implicit.

    See `Guard.contract` for the meaning of each option. When `environment` names one of
    `environments`, that environment's caps replace the declared ones first.

    Raises:
        ContractError: a missing provider cap, no per-run bound, a negative, NaN or
            float amount, a bound that is not an integer, or an unknown option in
            `environments`.
    """
    check_name(name, "contract name")
    caps: dict[str, Any] = {
        "max_calls_per_run": max_calls_per_run,
        "max_per_run": max_per_run,
        "max_tokens_per_run": max_tokens_per_run,
        "max_calls_per_hour": max_calls_per_hour,
        "max_per_hour": max_per_hour,
        "max_calls_per_day": max_calls_per_day,
        "max_per_day": max_per_day,
        "max_tokens_per_day": max_tokens_per_day,
        "max_per_month": max_per_month,
        "concurrency": concurrency,
        "expected_calls_per_hour": expected_calls_per_hour,
    }
    applied = None
    for env_name, overrides in (environments or {}).items():
        check_name(env_name, f"contract {name!r} environment name")
        unknown = set(overrides) - set(caps)
        if unknown:
            raise ContractError(
                f"contract {name!r} environments[{env_name!r}] sets {sorted(unknown)}, which "
                f"are not caps; an environment may set: {', '.join(sorted(caps))}"
            )
        if env_name == environment:
            caps.update(overrides)
            applied = env_name
    max_calls_per_run = caps["max_calls_per_run"]
    max_per_run = caps["max_per_run"]
    max_tokens_per_run = caps["max_tokens_per_run"]
    max_calls_per_hour = caps["max_calls_per_hour"]
    max_per_hour = caps["max_per_hour"]
    max_calls_per_day = caps["max_calls_per_day"]
    max_per_day = caps["max_per_day"]
    max_tokens_per_day = caps["max_tokens_per_day"]
    max_per_month = caps["max_per_month"]
    concurrency = caps["concurrency"]
    expected_calls_per_hour = caps["expected_calls_per_hour"]
    if not isinstance(provider_cap, str) or not provider_cap.strip():
        raise ContractError(
            f"contract {name!r} needs provider_cap: say where the matching hard cap is set "
            "at the provider (e.g. provider_cap='OpenAI org usage limit, $25/month'). "
            "A cap only in code can be bypassed by a bug in that code."
        )
    price_obj = as_price(price)
    counts = {
        option: _count_option(value, option)
        for option, value in (
            ("max_calls_per_run", max_calls_per_run),
            ("max_tokens_per_run", max_tokens_per_run),
            ("max_calls_per_hour", max_calls_per_hour),
            ("max_calls_per_day", max_calls_per_day),
            ("max_tokens_per_day", max_tokens_per_day),
            ("expected_calls_per_hour", expected_calls_per_hour),
        )
    }
    moneys = {
        option: _money_option(value, option)
        for option, value in (
            ("max_per_run", max_per_run),
            ("max_per_hour", max_per_hour),
            ("max_per_day", max_per_day),
            ("max_per_month", max_per_month),
        )
    }
    derived: set[str] = set()
    unit = price_obj.amount if isinstance(price_obj, PerCall) else None
    calls_run, money_run = counts["max_calls_per_run"], moneys["max_per_run"]
    if calls_run is None and money_run is None:
        raise ContractError(
            f"contract {name!r} has no per-run bound: set max_calls_per_run (an integer) "
            "or max_per_run (an amount). 'It obviously terminates' is not a bound."
        )
    if unit is not None and money_run is None and calls_run is not None:
        moneys["max_per_run"] = unit * calls_run
        derived.add("max_per_run")
    elif unit is not None and calls_run is None and money_run is not None:
        if unit.currency != money_run.currency:
            raise ContractError(
                f"contract {name!r}: price {unit} and max_per_run {money_run} are in "
                "different currencies; write both in one currency"
            )
        counts["max_calls_per_run"] = money_run.nanos // unit.nanos if unit.nanos else None
        if counts["max_calls_per_run"] is not None:
            derived.add("max_calls_per_run")
    if unit is not None and not unit.nanos and counts["max_calls_per_run"] is None:
        # A money cap bounds nothing when every call is free.
        raise ContractError(
            f"contract {name!r} has a price of {unit} and only a money bound per run, so "
            "nothing bounds the number of calls: set max_calls_per_run (an integer)"
        )
    if concurrency is not None:
        check_count(concurrency, "concurrency")
        if concurrency < 1:
            raise ContractError(
                f"contract {name!r}: concurrency must be at least 1 (or None for unbounded)"
            )
    if isinstance(retry, int) and not isinstance(retry, bool):
        retry = Retry(retry)
    if retry is not None and not isinstance(retry, Retry):
        raise ContractError(
            f"contract {name!r}: retry must be rg.Retry(attempts=...), got {retry!r}"
        )
    if breaker is True:
        breaker = Breaker()
    elif breaker is False:
        breaker = None
    lease = float(hold_lease)
    if not math.isfinite(lease) or lease <= 0:
        raise ContractError(f"contract {name!r}: hold_lease must be a positive number of seconds")
    try:
        factor = Decimal(str(anomaly_factor))
    except ArithmeticError:
        factor = Decimal("NaN")
    if not factor.is_finite() or factor < 1:
        raise ContractError(
            f"contract {name!r}: anomaly_factor must be a number >= 1, got {anomaly_factor!r}"
        )
    extra = tuple(budgets)
    for budget in extra:
        if not isinstance(budget, Budget):
            raise ContractError(
                f"contract {name!r}: budgets must be rg.Budget objects, got {budget!r}"
            )
    return ContractSpec(
        name=name,
        price=price_obj,
        provider_cap=provider_cap.strip(),
        max_calls_per_run=counts["max_calls_per_run"],
        max_per_run=moneys["max_per_run"],
        max_tokens_per_run=counts["max_tokens_per_run"],
        max_calls_per_hour=counts["max_calls_per_hour"],
        max_per_hour=moneys["max_per_hour"],
        max_calls_per_day=counts["max_calls_per_day"],
        max_per_day=moneys["max_per_day"],
        max_tokens_per_day=counts["max_tokens_per_day"],
        max_per_month=moneys["max_per_month"],
        extra_budgets=extra,
        concurrency=concurrency,
        retry=retry if retry is not None else NO_RETRY,
        charge=charge if charge is not None else Charge(),
        breaker=breaker,
        hold_lease=lease,
        expected_calls_per_hour=counts["expected_calls_per_hour"],
        anomaly_factor=factor,
        derived=frozenset(derived),
        environment=applied,
        environments=tuple(sorted(environments or {})),
    )
