"""Guarded HTTP clients: every request holds its worst case before a byte is sent.

``OpenAI(http_client=contract.http_client())`` and
``AsyncAnthropic(http_client=contract.async_http_client())`` guard the official SDKs where
every attempt passes, their internal retries included. Each attempt places its own hold,
is counted against the contract's ``retry=rg.Retry(attempts=...)``, and settles at the
cost of the usage the response reports (token prices), or at a flat price per route for
any other paid HTTP API.

The clients are ``httpx2`` clients (what the SDKs use); ``httpx_client`` and
``httpx_async_client`` build ``httpx`` ones. Install with
``pip install 'runaway-guard[openai]'`` or ``'runaway-guard[anthropic]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import httpx2 as _httpx2  # noqa: F401 - fail early, with the extra to install
except ImportError as exc:  # pragma: no cover - the test extra installs it
    raise ImportError("guarded HTTP clients need httpx2: pip install 'runaway-guard[llm]'") from exc

from runaway_guard.http._core import UnpricedRequest
from runaway_guard.http._httpx2 import AsyncGuardedTransport, GuardedTransport, async_client, client
from runaway_guard.http._routes import LLM_FREE_ROUTES, Route

if TYPE_CHECKING:
    from runaway_guard.http._httpx import (
        AsyncHttpxGuardedTransport,
        HttpxGuardedTransport,
        httpx_async_client,
        httpx_client,
    )

__all__ = [
    "LLM_FREE_ROUTES",
    "AsyncGuardedTransport",
    "AsyncHttpxGuardedTransport",
    "GuardedTransport",
    "HttpxGuardedTransport",
    "Route",
    "UnpricedRequest",
    "async_client",
    "client",
    "httpx_async_client",
    "httpx_client",
]

_LEGACY = frozenset(
    {"AsyncHttpxGuardedTransport", "HttpxGuardedTransport", "httpx_async_client", "httpx_client"}
)


def __getattr__(name: str) -> Any:
    # httpx is imported only when asked for: the SDKs change behaviour once it is loaded.
    if name in _LEGACY:
        from runaway_guard.http import _httpx

        return getattr(_httpx, name)
    raise AttributeError(f"module 'runaway_guard.http' has no attribute {name!r}")
