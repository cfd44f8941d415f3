"""Your own token prices, for a model genai-prices does not know."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from runaway_guard._errors import ContractError
from runaway_guard._money import Money, MoneyLike, parse_money
from runaway_guard.llm._prices import Features

__all__ = ["FallbackRates", "TokenRates"]

_MTOK: Final = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenRates:
    """Token prices per million tokens, for a model genai-prices does not know.

    ``rg.TokenRates(input="$3.00", output="$15.00")``. Cached input defaults to the input
    price, which never under-estimates.

    Args:
        input: per million input tokens.
        output: per million output tokens (reasoning tokens included).
        cache_read: per million input tokens read from a cache.
        cache_write: per million input tokens written to a cache.
    """

    input: Money
    output: Money
    cache_read: Money | None = None
    cache_write: Money | None = None

    def __init__(
        self,
        input: MoneyLike,
        output: MoneyLike,
        *,
        cache_read: MoneyLike | None = None,
        cache_write: MoneyLike | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "input", parse_money(input, what="TokenRates input"))
        set_(self, "output", parse_money(output, what="TokenRates output"))
        set_(
            self,
            "cache_read",
            None if cache_read is None else parse_money(cache_read, what="TokenRates cache_read"),
        )
        set_(
            self,
            "cache_write",
            None
            if cache_write is None
            else parse_money(cache_write, what="TokenRates cache_write"),
        )
        for value in (self.input, self.output, self.cache_read, self.cache_write):
            if value is not None and value.currency != "USD":
                raise ContractError(
                    f"TokenRates are in USD, like genai-prices, but got {value}; write '$3.00' "
                    "(the guard converts to the ledger currency with its exchange_rates)"
                )

    def __str__(self) -> str:
        return f"{self.input} in / {self.output} out per MTok"


class FallbackRates:
    """`TokenRates` behind the `Rates` interface."""

    source = "TokenPrice(fallback=...)"
    context_window: int | None = None

    def __init__(self, rates: TokenRates, model: str, provider: str) -> None:
        self.model = model
        self.provider = provider
        self._in = rates.input.amount / _MTOK
        self._out = rates.output.amount / _MTOK
        self._read = (rates.cache_read or rates.input).amount / _MTOK
        self._write = (rates.cache_write or rates.input).amount / _MTOK
        self._rates = rates

    def cost(self, usage: Mapping[str, int]) -> Decimal:
        total_in = usage.get("input_tokens", 0)
        read = usage.get("cache_read_tokens", 0)
        written = usage.get("cache_write_tokens", 0)
        plain = total_in - read - written
        if plain < 0:
            raise ValueError(f"cached input ({read} + {written}) exceeds input_tokens ({total_in})")
        return (
            plain * self._in
            + read * self._read
            + written * self._write
            + usage.get("output_tokens", 0) * self._out
        )

    def worst_case(
        self, input_tokens: int, output_tokens: int, features: Features, searches: int
    ) -> Decimal:
        rate = max(self._in, self._read, self._write if features.cache_write else self._in)
        return input_tokens * rate + output_tokens * self._out

    def lines(self) -> list[tuple[str, str]]:
        rows = [("input", _per_mtok(self._rates.input)), ("output", _per_mtok(self._rates.output))]
        if self._rates.cache_read is not None:
            rows.append(("cache read", _per_mtok(self._rates.cache_read)))
        if self._rates.cache_write is not None:
            rows.append(("cache write", _per_mtok(self._rates.cache_write)))
        return rows


def _per_mtok(money: Money) -> str:
    return f"{money} / MTok"
