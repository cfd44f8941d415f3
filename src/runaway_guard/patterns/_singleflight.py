"""Singleflight: concurrent identical requests in one process make one paid call.

The cache-miss stampede: a hundred requests miss the cache for the same key at once and
each pays for the same lookup. `Singleflight.do` lets the first caller for a key (the
leader) make the call while the others wait and share its result, or its exception.

Threads and asyncio tasks share one group: a flight led by a thread can be awaited by a
task and the other way round. A leader that is cancelled or interrupted (rather than
failing) did not produce an outcome worth sharing, so one of its waiters takes over.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["Flight", "Singleflight", "flights_of"]

T = TypeVar("T")

_TAKEOVERS: Final = 8
"""Cancelled leaders in a row a waiter tolerates before it makes the call itself."""


class Flight:
    """One call in progress for a key: its waiters, then its outcome."""

    __slots__ = ("_async_waiters", "_done", "error", "finished", "shared", "value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.finished = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.shared = True
        """False when the outcome is not for waiters (the leader was cancelled)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flight ends; False when `timeout` (real seconds) passed first."""
        return self._done.wait(timeout)

    async def await_end(self, group: Singleflight, timeout: float | None = None) -> bool:
        """Suspend until the flight ends; False when `timeout` passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with group.lock:
            if self.finished:
                return True
            self._async_waiters.append((loop, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        return True

    def outcome(self) -> Any:
        """The leader's result, or raise its exception."""
        if self.error is not None:
            raise self.error
        return self.value

    def _end(self) -> None:
        self._done.set()
        for loop, future in self._async_waiters:
            # A waiter's loop may have closed meanwhile; it no longer needs the news.
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)
        self._async_waiters.clear()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Singleflight:
    """Coalesce concurrent calls with the same key into one call.

    ```python
    flights = rg.Singleflight()

    def price_of(sku):
        cached = cache.get(sku)
        if cached is None:
            cached = cache[sku] = flights.do(sku, lookup, sku)  # lookup is guarded
        return cached
    ```

    Only calls that overlap in time are coalesced: once a flight ends, the next call
    with its key starts a new one (cache the result if later calls should reuse it).
    Waiters share the leader's result object itself, so treat it as read-only. Use `do`
    from threads and `ado` from coroutines: `do` inside a coroutine would block its loop.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._flights: dict[Hashable, Flight] = {}

    def join(self, key: Hashable) -> tuple[Flight, bool]:
        """The flight for `key`, and True when the caller is its leader and must `land` it."""
        with self.lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(
        self,
        key: Hashable,
        flight: Flight,
        *,
        value: Any = None,
        error: BaseException | None = None,
        shared: bool = True,
    ) -> None:
        """End the leader's flight: record its outcome and wake every waiter."""
        with self.lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.value = value
            flight.error = error
            flight.shared = shared and (error is None or isinstance(error, Exception))
            flight.finished = True
            flight._end()

    def in_flight(self) -> int:
        """Keys with a call in progress."""
        with self.lock:
            return len(self._flights)

    def do(self, key: Hashable, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)`, or wait for the call already in flight for `key`.

        Returns the leader's result or raises its exception, to every caller alike.
        """
        for _ in range(_TAKEOVERS):
            flight, leader = self.join(key)
            if leader:
                return self._lead(key, flight, fn, args, kwargs)
            flight.wait()
            if flight.shared:
                return cast(T, flight.outcome())
        return fn(*args, **kwargs)

    async def ado(
        self, key: Hashable, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """`do` for coroutines: await `fn(*args, **kwargs)` or the flight in progress."""
        for _ in range(_TAKEOVERS):
            flight, leader = self.join(key)
            if leader:
                try:
                    value = await fn(*args, **kwargs)
                except BaseException as exc:
                    self.land(key, flight, error=exc)
                    raise
                self.land(key, flight, value=value)
                return value
            await flight.await_end(self)
            if flight.shared:
                return cast(T, flight.outcome())
        return await fn(*args, **kwargs)

    def _lead(
        self,
        key: Hashable,
        flight: Flight,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            self.land(key, flight, error=exc)
            raise
        self.land(key, flight, value=value)
        return value

    def __repr__(self) -> str:
        return f"Singleflight(in_flight={self.in_flight()})"


_groups: weakref.WeakKeyDictionary[Guard, Singleflight] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def flights_of(guard: Guard) -> Singleflight:
    """The guard's own group, used to coalesce idempotent calls inside this process."""
    with _groups_lock:
        group = _groups.get(guard)
        if group is None:
            group = _groups[guard] = Singleflight()
        return group
