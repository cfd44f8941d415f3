"""Thin shells around `Guarding`: they move bytes and await; every decision is in _core.

The same four classes serve httpx2 and httpx: each library's module pairs them with its
own base classes (a transport must be an instance of the library's ``BaseTransport``,
a response stream of its ``SyncByteStream``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from runaway_guard._errors import ContractError, RunawayGuardError
from runaway_guard._flow import _admit_async, _admit_sync, _ledger
from runaway_guard.http._core import Guarding, Metering

if TYPE_CHECKING:
    from runaway_guard._guard import Contract

__all__ = ["AsyncMetered", "AsyncShell", "SyncMetered", "SyncShell", "build_client"]

_TRANSPORT_OPTIONS: Final = (
    "verify",
    "cert",
    "trust_env",
    "http1",
    "http2",
    "limits",
    "proxy",
    "uds",
    "local_address",
    "retries",
    "socket_options",
)


def build_client(
    library: Any,
    guarded: type[SyncShell | AsyncShell],
    contract: Contract,
    routes: Mapping[str, object] | None,
    transport: object | None,
    options: dict[str, Any],
) -> Any:
    """A `library` client (sync or async, as `guarded` is) sending through `guarded`.

    Options for the default transport (``verify``, ``proxy``, ``limits``...) build it;
    the rest go to the client. Defaults follow the OpenAI and Anthropic SDKs' own
    clients: a 600 s timeout (5 s to connect), redirects followed, 1000 connections.
    """
    if "mounts" in options:
        raise ContractError(
            "a guarded client takes no mounts=: requests through a mounted transport would "
            "bypass the guard; pass transport= (it is wrapped) or build the client yourself "
            "with a guarded transport per mount"
        )
    kwargs = dict(options)
    kwargs.setdefault("timeout", library.Timeout(600.0, connect=5.0))
    kwargs.setdefault("follow_redirects", True)
    inner: dict[str, Any] = {n: kwargs.pop(n) for n in _TRANSPORT_OPTIONS if n in kwargs}
    if transport is not None and inner:
        raise ContractError(
            f"options {sorted(inner)} configure the default transport; with transport=, set "
            "them on that transport instead"
        )
    inner.setdefault("limits", library.Limits(max_connections=1000, max_keepalive_connections=100))
    if "trust_env" in inner:
        kwargs["trust_env"] = inner["trust_env"]
    if transport is None:
        transport = getattr(library, guarded._sender)(**inner)
    client = library.AsyncClient if issubclass(guarded, AsyncShell) else library.Client
    return client(transport=guarded(contract, transport=transport, routes=routes), **kwargs)


def _content(request: Any) -> bytes | None:
    try:
        content: bytes = request.content
    except Exception:  # a streamed upload that was not read: group it by URL alone
        return None
    return content


def _task_id() -> int:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not asyncio (trio): the thread tells calls apart
        return 0
    return id(task) if task is not None else 0


class _Shell:
    """A guarded transport's state: the decisions, and the transport that really sends."""

    _library: ClassVar[Any]
    """The ``httpx2`` or ``httpx`` module."""
    _sender: ClassVar[str]
    """The name of the library's default transport class."""

    def __init__(
        self,
        contract: Contract,
        *,
        transport: Any = None,
        routes: Mapping[str, object] | None = None,
    ) -> None:
        self._core = Guarding(contract, routes, self._library)
        self._inner = transport if transport is not None else getattr(self._library, self._sender)()


class SyncShell(_Shell):
    """``handle_request`` of a guarded sync transport."""

    _sender = "HTTPTransport"
    _stream: ClassVar[type[SyncMetered]]

    def handle_request(self, request: Any) -> Any:
        core = self._core
        pricing = core.pricing(request)
        if pricing.free:
            return self._inner.handle_request(request)
        body = request.read() if pricing.tokens else _content(request)
        attempt = core.begin(request, pricing, body, 0)
        try:
            attempt.hold = _admit_sync(attempt.flow)
        except RunawayGuardError as exc:
            raise core.refused(attempt, exc) from exc.__cause__
        try:
            response = self._inner.handle_request(attempt.request)
        except BaseException as exc:
            raise core.failed(attempt, exc)  # noqa: B904 - exc itself, or chained to it
        metering = core.received(attempt, response)
        if metering is not None:
            response.stream = self._stream(response.stream, metering)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncShell(_Shell):
    """``handle_async_request`` of a guarded async transport."""

    _sender = "AsyncHTTPTransport"
    _stream: ClassVar[type[AsyncMetered]]

    async def handle_async_request(self, request: Any) -> Any:
        core = self._core
        pricing = core.pricing(request)
        if pricing.free:
            return await self._inner.handle_async_request(request)
        body = await request.aread() if pricing.tokens else _content(request)
        attempt = core.begin(request, pricing, body, _task_id())
        flow = attempt.flow
        try:
            attempt.hold = await _admit_async(flow)
        except RunawayGuardError as exc:
            raise core.refused(attempt, exc) from exc.__cause__
        try:
            response = await self._inner.handle_async_request(attempt.request)
        except BaseException as exc:
            raise await _ledger(flow, functools.partial(core.failed, attempt, exc))  # noqa: B904
        metering = await _ledger(flow, functools.partial(core.received, attempt, response))
        if metering is not None:
            response.stream = self._stream(response.stream, metering)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class SyncMetered:
    """A response body that settles its hold from the usage streaming through it."""

    def __init__(self, inner: Any, metering: Metering) -> None:
        self._inner = inner
        self._metering = metering

    def __iter__(self) -> Iterator[bytes]:
        metering = self._metering
        try:
            for chunk in self._inner:
                if metering.feed(chunk):
                    metering.renew()
                yield chunk
        except Exception as exc:  # the stream broke: settled at the usage, else failed
            metering.finish(exc)
            raise
        except BaseException:  # closed early (GeneratorExit) or interrupted
            metering.finish()
            raise
        metering.finish()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._metering.finish()


class AsyncMetered:
    """`SyncMetered` for async clients."""

    def __init__(self, inner: Any, metering: Metering) -> None:
        self._inner = inner
        self._metering = metering

    async def __aiter__(self) -> AsyncIterator[bytes]:
        metering = self._metering
        flow = metering.flow
        try:
            async for chunk in self._inner:
                if metering.feed(chunk):
                    await _ledger(flow, metering.renew)
                yield chunk
        except Exception as exc:
            await _ledger(flow, functools.partial(metering.finish, exc))
            raise
        except BaseException:
            metering.finish()  # cancelled or closed: no awaiting from here
            raise
        await _ledger(flow, metering.finish)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._metering.ended:
                await _ledger(self._metering.flow, self._metering.finish)
