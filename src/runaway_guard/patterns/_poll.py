"""Bounded polling: ask "is it done yet?" until a deadline, and so a count, runs out.

``while not done: poll()`` with no deadline is a wallet leak: every poll is billed, and a
job that never finishes keeps it going all night. Here polling stops at `max_wait`
seconds after the first poll, which bounds the count at ``ceil(max_wait / interval)``
and the cost at that many times the price of one poll. Each poll is a paid call, so it
goes through a contract.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runaway_guard._errors import ContractError, PollTimedOut
from runaway_guard.patterns._common import ceil_div, seconds

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard

__all__ = ["apoll", "poll"]

R = TypeVar("R")


class _Schedule:
    """When the next poll happens, and the error once none may."""

    def __init__(self, guard: Guard, label: str, interval: float, max_wait: float) -> None:
        self.guard = guard
        self.label = label
        self.interval = seconds(interval, "poll interval", positive=True)
        self.max_wait = seconds(max_wait, "poll max_wait", positive=True)
        self.max_polls = ceil_div(self.max_wait, self.interval)
        self.started = guard.clock.now()
        self.deadline = self.started + self.max_wait

    def pause(self, polls: int) -> float | None:
        """Seconds until poll number ``polls + 1``, or None when it would pass a bound."""
        if polls >= self.max_polls or self.guard.clock.now() + self.interval > self.deadline:
            return None
        return self.interval

    def timed_out(self, polls: int, last: Any) -> PollTimedOut:
        waited = self.guard.clock.now() - self.started
        return PollTimedOut(
            f"poll of {self.label} gave up: `until` was still false after {polls} poll(s) over "
            f"{waited:g}s (max_wait={self.max_wait:g}s every {self.interval:g}s allows at most "
            f"ceil({self.max_wait:g} / {self.interval:g}) = {self.max_polls} polls). The last "
            "result is exc.last; raise max_wait if the job is merely slow, or find out why it "
            "never finishes",
            polls=polls,
            waited=waited,
            last=last,
        )


def _label(fn: Callable[..., Any], contract: Contract | None) -> tuple[str, Contract | None]:
    bound: Contract | None = getattr(fn, "contract", None)
    if contract is None and bound is None:
        name = getattr(fn, "__qualname__", repr(fn))
        raise ContractError(
            f"guard.poll({name}): every poll is a paid call, so it needs a price: pass "
            "contract=... or decorate the function with a contract (a free status endpoint "
            "can have a $0 contract, and still gets the bound)"
        )
    chosen = contract if contract is not None else bound
    assert chosen is not None
    return f"contract {chosen.name!r}", contract


def poll(
    guard: Guard,
    fn: Callable[[], R],
    *,
    until: Callable[[R], bool],
    interval: float,
    max_wait: float,
    contract: Contract | None = None,
) -> R:
    """Call `fn()` every `interval` seconds until `until(result)`; return that result.

    The first poll is immediate. Errors from a poll propagate (the contract's `Retry`
    decides whether a failed poll is retried, and that counts against its own bounds).

    Raises:
        PollTimedOut: `until` stayed false; no poll will run past `max_wait`.
    """
    if inspect.iscoroutinefunction(fn):
        raise ContractError("guard.poll got a coroutine function: use `await guard.apoll(...)`")
    label, wrap = _label(fn, contract)
    schedule = _Schedule(guard, label, interval, max_wait)
    call: Callable[[], R] = fn if wrap is None else functools.partial(wrap.call, fn)
    last: R | None = None
    polls = 0
    for polls in range(1, schedule.max_polls + 1):
        last = call()
        if until(last):
            return last
        pause = schedule.pause(polls)
        if pause is None:
            break
        guard.clock.sleep(pause)
    raise schedule.timed_out(polls, last)


async def apoll(
    guard: Guard,
    fn: Callable[[], Awaitable[R]],
    *,
    until: Callable[[R], bool],
    interval: float,
    max_wait: float,
    contract: Contract | None = None,
) -> R:
    """`poll` for a coroutine function."""
    label, wrap = _label(fn, contract)
    schedule = _Schedule(guard, label, interval, max_wait)
    last: R | None = None
    polls = 0
    for polls in range(1, schedule.max_polls + 1):
        last = await (fn() if wrap is None else wrap.acall(fn))
        if until(last):
            return last
        pause = schedule.pause(polls)
        if pause is None:
            break
        await guard.clock.asleep(pause)
    raise schedule.timed_out(polls, last)
