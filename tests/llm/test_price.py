"""TokenPrice: fail closed, hold the worst case, charge calc_price's cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price

import runaway_guard as rg
from runaway_guard.llm import Api, Observed
from runaway_guard.llm._request import MESSAGE_OVERHEAD, REQUEST_OVERHEAD
from runaway_guard.testing import FakeClock
from tests.helpers import contract

WHEN = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 100}


def prepare(price: rg.TokenPrice, body: dict[str, Any], api: Api = Api.CHAT) -> Any:
    return price.prepare(api, body, contract="chat", raw=json.dumps(body).encode(), when=WHEN)


def test_estimate_is_the_input_bound_and_output_bound_at_the_dearest_rates() -> None:
    prepared = prepare(rg.TokenPrice(tokenizer="bytes"), BODY)
    bound = len(json.dumps(BODY)) + REQUEST_OVERHEAD + 2 * MESSAGE_OVERHEAD
    expected = (bound * Decimal("2.5") + 100 * Decimal(10)) / 1_000_000
    assert rg.Cost(rg.Money.from_decimal(expected), bound + 100) == prepared.cost


def test_unknown_model_is_refused_naming_the_fallback() -> None:
    with pytest.raises(rg.UnknownModel, match=r"TokenPrice\(fallback=rg.TokenRates") as caught:
        prepare(rg.TokenPrice(), {**BODY, "model": "gpt-9000"})
    assert isinstance(caught.value, rg.ContractError)


def test_a_request_without_a_model_is_refused_naming_the_model_option() -> None:
    body = {k: v for k, v in BODY.items() if k != "model"}
    with pytest.raises(rg.UnknownModel, match=r"TokenPrice\(model=\.\.\.\)"):
        prepare(rg.TokenPrice(), body)


def test_unknown_model_with_a_fallback_is_priced_by_it() -> None:
    price = rg.TokenPrice(fallback=rg.TokenRates("$3", "$15"), tokenizer="bytes")
    prepared = prepare(price, {**BODY, "model": "gpt-9000"})
    tokens = prepared.cost.tokens - 100
    expected = (tokens * 3 + 100 * 15) / Decimal(1_000_000)
    assert rg.Money.from_decimal(expected) == prepared.cost.money


def test_the_model_option_prices_every_request_as_that_model() -> None:
    prepared = prepare(rg.TokenPrice(model="gpt-4o-mini"), {**BODY, "model": "my-deployment"})
    assert "gpt-4o-mini" == prepared.model


@pytest.mark.parametrize(
    ("api", "body", "field"),
    [
        (Api.CHAT, {"model": "gpt-4o", "messages": []}, "max_completion_tokens"),
        (Api.RESPONSES, {"model": "gpt-4o", "input": "hi"}, "max_output_tokens"),
        (Api.MESSAGES, {"model": "claude-sonnet-4-5", "messages": []}, "max_tokens"),
    ],
)
def test_no_output_bound_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(rg.UnboundedOutput, match=f"sets no {field}.*default_max_output_tokens"):
        prepare(rg.TokenPrice(), body, api)


def test_the_default_output_bound_is_held_and_injected() -> None:
    prepared = prepare(
        rg.TokenPrice(default_max_output_tokens=64), {"model": "gpt-4o", "messages": []}
    )
    held_output = prepared.cost.tokens - prepared.shape.input_tokens
    assert ({"max_completion_tokens": 64}, 64) == (prepared.inject, held_output)


def test_a_default_of_zero_output_tokens_is_zero() -> None:
    prepared = prepare(
        rg.TokenPrice(default_max_output_tokens=0), {"model": "gpt-4o", "messages": []}
    )
    assert {"max_completion_tokens": 0} == prepared.inject


def test_web_search_without_max_uses_is_refused() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(rg.UnboundedOutput, match="max_uses"):
        prepare(rg.TokenPrice(), body, Api.MESSAGES)


def test_unmeasured_input_holds_the_context_window() -> None:
    body = {
        "model": "gpt-4o",
        "input": "go on",
        "previous_response_id": "resp_1",
        "max_output_tokens": 10,
    }
    prepared = prepare(rg.TokenPrice(), body, Api.RESPONSES)
    assert 128_000 + 10 == prepared.cost.tokens


def test_unmeasured_input_holds_max_input_tokens_when_set() -> None:
    body = {
        "model": "gpt-4o",
        "input": "go on",
        "previous_response_id": "resp_1",
        "max_output_tokens": 10,
    }
    prepared = prepare(rg.TokenPrice(max_input_tokens=5_000), body, Api.RESPONSES)
    assert 5_000 + 10 == prepared.cost.tokens


def test_unmeasured_input_without_a_context_window_is_refused() -> None:
    price = rg.TokenPrice(fallback=rg.TokenRates("$1", "$1"))
    body = {"model": "mine", "input": "go on", "previous_response_id": "r", "max_output_tokens": 1}
    with pytest.raises(rg.UnboundedInput, match="max_input_tokens"):
        prepare(price, body, Api.RESPONSES)


def test_cost_of_is_calc_price_rounded_up_to_a_nano_unit() -> None:
    price = rg.TokenPrice()
    prepared = prepare(price, BODY)
    usage = {"input_tokens": 1234, "cache_read_tokens": 1000, "output_tokens": 77}
    cost = price.cost_of(prepared, Observed("gpt-4o", usage))
    exact = calc_price(Usage(**usage), "gpt-4o", provider_id="openai", genai_request_timestamp=WHEN)
    assert rg.Cost(rg.Money.from_decimal(exact.total_price), 1311) == cost


def test_cost_of_uses_the_billed_model_and_tier() -> None:
    price = rg.TokenPrice()
    prepared = prepare(price, BODY)
    usage = {"input_tokens": 1000, "output_tokens": 100}
    observed = Observed("gpt-4o-2024-05-13", usage, {"service_tier": "priority"})
    exact = calc_price(
        Usage(**usage),
        "gpt-4o-2024-05-13",
        provider_id="openai",
        genai_request_timestamp=WHEN,
        price_context={"service_tier": "priority"},
    )
    assert rg.Money.from_decimal(exact.total_price) == price.cost_of(prepared, observed).money


@pytest.mark.parametrize(
    "options",
    [
        {"tokenizer": "tiktoken-please"},
        {"image_tokens": -1},
        {"default_max_output_tokens": 1.5},
        {"fallback": "$3"},
        {"provider": ""},
    ],
)
def test_bad_options_are_contract_errors(options: dict[str, Any]) -> None:
    with pytest.raises(rg.ContractError):
        rg.TokenPrice(**options)


def test_the_contract_summary_names_the_price() -> None:
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(guard, price=rg.TokenPrice(default_max_output_tokens=256), max_per_run="$1")
    assert "token prices from genai-prices, default max output 256 tokens" in chat.summary()


# -- the Price protocol: guarding an SDK call without the HTTP client ------------------------


class _Completion:
    def __init__(self, usage: dict[str, Any]) -> None:
        self._usage = usage

    def model_dump(self) -> dict[str, Any]:
        return {"model": "gpt-4o", "usage": self._usage}


def test_contract_call_settles_an_sdk_result_at_calc_price() -> None:
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(guard, price=rg.TokenPrice(), max_per_run="$1")
    usage = {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}

    def create(**request: Any) -> _Completion:
        return _Completion(usage)

    chat.call(create, model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    record = next(guard.ledger.spend())
    exact = calc_price(Usage(input_tokens=40, output_tokens=8), "gpt-4o", provider_id="openai")
    assert (rg.Money.from_decimal(exact.total_price).nanos, 48) == (record.actual, record.tokens)


def test_contract_call_with_a_token_budget_holds_tokens() -> None:
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(guard, price=rg.TokenPrice(), max_per_run="$1", max_tokens_per_run=50)

    def create(**request: Any) -> None:
        return None

    with pytest.raises(rg.BudgetExceeded, match="tokens"):
        chat.call(
            create, model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )


def test_contract_call_without_a_request_cannot_be_priced() -> None:
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(guard, price=rg.TokenPrice(), max_per_run="$1")
    with pytest.raises(rg.ContractError, match="http_client"):
        chat.call(lambda: None)


def test_anthropic_call_is_recognised_by_its_model() -> None:
    price = rg.TokenPrice()
    call = rg.Call("chat", (), {"model": "claude-sonnet-4-5", "messages": [], "max_tokens": 5})
    result = {
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90},
    }
    cost = price.actual(call, result)
    exact = calc_price(
        Usage(input_tokens=100, cache_read_tokens=90, output_tokens=5),
        "claude-sonnet-4-5",
        provider_id="anthropic",
    )
    assert cost is not None
    assert rg.Money.from_decimal(exact.total_price) == cost.money


def test_the_price_updater_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import genai_prices

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard started genai-prices' background updater")

    monkeypatch.setattr(genai_prices.UpdatePrices, "__init__", refuse)
    monkeypatch.setattr(genai_prices.UpdatePrices, "start", refuse)
    price = rg.TokenPrice()
    prepared = prepare(price, BODY)
    price.cost_of(prepared, Observed("gpt-4o", {"input_tokens": 5, "output_tokens": 5}))
    from genai_prices import data_snapshot

    assert data_snapshot._custom_snapshot is None


CLAUDE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Who runs AS4242420001?"}],
}


def test_contract_call_refuses_a_default_bound_it_cannot_send() -> None:
    """contract.call passes the request on as written: a default bound would be held for
    but never sent, so the provider could write far past it."""
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(
        guard, "chat", price=rg.TokenPrice(default_max_output_tokens=200), max_per_run="$1"
    )
    body = {k: v for k, v in BODY.items() if k != "max_tokens"}
    calls: list[object] = []
    with pytest.raises(rg.UnboundedOutput, match=r"contract\.http_client"):
        chat.call(lambda **request: calls.append(request), **body)
    assert [] == calls


def test_the_default_output_bound_covers_every_choice() -> None:
    price = rg.TokenPrice(default_max_output_tokens=100, tokenizer="bytes")
    body = {k: v for k, v in BODY.items() if k != "max_tokens"}
    one = prepare(price, body)
    five = prepare(price, {**body, "n": 5})
    extra_input = len(', "n": 5')  # the bytes tokenizer counts the longer body too
    assert 4 * 100 == five.cost.tokens - one.cost.tokens - extra_input
    assert {
        Api.CHAT.output_field: 100
    } == five.inject  # sent once: the provider applies it per choice


def test_sdk_options_are_not_measured_and_other_objects_are_refused() -> None:
    guard = rg.Guard("memory://", clock=FakeClock())
    chat = contract(guard, "chat", price=rg.TokenPrice(tokenizer="bytes"), max_per_run="$1")
    estimate = chat.estimate(rg.Call("chat", (), {**BODY, "timeout": object()}))
    assert estimate == chat.estimate(rg.Call("chat", (), BODY))
    with pytest.raises(rg.ContractError, match="not JSON"):
        chat.estimate(rg.Call("chat", (), {**BODY, "response_format": object()}))


@pytest.mark.parametrize(
    ("api", "body", "tool"),
    [
        (
            Api.RESPONSES,
            {
                "model": "gpt-4o",
                "input": "hi",
                "max_output_tokens": 50,
                "tools": [{"type": "web_search"}],
            },
            "web_search",
        ),
        (
            Api.RESPONSES,
            {
                "model": "gpt-4o",
                "input": "hi",
                "max_output_tokens": 50,
                "tools": [{"type": "code_interpreter"}],
            },
            "code_interpreter",
        ),
        (Api.CHAT, {**BODY, "web_search_options": {}}, "web_search_options"),
        (
            Api.MESSAGES,
            {**CLAUDE, "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]},
            "code_execution_20250522",
        ),
    ],
)
def test_server_side_tools_whose_cost_cannot_be_bounded_are_refused(
    api: Api, body: dict[str, Any], tool: str
) -> None:
    with pytest.raises(rg.UnboundedInput, match=f"server-side tool '{tool}'"):
        prepare(rg.TokenPrice(), body, api)


def test_function_tools_are_measured_like_any_input() -> None:
    body = {
        "model": "gpt-4o",
        "input": "hi",
        "max_output_tokens": 50,
        "tools": [{"type": "function", "name": "lookup", "parameters": {}}],
    }
    assert prepare(rg.TokenPrice(), body, Api.RESPONSES).cost.money


def test_each_web_search_may_bill_the_context_again() -> None:
    price = rg.TokenPrice(max_input_tokens=10_000, tokenizer="bytes")
    searches = {
        **CLAUDE,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    }
    prepared = prepare(price, searches, Api.MESSAGES)
    assert 4 * 10_000 + 100 == prepared.cost.tokens  # the prompt, then once per search
