"""The flow of one guarded call, shared by the sync and async shells.

```
idempotency key seen? (replay the stored result at $0; kill switches still refuse)
  -> kill switch? -> circuit open? -> concurrency slot -> reserve worst case on every budget
  -> call -> settle the actual cost
  -> on failure: classify, charge, and retry only while attempts AND money AND time remain
```

`CallFlow` holds the decisions; `run_sync` and `run_async` are the thin shells that call
the function and sleep. Kill switches are checked inside the hold itself (the ledger
refuses a hold while one is engaged), so they cost no extra round trip.

A contract with idempotency claims the call's key in the ledger first
(`runaway_guard.patterns`): one caller per key makes the attempts, the others replay its
stored result. A contract without it takes the same path as before, at the cost of one
attribute check and one function call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from runaway_guard._classify import Kind
from runaway_guard._errors import (
    AttemptRecord,
    ConcurrencyLimitReached,
    GuardRefused,
    RetriesExhausted,
)
from runaway_guard._events import CallRefused, RetriesGaveUp, RetryScheduled
from runaway_guard._holds import Hold, new_id, place_hold
from runaway_guard._offload import offload
from runaway_guard._price import Call, Cost
from runaway_guard.patterns._idempotency import contract_once, once_async, once_sync

if TYPE_CHECKING:
    from runaway_guard._guard import Contract
    from runaway_guard._runs import Run

__all__ = ["CallFlow", "run_async", "run_once_async", "run_once_sync", "run_sync"]

T = TypeVar("T")

_SLOT_POLL_FIRST: Final = 0.005
_SLOT_POLL_MAX: Final = 0.25


class CallFlow:
    """One logical call: its attempts, what they cost, and whether to try again."""

    __slots__ = (
        "_last_error",
        "args",
        "attempt",
        "call_id",
        "charged_nanos",
        "contract",
        "fixed_estimate",
        "guard",
        "kwargs",
        "records",
        "run",
        "spec",
        "started",
    )

    def __init__(self, contract: Contract, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.contract = contract
        self.guard = contract.guard
        self.spec = contract.spec
        self.args = args
        self.kwargs = kwargs
        self.run: Run = self.guard.current_run()
        self.call_id = ""  # the first attempt's hold id: it names the whole call
        self.attempt = 0
        self.records: list[AttemptRecord] = []
        self.charged_nanos = 0
        self.started = self.guard.clock.now()
        self._last_error: BaseException | None = None
        # Set by integrations that price the attempt themselves (an HTTP transport).
        self.fixed_estimate: Cost | None = None

    @property
    def max_attempts(self) -> int:
        return self.spec.retry.attempts

    # -- admission ---------------------------------------------------------------------------
    def _call(self, attempt: int) -> Call:
        return Call(self.spec.name, self.args, self.kwargs, attempt)

    def admit(self, hold_id: str | None = None) -> Hold:
        """Check the breaker, estimate, and place the hold; raise a refusal otherwise.

        A concurrency slot, when the contract has one, must already be held under
        `hold_id` (the shells wait for it).
        """
        self.attempt += 1
        call = self._call(self.attempt)
        slot = self.spec.concurrency is not None
        hold_id = hold_id or new_id()
        if not self.call_id:
            self.call_id = hold_id
        try:
            self.guard.maybe_reap()
            estimate = self.fixed_estimate or self.contract.estimate(call)
            return place_hold(
                self.contract,
                call,
                run=self.run,
                call_id=self.call_id,
                hold_id=hold_id,
                estimate=estimate,
                on_end=(lambda: self.contract.release_slot(hold_id)) if slot else None,
            )
        except BaseException as exc:
            if slot:
                self.contract.release_slot(hold_id)
            if isinstance(exc, GuardRefused):
                self.guard.emit(
                    CallRefused(self.guard.clock.now(), self.spec.name, self.run.path, exc)
                )
                if self._last_error is not None and exc.__cause__ is None:
                    exc.__cause__ = self._last_error  # refused on a retry: say why it retried
            raise

    def try_slot(self, hold_id: str) -> bool:
        return self.contract.acquire_slot(hold_id)

    def slot_deadline(self) -> float:
        return self.guard.clock.now() + self.contract.queue_timeout

    def slot_timeout(self) -> ConcurrencyLimitReached:
        self.guard.check_kill(self.spec.name, self.run)
        return ConcurrencyLimitReached(
            f"contract {self.spec.name!r}: all {self.spec.concurrency} concurrency slots stayed "
            f"busy for {self.contract.queue_timeout:g}s (raise concurrency or queue_timeout, or "
            "look for calls that hang)"
        )

    # -- outcomes ------------------------------------------------------------------------------
    def succeeded(self, hold: Hold, result: object) -> None:
        contract = self.contract
        # A flat price charges its estimate: no need to ask it about the result.
        hold.settle(None if contract.flat else contract.actual(hold.call, result))

    def failed(self, hold: Hold, exc: BaseException) -> float:
        """Charge the failed attempt; return the delay before the next one, or raise.

        Raises the original exception when it is not worth retrying (a 4xx, a bug, an
        interrupt) or when the contract makes one attempt only; `RetriesExhausted`,
        chained to it, when a retry bound ran out.
        """
        failure = hold.fail(exc)
        self._last_error = exc
        charged = hold.charged.nanos if hold.charged is not None else 0
        self.charged_nanos += charged
        self.records.append(
            AttemptRecord(
                self.attempt,
                str(failure.kind),
                str(hold.charged if hold.charged is not None else hold.estimate),
                _describe(exc, failure.status),
            )
        )
        policy = self.spec.retry
        if failure.kind in (Kind.INTERRUPTED, Kind.NON_RETRIABLE, Kind.REFUSED):
            raise exc
        verdict = policy.retry_if(exc) if policy.retry_if is not None else None
        retriable = failure.retriable if verdict is None else bool(verdict)
        if not retriable or policy.attempts == 1:
            raise exc
        if self.attempt >= policy.attempts:
            self._give_up(exc, "attempts", f"all {policy.attempts} attempts failed")
        if failure.retry_after is not None and failure.kind in (
            Kind.RATE_LIMITED,
            Kind.CONFLICT,
            Kind.SERVER_ERROR,
        ):
            if failure.retry_after > policy.retry_after_cap:
                self._give_up(
                    exc,
                    "retry_after",
                    f"the server asked to wait {failure.retry_after:g}s, longer than "
                    f"retry_after_cap={policy.retry_after_cap:g}s; giving up instead of sleeping",
                )
            delay = failure.retry_after
        else:
            delay = policy.delay(self.attempt)
        now = self.guard.clock.now()
        if policy.max_elapsed is not None and now - self.started + delay > policy.max_elapsed:
            self._give_up(
                exc,
                "elapsed",
                f"the next attempt would start {now - self.started + delay:g}s after the first, "
                f"past max_elapsed={policy.max_elapsed:g}s",
            )
        bound = self.contract.retry_money_bound()
        if bound is not None:
            # An integration that priced this call itself (an HTTP transport) knows the
            # next attempt's estimate: the same request, sent again.
            upcoming = (
                self.fixed_estimate or self.contract.estimate(self._call(self.attempt + 1))
            ).money
            upcoming = upcoming.to(self.guard.currency, self.guard.exchange_rates)
            if self.charged_nanos + upcoming.nanos > bound.nanos:
                spent = type(bound)(self.charged_nanos, bound.currency)
                self._give_up(
                    exc,
                    "money",
                    f"attempts so far cost {spent}; one more ({upcoming}) would pass the retry "
                    f"money bound {bound}",
                )
        self.guard.emit(RetryScheduled(now, self.spec.name, self.attempt, delay, str(failure.kind)))
        return delay

    def _give_up(self, exc: BaseException, reason: str, detail: str) -> None:
        self.guard.emit(RetriesGaveUp(self.guard.clock.now(), self.spec.name, self.attempt, reason))
        raise RetriesExhausted(
            f"contract {self.spec.name!r} gave up after {self.attempt} attempt(s): {detail}",
            attempts=self.records,
            reason=reason,
        ) from exc


def _describe(exc: BaseException, status: int | None) -> str:
    name = type(exc).__name__
    return f"{name} (HTTP {status})" if status is not None else name


# -- shells ------------------------------------------------------------------------------------


def _admit_sync(flow: CallFlow) -> Hold:
    if flow.spec.concurrency is None:
        return flow.admit()
    hold_id = new_id()
    deadline = flow.slot_deadline()
    pause = _SLOT_POLL_FIRST
    clock = flow.guard.clock
    while not flow.try_slot(hold_id):
        if clock.now() + pause > deadline:
            raise flow.slot_timeout()
        clock.sleep(pause)
        pause = min(pause * 2, _SLOT_POLL_MAX)
    return flow.admit(hold_id)


def run_sync(
    contract: Contract, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> T:
    """Call `fn` under `contract`: replay by idempotency key, or attempt by attempt."""
    policy = contract.idempotency
    if policy is not None:
        key = policy.key_of(f"contract {contract.name!r}", args, kwargs)
        return run_once_sync(contract, key, fn, args, kwargs)
    return _attempts_sync(contract, fn, args, kwargs)


def run_once_sync(
    contract: Contract,
    key: str,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """Replay the stored result for `key`, or make the call's attempts and store it."""
    once = contract_once(contract, key)
    attempts = functools.partial(_attempts_sync, contract, fn, args, kwargs, once.renew)
    return once_sync(once, attempts)


def _attempts_sync(
    contract: Contract,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before_retry: Callable[[], object] | None = None,
) -> T:
    flow = CallFlow(contract, args, kwargs)
    clock = flow.guard.clock
    for attempt in range(flow.max_attempts):
        if attempt and before_retry is not None:
            before_retry()
        hold = _admit_sync(flow)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            delay = flow.failed(hold, exc)
            clock.sleep(delay)
            continue
        flow.succeeded(hold, result)
        return result
    raise AssertionError("unreachable: the last failed attempt raises")  # pragma: no cover


async def _ledger(
    flow: CallFlow, op: Callable[[], T], undo: Callable[[T], object] | None = None
) -> T:
    """A ledger operation from async code: see `runaway_guard._offload`."""
    return await offload(flow.guard.ledger.remote, op, undo)


def _unhold(hold: Hold) -> None:
    hold.release("cancelled before the call was made")


async def _admit_async(flow: CallFlow) -> Hold:
    if flow.spec.concurrency is None:
        return await _ledger(flow, flow.admit, _unhold)
    hold_id = new_id()
    deadline = flow.slot_deadline()
    pause = _SLOT_POLL_FIRST
    clock = flow.guard.clock

    def free_slot(acquired: bool) -> None:
        if acquired:
            flow.contract.release_slot(hold_id)

    while not await _ledger(flow, functools.partial(flow.try_slot, hold_id), free_slot):
        if clock.now() + pause > deadline:
            raise flow.slot_timeout()
        await clock.asleep(pause)
        pause = min(pause * 2, _SLOT_POLL_MAX)
    try:
        return await _ledger(flow, functools.partial(flow.admit, hold_id), _unhold)
    except asyncio.CancelledError:
        # Refused or cancelled: admit frees the slot itself on a refusal, and _unhold
        # (through the hold's end) when a placed hold was orphaned; a cancellation
        # before admit ran at all leaves the slot to free here.
        free_slot(True)
        raise


async def run_async(
    contract: Contract,
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """Await `fn` under `contract`: replay by idempotency key, or attempt by attempt."""
    policy = contract.idempotency
    if policy is not None:
        key = policy.key_of(f"contract {contract.name!r}", args, kwargs)
        return await run_once_async(contract, key, fn, args, kwargs)
    return await _attempts_async(contract, fn, args, kwargs)


async def run_once_async(
    contract: Contract,
    key: str,
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """`run_once_sync` for coroutines."""
    once = contract_once(contract, key)
    attempts = functools.partial(_attempts_async, contract, fn, args, kwargs, once.renew)
    return await once_async(once, attempts)


async def _attempts_async(
    contract: Contract,
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before_retry: Callable[[], object] | None = None,
) -> T:
    flow = CallFlow(contract, args, kwargs)
    clock = flow.guard.clock
    for attempt in range(flow.max_attempts):
        if attempt and before_retry is not None:
            await _ledger(flow, before_retry)
        hold = await _admit_async(flow)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            delay = await _ledger(flow, functools.partial(flow.failed, hold, exc))
            await clock.asleep(delay)
            continue
        await _ledger(flow, functools.partial(flow.succeeded, hold, result))
        return result
    raise AssertionError("unreachable: the last failed attempt raises")  # pragma: no cover
