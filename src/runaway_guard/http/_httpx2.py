"""Guarded transports and clients for httpx2, the HTTP library of the official SDKs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx2

from runaway_guard.http._shells import (
    AsyncMetered,
    AsyncShell,
    SyncMetered,
    SyncShell,
    build_client,
)

if TYPE_CHECKING:
    from runaway_guard._guard import Contract

__all__ = ["AsyncGuardedTransport", "GuardedTransport", "async_client", "client"]


class _SyncStream(SyncMetered, httpx2.SyncByteStream):
    pass


class _AsyncStream(AsyncMetered, httpx2.AsyncByteStream):
    pass


class GuardedTransport(SyncShell, httpx2.BaseTransport):
    """A transport that holds and settles every request under a contract.

    Args:
        contract: the contract each attempt is held and settled under.
        transport: the transport that really sends (default ``httpx2.HTTPTransport()``).
        routes: ``{"POST api.example.com/v1/images/*": "$0.05", "GET /v1/status": None}``:
            flat prices (or free, None) by method, host and path; first match wins.
    """

    _library: ClassVar[Any] = httpx2
    _stream: ClassVar[type[SyncMetered]] = _SyncStream


class AsyncGuardedTransport(AsyncShell, httpx2.AsyncBaseTransport):
    """`GuardedTransport` for ``httpx2.AsyncClient``."""

    _library: ClassVar[Any] = httpx2
    _stream: ClassVar[type[AsyncMetered]] = _AsyncStream


def client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx2.BaseTransport | None = None,
    **options: Any,
) -> httpx2.Client:
    """A ``httpx2.Client`` whose every request is held and settled under `contract`.

    Pass it to an SDK: ``OpenAI(http_client=client(contract))``. Each HTTP attempt the
    SDK makes, retries included, places its own hold before any byte is sent.

    Args:
        contract: the contract to guard requests with.
        routes: flat prices by route (see `GuardedTransport`).
        transport: the transport that really sends; default a ``httpx2.HTTPTransport``
            built from the transport options among `options` (``verify``, ``proxy``,
            ``limits``, ``http2``...). Proxies from the environment are not used: pass
            ``proxy=`` explicitly.
        options: ``httpx2.Client`` options; defaults follow the SDKs' own clients.
    """
    client: httpx2.Client = build_client(
        httpx2, GuardedTransport, contract, routes, transport, options
    )
    return client


def async_client(
    contract: Contract,
    *,
    routes: Mapping[str, object] | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    **options: Any,
) -> httpx2.AsyncClient:
    """`client` for async code: ``AsyncAnthropic(http_client=async_client(contract))``."""
    client: httpx2.AsyncClient = build_client(
        httpx2, AsyncGuardedTransport, contract, routes, transport, options
    )
    return client
