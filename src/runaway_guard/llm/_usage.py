"""Usage from responses: JSON bodies and SSE streams, in genai-prices' keys.

The two providers count cached input differently, and genai-prices wants one meaning:
``input_tokens`` is *all* input, and ``cache_read_tokens`` / ``cache_write_tokens`` are
parts of it.

- OpenAI reports ``prompt_tokens`` (or ``input_tokens``) including cached tokens, and
  ``cached_tokens`` as a subset: the numbers map across unchanged.
- Anthropic reports ``input_tokens`` *excluding* cache reads and cache writes, which come
  separately (``cache_read_input_tokens``, ``cache_creation_input_tokens``): all input is
  the sum of the three.

Reasoning (thinking) tokens are part of output tokens for both.

`UsageMeter` reads usage from a body as it streams past: the whole JSON of a plain
response, or, for a stream, only the events that carry usage (Chat Completions' final
chunk, the Responses API's ``response.completed``, Anthropic's ``message_start`` merged
with ``message_delta``). It keeps no more of the body than it needs.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runaway_guard.llm._request import Api

__all__ = ["Observed", "UsageMeter", "observed_from_json", "usage_keys"]

logger = logging.getLogger("runaway_guard")

_FULL_LIMIT: Final = 8 * 1024 * 1024
"""Bytes of a JSON body kept whole; past this only its head and tail are kept."""
_EDGE: Final = 64 * 1024
_LINE_LIMIT: Final = 8 * 1024 * 1024
"""The longest SSE line followed; past this the stream settles at its estimate."""
_USAGE_KEY: Final = re.compile(rb'"usage"\s*:\s*\{')
_MODEL_KEY: Final = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_FINAL_RESPONSE_EVENTS: Final = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)


@dataclass(slots=True)
class Observed:
    """The usage a response reported, in genai-prices' keys, and what priced it."""

    model: str | None
    usage: dict[str, int]
    context: dict[str, str] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.usage.get("input_tokens", 0) + self.usage.get("output_tokens", 0)


def _count(value: object) -> int | None:
    if type(value) is int and value >= 0:  # not bool, not float: token counts only
        return value
    return None


def _put(usage: dict[str, int], key: str, value: object) -> None:
    if type(value) is int and value >= 0:
        usage[key] = value


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, dict) else _EMPTY


_EMPTY: Final[Mapping[str, Any]] = {}


def usage_keys(api: Api, usage: Mapping[str, Any]) -> dict[str, int] | None:
    """A provider's usage object in genai-prices' keys; None when it is not one."""
    if api is Api.MESSAGES:
        return _anthropic(usage)
    if api is Api.EMBEDDINGS:
        prompt = _count(usage.get("prompt_tokens"))
        return None if prompt is None else {"input_tokens": prompt}
    if api is Api.RESPONSES:
        prefix, cached, out = "input_tokens", "input_tokens_details", "output_tokens"
    else:
        prefix, cached, out = "prompt_tokens", "prompt_tokens_details", "completion_tokens"
    total_in, total_out = _count(usage.get(prefix)), _count(usage.get(out))
    if total_in is None or total_out is None:
        return None
    found = {"input_tokens": total_in, "output_tokens": total_out}
    inputs = _details(usage, cached)
    outputs = _details(usage, f"{out}_details")
    if inputs:
        _put(found, "cache_read_tokens", inputs.get("cached_tokens"))
        _put(found, "cache_write_tokens", inputs.get("cache_write_tokens"))
    if outputs:
        _put(found, "output_reasoning_tokens", outputs.get("reasoning_tokens"))
    if api is Api.CHAT:
        if inputs:
            _put(found, "input_audio_tokens", inputs.get("audio_tokens"))
        if outputs:
            _put(found, "output_audio_tokens", outputs.get("audio_tokens"))
    return found


def _anthropic(usage: Mapping[str, Any]) -> dict[str, int] | None:
    uncached, out = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    if uncached is None or out is None:
        return None
    written = _count(usage.get("cache_creation_input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    found = {"input_tokens": uncached + (written or 0) + (read or 0), "output_tokens": out}
    if written is not None:
        found["cache_write_tokens"] = written
    creation = _details(usage, "cache_creation")
    _put(found, "cache_write_5m_tokens", creation.get("ephemeral_5m_input_tokens"))
    _put(found, "cache_write_1h_tokens", creation.get("ephemeral_1h_input_tokens"))
    if read is not None:
        found["cache_read_tokens"] = read
    _put(found, "web_searches", _details(usage, "server_tool_use").get("web_search_requests"))
    _put(
        found,
        "output_reasoning_tokens",
        _details(usage, "output_tokens_details").get("thinking_tokens"),
    )
    return found


def _context(data: Mapping[str, Any]) -> dict[str, str]:
    tier = data.get("service_tier")
    return {"service_tier": tier} if isinstance(tier, str) else {}


def observed_from_json(api: Api, data: object) -> Observed | None:
    """The usage of a whole (non-streamed) response body, if it reports one."""
    if not isinstance(data, Mapping):
        return None
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return None
    keys = usage_keys(api, usage)
    if keys is None:
        return None
    model = data.get("model")
    return Observed(model if isinstance(model, str) else None, keys, _context(data))


# -- content decoding ----------------------------------------------------------------------------


def _decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    """A streaming decoder for a Content-Encoding, or None when it is unsupported."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return lambda data: data
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    if encoding == "br":
        try:
            import brotli  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            return None
        return brotli.Decompressor().process  # type: ignore[no-any-return, unused-ignore]
    return None


# -- the meter -----------------------------------------------------------------------------------


class UsageMeter:
    """Reads usage from a response body as it streams past.

    Feed it every chunk of the raw body (before content decoding), then call `finish`.
    `observed` is the final usage once it arrived: for a stream, possibly long before
    the body ends.
    """

    __slots__ = (
        "_api",
        "_buffer",
        "_data",
        "_decode",
        "_head",
        "_partial",
        "_size",
        "_sse",
        "_start",
        "_tail",
        "disabled",
        "observed",
    )

    def __init__(self, api: Api, *, sse: bool, content_encoding: str = "") -> None:
        self._api = api
        self._sse = sse
        self._decode = _decoder(content_encoding)
        self.disabled = self._decode is None
        self.observed: Observed | None = None
        self._buffer: list[bytes] = []
        self._size = 0
        self._head = b""
        self._tail = b""
        self._partial = b""
        self._data: list[bytes] = []
        self._start: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """True when nothing more can be learned from the body."""
        return self.disabled or (self._sse and self.observed is not None)

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        try:
            data = self._decode(chunk)  # type: ignore[misc]
        except Exception:  # a corrupt body: the attempt settles at its estimate
            self.disabled = True
            return
        if self._sse:
            self._feed_sse(data)
        else:
            self._feed_json(data)

    def finish(self) -> Observed | None:
        """The usage the body reported, if it reported one."""
        if self.disabled:
            return None
        if self._sse:
            if self._partial:
                self._line(self._partial.rstrip(b"\r"))
            self._dispatch()
            return self.observed
        try:
            if self._buffer:
                body = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
                self.observed = observed_from_json(self._api, json.loads(body.decode()))
            elif self._size:
                self.observed = self._from_edges()
        except ValueError:
            self.observed = None
        return self.observed

    # -- whole JSON bodies ----------------------------------------------------------------------
    def _feed_json(self, data: bytes) -> None:
        self._size += len(data)
        if self._size <= _FULL_LIMIT:
            self._buffer.append(data)
        elif self._buffer or not self._head:
            # Just grew past what is worth keeping: keep only its two ends from now on.
            whole = b"".join(self._buffer) + data
            self._buffer = []
            self._head, self._tail = whole[:_EDGE], whole[-_EDGE:]
        else:
            self._tail = (self._tail + data)[-_EDGE:]

    def _from_edges(self) -> Observed | None:
        # A body too large to keep (a big embeddings batch): its usage object sits at the
        # end, and the model name at one of the ends.
        matches = list(_USAGE_KEY.finditer(self._tail))
        if not matches:
            return None
        start = matches[-1].end() - 1
        usage, _ = json.JSONDecoder().raw_decode(self._tail[start:].decode("utf-8", "replace"))
        keys = usage_keys(self._api, usage) if isinstance(usage, dict) else None
        if keys is None:
            return None
        model = _MODEL_KEY.search(self._tail) or _MODEL_KEY.search(self._head)
        return Observed(model.group(1).decode() if model else None, keys)

    # -- server-sent events -----------------------------------------------------------------------
    def _feed_sse(self, data: bytes) -> None:
        # Only the events that carry usage matter. Between them, jump from one usage key
        # to the next instead of reading every content delta line by line. (An event
        # whose usage key sits on a later data line of its own would be read in part and
        # fail to parse: the attempt then settles at its estimate, the safe side.)
        data = self._partial + data
        while True:
            if not self._data:
                found = _USAGE_KEY.search(data)
                if found is None:
                    data = data[data.rfind(b"\n") + 1 :]
                    break
                data = data[data.rfind(b"\n", 0, found.start()) + 1 :]
            end = data.find(b"\n")
            if end < 0:
                break
            self._line(data[:end].rstrip(b"\r"))
            data = data[end + 1 :]
            if self.observed is not None:
                return
        self._partial = data
        if len(data) > _LINE_LIMIT:
            self.disabled = True

    def _line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
        elif line.startswith(b"data:"):
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])

    def _dispatch(self) -> None:
        data, self._data = self._data, []
        if not data:
            return
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        if not _USAGE_KEY.search(payload):
            return  # a content delta: nothing to learn, nothing to parse
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict):
            self._event_json(event)

    def _event_json(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if self._api is Api.MESSAGES:
            if kind == "message_start" and isinstance(event.get("message"), dict):
                self._start = event["message"]
            elif kind == "message_delta" and self._start is not None:
                start_usage = self._start.get("usage")
                delta = event.get("usage")
                if isinstance(start_usage, dict) and isinstance(delta, dict):
                    merged = {**start_usage, **{k: v for k, v in delta.items() if v is not None}}
                    self.observed = observed_from_json(self._api, {**self._start, "usage": merged})
        elif self._api is Api.RESPONSES:
            if kind in _FINAL_RESPONSE_EVENTS:
                self.observed = observed_from_json(self._api, event.get("response"))
        else:
            self.observed = observed_from_json(self._api, event)
