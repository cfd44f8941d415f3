"""Guarded transports and clients for httpx, for code (and SDK versions) still on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from runaway_guard.http._shells import (
    AsyncMetered,
    AsyncShell,
    SyncMetered,
    SyncShell,
    build_client,
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
    """A transport that holds and settles every request under a contract.

    Args:
        contract: the contract each attempt is held and settled under.
        transport: the transport that really sends (default ``httpx.HTTPTransport()``).
        routes: ``{"POST api.example.com/v1/images/*": "$0.05", "GET /v1/status": None}``:
            flat prices (or free, None) by method, host and path; first match wins.
    """

    _library: ClassVar[Any] = httpx
    _stream: ClassVar[type[SyncMetered]] = _SyncStream


class AsyncHttpxGuardedTransport(AsyncShell, httpx.AsyncBaseTransport):
    """`HttpxGuardedTransport` for ``httpx.AsyncClient``."""

    _library: ClassVar[Any] = httpx
    _stream: ClassVar[type[AsyncMetered]] = _AsyncStream


def httpx_client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> httpx.Client:
    """A ``httpx.Client`` whose every request is held and settled under `contract`.

    Pass it to an SDK: ``OpenAI(http_client=httpx_client(contract))``. Each HTTP attempt the
    SDK makes, retries included, places its own hold before any byte is sent.

    Args:
        contract: the contract to guard requests with.
        routes: flat prices by route (see `HttpxGuardedTransport`).
        transport: the transport that really sends; default a ``httpx.HTTPTransport``
            built from the transport options among `options` (``verify``, ``proxy``,
            ``limits``, ``http2``...). Proxies from the environment are not used: pass
            ``proxy=`` explicitly.
        options: ``httpx.Client`` options; defaults follow the SDKs' own clients.
    """
    client: httpx.Client = build_client(
        httpx, HttpxGuardedTransport, contract, routes, transport, options
    )
    return client


def httpx_async_client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """`httpx_client` for async code."""
    client: httpx.AsyncClient = build_client(
        httpx, AsyncHttpxGuardedTransport, contract, routes, transport, options
    )
    return client
