"""Bounded fan-out: call a function on a list of items, at most `concurrency` at once.

The shape behind the $200 night: ``Promise.all(prompts.map(generate))`` over a list that
doubled on every retry. Here the list is bounded by an integer before anything runs (a
longer list is rejected whole: no call is made, not even the first), the calls in
flight are bounded by another, and results come back in input order.

Partial failure. By default (``on_error="stop"``) the first failure stops the scheduling
of new items; the calls already in flight finish, then `FanOutFailed` is raised with the
finished results attached by index. ``on_error="continue"`` calls every item and raises
`FanOutFailed` at the end if any failed. Either way a refusal by the guard (a budget, a
kill switch, an open breaker) stops the scheduling: the items after it would be refused
too. Pair the fan-out with idempotency keys and a re-run after a failure pays only for
the items that did not finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal, TypeVar, cast

from runaway_guard._budget import check_count
from runaway_guard._errors import ContractError, FanOutFailed, GuardRefused, TooManyItems

__all__ = ["OnError", "afan_out", "fan_out"]

I = TypeVar("I")  # noqa: E741 -- the conventional name for an item type
R = TypeVar("R")

OnError = Literal["stop", "continue"]


class _Plan:
    """Which item starts next, and what the fan-out returns or raises once it is over."""

    def __init__(self, items: list[Any], concurrency: int, on_error: OnError) -> None:
        self.items = items
        self.concurrency = concurrency
        self.on_error = on_error
        self.results: dict[int, Any] = {}
        self.errors: dict[int, BaseException] = {}
        self.first: int | None = None
        self.started = 0
        self.stopped = False

    def take(self, running: int) -> int | None:
        """The index of the next item to start, or None when none may start now."""
        if self.stopped or running >= self.concurrency or self.started >= len(self.items):
            return None
        self.started += 1
        return self.started - 1

    def record(self, index: int, value: Any, error: BaseException | None) -> None:
        if error is None:
            self.results[index] = value
            return
        self.errors[index] = error
        if self.first is None:
            self.first = index
        if (
            self.on_error == "stop"
            or isinstance(error, GuardRefused)
            or not isinstance(error, Exception)
        ):
            self.stopped = True

    def outcome(self) -> list[Any]:
        """The results in input order, or raise what went wrong."""
        if not self.errors:
            return [self.results[index] for index in range(len(self.items))]
        for error in self.errors.values():
            if not isinstance(error, Exception):
                raise error  # an interrupt is not a failed item: let it through as it is
        assert self.first is not None
        first = self.errors[self.first]
        not_started = list(range(self.started, len(self.items)))
        if not not_started:
            why = "every item had started"
        elif self.on_error == "stop":
            why = "on_error='stop' stops scheduling after the first failure"
        else:
            why = "a refusal by the guard stops scheduling"
        raise FanOutFailed(
            f"fan-out: {len(self.errors)} of {len(self.items)} items failed (first: item "
            f"{self.first}, {type(first).__name__}: {first}); {len(self.results)} finished, "
            f"{len(not_started)} not started ({why}). Finished results are in exc.results "
            "by index; with idempotency keys, a re-run pays only for the rest",
            results=self.results,
            errors=self.errors,
            not_started=not_started,
            total=len(self.items),
        ) from first


def _batch(items: Iterable[I], max_items: int, concurrency: int, on_error: str) -> list[I]:
    """The items as a list, read no further than one past `max_items`, or a refusal."""
    check_count(max_items, "max_items")
    check_count(concurrency, "concurrency")
    if concurrency < 1:
        raise ContractError("fan-out concurrency must be at least 1")
    if on_error not in ("stop", "continue"):
        raise ContractError(f"on_error must be 'stop' or 'continue', got {on_error!r}")
    if isinstance(items, str | bytes):
        raise ContractError("fan-out items must be a list of items, not one string")
    batch = list(itertools.islice(items, max_items + 1))
    if len(batch) > max_items:
        sized = hasattr(items, "__len__")
        count = len(items) if sized else len(batch)  # type: ignore[arg-type]
        told = f"{count} items" if sized else f"more than {max_items} items"
        raise TooManyItems(
            f"fan-out of {told} > max_items={max_items}: rejected whole, nothing was called. "
            "A list that grows on its own is how a fan-out runs away; find out why it grew, "
            "or raise max_items if the new size is intended",
            count=count,
            max_items=max_items,
        )
    return batch


def fan_out(
    fn: Callable[[I], R],
    items: Iterable[I],
    *,
    max_items: int,
    concurrency: int,
    on_error: OnError = "stop",
) -> list[R]:
    """Call `fn(item)` for every item in worker threads; return the results in order.

    Each call runs in a copy of the caller's context, so the enclosing `guard.run` (and
    anything else kept in contextvars) applies to it.

    Args:
        fn: called once per item; guard the paid call inside it with a contract.
        items: a list (or any iterable, read no further than ``max_items + 1``).
        max_items: the most items accepted; a longer list is rejected before any call.
        concurrency: the most calls in flight at once.
        on_error: ``"stop"`` (the default) or ``"continue"``; see the module docstring.

    Raises:
        TooManyItems: more than `max_items` items; nothing was called.
        FanOutFailed: some items failed; finished results are attached.
    """
    batch = _batch(items, max_items, concurrency, on_error)
    if not batch:
        return []
    plan = _Plan(batch, concurrency, on_error)
    running: dict[Future[R], int] = {}
    workers = min(concurrency, len(batch))
    with ThreadPoolExecutor(workers, thread_name_prefix="runaway-guard-map") as pool:
        # Each round ends at least one call, so len(batch) rounds finish every call.
        for _ in range(len(batch)):
            while (index := plan.take(len(running))) is not None:
                context = contextvars.copy_context()
                running[pool.submit(context.run, fn, batch[index])] = index
            if not running:
                break
            done, _pending = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                error = future.exception()
                plan.record(index, None if error else future.result(), error)
    return cast(list[R], plan.outcome())


async def afan_out(
    fn: Callable[[I], Awaitable[R]],
    items: Iterable[I],
    *,
    max_items: int,
    concurrency: int,
    on_error: OnError = "stop",
) -> list[R]:
    """`fan_out` for coroutine functions: tasks instead of threads, same bounds and policy.

    Cancelling the fan-out cancels the calls in flight.
    """
    batch = _batch(items, max_items, concurrency, on_error)
    if not batch:
        return []
    plan = _Plan(batch, concurrency, on_error)
    running: dict[asyncio.Future[R], int] = {}
    try:
        for _ in range(len(batch)):
            while (index := plan.take(len(running))) is not None:
                # ensure_future copies the current context into the task, like fan_out does.
                running[asyncio.ensure_future(fn(batch[index]))] = index
            if not running:
                break
            done, _pending = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                index = running.pop(task)
                error = asyncio.CancelledError() if task.cancelled() else task.exception()
                plan.record(index, None if error else task.result(), error)
    finally:
        if running:  # cancelled from outside: do not leave paid calls running unowned
            for task in running:
                task.cancel()
            await asyncio.wait(running)
    return cast(list[R], plan.outcome())
