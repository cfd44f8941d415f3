"""Token prices: genai-prices' bundled data, resolved per model, priced exactly and fast.

`resolve` finds a model's prices in genai-prices (offline, bundled; the background updater
is never started here) and returns `GenaiRates`, which prices a usage with the same
arithmetic as ``genai_prices.calc_price``, in microseconds instead of a few hundred:
the decomposition of usage into priced leaves is mirrored step by step, and a property
test holds the two equal for every OpenAI and Anthropic model.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from runaway_guard._money import Money, format_amount

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice, Provider
    from genai_prices.units import UnitDef, UnitRegistry

__all__ = ["Features", "GenaiRates", "Rates", "genai", "resolve"]

EXTRA_HINT: Final = "pip install 'runaway-guard[llm]'"
_CACHE_LIMIT: Final = 1024


def genai() -> ModuleType:
    """The `genai_prices` module, imported on first use, or an error naming the extra."""
    try:
        import genai_prices
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(f"token prices need genai-prices: {EXTRA_HINT}") from exc
    return genai_prices


class Features(NamedTuple):
    """What a request could be billed for beyond plain text tokens (worst-case pricing)."""

    cache_write: bool = False
    audio_in: bool = False
    image_in: bool = False
    audio_out: bool = False
    tools: bool = False


class Rates(Protocol):
    """A model's prices: the exact cost of a usage, and the worst case of a request."""

    provider: str
    model: str
    source: str
    context_window: int | None

    def cost(self, usage: Mapping[str, int]) -> Decimal:
        """USD for a usage in genai-prices keys (``input_tokens`` counts cached input too)."""
        ...

    def worst_case(
        self, input_tokens: int, output_tokens: int, features: Features, searches: int
    ) -> Decimal:
        """The most `input_tokens` in and `output_tokens` out can cost, in USD."""
        ...

    def lines(self) -> list[tuple[str, str]]:
        """(unit, price) rows for people: ``("input", "$2.50 / MTok")``."""
        ...


# -- genai-prices --------------------------------------------------------------------------------


@functools.cache
def _registry() -> UnitRegistry | None:
    # The unit registry drives genai-prices' own decomposition; without it (a future
    # genai-prices that moved it), every cost goes through calc_price instead.
    try:
        from genai_prices.units import _get_registry
    except ImportError:  # pragma: no cover - depends on the installed genai-prices
        return None
    return _get_registry()


class _Priced(NamedTuple):
    """A priced unit, in the order genai-prices computes leaves, with what it checks."""

    key: str
    descendants: tuple[str, ...]
    """Priced units inside this one: their leaves are subtracted from its value."""
    parts: frozenset[str]
    """Usage keys inside this one: reporting one of them requires reporting this one."""
    joins: tuple[tuple[str, str], ...]
    """Pairs of usage keys that together make this one (it must then be reported)."""


_checks: dict[tuple[int, str], tuple[frozenset[str], tuple[tuple[str, str], ...]]] = {}


def _missing_checks(
    unit: UnitDef, registry: UnitRegistry
) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """What genai-prices checks when a priced unit is missing from a usage (see
    ``Usage._infer_missing_value``), computed once per unit instead of once per call."""
    found = _checks.get((id(registry), unit.usage_key))
    if found is not None:
        return found
    units = sorted(registry.units.values(), key=lambda u: u.usage_key)
    parts = frozenset(u.usage_key for u in units if u is not unit and _contains(unit, u))
    joins = tuple(
        (left.usage_key, right.usage_key)
        for index, left in enumerate(units)
        for right in units[index + 1 :]
        if left.is_compatible_with(right)
        and not _contains(left, right)
        and not _contains(right, left)
        and dict(unit.dimensions) == {**left.dimensions, **right.dimensions}
    )
    _checks[(id(registry), unit.usage_key)] = (parts, joins)
    return parts, joins


class _Entry(NamedTuple):
    key: str  # the usage key
    unit: UnitDef
    price: Any  # Decimal | TieredPrices


class GenaiRates:
    """One model's resolved genai-prices prices (for one price context and date)."""

    def __init__(
        self,
        provider: Provider,
        model: ModelInfo,
        price: ModelPrice,
        *,
        when: datetime,
        context: Mapping[str, str] | None,
    ) -> None:
        self.provider = provider.id
        self.model = model.id
        self.context_window = model.context_window
        self.source = f"genai-prices {genai().__version__}"
        self._provider = provider
        self._info = model
        self._price = price
        self._when = when
        self._context = context
        self._error: ValueError | None = None
        self._entries: list[_Entry] = []
        self._priced: list[_Priced] = []
        self._tiered = False
        self._thresholds: list[int] = []
        self._worst: dict[tuple[Features, int], tuple[Decimal, Decimal, Decimal, Decimal]] = {}
        registry = _registry()
        self._fast = registry is not None
        if registry is None:  # pragma: no cover - depends on the installed genai-prices
            return
        self._registry = registry
        for key, value in price.__dict__.items():
            if key.startswith("_") or value is None:
                continue
            try:
                unit = registry.unit_for_price_key(key)
            except KeyError:
                self._fast = False  # genai-prices warns and skips it; let it do so
                continue
            self._entries.append(_Entry(unit.usage_key, unit, value))
        from genai_prices.types import TieredPrices
        from genai_prices.validation import validate_priced_units

        self._tiered = any(isinstance(e.price, TieredPrices) for e in self._entries)
        # Tier starts split input sizes into buckets that share their worst-case rates.
        self._thresholds = sorted(
            {
                tier.start
                for e in self._entries
                if hasattr(e.price, "tiers")
                for tier in e.price.tiers
            }
        )
        try:
            validate_priced_units(tuple(e.unit for e in self._entries), registry)
        except ValueError as exc:
            self._error = exc
        # Most specific units first, and each unit's priced descendants: genai-prices'
        # compute_leaf_values, precomputed once per model instead of once per call.
        priced = sorted(
            (e for e in self._entries if e.key != "requests"),
            key=lambda e: (-len(e.unit.dimensions), e.key),
        )
        self._priced = [
            _Priced(
                entry.key,
                tuple(
                    other.key
                    for other in priced
                    if other is not entry and _contains(entry.unit, other.unit)
                ),
                *_missing_checks(entry.unit, registry),
            )
            for entry in priced
        ]

    # -- exact cost ---------------------------------------------------------------------------
    def cost(self, usage: Mapping[str, int]) -> Decimal:
        if self._error is not None:
            raise self._error
        if not self._fast:  # pragma: no cover - depends on the installed genai-prices
            return self._slow_cost(usage)
        leaves: dict[str, int] = {}
        for key, descendants, parts, joins in self._priced:
            value = usage.get(key)
            if value is None:
                # genai-prices infers 0 for a priced unit the usage did not report, unless
                # the usage reports a part of it (or two parts that together make it).
                if parts and any(v > 0 and k in parts for k, v in usage.items()):
                    raise ValueError(f"usage reports parts of {key} but not its total")
                if joins and any(usage.get(a, 0) > 0 and usage.get(b, 0) > 0 for a, b in joins):
                    raise ValueError(f"usage needs an explicit {key}")
                value = 0
            leaf = value
            for part in descendants:
                leaf -= leaves[part]
            if leaf < 0:
                raise ValueError(f"invalid usage: the parts of {key} add up to more than {value}")
            leaves[key] = leaf
        total_input = usage.get("input_tokens", 0) if self._tiered else 0
        total = Decimal(0)
        for entry in self._entries:
            count = 1 if entry.key == "requests" else leaves[entry.key]
            if count:  # a zero term adds nothing (and costs three Decimal operations)
                total += _unit_price(entry.price, count, total_input, entry.unit.per)
        return total

    def _slow_cost(self, usage: Mapping[str, int]) -> Decimal:  # pragma: no cover
        result = self._info.calc_price(
            genai().Usage(**usage),
            self._provider,
            genai_request_timestamp=self._when,
            price_context=self._context,
        )
        total: Decimal = result.total_price
        return total

    # -- worst case ---------------------------------------------------------------------------
    def worst_case(
        self, input_tokens: int, output_tokens: int, features: Features, searches: int
    ) -> Decimal:
        bucket = bisect.bisect_left(self._thresholds, input_tokens) if self._thresholds else 0
        key = (features, bucket)
        rates = self._worst.get(key)
        if rates is None:
            rates = self._worst[key] = self._worst_rates(input_tokens, features)
        in_rate, out_rate, fee, per_search = rates
        return input_tokens * in_rate + output_tokens * out_rate + fee + per_search * searches

    def _worst_rates(
        self, input_tokens: int, features: Features
    ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The dearest input and output rates that could apply, the fee, the search fee."""
        in_rate = out_rate = fee = per_search = Decimal(0)
        for entry in self._entries:
            dims = entry.unit.dimensions
            rate = _resolved(entry.price, input_tokens) / entry.unit.per
            if dims.get("family") == "tokens":
                if not _allowed(dims, features):
                    continue
                if dims.get("direction") == "input":
                    in_rate = max(in_rate, rate)
                elif dims.get("direction") == "output":
                    out_rate = max(out_rate, rate)
            elif entry.key == "requests":
                fee += rate
            elif entry.key == "web_searches":
                per_search += rate
        return in_rate, out_rate, fee, per_search

    def lines(self) -> list[tuple[str, str]]:
        rows = []
        for entry in self._entries:
            per = entry.unit.per
            family = entry.unit.dimensions.get("family")
            unit = "MTok" if family == "tokens" and per == 1_000_000 else f"{per:,}"
            label = entry.key.removesuffix("_tokens").replace("_", " ")
            price = entry.price
            if hasattr(price, "tiers"):
                text = f"{_usd(price.base)} / {unit}" + "".join(
                    f" (above {tier.start:,} input tokens: {_usd(tier.price)})"
                    for tier in price.tiers
                )
            else:
                text = f"{_usd(price)} / {unit}"
            rows.append((label, text))
        return rows


def _contains(ancestor: UnitDef, descendant: UnitDef) -> bool:
    return ancestor.dimensions.items() <= descendant.dimensions.items()


def _resolved(price: Any, total_input: int) -> Decimal:
    """The rate that applies at `total_input` tokens (genai-prices' cliff tiers)."""
    if hasattr(price, "tiers"):
        applicable: Decimal = price.base
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                return Decimal(tier.price)
        return applicable
    return Decimal(price)


def _unit_price(price: Any, count: int, total_input: int, per: int) -> Decimal:
    # The same Decimal operations, in the same order, as genai_prices.types.calc_unit_price,
    # so the result is identical to the last digit.
    return _resolved(price, total_input) * Decimal(count) / per


def _allowed(dims: Mapping[str, str], features: Features) -> bool:
    """Whether a token unit can bill this request (so it bounds the worst case)."""
    if dims.get("token_type") == "cache_write" and not features.cache_write:
        return False
    if dims.get("token_type") == "tool" and not features.tools:
        return False
    modality = dims.get("modality")
    if modality == "video":
        return False
    if modality == "audio":
        return features.audio_in if dims.get("direction") == "input" else features.audio_out
    if modality == "image" and dims.get("direction") == "input":
        return features.image_in
    return True


def _usd(value: Decimal) -> str:
    return format_amount(Money.from_decimal(Decimal(value)).nanos, "USD")


# -- resolution ----------------------------------------------------------------------------------

_found: dict[tuple[object, ...], tuple[Provider, ModelInfo, bool] | None] = {}
_resolved_rates: dict[tuple[object, ...], GenaiRates] = {}
_by_day: dict[tuple[object, ...], GenaiRates | None] = {}
_daily: dict[int, bool] = {}


@functools.cache
def _snapshot_getter() -> Any:
    from genai_prices.data_snapshot import get_snapshot

    return get_snapshot


def resolve(
    model: str,
    *,
    provider: str | None,
    api_url: str | None,
    default_provider: str | None,
    context: Mapping[str, str] | None,
    when: datetime,
) -> GenaiRates | None:
    """The prices genai-prices has for `model` at `when` (UTC), or None when it has none.

    The provider is `provider` when given; otherwise the one whose API URL pattern
    matches `api_url`, then `default_provider` (the API's maker), then any provider whose
    models match the name.
    """
    snapshot = _snapshot_getter()()
    items = tuple(sorted(context.items())) if context else ()
    # Prices change on dated boundaries: one lookup per model and day is enough, unless
    # the model has prices by time of day.
    quick = (id(snapshot), model, provider, api_url, default_provider, items, when.toordinal())
    if quick in _by_day:
        return _by_day[quick]
    key = (id(snapshot), model.lower(), provider, api_url, default_provider)
    if key not in _found:
        if len(_found) >= _CACHE_LIMIT:
            _found.clear()
        pair = _find(snapshot, model, provider, api_url, default_provider)
        _found[key] = None if pair is None else (*pair, any(m is pair[1] for m in pair[0].models))
    found = _found[key]
    rates = None if found is None else _rates_of(snapshot, *found, items, when)
    if found is None or _daily[id(found[1])]:
        if len(_by_day) >= _CACHE_LIMIT:
            _by_day.clear()
        _by_day[quick] = rates
    return rates


def _rates_of(
    snapshot: Any,
    provider: Provider,
    info: ModelInfo,
    own: bool,
    items: tuple[tuple[str, str], ...],
    when: datetime,
) -> GenaiRates:
    # genai-prices ignores the price context for a model borrowed from another provider.
    items = items if own else ()
    rates_key = (id(snapshot), provider.id, info.id, items, _active(info, when))
    rates = _resolved_rates.get(rates_key)
    if rates is None:
        if len(_resolved_rates) >= _CACHE_LIMIT:
            _resolved_rates.clear()
        price = info.get_prices(when, dict(items) or None)
        rates = GenaiRates(provider, info, price, when=when, context=dict(items) or None)
        _resolved_rates[rates_key] = rates
    return rates


def _find(
    snapshot: Any,
    model: str,
    provider: str | None,
    api_url: str | None,
    default_provider: str | None,
) -> tuple[Provider, ModelInfo] | None:
    attempts: list[tuple[str | None, str | None]] = []
    if provider is not None:
        attempts.append((provider, None))
    else:
        if api_url is not None:
            attempts.append((None, api_url))
        if default_provider is not None:
            attempts.append((default_provider, None))
        attempts.append((None, None))
    for provider_id, url in attempts:
        try:
            found: tuple[Provider, ModelInfo] = snapshot.find_provider_model(
                model, None, provider_id, url
            )
        except LookupError:
            continue
        return found
    return None


def _active(info: ModelInfo, when: datetime) -> tuple[bool, ...]:
    """Which dated or timed prices of a model apply at `when`: the rates' cache key."""
    constraints = _constraints.get(id(info))
    if constraints is None:
        from genai_prices.types import StartDateConstraint

        found = [c.constraint for c in info.prices] if isinstance(info.prices, list) else []
        found += [v.constraint for v in info.price_variants or ()]
        constraints = _constraints[id(info)] = tuple(c for c in found if c is not None)
        _daily[id(info)] = all(isinstance(c, StartDateConstraint) for c in constraints)
    return tuple(c.active(when) for c in constraints)


_constraints: dict[int, tuple[Any, ...]] = {}
