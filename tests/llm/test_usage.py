"""Usage from responses, in genai-prices' keys: JSON bodies and SSE streams."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from genai_prices import extract_usage
from hypothesis import given, settings
from hypothesis import strategies as st

from runaway_guard.llm import Api, Observed, UsageMeter, observed_from_json, usage_keys
from tests.http import fake_api

CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0},
}
RESPONSES_USAGE = {
    "input_tokens": 900,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 950,
}
ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 2000,
    "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
    "output_tokens": 75,
    "server_tool_use": {"web_search_requests": 2},
}


def test_openai_cached_tokens_are_a_part_of_prompt_tokens() -> None:
    assert {
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 200,
        "output_reasoning_tokens": 100,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
    } == usage_keys(Api.CHAT, CHAT_USAGE)


def test_anthropic_cache_reads_and_writes_add_to_input_tokens() -> None:
    assert {
        "input_tokens": 3050,
        "output_tokens": 75,
        "cache_write_tokens": 1000,
        "cache_write_5m_tokens": 400,
        "cache_write_1h_tokens": 600,
        "cache_read_tokens": 2000,
        "web_searches": 2,
    } == usage_keys(Api.MESSAGES, ANTHROPIC_USAGE)


def test_responses_usage() -> None:
    assert {
        "input_tokens": 900,
        "output_tokens": 50,
        "cache_read_tokens": 100,
        "output_reasoning_tokens": 20,
    } == usage_keys(Api.RESPONSES, RESPONSES_USAGE)


def test_embeddings_usage() -> None:
    assert {"input_tokens": 8} == usage_keys(
        Api.EMBEDDINGS, {"prompt_tokens": 8, "total_tokens": 8}
    )


@pytest.mark.parametrize(
    ("api", "usage", "provider", "flavor"),
    [
        (Api.CHAT, CHAT_USAGE, "openai", "chat"),
        (Api.RESPONSES, RESPONSES_USAGE, "openai", "responses"),
        (Api.EMBEDDINGS, {"prompt_tokens": 8, "total_tokens": 8}, "openai", "embeddings"),
        (Api.MESSAGES, ANTHROPIC_USAGE, "anthropic", "default"),
    ],
)
def test_usage_matches_genai_prices_own_extraction(
    api: Api, usage: dict[str, Any], provider: str, flavor: str
) -> None:
    """The keys the guard builds are those genai-prices' extractors build."""
    response = {"model": "gpt-4o" if provider == "openai" else "claude-sonnet-4-5", "usage": usage}
    extracted = extract_usage(response, provider_id=provider, api_flavor=flavor).usage
    ours = usage_keys(api, usage)
    assert ours is not None
    assert {k: v for k, v in extracted._reported_values().items() if v} == {
        k: v for k, v in ours.items() if v
    }


@pytest.mark.parametrize("usage", [{}, {"prompt_tokens": -1, "completion_tokens": 1}, None])
def test_malformed_usage_is_no_usage(usage: Any) -> None:
    assert observed_from_json(Api.CHAT, {"model": "gpt-4o", "usage": usage}) is None


def test_observed_from_json_reads_model_and_service_tier() -> None:
    body = {"model": "gpt-4o-2024-08-06", "service_tier": "flex", "usage": CHAT_USAGE}
    observed = observed_from_json(Api.CHAT, body)
    assert observed is not None
    assert ("gpt-4o-2024-08-06", {"service_tier": "flex"}, 1500) == (
        observed.model,
        observed.context,
        observed.tokens,
    )


def _metered(api: Api, chunks: list[bytes], *, sse: bool, encoding: str = "") -> Observed | None:
    meter = UsageMeter(api, sse=sse, content_encoding=encoding)
    for chunk in chunks:
        meter.feed(chunk)
    return meter.finish()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


STREAMS = {
    Api.CHAT: fake_api.chat_stream("gpt-4o", CHAT_USAGE),
    Api.RESPONSES: fake_api.responses_stream("gpt-4o", RESPONSES_USAGE),
    Api.MESSAGES: fake_api.message_stream(
        "claude-sonnet-4-5",
        {"input_tokens": 50, "output_tokens": 1, "cache_read_input_tokens": 2000},
        {"output_tokens": 75},
    ),
}


@pytest.mark.parametrize("api", list(STREAMS))
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=12), crlf=st.booleans())
def test_stream_usage_survives_any_chunking(api: Api, cuts: list[int], crlf: bool) -> None:
    text = "".join(fake_api.iter_lines(STREAMS[api]))
    if crlf:
        text = text.replace("\n", "\r\n")
    whole = _metered(api, [text.encode()], sse=True)
    assert whole is not None
    assert whole == _metered(api, _split(text.encode(), cuts), sse=True)


@pytest.mark.parametrize("api", list(STREAMS))
def test_stream_usage_survives_a_cut_at_every_byte(api: Api) -> None:
    data = "".join(fake_api.iter_lines(STREAMS[api])).encode()
    whole = _metered(api, [data], sse=True)
    for cut in range(len(data)):
        assert whole == _metered(api, [data[:cut], data[cut:]], sse=True)


def test_anthropic_stream_merges_message_start_and_message_delta() -> None:
    text = "".join(fake_api.iter_lines(STREAMS[Api.MESSAGES]))
    observed = _metered(Api.MESSAGES, [text.encode()], sse=True)
    assert observed == Observed(
        "claude-sonnet-4-5",
        {"input_tokens": 2050, "output_tokens": 75, "cache_read_tokens": 2000},
    )


def test_a_stream_cut_before_its_usage_has_none() -> None:
    reply = fake_api.message_stream(
        "claude-sonnet-4-5", {"input_tokens": 5, "output_tokens": 1}, {"output_tokens": 9}
    )
    events = list(fake_api.iter_lines(reply))[:4]  # message_start arrived, message_delta not
    assert _metered(Api.MESSAGES, ["".join(events).encode()], sse=True) is None


def test_a_chat_stream_without_usage_has_none() -> None:
    text = "".join(fake_api.iter_lines(fake_api.chat_stream("gpt-4o", None)))
    assert _metered(Api.CHAT, [text.encode()], sse=True) is None


def test_gzip_json_body() -> None:
    body = json.dumps({"model": "gpt-4o", "usage": CHAT_USAGE}).encode()
    packed = gzip.compress(body)
    observed = _metered(Api.CHAT, [packed[:10], packed[10:]], sse=False, encoding="gzip")
    assert observed is not None
    assert 1500 == observed.tokens


def test_an_unsupported_encoding_meters_nothing() -> None:
    body = json.dumps({"model": "gpt-4o", "usage": CHAT_USAGE}).encode()
    assert _metered(Api.CHAT, [body], sse=False, encoding="compress") is None


def test_a_huge_json_body_keeps_only_its_ends_and_finds_the_usage() -> None:
    data = [{"object": "embedding", "index": n, "embedding": [0.25] * 64} for n in range(40_000)]
    body = json.dumps(
        {
            "object": "list",
            "data": data,
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 9, "total_tokens": 9},
        }
    ).encode()
    assert len(body) > 8 * 1024 * 1024
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert Observed("text-embedding-3-small", {"input_tokens": 9}) == _metered(
        Api.EMBEDDINGS, chunks, sse=False
    )


def test_a_truncated_json_body_has_no_usage() -> None:
    body = json.dumps({"model": "gpt-4o", "usage": CHAT_USAGE}).encode()
    assert _metered(Api.CHAT, [body[:-5]], sse=False) is None


def test_an_sse_line_past_the_limit_stops_metering() -> None:
    meter = UsageMeter(Api.CHAT, sse=True)
    meter.feed(b"data: " + b"x" * (9 * 1024 * 1024))
    assert (True, None) == (meter.disabled, meter.finish())
