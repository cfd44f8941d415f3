"""Prices: a worst-case estimate before a call, and its actual cost after.

A price is anything with `estimate(call)` and `actual(call, result)`. Two come built in:
`PerCall` (a flat amount, an image at $0.05) and `Dynamic` (your own functions). The
LLM integration adds token prices on the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeAlias, runtime_checkable

from runaway_guard._errors import ContractError
from runaway_guard._money import Money, MoneyLike, parse_money

__all__ = ["Call", "Cost", "Dynamic", "PerCall", "Price", "PriceLike", "as_price"]


@dataclass(frozen=True, slots=True)
class Cost:
    """What a call costs (or may cost): money, and tokens where the price knows them."""

    money: Money
    tokens: int | None = None

    @classmethod
    def of(cls, value: Cost | MoneyLike, *, what: str = "cost") -> Cost:
        if isinstance(value, Cost):
            if value.tokens is not None and value.tokens < 0:
                raise ContractError(f"{what} tokens must not be negative, got {value.tokens}")
            return cls(parse_money(value.money, what=what), value.tokens)
        return cls(parse_money(value, what=what))


@dataclass(slots=True)
class Call:
    """What a price sees of the call it prices."""

    contract: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1


@runtime_checkable
class Price(Protocol):
    """Turns a call into a worst-case estimate before it and an actual cost after it."""

    def estimate(self, call: Call) -> Cost:
        """The most this call can cost. The guard holds this much before calling."""
        ...

    def actual(self, call: Call, result: object) -> Cost | None:
        """What the call cost, from its result; None charges the estimate."""
        ...


@dataclass(frozen=True)
class PerCall:
    """A flat price per call: ``PerCall("$0.05")``."""

    amount: Money

    def __init__(self, amount: MoneyLike) -> None:
        object.__setattr__(self, "amount", parse_money(amount, what="price"))

    def estimate(self, call: Call) -> Cost:
        return Cost(self.amount)

    def actual(self, call: Call, result: object) -> Cost | None:
        return None

    def __str__(self) -> str:
        return f"{self.amount} per call"


EstimateFn: TypeAlias = Callable[[Call], "Cost | MoneyLike"]
ActualFn: TypeAlias = Callable[[Call, Any], "Cost | MoneyLike | None"]


@dataclass(frozen=True)
class Dynamic:
    """A price computed by your functions.

    Args:
        estimate: ``f(call) -> "$0.04"`` (or a `Cost`): the worst case, before the call.
        actual: ``f(call, result) -> "$0.03"``: the real cost, after it. When omitted or
            when it returns None, the estimate is charged.
        label: how the price reads in summaries.
    """

    estimate_fn: EstimateFn
    actual_fn: ActualFn | None = None
    label: str = "dynamic price"

    def __init__(
        self, estimate: EstimateFn, actual: ActualFn | None = None, *, label: str = "dynamic price"
    ) -> None:
        object.__setattr__(self, "estimate_fn", estimate)
        object.__setattr__(self, "actual_fn", actual)
        object.__setattr__(self, "label", label)

    def estimate(self, call: Call) -> Cost:
        return Cost.of(self.estimate_fn(call), what=f"estimate of {call.contract!r}")

    def actual(self, call: Call, result: object) -> Cost | None:
        if self.actual_fn is None:
            return None
        value = self.actual_fn(call, result)
        return None if value is None else Cost.of(value, what=f"actual cost of {call.contract!r}")

    def __str__(self) -> str:
        return self.label


PriceLike: TypeAlias = "Price | MoneyLike | EstimateFn"
"""A `Price`, an amount per call (``"$0.002"``), or an estimate function."""


def as_price(value: object) -> Price:
    """Coerce what a contract accepts as `price=` into a `Price`."""
    if isinstance(value, Price):
        return value
    if isinstance(value, Money | Decimal | str | int | float) and not isinstance(value, bool):
        return PerCall(value)  # type: ignore[arg-type]  # floats are refused inside
    if callable(value):
        return Dynamic(value)
    raise ContractError(
        f"price must be an amount ('$0.002'), a Price, or a function of the call; got {value!r}"
    )
