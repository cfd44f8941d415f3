"""What a request body can cost at most: an input-token bound, an output bound, extras.

The input bound needs no tokenizer. Every token a byte-level BPE tokenizer (OpenAI's,
Anthropic's) produces covers at least one byte of text, so the UTF-8 length of the text
bounds its tokens; the JSON body is longer still than the text inside it. Chat templates
add a few tokens per message and per tool, added on top. Media is not text: an image
costs at most `image_tokens`, whatever its bytes, and a file passed by reference (or a
conversation stored at the provider) cannot be measured at all. With a token counter
(tiktoken, for OpenAI models), every string is counted instead, and the smaller of the
two bounds is kept: both are upper bounds.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runaway_guard.llm._prices import Features
from runaway_guard.llm._tokens import Counter

__all__ = ["Api", "RequestShape", "api_for_path", "measure"]

REQUEST_OVERHEAD: Final = 32
"""Tokens a chat template adds to every request (reply priming, separators)."""
MESSAGE_OVERHEAD: Final = 8
"""Tokens a chat template adds per message (role markers)."""
TOOLS_OVERHEAD: Final = 512
"""Tokens a provider adds when tools are offered (Anthropic's tool-use system prompt)."""
TOOL_OVERHEAD: Final = 16
"""Tokens added per tool definition, beyond its JSON."""

_IMAGE_TYPES: Final = frozenset({"image_url", "input_image", "image"})
_FILE_TYPES: Final = frozenset({"file", "input_file", "document"})
_AUDIO_TYPES: Final = frozenset({"input_audio"})
_MEDIA: Final = re.compile(
    rb'"type"\s*:\s*"(?:image_url|input_image|image|file|input_file|document|input_audio)"'
)


class Api(enum.StrEnum):
    """An LLM API the guard can price, named ``maker.endpoint``."""

    CHAT = "openai.chat.completions"
    RESPONSES = "openai.responses"
    EMBEDDINGS = "openai.embeddings"
    MESSAGES = "anthropic.messages"

    @property
    def maker(self) -> str:
        """The provider whose API this is (the default provider for its prices)."""
        return _MAKERS[self]

    @property
    def output_field(self) -> str | None:
        """The request field that bounds output tokens (None: no output)."""
        return _OUTPUT_FIELDS[self]


_MAKERS: Final = {api: api.value.split(".", 1)[0] for api in Api}
_OUTPUT_FIELDS: Final = {
    Api.CHAT: "max_completion_tokens",
    Api.RESPONSES: "max_output_tokens",
    Api.EMBEDDINGS: None,
    Api.MESSAGES: "max_tokens",
}
_SUFFIXES: Final = (
    ("/chat/completions", Api.CHAT),
    ("/responses", Api.RESPONSES),
    ("/embeddings", Api.EMBEDDINGS),
    ("/messages", Api.MESSAGES),
)


def api_for_path(path: str) -> Api | None:
    """The LLM API a request path is for (``/v1/chat/completions``), or None."""
    path = path.rstrip("/")
    for suffix, api in _SUFFIXES:
        if path.endswith(suffix):
            return api
    return None


@dataclass(slots=True)
class RequestShape:
    """What the guard reads from a request body before sending it."""

    api: Api
    model: str | None
    input_tokens: int
    """An upper bound on input tokens (of the part that could be measured)."""
    unmeasured: str | None
    """What could not be measured (a file by id, a stored conversation), if anything."""
    output_tokens: int | None
    """The output bound the request sets (times ``n``), or None when it sets none."""
    features: Features
    searches: int = 0
    """Paid server-side searches the request allows (Anthropic web_search max_uses)."""
    unbounded_search: bool = False
    choices: int = 1
    """Completions asked for (Chat Completions ``n``): the output bound is per choice."""
    rounds: int = 1
    """Times the provider may bill the input: one, plus one per server-side search."""
    server_tool: str | None = None
    """A server-side tool whose cost the request does not bound (refused)."""
    stream: bool = False
    include_usage: bool = False
    """A Chat Completions stream that asked for a final usage chunk."""
    context: dict[str, str] = field(default_factory=dict)
    """genai-prices price context: the service tier or speed the request asks for."""


def measure(
    api: Api,
    body: Mapping[str, Any],
    raw: bytes | None,
    *,
    counter: Counter | None,
    image_tokens: int,
    file_tokens: int | None,
) -> RequestShape:
    """Read a request body's worst case. `raw` is the body as sent, when there is one."""
    if raw is None:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    model = body.get("model")
    shape = RequestShape(
        api=api,
        model=model if isinstance(model, str) else None,
        input_tokens=0,
        unmeasured=None,
        output_tokens=None,
        features=Features(),
        stream=body.get("stream") is True,
    )
    if api is Api.EMBEDDINGS:
        shape.input_tokens = _embedding_input(body.get("input"), counter)
        shape.output_tokens = 0
        return shape
    images = files = 0
    audio = False
    # (Every media part names its "type": most bodies have none and skip the search.)
    if counter is not None or (b'"type"' in raw and _MEDIA.search(raw)):
        walk = _Walk(counter)
        walk.visit(body)
        text = walk.bytes if counter is None else min(walk.bytes, walk.tokens)
        images, files, audio = walk.images, walk.files, walk.audio
    else:
        text = len(raw)  # no media: the body's length bounds its text
    messages = _count(body.get("messages")) + _count(body.get("input")) + 1
    tools = _count(body.get("tools")) + _count(body.get("functions"))
    shape.input_tokens = (
        text
        + REQUEST_OVERHEAD
        + MESSAGE_OVERHEAD * messages
        + (TOOLS_OVERHEAD + TOOL_OVERHEAD * tools if tools else 0)
        + image_tokens * images
        + (file_tokens or 0) * files
    )
    if files and file_tokens is None:
        shape.unmeasured = "a file or document (its pages are counted only by the provider)"
    audio_out = False
    if api is Api.CHAT:
        audio_out = _chat(shape, body)
        cache_write = True  # OpenAI caches prompts by itself
    elif api is Api.RESPONSES:
        _responses(shape, body)
        cache_write = True
    else:
        _messages(shape, body)
        cache_write = b'"cache_control"' in raw
    shape.features = Features(
        cache_write=cache_write,
        audio_in=audio,
        image_in=images > 0,
        audio_out=audio_out,
        tools=tools > 0,
    )
    return shape


def _count(value: object) -> int:
    return len(value) if isinstance(value, list) else 0


def _bound(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _chat(shape: RequestShape, body: Mapping[str, Any]) -> bool:
    """Read a Chat Completions body; True when it asks for audio output."""
    limit = _bound(body.get("max_completion_tokens"))
    if limit is None:
        limit = _bound(body.get("max_tokens"))
    choices = _bound(body.get("n")) or 1
    shape.choices = choices
    shape.output_tokens = None if limit is None else limit * choices
    if body.get("web_search_options") is not None:
        shape.server_tool = "web_search_options"
    options = body.get("stream_options")
    shape.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    _service_tier(shape, body)
    modalities = body.get("modalities")
    return isinstance(modalities, list) and "audio" in modalities


# Tools the application runs itself: their calls are output tokens, their results come
# back in the next request, where they are measured like any input.
_CLIENT_TOOLS = frozenset({"function", "custom"})


def _responses(shape: RequestShape, body: Mapping[str, Any]) -> None:
    shape.output_tokens = _bound(body.get("max_output_tokens"))
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind not in _CLIENT_TOOLS:
            shape.server_tool = kind
    for stored in ("previous_response_id", "conversation", "prompt"):
        if body.get(stored) not in (None, ""):
            shape.unmeasured = f"{stored} (input kept at the provider)"
    _service_tier(shape, body)


def _messages(shape: RequestShape, body: Mapping[str, Any]) -> None:
    shape.output_tokens = _bound(body.get("max_tokens"))
    if body.get("speed") == "fast":
        shape.context["speed"] = "fast"
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = str(tool.get("type", "")) if isinstance(tool, dict) else ""
        if kind.startswith("web_search"):
            uses = _bound(tool.get("max_uses")) if isinstance(tool, dict) else None
            if uses is None:
                shape.unbounded_search = True
            else:
                # Each search's results are read back in: the input is billed again.
                shape.searches += uses
                shape.rounds += uses
                shape.unmeasured = shape.unmeasured or "web search results"
        elif kind.startswith(("web_fetch", "code_execution", "mcp")):
            shape.server_tool = kind


def _service_tier(shape: RequestShape, body: Mapping[str, Any]) -> None:
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        shape.context["service_tier"] = tier


def _embedding_input(value: object, counter: Counter | None) -> int:
    if isinstance(value, str):
        return _text_bound(value, counter)
    if not isinstance(value, list):
        return 0
    total = 0
    for item in value:
        if isinstance(item, str):
            total += _text_bound(item, counter)
        elif isinstance(item, int):
            total += 1  # a token id
        elif isinstance(item, list):
            total += len(item)  # a list of token ids
    return total


def _text_bound(text: str, counter: Counter | None) -> int:
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return size if counter is None else min(size, counter(text))


class _Walk:
    """Counts the text of a JSON body, in bytes and (with a counter) in tokens."""

    __slots__ = ("audio", "bytes", "counter", "files", "images", "tokens")

    def __init__(self, counter: Counter | None) -> None:
        self.counter = counter
        self.bytes = 0
        self.tokens = 0
        self.images = 0
        self.files = 0
        self.audio = False

    def text(self, text: str) -> None:
        self.bytes += len(text) if text.isascii() else len(text.encode("utf-8"))
        if self.counter is not None:
            self.tokens += self.counter(text)

    def visit(self, value: object) -> None:
        if isinstance(value, str):
            self.text(value)
        elif isinstance(value, dict):
            kind = value.get("type")
            if kind in _IMAGE_TYPES:
                self.images += 1
                return
            if kind in _FILE_TYPES:
                self.files += 1
                return
            if kind in _AUDIO_TYPES:
                # Audio tokens are far fewer than the bytes of its base64: count bytes only.
                self.audio = True
                size = len(json.dumps(value))
                self.bytes += size
                self.tokens += size
                return
            for key, item in value.items():
                self.text(key)
                self.visit(item)
        elif isinstance(value, list):
            for item in value:
                self.visit(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            size = len(repr(value))
            self.bytes += size
            self.tokens += size
