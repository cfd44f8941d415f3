"""The real OpenAI SDK, guarded, against the fake API on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from genai_prices import Usage

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.http import fake_api
from tests.http.conftest import OPENAI_KEY, llm, nanos, sdk_maker
from tests.http.fake_api import FakeAPI

MODEL = "gpt-4o"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello."}]
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200},
    "completion_tokens_details": {"reasoning_tokens": 100},
}
# OpenAI counts cached tokens inside prompt_tokens: they map across unchanged.
GENAI = Usage(
    input_tokens=1200, cache_read_tokens=200, output_tokens=300, output_reasoning_tokens=100
)


@pytest.fixture
def sdk(api: FakeAPI, opened: list[Any]) -> Callable[..., openai.OpenAI]:
    return sdk_maker(openai.OpenAI, f"{api.url}/v1", OPENAI_KEY, opened)


@pytest.fixture
def async_sdk(api: FakeAPI, async_opened: list[Any]) -> Callable[..., openai.AsyncOpenAI]:
    return sdk_maker(
        openai.AsyncOpenAI, f"{api.url}/v1", OPENAI_KEY, async_opened, asynchronous=True
    )


def records(guard: rg.Guard) -> list[rg.ledger.SpendRecord]:
    return list(guard.ledger.spend())


def test_chat_completion_settles_at_calc_price(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat(MODEL, USAGE))
    sdk(llm(guard)).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    [record] = records(guard)
    assert ("settled", nanos(GENAI, MODEL, "openai", clock), 1500) == (
        record.outcome,
        record.actual,
        record.tokens,
    )
    assert [] == guard.ledger.holds()


async def test_async_chat_completion_settles_at_calc_price(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, async_sdk: Callable[..., openai.AsyncOpenAI]
) -> None:
    api.reply(fake_api.chat(MODEL, USAGE))
    client = async_sdk(llm(guard))
    await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    [record] = records(guard)
    assert ("settled", nanos(GENAI, MODEL, "openai", clock)) == (record.outcome, record.actual)


def test_the_billed_service_tier_prices_the_usage(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat(MODEL, USAGE, service_tier="priority"))
    sdk(llm(guard)).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    expected = nanos(GENAI, MODEL, "openai", clock, {"service_tier": "priority"})
    assert expected == records(guard)[0].actual


def test_chat_stream_settles_from_its_final_usage_chunk(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat_stream(MODEL, USAGE))
    stream = sdk(llm(guard)).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    [record] = records(guard)
    assert ("Hello.", "settled", nanos(GENAI, MODEL, "openai", clock)) == (
        text,
        record.outcome,
        record.actual,
    )


async def test_async_chat_stream_settles_from_its_final_usage_chunk(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, async_sdk: Callable[..., openai.AsyncOpenAI]
) -> None:
    api.reply(fake_api.chat_stream(MODEL, USAGE))
    stream = await async_sdk(llm(guard)).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    async with stream:
        async for _ in stream:
            pass
    assert nanos(GENAI, MODEL, "openai", clock) == records(guard)[0].actual


def test_chat_stream_without_usage_settles_at_its_estimate(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat_stream(MODEL, None))
    stream = sdk(llm(guard)).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=300, stream=True
    )
    with stream:
        for _ in stream:
            pass
    [record] = records(guard)
    assert ("settled", record.estimate) == (record.outcome, record.actual)


def test_a_stream_that_breaks_settles_at_its_estimate(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat_stream(MODEL, USAGE, cut_after=2))
    stream = sdk(llm(guard)).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    with pytest.raises(openai.APIConnectionError), stream:
        for _ in stream:
            pass
    [record] = records(guard)
    assert ("failed", record.estimate, "RemoteProtocolError") == (
        record.outcome,
        record.actual,
        record.error,
    )


def test_a_stream_closed_early_settles_at_its_estimate(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat_stream(MODEL, USAGE))
    stream = sdk(llm(guard)).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        next(iter(stream))
    [record] = records(guard)
    assert ("settled", record.estimate) == (record.outcome, record.actual)
    assert [] == guard.ledger.holds()


def test_a_500_then_a_success_is_two_held_and_settled_attempts(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.error(500), fake_api.chat(MODEL, USAGE))
    client = sdk(llm(guard, retry=rg.Retry(3)))
    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    first, second = records(guard)
    assert (1, "failed", first.estimate, "HTTPStatusError 500") == (
        first.attempt,
        first.outcome,
        first.actual,
        first.error,
    )
    assert (2, "settled", nanos(GENAI, MODEL, "openai", clock)) == (
        second.attempt,
        second.outcome,
        second.actual,
    )
    assert first.hold_id == first.call_id == second.call_id
    assert (2, []) == (api.count, guard.ledger.holds())


async def test_async_500_then_success_is_two_attempts_of_one_call(
    api: FakeAPI, guard: rg.Guard, async_sdk: Callable[..., openai.AsyncOpenAI]
) -> None:
    api.reply(fake_api.error(500), fake_api.chat(MODEL, USAGE))
    client = async_sdk(llm(guard, retry=rg.Retry(3)))
    await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    first, second = records(guard)
    assert ((1, 2), first.call_id) == ((first.attempt, second.attempt), second.call_id)


def test_a_429_is_released_and_retried_after_retry_after(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    waits: list[float] = []
    guard.subscribe(lambda e: waits.append(e.delay) if isinstance(e, rg.RetryScheduled) else None)
    limited = fake_api.error(429, headers={"retry-after": "0.05"}, retry_after_ms=None)
    api.reply(limited, fake_api.chat(MODEL, USAGE))
    sdk(llm(guard, retry=rg.Retry(3))).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=300
    )
    first, second = records(guard)
    assert ("released", 0, "HTTPStatusError 429") == (first.outcome, first.actual, first.error)
    assert ("settled", [0.05]) == (second.outcome, waits)


def test_a_429_asking_to_wait_past_the_cap_is_not_retried(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.error(429, headers={"retry-after": "90"}, retry_after_ms=None))
    client = sdk(llm(guard, retry=rg.Retry(3, retry_after_cap=60)))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert (1, ["released"]) == (api.count, [r.outcome for r in records(guard)])


def test_budget_refusal_raises_before_any_request_is_sent(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    client = sdk(llm(guard, max_per_run="$0.0001"))
    with pytest.raises(rg.BudgetExceeded, match="per-run budget") as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert (0, [], []) == (api.count, records(guard), guard.ledger.holds())
    assert "max_per_run" in caught.value.hint


async def test_async_budget_refusal_raises_before_any_request_is_sent(
    api: FakeAPI, guard: rg.Guard, async_sdk: Callable[..., openai.AsyncOpenAI]
) -> None:
    client = async_sdk(llm(guard, max_per_run="$0.0001"))
    with pytest.raises(rg.BudgetExceeded):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert 0 == api.count


def test_the_sdk_retries_no_more_than_the_contract_allows(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(*[fake_api.error(500)] * 6)
    client = sdk(llm(guard, retry=rg.Retry(2)), max_retries=5)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert (2, [1, 2]) == (api.count, [r.attempt for r in records(guard)])


def test_a_contract_without_retry_stops_the_sdk_retrying(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(*[fake_api.error(503)] * 3)
    with pytest.raises(openai.InternalServerError):
        sdk(llm(guard)).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert 1 == api.count


def test_retries_count_against_max_calls(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.error(500), fake_api.error(500), fake_api.chat(MODEL, USAGE))
    client = sdk(llm(guard, retry=rg.Retry(5), max_calls_per_run=2))
    with pytest.raises(rg.BudgetExceeded, match="calls") as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert 2 == api.count
    assert isinstance(caught.value.__cause__, Exception)  # the 500 that led to the retry


def test_a_token_budget_refuses_a_request_that_could_pass_it(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    client = sdk(llm(guard, max_tokens_per_run=200))
    with pytest.raises(rg.BudgetExceeded, match="tokens"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert 0 == api.count


def test_an_unknown_model_is_refused_before_sending(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    with pytest.raises(rg.UnknownModel, match="fallback"):
        sdk(llm(guard)).chat.completions.create(model="gpt-9000", messages=MESSAGES, max_tokens=300)
    assert 0 == api.count


def test_no_max_tokens_is_refused_before_sending(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    with pytest.raises(rg.UnboundedOutput, match="max_completion_tokens"):
        sdk(llm(guard)).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert 0 == api.count


def test_the_default_output_bound_is_sent_to_the_provider(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.chat(MODEL, USAGE))
    chat = llm(guard, price=rg.TokenPrice(default_max_output_tokens=64))
    sdk(chat).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert 64 == api.requests[0].json()["max_completion_tokens"]


def test_responses_api_settles_at_calc_price(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    usage = {
        "input_tokens": 900,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 950,
    }
    api.reply(fake_api.responses(MODEL, usage))
    sdk(llm(guard)).responses.create(model=MODEL, input="Say hello.", max_output_tokens=50)
    genai = Usage(
        input_tokens=900, cache_read_tokens=100, output_tokens=50, output_reasoning_tokens=20
    )
    assert nanos(genai, MODEL, "openai", clock) == records(guard)[0].actual


def test_responses_stream_settles_from_response_completed(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    usage = {"input_tokens": 900, "output_tokens": 50, "total_tokens": 950}
    api.reply(fake_api.responses_stream(MODEL, usage))
    stream = sdk(llm(guard)).responses.create(
        model=MODEL, input="Say hello.", max_output_tokens=50, stream=True
    )
    with stream:
        for _ in stream:
            pass
    genai = Usage(input_tokens=900, output_tokens=50)
    assert nanos(genai, MODEL, "openai", clock) == records(guard)[0].actual


def test_embeddings_settle_at_calc_price(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., openai.OpenAI]
) -> None:
    model = "text-embedding-3-small"
    api.reply(fake_api.embeddings(model, prompt_tokens=12, count=2))
    sdk(llm(guard)).embeddings.create(model=model, input=["hello", "world"])
    assert nanos(Usage(input_tokens=12), model, "openai", clock) == records(guard)[0].actual


def test_listing_models_is_free(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.Reply(body={"object": "list", "data": []}))
    list(sdk(llm(guard)).models.list())
    assert (1, []) == (api.count, records(guard))


def test_the_sdk_on_an_httpx_client_is_guarded_too(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock
) -> None:
    import runaway_guard.http as rg_http

    api.reply(fake_api.error(500), fake_api.chat(MODEL, USAGE))
    contract = llm(guard, retry=rg.Retry(2))
    with openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url=f"{api.url}/v1",
        http_client=rg_http.httpx_client(contract),  # type: ignore[arg-type]
    ) as client:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert ["failed", "settled"] == [r.outcome for r in records(guard)]
    assert nanos(GENAI, MODEL, "openai", clock) == records(guard)[1].actual


def test_a_dropped_connection_under_a_one_attempt_contract_is_not_retried(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., openai.OpenAI]
) -> None:
    api.reply(fake_api.Reply(drop=True), fake_api.chat(MODEL, USAGE))
    started = time.monotonic()
    with pytest.raises(rg.RetriesExhausted, match="allows 1 attempt per call") as caught:
        sdk(llm(guard)).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=300)
    assert 1 == api.count
    assert time.monotonic() - started < 0.4  # the SDK's back-off sleep never happened
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
