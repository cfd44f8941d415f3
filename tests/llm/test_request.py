"""Worst cases from request bodies: input bounds without a tokenizer, output bounds, extras."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runaway_guard.llm import Api, Features, api_for_path
from runaway_guard.llm._request import (
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    TOOL_OVERHEAD,
    TOOLS_OVERHEAD,
    RequestShape,
    measure,
)

IMAGE = 1000


def shape(api: Api, body: dict[str, Any], **options: Any) -> RequestShape:
    raw = json.dumps(body).encode()
    options.setdefault("counter", None)
    options.setdefault("image_tokens", IMAGE)
    options.setdefault("file_tokens", None)
    return measure(api, body, raw, **options)


def chat(*messages: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **fields}


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1/chat/completions", Api.CHAT),
        ("/openai/deployments/gpt4o/chat/completions", Api.CHAT),
        ("/v1/responses", Api.RESPONSES),
        ("/v1/embeddings", Api.EMBEDDINGS),
        ("/v1/messages", Api.MESSAGES),
        ("/v1/messages/", Api.MESSAGES),
        ("/v1/messages/count_tokens", None),
        ("/v1/responses/resp_1/cancel", None),
        ("/v1/images/generations", None),
    ],
)
def test_api_for_path(path: str, api: Api | None) -> None:
    assert api == api_for_path(path)


def test_input_bound_is_the_body_length_plus_template_overheads() -> None:
    body = chat({"role": "user", "content": "Hello there"}, max_tokens=5)
    raw = json.dumps(body).encode()
    expected = len(raw) + REQUEST_OVERHEAD + MESSAGE_OVERHEAD * 2
    assert expected == shape(Api.CHAT, body).input_tokens


def test_input_bound_covers_multibyte_text_by_its_utf8_length() -> None:
    text = "数据" * 100  # 600 UTF-8 bytes
    body = chat({"role": "user", "content": text}, max_tokens=5)
    assert shape(Api.CHAT, body).input_tokens >= len(text.encode())


def test_tools_add_their_overhead() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    without = chat({"role": "user", "content": "hi"}, max_tokens=5)
    with_tools = {**without, "tools": [tool, tool]}
    extra = len(json.dumps(with_tools)) - len(json.dumps(without))
    difference = shape(Api.CHAT, with_tools).input_tokens - shape(Api.CHAT, without).input_tokens
    assert extra + TOOLS_OVERHEAD + 2 * TOOL_OVERHEAD == difference


def test_an_image_counts_image_tokens_whatever_its_bytes() -> None:
    data = "data:image/png;base64," + "A" * 1_000_000
    part = {"type": "image_url", "image_url": {"url": data}}
    body = chat({"role": "user", "content": [{"type": "text", "text": "what"}, part]}, max_tokens=5)
    measured = shape(Api.CHAT, body)
    assert IMAGE < measured.input_tokens < IMAGE + 500
    assert measured.features.image_in


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    ],
)
def test_images_of_every_api_are_recognised(part: dict[str, Any]) -> None:
    body = {"model": "m", "input": [{"role": "user", "content": [part]}], "max_output_tokens": 5}
    assert shape(Api.RESPONSES, body).input_tokens > IMAGE


def test_a_file_by_reference_is_unmeasured() -> None:
    part = {"type": "input_file", "file_id": "file-123"}
    body = {"model": "m", "input": [{"role": "user", "content": [part]}], "max_output_tokens": 5}
    assert shape(Api.RESPONSES, body).unmeasured is not None


def test_a_file_counts_file_tokens_when_given() -> None:
    part = {"type": "document", "source": {"type": "file", "file_id": "file-123"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}], "max_tokens": 5}
    measured = shape(Api.MESSAGES, body, file_tokens=50_000)
    assert (None, True) == (measured.unmeasured, measured.input_tokens > 50_000)


@pytest.mark.parametrize("stored", ["previous_response_id", "conversation", "prompt"])
def test_input_kept_at_the_provider_is_unmeasured(stored: str) -> None:
    body = {"model": "m", "input": "and then?", stored: "resp_1", "max_output_tokens": 5}
    measured = shape(Api.RESPONSES, body)
    assert measured.unmeasured is not None
    assert stored in measured.unmeasured


def test_audio_input_counts_its_bytes_and_its_rate() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "A" * 3000, "format": "wav"}}
    measured = shape(Api.CHAT, chat({"role": "user", "content": [part]}, max_tokens=5))
    assert measured.input_tokens > 3000
    assert measured.features.audio_in


def test_a_counter_tightens_the_bound() -> None:
    body = chat({"role": "user", "content": "word " * 1000}, max_tokens=5)
    loose = shape(Api.CHAT, body).input_tokens
    tight = shape(Api.CHAT, body, counter=lambda text: len(text.split())).input_tokens
    assert tight < loose / 4


def test_a_counter_never_loosens_the_byte_bound() -> None:
    body = chat({"role": "user", "content": "x"}, max_tokens=5)
    loose = shape(Api.CHAT, body, counter=lambda text: 10 * len(text)).input_tokens
    assert loose <= shape(Api.CHAT, body).input_tokens


def test_chat_output_bound_prefers_max_completion_tokens() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=10, max_completion_tokens=20)
    assert 20 == shape(Api.CHAT, body).output_tokens


def test_chat_output_bound_multiplies_by_n() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=10, n=3)
    assert 30 == shape(Api.CHAT, body).output_tokens


def test_chat_without_output_bound_has_none() -> None:
    assert shape(Api.CHAT, chat({"role": "user", "content": "hi"})).output_tokens is None


def test_chat_audio_output_uses_the_audio_rate() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=10, modalities=["text", "audio"])
    assert shape(Api.CHAT, body).features.audio_out


def test_chat_stream_with_usage_is_noticed() -> None:
    body = chat(
        {"role": "user", "content": "hi"},
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    measured = shape(Api.CHAT, body)
    assert (True, True) == (measured.stream, measured.include_usage)


def test_service_tier_sets_the_price_context() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=10, service_tier="priority")
    assert {"service_tier": "priority"} == shape(Api.CHAT, body).context


def test_auto_service_tier_sets_no_price_context() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=10, service_tier="auto")
    assert {} == shape(Api.CHAT, body).context


def test_responses_output_bound() -> None:
    body = {"model": "m", "input": "hi", "max_output_tokens": 77}
    assert 77 == shape(Api.RESPONSES, body).output_tokens


def test_messages_output_bound_and_fast_speed() -> None:
    body = {"model": "m", "messages": [], "max_tokens": 64, "speed": "fast"}
    measured = shape(Api.MESSAGES, body)
    assert (64, {"speed": "fast"}) == (measured.output_tokens, measured.context)


def test_messages_cache_control_allows_cache_writes() -> None:
    content = [{"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}]
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    assert shape(Api.MESSAGES, body).features.cache_write


def test_messages_without_cache_control_cannot_write_the_cache() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert Features() == shape(Api.MESSAGES, body).features


def test_web_search_max_uses_counts_searches() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 4}]
    body = {"model": "m", "max_tokens": 5, "messages": [], "tools": tools}
    measured = shape(Api.MESSAGES, body)
    assert (4, False) == (measured.searches, measured.unbounded_search)


def test_web_search_without_max_uses_is_unbounded() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    body = {"model": "m", "max_tokens": 5, "messages": [], "tools": tools}
    assert shape(Api.MESSAGES, body).unbounded_search


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("hello", 5),
        (["hello", "hi"], 7),
        ([1, 2, 3], 3),
        ([[1, 2], [3]], 3),
    ],
)
def test_embedding_input(value: object, tokens: int) -> None:
    measured = shape(Api.EMBEDDINGS, {"model": "text-embedding-3-small", "input": value})
    assert (tokens, 0) == (measured.input_tokens, measured.output_tokens)


def test_a_body_without_raw_bytes_is_serialised_to_measure() -> None:
    body = chat({"role": "user", "content": "hi"}, max_tokens=5)
    measured = measure(Api.CHAT, body, None, counter=None, image_tokens=1, file_tokens=None)
    assert measured.input_tokens > len("hi")
