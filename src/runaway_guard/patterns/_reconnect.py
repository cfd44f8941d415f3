"""Bounded reconnects for streams: a dropped stream is reopened a counted number of times.

A stream that drops and is reopened at once, forever, is a reconnect storm: every
reconnect is a new paid request. Here the number of reconnects is an integer
(`max_reconnects`, counted over the whole stream and never reset, since a stream that
delivers one event and drops again would otherwise reconnect forever), with exponential
backoff and full jitter, capped, on the guard's clock. A server's Retry-After is
honoured up to `retry_after_cap`.

Only failures worth another try reconnect: a broken or refused connection, a timeout, a
5xx, a 429. Anything else (a 4xx, a bug in the consumer) propagates at once.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from runaway_guard._budget import check_count
from runaway_guard._classify import Failure, Kind, classify
from runaway_guard._errors import AttemptRecord, ReconnectsExhausted
from runaway_guard._policy import Retry

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard

__all__ = ["Reconnects", "areconnect", "reconnect"]

logger = logging.getLogger("runaway_guard")

T = TypeVar("T")

_WAIT_AFTER = (Kind.RATE_LIMITED, Kind.CONFLICT, Kind.SERVER_ERROR)


class Reconnects:
    """The decisions of one bounded stream: reconnect after a failure or give up."""

    def __init__(
        self,
        guard: Guard,
        name: str,
        *,
        max_reconnects: int,
        backoff: float,
        backoff_cap: float,
        jitter: Literal["full", "none"],
        retry_after_cap: float,
        seed: int | None = None,
    ) -> None:
        self.guard = guard
        self.name = name
        self.max_reconnects = check_count(max_reconnects, "max_reconnects")
        # Retry validates the numbers and computes the backoff; attempts = 1 + reconnects.
        self.policy = Retry(
            self.max_reconnects + 1,
            backoff=backoff,
            backoff_cap=backoff_cap,
            jitter=jitter,
            retry_after_cap=retry_after_cap,
            seed=seed,
        )
        self.records: list[AttemptRecord] = []

    @property
    def connections(self) -> int:
        """The most connections the stream may open: the first plus every reconnect."""
        return self.max_reconnects + 1

    def failed(self, connection: int, exc: BaseException) -> float:
        """Seconds to wait before reconnecting after `exc`; raise when that is not allowed."""
        if not isinstance(exc, Exception):
            raise exc
        failure: Failure = classify(exc, now=self.guard.clock.now())
        self.records.append(AttemptRecord(connection, str(failure.kind), "-", _describe(exc)))
        if not failure.retriable:
            raise exc
        if connection > self.max_reconnects:
            self._give_up(exc, "attempts", f"the stream failed {connection} time(s)")
        if failure.retry_after is not None and failure.kind in _WAIT_AFTER:
            if failure.retry_after > self.policy.retry_after_cap:
                self._give_up(
                    exc,
                    "retry_after",
                    f"the server asked to wait {failure.retry_after:g}s, longer than "
                    f"retry_after_cap={self.policy.retry_after_cap:g}s",
                )
            delay = failure.retry_after
        else:
            delay = self.policy.delay(connection)
        logger.warning(
            "runaway-guard: stream %r failed (%s); reconnect %d of %d in %.3gs",
            self.name,
            failure.kind,
            connection,
            self.max_reconnects,
            delay,
        )
        return delay

    def _give_up(self, exc: BaseException, reason: str, detail: str) -> None:
        raise ReconnectsExhausted(
            f"stream {self.name!r} gave up after {len(self.records)} failed connection(s): "
            f"{detail}, and max_reconnects={self.max_reconnects} (raise it, or look at why the "
            "stream keeps dropping)",
            attempts=self.records,
            reason=reason,
        ) from exc


def _describe(exc: BaseException) -> str:
    return type(exc).__name__


def reconnect(
    guard: Guard,
    connect: Callable[[], Iterable[T]],
    reconnects: Reconnects,
    contract: Contract | None,
) -> Iterator[T]:
    """Yield the items of `connect()`, reopening it after a failure (see the module docs)."""
    for connection in range(1, reconnects.connections + 1):
        stream: Iterable[T] | None = None
        try:
            stream = connect() if contract is None else contract.call(connect)
            yield from stream
            return
        except Exception as exc:
            delay = reconnects.failed(connection, exc)
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()
        guard.clock.sleep(delay)
    raise AssertionError("unreachable: the last failed connection raises")  # pragma: no cover


async def _open(connect: Callable[[], Any]) -> AsyncIterable[T]:
    opened = connect()
    if inspect.isawaitable(opened):
        opened = await opened
    return cast(AsyncIterable[T], opened)


async def areconnect(
    guard: Guard,
    connect: Callable[[], AsyncIterable[T] | Awaitable[AsyncIterable[T]]],
    reconnects: Reconnects,
    contract: Contract | None,
) -> AsyncIterator[T]:
    """`reconnect` for async streams: `connect` returns (or awaits to) an async iterable."""
    for connection in range(1, reconnects.connections + 1):
        stream: AsyncIterable[T] | None = None
        try:
            opened: AsyncIterable[T] = await (
                _open(connect) if contract is None else contract.acall(_open, connect)
            )
            stream = opened
            async for item in opened:
                yield item
            return
        except Exception as exc:
            delay = reconnects.failed(connection, exc)
        finally:
            close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    result = close()
                    if inspect.isawaitable(result):
                        await result
        await guard.clock.asleep(delay)
    raise AssertionError("unreachable: the last failed connection raises")  # pragma: no cover
