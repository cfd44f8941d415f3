"""Token prices: exactly genai-prices' arithmetic, and worst cases that are never short."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers
from hypothesis import given, settings
from hypothesis import strategies as st

import runaway_guard as rg
from runaway_guard.llm import Features, prices_for
from runaway_guard.llm._fallback import FallbackRates
from runaway_guard.llm._prices import GenaiRates, resolve

WHEN = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
MODELS = [
    (provider.id, model.id)
    for provider in providers
    if provider.id in ("openai", "anthropic")
    for model in provider.models
    if model.is_match(model.id)  # a few ids are prefixes ("ft:gpt-4o"), not model names
]


def _rates(provider: str, model: str, context: dict[str, str] | None = None) -> GenaiRates:
    rates = resolve(
        model, provider=provider, api_url=None, default_provider=None, context=context, when=WHEN
    )
    assert rates is not None
    return rates


@st.composite
def usages(draw: st.DrawFn) -> dict[str, int]:
    """Consistent usages in genai-prices' keys: parts never exceed their totals."""
    total_in = draw(st.integers(0, 400_000))
    read = draw(st.integers(0, total_in))
    write = draw(st.integers(0, total_in - read))
    write_1h = draw(st.integers(0, write))
    audio_in = draw(st.integers(0, total_in - read - write))
    total_out = draw(st.integers(0, 64_000))
    reasoning = draw(st.integers(0, total_out))
    usage = {"input_tokens": total_in, "output_tokens": total_out}
    optional = {
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "cache_write_1h_tokens": write_1h,
        "cache_write_5m_tokens": write - write_1h,
        "output_reasoning_tokens": reasoning,
        "input_audio_tokens": audio_in,
        "web_searches": draw(st.integers(0, 20)),
    }
    for key, value in optional.items():
        if draw(st.booleans()):
            usage[key] = value
    return usage


def _genai(
    usage: dict[str, int], provider: str, model: str, context: dict[str, str] | None
) -> Decimal:
    result = calc_price(
        Usage(**usage),
        model,
        provider_id=provider,
        genai_request_timestamp=WHEN,
        price_context=context,
    )
    total: Decimal = result.total_price
    return total


@pytest.mark.parametrize(("provider", "model"), MODELS, ids=[f"{p}/{m}" for p, m in MODELS])
@settings(max_examples=25, deadline=None)
@given(usage=usages())
def test_cost_equals_calc_price(provider: str, model: str, usage: dict[str, int]) -> None:
    """For every OpenAI and Anthropic model, any consistent usage costs what calc_price says."""
    rates = _rates(provider, model)
    try:
        expected: Decimal | type[ValueError] = _genai(usage, provider, model, None)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 - genai-prices' own error, any message
            rates.cost(usage)
    else:
        assert expected == rates.cost(usage)


@pytest.mark.parametrize("tier", ["priority", "flex", "default"])
@settings(max_examples=25, deadline=None)
@given(usage=usages())
def test_cost_with_a_service_tier_equals_calc_price(tier: str, usage: dict[str, int]) -> None:
    context = {"service_tier": tier}
    rates = _rates("openai", "gpt-5-mini", context)
    assert _genai(usage, "openai", "gpt-5-mini", context) == rates.cost(usage)


def test_cached_input_larger_than_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="parts of input_tokens"):
        _rates("openai", "gpt-4o").cost({"input_tokens": 10, "cache_read_tokens": 11})


@pytest.mark.parametrize(("provider", "model"), MODELS, ids=[f"{p}/{m}" for p, m in MODELS])
@settings(max_examples=15, deadline=None)
@given(usage=usages())
def test_worst_case_covers_every_usage_within_the_bounds(
    provider: str, model: str, usage: dict[str, int]
) -> None:
    """A request bounded to N input and M output tokens never costs more than its hold."""
    rates = _rates(provider, model)
    features = Features(cache_write=True, audio_in=True, image_in=True, audio_out=True)
    searches = usage.get("web_searches", 0)
    try:
        actual = rates.cost(usage)
    except ValueError:
        return
    worst = rates.worst_case(usage["input_tokens"], usage["output_tokens"], features, searches)
    assert worst >= actual


def test_worst_case_prices_input_at_the_cache_write_rate_only_when_caching() -> None:
    rates = _rates("anthropic", "claude-sonnet-4-5")
    plain = rates.worst_case(1_000_000, 0, Features(), 0)
    cached = rates.worst_case(1_000_000, 0, Features(cache_write=True), 0)
    assert (Decimal("6"), Decimal("12")) == (plain, cached)  # tier above 200k: $6, 1h write $12


def test_worst_case_uses_the_tier_of_the_input_bound() -> None:
    rates = _rates("anthropic", "claude-sonnet-4-5")
    assert Decimal("0.003") == rates.worst_case(1_000, 0, Features(), 0)
    assert Decimal("1.200006") == rates.worst_case(200_001, 0, Features(), 0)


def test_worst_case_adds_web_searches() -> None:
    rates = _rates("anthropic", "claude-sonnet-4-5")
    assert Decimal("0.05") == rates.worst_case(0, 0, Features(), 5)


def test_dated_model_resolves_to_its_family() -> None:
    assert "gpt-4o" == _rates("openai", "gpt-4o-2024-08-06").model


def test_unknown_model_resolves_to_none() -> None:
    found = resolve(
        "gpt-9000", provider="openai", api_url=None, default_provider=None, context=None, when=WHEN
    )
    assert found is None


def test_provider_from_the_api_url() -> None:
    rates = resolve(
        "claude-sonnet-4-5",
        provider=None,
        api_url="https://api.anthropic.com/v1/messages",
        default_provider="openai",
        context=None,
        when=WHEN,
    )
    assert rates is not None
    assert ("anthropic", "claude-sonnet-4-5") == (rates.provider, rates.model)


def test_provider_from_the_model_name_when_the_default_has_no_such_model() -> None:
    rates = resolve(
        "claude-haiku-4-5",
        provider=None,
        api_url="http://127.0.0.1:8000/v1/chat/completions",
        default_provider="openai",
        context=None,
        when=WHEN,
    )
    assert rates is not None
    assert "anthropic" == rates.provider


def test_fallback_rates_price_cached_input_at_their_own_rates() -> None:
    fallback = FallbackRates(
        rg.TokenRates("$3", "$15", cache_read="$0.30", cache_write="$3.75"), "mine", "acme"
    )
    usage = {
        "input_tokens": 1_000,
        "cache_read_tokens": 200,
        "cache_write_tokens": 100,
        "output_tokens": 10,
    }
    expected = (700 * 3 + 200 * Decimal("0.3") + 100 * Decimal("3.75") + 10 * 15) / 1_000_000
    assert expected == fallback.cost(usage)


def test_fallback_rates_default_cached_input_to_the_input_rate() -> None:
    fallback = FallbackRates(rg.TokenRates("$3", "$15"), "mine", "acme")
    assert Decimal("0.003") == fallback.cost({"input_tokens": 1000, "cache_read_tokens": 500})


def test_fallback_worst_case_is_the_dearest_rate() -> None:
    fallback = FallbackRates(rg.TokenRates("$3", "$15", cache_write="$6"), "mine", "acme")
    assert Decimal("0.021") == fallback.worst_case(1000, 1000, Features(cache_write=True), 0)
    assert Decimal("0.018") == fallback.worst_case(1000, 1000, Features(), 0)


def test_token_rates_refuse_floats() -> None:
    with pytest.raises(rg.ContractError, match="float"):
        rg.TokenRates(3.0, "$15")  # type: ignore[arg-type]


def test_token_rates_must_be_usd() -> None:
    with pytest.raises(rg.ContractError, match="USD"):
        rg.TokenRates("€3", "€15")


def test_prices_for_tries_openai_then_anthropic() -> None:
    found = prices_for("claude-haiku-4-5", at=WHEN)
    assert found is not None
    assert "anthropic" == found.provider


def test_lines_show_tiers() -> None:
    rows = dict(_rates("anthropic", "claude-sonnet-4-5").lines())
    assert "$3.00 / MTok (above 200,000 input tokens: $6.00)" == rows["input"]
