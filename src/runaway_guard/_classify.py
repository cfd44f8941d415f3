"""Classify a failed attempt: retry it or not, charge it or not, and how long to wait.

Works by duck typing on exceptions from the official `openai` and `anthropic` SDKs,
`httpx`, `httpx2`, `requests` and the standard library, without importing any of them:
a status code on the exception or its response, response headers, and class names.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from runaway_guard._errors import GuardRefused, NonRetriableError

__all__ = ["Failure", "Kind", "classify", "retry_after_seconds", "status_code_of"]


class Kind(enum.StrEnum):
    """What kind of failure an attempt met."""

    CLIENT_ERROR = "client_error"
    """A 4xx other than 408, 409 and 429: the request is wrong; retrying repeats it."""
    CONFLICT = "conflict"
    """408 or 409: the provider asks to try again; it did not bill."""
    RATE_LIMITED = "rate_limited"
    """429: wait as Retry-After says, then try again."""
    SERVER_ERROR = "server_error"
    """5xx: the upstream failed; back off and retry."""
    CONNECT_FAILED = "connect_failed"
    """The connection was never made, so nothing was sent or billed."""
    TIMEOUT = "timeout"
    """No answer in time after the request went out: it may have been billed."""
    CONNECTION = "connection"
    """The connection broke after the request may have gone out."""
    NON_RETRIABLE = "non_retriable"
    """`NonRetriableError`, or your `retry_if` said no."""
    REFUSED = "refused"
    """A guard refused a call inside the guarded function."""
    INTERRUPTED = "interrupted"
    """Cancelled, interrupted or exiting: never retried."""
    OTHER = "other"
    """Anything else, such as a bug in the guarded function: not retried by default."""


RETRIABLE = frozenset(
    {
        Kind.CONFLICT,
        Kind.RATE_LIMITED,
        Kind.SERVER_ERROR,
        Kind.CONNECT_FAILED,
        Kind.TIMEOUT,
        Kind.CONNECTION,
    }
)
UPSTREAM_FAILURES = frozenset(
    {Kind.RATE_LIMITED, Kind.SERVER_ERROR, Kind.CONNECT_FAILED, Kind.TIMEOUT, Kind.CONNECTION}
)
"""Kinds that count towards opening a circuit breaker: the upstream is unwell."""


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed attempt was classified: its kind, HTTP status and any Retry-After."""

    kind: Kind
    status: int | None = None
    retry_after: float | None = None
    """Seconds the server asked us to wait, when it said."""

    @property
    def retriable(self) -> bool:
        return self.kind in RETRIABLE


_CONNECT_NAMES = ("ConnectError", "ConnectTimeout", "ConnectionRefused", "NewConnectionError")
_TIMEOUT_NAMES = ("Timeout",)
_CONNECTION_NAMES = (
    "Connection",
    "NetworkError",
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ProtocolError",
    "ChunkedEncodingError",
    "IncompleteRead",
    "ServerDisconnected",
)


def classify(exc: BaseException, *, now: float) -> Failure:
    """Classify `exc`. `now` (epoch seconds) turns an HTTP-date Retry-After into seconds."""
    if isinstance(exc, NonRetriableError):
        return Failure(Kind.NON_RETRIABLE)
    if isinstance(exc, GuardRefused):
        return Failure(Kind.REFUSED)
    if not isinstance(exc, Exception):
        return Failure(Kind.INTERRUPTED)
    status = status_code_of(exc)
    if status is not None:
        if status == 429:
            return Failure(Kind.RATE_LIMITED, status, retry_after_seconds(_headers_of(exc), now))
        if status in (408, 409):
            return Failure(Kind.CONFLICT, status, retry_after_seconds(_headers_of(exc), now))
        if 500 <= status <= 599:
            return Failure(Kind.SERVER_ERROR, status, retry_after_seconds(_headers_of(exc), now))
        if 400 <= status <= 499:
            return Failure(Kind.CLIENT_ERROR, status)
    names = [cls.__name__ for cls in type(exc).__mro__]
    if any(marker in name for name in names for marker in _CONNECT_NAMES):
        return Failure(Kind.CONNECT_FAILED)
    if isinstance(exc, TimeoutError) or any(
        marker in name for name in names for marker in _TIMEOUT_NAMES
    ):
        return Failure(Kind.TIMEOUT)
    if isinstance(exc, ConnectionError) or any(
        marker in name for name in names for marker in _CONNECTION_NAMES
    ):
        return Failure(Kind.CONNECTION)
    return Failure(Kind.OTHER)


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status carried by `exc` or its response, if any."""
    for holder in (exc, getattr(exc, "response", None)):
        if holder is None:
            continue
        for attribute in ("status_code", "status"):
            value = getattr(holder, attribute, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _headers_of(exc: BaseException) -> Headers | None:
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            return headers  # type: ignore[no-any-return]
    return None


class Headers(Protocol):
    """Anything with a case-insensitive-ish ``get``: httpx, requests, email.message."""

    def get(self, name: str, /) -> Any: ...


def retry_after_seconds(headers: Headers | None, now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0 and math.isfinite(value):
            return value
    text = _header(headers, "retry-after")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    return value if value >= 0 and math.isfinite(value) else None


def _header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    if value is None:
        return None
    return str(value).strip()


def http_date(when: datetime) -> str:
    """Format `when` as an HTTP date (for tests and fake servers)."""
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
