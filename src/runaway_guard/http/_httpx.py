"""Guarded transports and clients for httpx, the HTTP library of the official SDKs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from runaway_guard.http._core import Guarding
from runaway_guard.http._shells import (
    AsyncMetered,
    AsyncShell,
    SyncMetered,
    SyncShell,
    client_options,
)

if TYPE_CHECKING:
    from runaway_guard._guard import Contract

__all__ = [
    "AsyncHttpxGuardedTransport",
    "HttpxGuardedTransport",
    "httpx_async_client",
    "httpx_client",
]


class _SyncStream(SyncMetered, httpx.SyncByteStream):
    pass


class _AsyncStream(AsyncMetered, httpx.AsyncByteStream):
    pass


class HttpxGuardedTransport(SyncShell, httpx.BaseTransport):
    """An httpx transport that holds and settles every request under a contract.

    Args:
        contract: the contract each attempt is held and settled under.
        transport: the transport that really sends (default ``httpx.HTTPTransport()``).
        routes: ``{"POST api.example.com/v1/images/*": "$0.05", "GET /v1/status": None}``:
            flat prices (or free, None) by method, host and path; first match wins.
    """

    _stream = _SyncStream

    def __init__(
        self,
        contract: Contract,
        *,
        transport: httpx.BaseTransport | None = None,
        routes: Mapping[str, object] | None = None,
    ) -> None:
        self._core = Guarding(contract, routes, httpx)
        self._inner = transport if transport is not None else httpx.HTTPTransport()


class AsyncHttpxGuardedTransport(AsyncShell, httpx.AsyncBaseTransport):
    """`HttpxGuardedTransport` for ``httpx.AsyncClient``."""

    _stream = _AsyncStream

    def __init__(
        self,
        contract: Contract,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        routes: Mapping[str, object] | None = None,
    ) -> None:
        self._core = Guarding(contract, routes, httpx)
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport()


def httpx_client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> httpx.Client:
    """An ``httpx.Client`` (the older library) that holds and settles every request.

    Pass it to an SDK: ``OpenAI(http_client=httpx_client(contract))``. Each HTTP attempt the
    SDK makes, retries included, places its own hold before any byte is sent.

    Args:
        contract: the contract to guard requests with.
        routes: flat prices by route (see `HttpxGuardedTransport`).
        transport: the transport that really sends; default an ``httpx.HTTPTransport``
            built from the transport options among `options` (``verify``, ``proxy``,
            ``limits``, ``http2``...). Proxies from the environment are not used: pass
            ``proxy=`` explicitly.
        options: ``httpx.Client`` options; defaults follow the SDKs' own clients.
    """
    kwargs, inner = client_options(httpx, transport, options)
    sender = transport if transport is not None else httpx.HTTPTransport(**inner)
    return httpx.Client(
        transport=HttpxGuardedTransport(contract, transport=sender, routes=routes), **kwargs
    )


def httpx_async_client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """`httpx_client` for async code."""
    kwargs, inner = client_options(httpx, transport, options)
    sender = transport if transport is not None else httpx.AsyncHTTPTransport(**inner)
    guarded = AsyncHttpxGuardedTransport(contract, transport=sender, routes=routes)
    return httpx.AsyncClient(transport=guarded, **kwargs)
