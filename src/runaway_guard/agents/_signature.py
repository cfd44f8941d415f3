"""Loop signatures: a tool name plus its arguments with the volatile parts taken out.

An agent stuck in a loop rarely repeats a call byte for byte: each retry carries a fresh
timestamp, a new request id, the next address in the same subnet. The signature strips
what changes from call to call and keeps what the call *is*, so four "different"
traceroutes to neighbouring hosts read as the same call four times.

What the default normalisation does, in order:

- keys that name a time (``ts``, ``timestamp``, ``created_at``, ``since`` ...) keep the
  key and lose the value (``<time>``); keys that name a request (``request_id``,
  ``trace_id``, ``nonce``, ``idempotency_key`` ...) lose the value (``<id>``);
- in text: ISO 8601 dates and times and clock times become ``<time>``; epoch seconds
  and milliseconds (2001 to 2286) become ``<time>``; UUIDs become ``<uuid>``;
  ``request-id: ...``-style pairs and ``req_...``-style tokens become ``<id>``; hex
  strings of 16+ characters become ``<hex>``;
- IPv6 addresses become their /48 and IPv4 addresses their /24 (a network written with a
  shorter prefix is kept as written);
- numbers of the same shape read alike where a number is unlikely to be an identity:
  free-standing runs of 5+ digits inside text (ports, byte counts, sequence numbers)
  become ``<n5>``, ``<n6>``...; floats become their shape (``<float:2>`` for 12.37);
  integer arguments stay exact (an order id is an identity; a time-named key still
  loses its value). Digits inside a word (``AS4242420001``) stay exact.

A user hook runs first, on the raw arguments, for anything more: ``normalise(tool, args)``
returns the arguments to sign.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from runaway_guard._budget import check_count
from runaway_guard._errors import ContractError

__all__ = ["LoopRule", "NormaliseHook", "Signature", "normalise", "signature"]

_TEXT_LIMIT: Final = 240
"""Characters of a signature's text kept for trails and errors (the digest is exact)."""

_TIME_KEYS: Final = re.compile(
    r"^(ts|time|timestamp|date|datetime|now|since|until|deadline|expires?|started|ended"
    r"|[a-z0-9]+_(at|ts|time|timestamp|date))$",
    re.IGNORECASE,
)
_ID_KEYS: Final = re.compile(
    r"^(request_?id|req_?id|trace_?id|span_?id|correlation_?id|corr_?id|nonce|"
    r"idempotency_?key|x-request-id|message_?id|call_?id|run_?id)$",
    re.IGNORECASE,
)
_ISO: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_CLOCK: Final = re.compile(r"(?<![\w:])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\w:])")
_EPOCH: Final = re.compile(r"(?<![\w.])(?:[1-9]\d{9}|[1-9]\d{12})(?:\.\d+)?(?![\w.])")
_UUID: Final = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_ID_PAIR: Final = re.compile(
    r"(?i)\b((?:x-)?(?:request|req|trace|span|correlation)[-_ ]?id)(\s*[:=]\s*)[^\s,;&\"']+"
)
_ID_TOKEN: Final = re.compile(r"\b(req|request|trace|span|corr|call|msg|evt)_[A-Za-z0-9]{6,}\b")
_HEX: Final = re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}\b")
_IPV6: Final = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?")
_IPV4: Final = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.])")
_LONG_NUMBER: Final = re.compile(r"(?<![\w.])\d{5,}(?![\w.])")

_EPOCH_MIN: Final = 978_307_200  # 2001-01-01: smaller 10-digit numbers are not times
_EPOCH_MAX: Final = 9_999_999_999


class NormaliseHook(Protocol):
    """``normalise(tool, arguments) -> arguments``: more normalisation, before the default."""

    def __call__(self, tool: str, arguments: Mapping[str, Any], /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Signature:
    """A call's loop signature: equal signatures are "the same call".

    Attributes:
        tool: the tool's name.
        text: the normalised call, readable, cut to a few hundred characters.
        digest: a hash of the whole normalised call; equality compares this.
    """

    tool: str
    text: str
    digest: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        return self.tool == other.tool and self.digest == other.digest

    def __hash__(self) -> int:
        return hash((self.tool, self.digest))

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class LoopRule:
    """Halt a ticket when `repeats` identical signatures fall within its last `window` calls.

    The call that would make the `repeats`-th identical one is refused before it runs: with
    the defaults, three identical traceroutes run and the fourth raises `rg.LoopDetected`.
    """

    repeats: int = 4
    window: int = 10

    def __post_init__(self) -> None:
        check_count(self.repeats, "LoopRule repeats")
        check_count(self.window, "LoopRule window")
        if self.repeats < 2:
            raise ContractError(
                f"LoopRule repeats must be at least 2 (one call is not a loop), got {self.repeats}"
            )
        if self.window < self.repeats:
            raise ContractError(
                f"LoopRule window ({self.window}) must be at least repeats ({self.repeats})"
            )
        if self.window > MAX_WINDOW:
            raise ContractError(f"LoopRule window must be at most {MAX_WINDOW}, got {self.window}")

    def repeated(self, history: Sequence[Signature], latest: Signature) -> int:
        """How often `latest` occurs in the last `window` entries of `history` (it included)."""
        recent = list(history)[-self.window :]
        return sum(1 for item in recent if item == latest)


MAX_WINDOW: Final = 1000
"""The longest call history a ticket keeps (and so the widest `LoopRule.window`)."""


def signature(
    tool: str, arguments: Mapping[str, Any], *, hook: NormaliseHook | None = None
) -> Signature:
    """The loop signature of calling `tool` with `arguments` (see the module docstring)."""
    raw: Any = arguments if hook is None else hook(tool, arguments)
    canonical = json.dumps(
        normalise(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    digest = hashlib.sha256(f"{tool}\x00{canonical}".encode()).hexdigest()[:20]
    text = f"{tool}{canonical}"
    if len(text) > _TEXT_LIMIT:
        text = text[: _TEXT_LIMIT - 3] + "..."
    return Signature(tool, text, digest)


def normalise(value: Any, key: str | None = None) -> Any:
    """`value` with its volatile parts replaced; JSON-like in, JSON-like out."""
    if key is not None and isinstance(value, str | int | float | Decimal) and value != "":
        if _TIME_KEYS.match(key):
            return "<time>"
        if _ID_KEYS.match(key):
            return "<id>"
    if isinstance(value, Mapping):
        return {str(k): normalise(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [normalise(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value  # an integer argument is usually an identity (an order, an AS number)
    if isinstance(value, float | Decimal):
        return _number_shape(value)
    if isinstance(value, str):
        return normalise_text(value)
    return normalise_text(repr(value))


def _number_shape(value: float | Decimal) -> str:
    number = Decimal(str(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return str(value)
    if _EPOCH_MIN <= abs(number) <= _EPOCH_MAX:
        return "<time>"
    whole = len(str(abs(int(number))))
    return f"<float:{whole}>"


def normalise_text(text: str) -> str:
    """Strip times, ids and addresses from free text (see the module docstring)."""
    text = _ISO.sub("<time>", text)
    text = _CLOCK.sub("<time>", text)
    text = _UUID.sub("<uuid>", text)
    text = _ID_PAIR.sub(lambda m: f"{m[1]}{m[2]}<id>", text)
    text = _ID_TOKEN.sub("<id>", text)
    text = _HEX.sub("<hex>", text)
    text = _IPV6.sub(_ipv6, text)
    text = _IPV4.sub(_ipv4, text)
    text = _EPOCH.sub(_epoch, text)
    return _LONG_NUMBER.sub(lambda m: f"<n{len(m[0])}>", text)


def _ipv6(match: re.Match[str]) -> str:
    return _network(match[0], 6, 48)


def _ipv4(match: re.Match[str]) -> str:
    return _network(match[0], 4, 24)


def _network(written: str, version: int, prefix: int) -> str:
    try:
        network = ipaddress.ip_network(written, strict=False)
    except ValueError:
        return written
    if network.version != version:
        return written
    if network.prefixlen <= prefix:
        return str(network)  # already coarser than the collapse: keep it
    return str(network.supernet(new_prefix=prefix))


def _epoch(match: re.Match[str]) -> str:
    whole = int(match[0].split(".", 1)[0])
    seconds = whole // 1000 if len(str(whole)) == 13 else whole
    return "<time>" if _EPOCH_MIN <= seconds <= _EPOCH_MAX else match[0]
