"""The patterns' entries on `Guard` and `Contract`: thin methods mixed into both classes.

They live here, next to what they call, so the guard's module stays about the flow of a
call; each one only checks its arguments' shape and delegates.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from runaway_guard._errors import ContractError
from runaway_guard._flow import run_once_async, run_once_sync
from runaway_guard._money import MoneyLike
from runaway_guard.patterns._fallback import Fallback, FallOverIf
from runaway_guard.patterns._fanout import OnError, afan_out, fan_out
from runaway_guard.patterns._idempotency import (
    DEFAULT_TTL,
    DEFAULT_WAIT,
    Codec,
    Idempotency,
    JSONCodec,
    KeyFunction,
    idempotent,
)
from runaway_guard.patterns._jobs import DEFAULT_JOB_LEASE, Job, Overlap
from runaway_guard.patterns._poll import apoll, poll
from runaway_guard.patterns._reconnect import Reconnects, areconnect, reconnect

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard

__all__ = ["ContractPatterns", "GuardPatterns"]

I = TypeVar("I")  # noqa: E741 -- the conventional name for an item type
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

Jitter = Literal["full", "none"]


class GuardPatterns:
    """`Guard` methods for the amplifier patterns: fan-out, polling, reconnects, jobs,
    fallback chains and idempotent handlers."""

    @property
    def _self(self) -> Guard:
        return cast("Guard", self)

    def map(
        self,
        fn: Callable[[I], R],
        items: Iterable[I],
        *,
        max_items: int,
        concurrency: int,
        on_error: OnError = "stop",
    ) -> list[R]:
        """Call `fn(item)` per item in threads, at most `concurrency` at once; results in order.

        A list longer than `max_items` is refused whole (`TooManyItems`) before any call;
        an empty one calls nothing. Each call runs in a copy of the caller's context, so
        the enclosing run applies. ``on_error="stop"`` (the default) stops scheduling
        after the first failure; ``"continue"`` calls every item. Failures raise
        `FanOutFailed` with the finished results attached by index.
        """
        return fan_out(fn, items, max_items=max_items, concurrency=concurrency, on_error=on_error)

    async def amap(
        self,
        fn: Callable[[I], Awaitable[R]],
        items: Iterable[I],
        *,
        max_items: int,
        concurrency: int,
        on_error: OnError = "stop",
    ) -> list[R]:
        """`map` for a coroutine function: tasks instead of threads, the same bounds."""
        return await afan_out(
            fn, items, max_items=max_items, concurrency=concurrency, on_error=on_error
        )

    def poll(
        self,
        fn: Callable[[], R],
        *,
        until: Callable[[R], bool],
        interval: float,
        max_wait: float,
        contract: Contract | None = None,
    ) -> R:
        """Call `fn()` every `interval` seconds until `until(result)`; return that result.

        At most ``ceil(max_wait / interval)`` polls, none after `max_wait`, each priced by
        `contract` (or by the contract `fn` is decorated with); then `PollTimedOut`.
        """
        return poll(
            self._self, fn, until=until, interval=interval, max_wait=max_wait, contract=contract
        )

    async def apoll(
        self,
        fn: Callable[[], Awaitable[R]],
        *,
        until: Callable[[R], bool],
        interval: float,
        max_wait: float,
        contract: Contract | None = None,
    ) -> R:
        """`poll` for a coroutine function."""
        return await apoll(
            self._self, fn, until=until, interval=interval, max_wait=max_wait, contract=contract
        )

    def _reconnects(
        self,
        connect: Callable[..., Any],
        name: str | None,
        max_reconnects: int,
        backoff: float,
        backoff_cap: float,
        jitter: Jitter,
        retry_after_cap: float,
    ) -> Reconnects:
        return Reconnects(
            self._self,
            name or str(getattr(connect, "__qualname__", "stream")),
            max_reconnects=max_reconnects,
            backoff=backoff,
            backoff_cap=backoff_cap,
            jitter=jitter,
            retry_after_cap=retry_after_cap,
        )

    def reconnect(
        self,
        connect: Callable[[], Iterable[T]],
        *,
        max_reconnects: int,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        jitter: Jitter = "full",
        retry_after_cap: float = 60.0,
        contract: Contract | None = None,
        name: str | None = None,
    ) -> Iterator[T]:
        """Yield a stream's items, reopening it with `connect()` at most `max_reconnects` times.

        Reconnects only after failures worth another try (a dropped connection, a
        timeout, a 5xx, a 429), waiting `backoff` seconds doubling up to `backoff_cap`
        (full jitter) on the guard's clock, or the server's Retry-After up to
        `retry_after_cap`. `contract`, if given, prices each connection. When the
        reconnects run out: `ReconnectsExhausted`.
        """
        plan = self._reconnects(
            connect, name, max_reconnects, backoff, backoff_cap, jitter, retry_after_cap
        )
        return reconnect(self._self, connect, plan, contract)

    def areconnect(
        self,
        connect: Callable[[], Any],
        *,
        max_reconnects: int,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        jitter: Jitter = "full",
        retry_after_cap: float = 60.0,
        contract: Contract | None = None,
        name: str | None = None,
    ) -> AsyncIterator[Any]:
        """`reconnect` for async streams: `connect()` returns, or awaits to, an async iterable."""
        plan = self._reconnects(
            connect, name, max_reconnects, backoff, backoff_cap, jitter, retry_after_cap
        )
        return areconnect(self._self, connect, plan, contract)

    def job(
        self,
        name: str,
        *,
        max_runs_per_day: int,
        overlap: Overlap = "refuse",
        wait: float | None = None,
        lease: float = DEFAULT_JOB_LEASE,
        heartbeat: bool = True,
    ) -> Job:
        """A cron or self-scheduling job: a lease lock and a daily run count in the ledger.

        ``with guard.job("nightly", max_runs_per_day=1) as run:``, or as a decorator. A
        run while another is live is refused (`JobOverlap`), or waits at most `wait`
        seconds with ``overlap="wait"``; a run past `max_runs_per_day` is refused
        (`BudgetExceeded`). A crashed run's lock ends with its `lease`.
        """
        return Job(
            self._self,
            name,
            max_runs_per_day=max_runs_per_day,
            overlap=overlap,
            wait=wait,
            lease=lease,
            heartbeat=heartbeat,
        )

    def fallback(
        self,
        name: str,
        providers: Sequence[Callable[..., R]],
        *,
        max_per_run: MoneyLike,
        fall_over_if: FallOverIf | None = None,
    ) -> Fallback[R]:
        """Providers (functions guarded by their contracts) tried in order, under one cap.

        `max_per_run` bounds what all of them spend together in the enclosing run.
        """
        return Fallback(
            self._self, name, providers, max_per_run=max_per_run, fall_over_if=fall_over_if
        )

    def idempotent(
        self,
        *,
        key: KeyFunction,
        ttl: float = DEFAULT_TTL,
        codec: Codec | None = None,
        wait: float = DEFAULT_WAIT,
        lease: float | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Decorate a handler so each key runs once; repeats get the stored result at $0.

        For the boundary of a webhook handler: ``@guard.idempotent(key=lambda event:
        f"stripe:{event['id']}")``. `key` is called with the handler's arguments; `name`
        (the function's qualified name by default) scopes the keys in the ledger. The
        other options are those of `Idempotency`.
        """
        policy = Idempotency(
            key=key,
            ttl=ttl,
            codec=codec if codec is not None else JSONCodec(),
            wait=wait,
            lease=lease,
        )
        return idempotent(self._self, policy, name)


class ContractPatterns:
    """`Contract` methods for idempotent calls with a key given per call."""

    def call_once(self, key: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)` once per `key`; a repeat returns the stored result at $0.

        Uses the contract's `idempotency` settings (24 h TTL, JSON, a 30 s wait for a
        duplicate in flight, by default). A failed call frees the key for the next one.
        """
        if inspect.iscoroutinefunction(fn):
            raise ContractError(
                f"{fn.__qualname__} is async: use `await contract.acall_once(key, fn, ...)`"
            )
        return run_once_sync(cast("Contract", self), key, fn, args, kwargs)

    async def acall_once(
        self, key: str, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """`call_once` for coroutines."""
        return await run_once_async(cast("Contract", self), key, fn, args, kwargs)
