"""The real Anthropic SDK, guarded, against the fake API on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from genai_prices import Usage

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.http import fake_api
from tests.http.conftest import ANTHROPIC_KEY, llm, nanos, sdk_maker
from tests.http.fake_api import FakeAPI

MODEL = "claude-sonnet-5-5"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello."}]
USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 2000,
    "output_tokens": 75,
}
# Anthropic reports cache reads and writes *beside* input_tokens: all input is the sum.
GENAI = Usage(input_tokens=3050, cache_write_tokens=1000, cache_read_tokens=2000, output_tokens=75)


@pytest.fixture
def sdk(api: FakeAPI, opened: list[Any]) -> Callable[..., anthropic.Anthropic]:
    return sdk_maker(anthropic.Anthropic, api.url, ANTHROPIC_KEY, opened)


@pytest.fixture
def async_sdk(api: FakeAPI, async_opened: list[Any]) -> Callable[..., anthropic.AsyncAnthropic]:
    return sdk_maker(
        anthropic.AsyncAnthropic, api.url, ANTHROPIC_KEY, async_opened, asynchronous=True
    )


def records(guard: rg.Guard) -> list[rg.ledger.SpendRecord]:
    return list(guard.ledger.spend())


def test_message_settles_at_calc_price(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    api.reply(fake_api.message(MODEL, USAGE))
    sdk(llm(guard)).messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    [record] = records(guard)
    assert ("settled", nanos(GENAI, MODEL, "anthropic", clock), 3125) == (
        record.outcome,
        record.actual,
        record.tokens,
    )


async def test_async_message_settles_at_calc_price(
    api: FakeAPI,
    guard: rg.Guard,
    clock: FakeClock,
    async_sdk: Callable[..., anthropic.AsyncAnthropic],
) -> None:
    api.reply(fake_api.message(MODEL, USAGE))
    await async_sdk(llm(guard)).messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert nanos(GENAI, MODEL, "anthropic", clock) == records(guard)[0].actual


def test_cache_writes_by_ttl_are_priced_apart(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    usage = {
        **USAGE,
        "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
    }
    api.reply(fake_api.message(MODEL, usage))
    content: Any = [
        {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}
    ]
    sdk(llm(guard)).messages.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=100
    )
    genai = Usage(
        input_tokens=3050,
        cache_write_tokens=1000,
        cache_write_5m_tokens=400,
        cache_write_1h_tokens=600,
        cache_read_tokens=2000,
        output_tokens=75,
    )
    assert nanos(genai, MODEL, "anthropic", clock) == records(guard)[0].actual


def test_stream_settles_from_message_start_and_message_delta(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    start = {**USAGE, "output_tokens": 1}
    api.reply(fake_api.message_stream(MODEL, start, {"output_tokens": 75}))
    with sdk(llm(guard)).messages.stream(model=MODEL, messages=MESSAGES, max_tokens=100) as stream:
        text = stream.get_final_text()
    [record] = records(guard)
    assert ("Hello.", nanos(GENAI, MODEL, "anthropic", clock)) == (text, record.actual)


async def test_async_stream_settles_from_its_usage_events(
    api: FakeAPI,
    guard: rg.Guard,
    clock: FakeClock,
    async_sdk: Callable[..., anthropic.AsyncAnthropic],
) -> None:
    start = {**USAGE, "output_tokens": 1}
    api.reply(fake_api.message_stream(MODEL, start, {"output_tokens": 75}))
    client = async_sdk(llm(guard))
    async with client.messages.stream(model=MODEL, messages=MESSAGES, max_tokens=100) as stream:
        await stream.get_final_message()
    assert nanos(GENAI, MODEL, "anthropic", clock) == records(guard)[0].actual


def test_a_stream_cut_before_message_delta_settles_at_its_estimate(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    api.reply(fake_api.message_stream(MODEL, USAGE, {"output_tokens": 75}, cut_after=3))
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        sdk(llm(guard)).messages.stream(model=MODEL, messages=MESSAGES, max_tokens=100) as stream,
    ):
        stream.get_final_text()
    [record] = records(guard)
    assert ("failed", record.estimate) == (record.outcome, record.actual)


def test_a_500_then_a_success_is_two_held_and_settled_attempts(
    api: FakeAPI, guard: rg.Guard, clock: FakeClock, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    api.reply(fake_api.error(500), fake_api.message(MODEL, USAGE))
    sdk(llm(guard, retry=rg.Retry(3))).messages.create(
        model=MODEL, messages=MESSAGES, max_tokens=100
    )
    first, second = records(guard)
    assert ("failed", first.estimate) == (first.outcome, first.actual)
    assert ("settled", nanos(GENAI, MODEL, "anthropic", clock)) == (second.outcome, second.actual)
    assert (first.call_id, (1, 2), 2) == (
        second.call_id,
        (first.attempt, second.attempt),
        api.count,
    )


async def test_async_429_then_success(
    api: FakeAPI, guard: rg.Guard, async_sdk: Callable[..., anthropic.AsyncAnthropic]
) -> None:
    limited = fake_api.error(429, headers={"retry-after": "0.01"}, retry_after_ms=None)
    api.reply(limited, fake_api.message(MODEL, USAGE))
    client = async_sdk(llm(guard, retry=rg.Retry(3)))
    await client.messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert ["released", "settled"] == [r.outcome for r in records(guard)]


def test_budget_refusal_is_not_retried_as_a_connection_error(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    """The SDK wraps foreign errors in APIConnectionError and retries them; not this one."""
    client = sdk(llm(guard, max_per_run="$0.0001"), max_retries=2)
    started = time.monotonic()
    with pytest.raises(rg.BudgetExceeded) as caught:
        client.messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert (0, []) == (api.count, records(guard))
    assert not isinstance(caught.value, anthropic.APIConnectionError)
    assert time.monotonic() - started < 0.4  # no back-off sleep: the SDK did not retry


async def test_async_budget_refusal_raises_before_any_request(
    api: FakeAPI, guard: rg.Guard, async_sdk: Callable[..., anthropic.AsyncAnthropic]
) -> None:
    client = async_sdk(llm(guard, max_per_run="$0.0001"))
    with pytest.raises(rg.BudgetExceeded):
        await client.messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert 0 == api.count


def test_a_kill_switch_refuses_before_sending(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    chat = llm(guard)
    guard.kill(chat, "runaway agent")
    with pytest.raises(rg.KillSwitchEngaged):
        sdk(chat).messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert 0 == api.count


def test_server_errors_past_the_contract_attempts_are_not_retried(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    api.reply(fake_api.error(500), fake_api.error(500), fake_api.error(500))
    client = sdk(llm(guard, retry=rg.Retry(2)), max_retries=4)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert 2 == api.count


def test_connection_errors_past_the_contract_attempts_raise_retries_exhausted(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    """The SDK retries a dropped connection by itself; the contract's bound stops it."""
    api.reply(*[fake_api.Reply(drop=True)] * 4)
    client = sdk(llm(guard, retry=rg.Retry(2)), max_retries=4)
    with pytest.raises(rg.RetriesExhausted, match="gave up after 2 attempt") as caught:
        client.messages.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    assert (2, ["failed", "failed"]) == (api.count, [r.outcome for r in records(guard)])
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


def test_web_search_without_max_uses_is_refused(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    tools: Any = [{"type": "web_search_20250305", "name": "web_search"}]
    with pytest.raises(rg.UnboundedOutput, match="max_uses"):
        sdk(llm(guard)).messages.create(model=MODEL, messages=MESSAGES, max_tokens=100, tools=tools)
    assert 0 == api.count


def test_counting_tokens_is_free(
    api: FakeAPI, guard: rg.Guard, sdk: Callable[..., anthropic.Anthropic]
) -> None:
    api.reply(fake_api.Reply(body={"input_tokens": 12}))
    sdk(llm(guard)).messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert (1, []) == (api.count, records(guard))
