"""Money: `Decimal` at the surface, integer nano-units of one currency in storage.

A `Money` holds an exact integer count of nano-units (10**-9 of a currency unit) and an
ISO 4217 code. Nothing here ever touches `float`: a float price is refused, because
`0.1` is not one tenth and a ledger that drifts by a nano-unit per call is wrong.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeAlias

from runaway_guard._errors import ContractError

__all__ = [
    "NANOS",
    "Money",
    "MoneyLike",
    "Rates",
    "ceil_nanos",
    "floor_nanos",
    "format_amount",
    "parse_money",
]

NANOS: Final = 10**9
"""Nano-units per currency unit."""

_SYMBOLS: Final = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW"}
_PREFIX: Final = {code: symbol for symbol, code in _SYMBOLS.items()}
_CONTEXT: Final = decimal.Context(prec=60, rounding=decimal.ROUND_CEILING)
_PATTERN: Final = re.compile(
    r"""^\s*
    (?P<sign1>[-+]?)\s*
    (?:(?P<symbol>[$€£¥₹₩])|(?P<code1>[A-Za-z]{3})\s+)?\s*
    (?P<sign2>[-+]?)\s*
    (?P<number>(?:\d[\d_,]*)?(?:\.\d+)?(?:[eE][-+]?\d+)?)
    \s*(?P<code2>[A-Za-z]{3})?\s*$""",
    re.VERBOSE,
)

MoneyLike: TypeAlias = "Money | Decimal | int | str"
"""What the API accepts for an amount: `"$0.05"`, `"0.05 USD"`, `"€4.80"`, a `Decimal`."""

Rates: TypeAlias = Mapping[str, Decimal]
"""Exchange rates into the ledger currency: ``{"EUR": Decimal("1.08")}`` means 1 EUR = 1.08."""


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount of one currency, stored as integer nano-units.

    Build one with `Money.parse` (or `parse_money`) from text or a `Decimal`; the
    constructor takes nano-units directly.
    """

    nanos: int
    currency: str = "USD"

    @classmethod
    def parse(cls, value: MoneyLike, currency: str | None = None) -> Money:
        """Parse `value`, defaulting to `currency` (USD when None) when it names none."""
        return parse_money(value, currency=currency)

    @classmethod
    def zero(cls, currency: str = "USD") -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str = "USD") -> Money:
        """Round `amount` *up* to a whole nano-unit: estimates and costs never shrink."""
        return cls(ceil_nanos(amount), currency)

    @property
    def amount(self) -> Decimal:
        return Decimal(self.nanos).scaleb(-9, context=_CONTEXT)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.nanos + other.nanos, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.nanos - other.nanos, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Money(self.nanos * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.nanos < other.nanos

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.nanos <= other.nanos

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.nanos > other.nanos

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.nanos >= other.nanos

    def __bool__(self) -> bool:
        return self.nanos != 0

    def __str__(self) -> str:
        return format_amount(self.nanos, self.currency)

    def __repr__(self) -> str:
        return f"Money('{self}')"

    def to(self, currency: str, rates: Rates | None) -> Money:
        """Convert into `currency` using `rates` (rounding up), or raise `ContractError`."""
        if currency == self.currency:
            return self
        rate = (rates or {}).get(self.currency)
        if rate is None:
            raise ContractError(
                f"{self} is in {self.currency} but the ledger counts {currency} and no "
                f"exchange rate is configured (pass exchange_rates={{'{self.currency}': "
                f"Decimal('...')}} to the Guard, the value of one {self.currency} in {currency})"
            )
        return Money.from_decimal(self.amount * rate, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ContractError(
                f"cannot combine {self} and {other}: different currencies "
                "(configure exchange_rates on the Guard)"
            )


def ceil_nanos(amount: Decimal) -> int:
    """Whole nano-units in `amount`, rounded towards +infinity."""
    return int(amount.scaleb(9, context=_CONTEXT).to_integral_value(decimal.ROUND_CEILING))


def floor_nanos(amount: Decimal) -> int:
    """Whole nano-units in `amount`, rounded towards -infinity (for limits)."""
    return int(amount.scaleb(9, context=_CONTEXT).to_integral_value(decimal.ROUND_FLOOR))


def format_amount(nanos: int, currency: str) -> str:
    """Render nano-units for people: ``$0.16``, ``$0.0075``, ``€4.80``, ``12.50 CHF``."""
    amount = Decimal(nanos).scaleb(-9, context=_CONTEXT).normalize(_CONTEXT)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    exponent = amount.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    text = f"{amount:.{places}f}"
    symbol = _PREFIX.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def parse_money(value: object, *, currency: str | None = None, what: str = "amount") -> Money:
    """Parse an amount of money, exactly.

    Args:
        value: ``"$0.05"``, ``"0.05 USD"``, ``"USD 0.05"``, ``"€4.80"``, a `Decimal`, an
            `int` (whole units) or a `Money`. Floats are refused: they are not exact.
        currency: the currency of a bare number (USD when None).
        what: names the value in error messages (``"max_per_day"``).

    Raises:
        ContractError: NaN, infinities, negative amounts, floats, finer than a nano-unit,
            or text that is not an amount.
    """
    default = (currency or "USD").upper()
    if isinstance(value, Money):
        if value.nanos < 0:
            raise ContractError(f"{what} must not be negative, got {value}")
        return value
    if isinstance(value, bool):
        raise ContractError(f"{what} must be an amount of money, got {value!r}")
    if isinstance(value, float):
        raise ContractError(
            f"{what} {value!r} is a float, which cannot hold money exactly; "
            f"write it as a string ('${value}') or Decimal('{value}')"
        )
    if isinstance(value, int):
        amount, code = Decimal(value), default
    elif isinstance(value, Decimal):
        amount, code = value, default
    elif isinstance(value, str):
        amount, code = _parse_text(value, default, what)
    else:
        raise ContractError(
            f"{what} must be text like '$0.05' or a Decimal, got {type(value).__name__} {value!r}"
        )
    if not amount.is_finite():
        raise ContractError(f"{what} must be a finite amount, got {value!r}")
    if amount < 0:
        raise ContractError(f"{what} must not be negative, got {value!r}")
    nanos = amount.scaleb(9, context=_CONTEXT)
    if nanos != nanos.to_integral_value():
        raise ContractError(f"{what} {value!r} is finer than a nano-unit (10**-9 {code}); round it")
    return Money(int(nanos), code)


def _parse_text(text: str, default: str, what: str) -> tuple[Decimal, str]:
    match = _PATTERN.match(text)
    if match is None or not match["number"] or not any(ch.isdigit() for ch in match["number"]):
        raise ContractError(
            f"{what} {text!r} is not an amount of money; write '$0.05', '0.05 USD' or '€4.80'"
        )
    codes = [c.upper() for c in (match["code1"], match["code2"]) if c]
    if match["symbol"]:
        codes.insert(0, _SYMBOLS[match["symbol"]])
    if len(set(codes)) > 1:
        raise ContractError(f"{what} {text!r} names two currencies: {' and '.join(codes)}")
    code = codes[0] if codes else default
    if match["sign1"] == "-" or match["sign2"] == "-":
        raise ContractError(f"{what} must not be negative, got {text!r}")
    try:
        amount = Decimal(match["number"].replace("_", "").replace(",", ""))
    except decimal.InvalidOperation as exc:
        raise ContractError(f"{what} {text!r} is not an amount of money") from exc
    return amount, code
