"""Idempotent replay: one paid call per key; a repeat gets the stored result at $0.

A webhook that fires twice, a job retried by its scheduler, a load balancer that resends
a request: each arrives with the same key. The first caller claims the key in the ledger
and makes the call; its result is stored (JSON by default) for `ttl` seconds, and every
later caller with the key gets that stored result without calling anything. A caller
that arrives while the first is still running waits for it, for at most `wait` seconds.
A first call that fails drops its claim, so the next caller runs.

Claims live in the ledger, so this holds across threads, processes and hosts. Inside one
process, callers with the same key also coalesce in memory (a `Singleflight`): they wait
on the leader instead of polling the ledger.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

from runaway_guard._contract import DEFAULT_LEASE
from runaway_guard._errors import ContractError, DuplicateInFlight, LedgerError
from runaway_guard._holds import new_id
from runaway_guard.ledger import Claim, ClaimStatus
from runaway_guard.patterns._common import (
    POLL_FIRST,
    POLL_MAX,
    ledger_call,
    polls_within,
    seconds,
)
from runaway_guard.patterns._singleflight import flights_of

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard

__all__ = [
    "DEFAULT_TTL",
    "DEFAULT_WAIT",
    "Codec",
    "Idempotency",
    "JSONCodec",
    "KeyFunction",
    "Once",
    "contract_once",
    "idempotent",
    "once_async",
    "once_sync",
]

logger = logging.getLogger("runaway_guard")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TTL = 24 * 3600.0
"""Seconds a stored result is replayed (24 hours, a common provider dedup window)."""
DEFAULT_WAIT = 30.0
"""Seconds a duplicate waits for the first call with its key to finish."""

KeyFunction = Callable[..., str]
"""Called with the call's own arguments; returns the idempotency key."""


@runtime_checkable
class Codec(Protocol):
    """Turns a result into bytes for the ledger and back."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


@dataclass(frozen=True)
class JSONCodec:
    """JSON: dicts, lists, strings, numbers, booleans and None (tuples come back as lists).

    A replay returns the decoded copy, so an SDK response object needs a codec of its
    own, or a guarded function that returns plain data.
    """

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))


@dataclass(frozen=True)
class Idempotency:
    """How calls are deduplicated by key.

    Args:
        key: ``f(*args, **kwargs) -> str``, called with the call's own arguments, e.g.
            ``lambda campaign, prompt: f"{campaign}:{sha1(prompt)}"``. Without it, give
            the key per call (`Contract.call_once`).
        ttl: seconds a stored result is replayed (24 hours by default).
        codec: stores results; `JSONCodec` by default.
        wait: seconds a duplicate waits for a first call still in flight before
            `DuplicateInFlight`.
        lease: seconds a claim outlives a holder that died mid-call (the contract's
            `hold_lease` by default); until then duplicates are refused, because the
            dead call may have been billed.
    """

    key: KeyFunction | None = None
    ttl: float = DEFAULT_TTL
    codec: Codec = field(default_factory=JSONCodec)
    wait: float = DEFAULT_WAIT
    lease: float | None = None

    def __post_init__(self) -> None:
        if self.key is not None and not callable(self.key):
            raise ContractError(f"Idempotency key must be a function of the call, got {self.key!r}")
        object.__setattr__(self, "ttl", seconds(self.ttl, "Idempotency ttl", positive=True))
        object.__setattr__(self, "wait", seconds(self.wait, "Idempotency wait"))
        if self.lease is not None:
            lease = seconds(self.lease, "Idempotency lease", positive=True)
            object.__setattr__(self, "lease", lease)
        if not isinstance(self.codec, Codec):
            raise ContractError(
                f"Idempotency codec must have encode(value) -> bytes and decode(bytes), "
                f"got {self.codec!r}"
            )

    @classmethod
    def of(cls, value: Idempotency | KeyFunction | None) -> Idempotency | None:
        """Accept an `Idempotency`, a bare key function, or None."""
        if value is None or isinstance(value, Idempotency):
            return value
        if callable(value):
            return cls(key=value)
        raise ContractError(
            f"idempotency must be rg.Idempotency(key=...) or a key function, got {value!r}"
        )

    def key_of(self, owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of one call, from the key function."""
        if self.key is None:
            raise ContractError(
                f"{owner} declares idempotency without a key function: pass "
                "Idempotency(key=...) or give each call its key with call_once(key, fn, ...)"
            )
        return check_key(self.key(*args, **kwargs), owner)


def check_key(key: object, owner: str) -> str:
    if not isinstance(key, str) or not key:
        raise ContractError(
            f"{owner}: an idempotency key must be a non-empty string, got {key!r} (derive it "
            "from what makes the call unique: an event id, a campaign and a prompt hash)"
        )
    return key


class Once:
    """The ledger side of one keyed call: claim, replay, store, or wait for another."""

    __slots__ = (
        "_pause",
        "before_replay",
        "call_failed",
        "deadline",
        "guard",
        "key",
        "lease",
        "owner",
        "policy",
        "record",
        "tries",
        "what",
    )

    def __init__(
        self,
        guard: Guard,
        *,
        what: str,
        scope: str,
        key: str,
        policy: Idempotency,
        lease: float,
        before_replay: Callable[[], None] | None = None,
    ) -> None:
        self.guard = guard
        self.what = what
        self.key = key
        self.record = f"idem:{scope}:{key}"
        self.policy = policy
        self.lease = lease
        self.before_replay = before_replay
        self.owner = new_id()
        self.deadline = guard.clock.now() + policy.wait
        self.tries = polls_within(policy.wait)
        self.call_failed = False
        self._pause = POLL_FIRST

    def claim(self) -> Claim:
        now = self.guard.clock.now()
        return self.guard.ledger.claim(
            self.record, owner=self.owner, now=now, lease_until=now + self.lease
        )

    def renew(self) -> None:
        """Extend the claim before another attempt, so a slow call keeps its key.

        A claim whose lease ran out may be taken by a duplicate, which would pay again.
        """
        try:
            claim = self.claim()
        except LedgerError:
            logger.warning("runaway-guard could not renew the claim on %r", self.record)
            return
        if claim.status is not ClaimStatus.CLAIMED or claim.owner != self.owner:
            logger.warning(
                "runaway-guard: the claim on idempotency key %r passed to another caller "
                "between attempts (its lease of %gs ran out); raise Idempotency(lease=...)",
                self.record,
                self.lease,
            )

    def replay(self, claim: Claim) -> Any:
        """The stored result; nothing is called and nothing is charged."""
        if self.before_replay is not None:
            self.before_replay()
        try:
            return self.policy.codec.decode(claim.result or b"")
        except Exception as exc:
            raise ContractError(
                f"{self.what}: the stored result of idempotency key {self.key!r} cannot be "
                f"decoded by {self.policy.codec!r} (was the codec changed?); use a new key, "
                f"or wait for the record to expire (ttl={self.policy.ttl:g}s)"
            ) from exc

    def store(self, value: Any) -> None:
        try:
            data = self.policy.codec.encode(value)
        except Exception as exc:
            self.abandon()
            raise ContractError(
                f"{self.what}: the call with idempotency key {self.key!r} was made and "
                f"charged, but its result ({type(value).__name__}) cannot be encoded by "
                f"{self.policy.codec!r}, so a repeat would pay again; return plain data from "
                "the guarded function, or pass Idempotency(codec=...) that can encode it"
            ) from exc
        now = self.guard.clock.now()
        try:
            stored = self.guard.ledger.complete(
                self.record, owner=self.owner, result=data, now=now, expires=now + self.policy.ttl
            )
        except LedgerError:
            # The call was made and paid for: hand its result back rather than lose it.
            # Duplicates wait for the claim's lease, then make the call again.
            logger.warning(
                "runaway-guard could not store the result of idempotency key %r; duplicates "
                "are refused until its lease (%gs) ends, then call again",
                self.key,
                self.lease,
                exc_info=True,
            )
            return
        if not stored:
            logger.warning(
                "runaway-guard: %s lost its claim on idempotency key %r before the call "
                "finished (its lease of %gs ran out), so the result was not stored; raise "
                "Idempotency(lease=...) above the call's longest duration",
                self.what,
                self.key,
                self.lease,
            )

    def abandon(self) -> None:
        try:
            self.guard.ledger.abandon(self.record, owner=self.owner)
        except LedgerError:
            logger.warning(
                "runaway-guard could not drop the claim on idempotency key %r; duplicates "
                "wait until its lease (%gs) ends",
                self.key,
                self.lease,
                exc_info=True,
            )

    def pause(self) -> float:
        """Seconds to wait before looking at the claim again, or raise when out of time."""
        if self.guard.clock.now() + self._pause > self.deadline:
            raise self.in_flight("another caller")
        pause = self._pause
        self._pause = min(pause * 2, POLL_MAX)
        return pause

    def in_flight(self, holder: str) -> DuplicateInFlight:
        return DuplicateInFlight(
            f"{self.what}: a call with idempotency key {self.key!r} is still in flight "
            f"({holder}) after waiting {self.policy.wait:g}s; nothing was called. Try again "
            f"later, or raise Idempotency(wait=...); a claim whose holder died ends after its "
            f"lease ({self.lease:g}s)",
            key=self.key,
        )


# -- shells ----------------------------------------------------------------------------------


def _turn_sync(once: Once, call: Callable[[], T]) -> T:
    clock = once.guard.clock
    for _ in range(once.tries):
        claim = once.claim()
        if claim.status is ClaimStatus.DONE:
            return cast(T, once.replay(claim))
        if claim.status is ClaimStatus.CLAIMED:
            try:
                value = call()
            except BaseException:
                once.call_failed = True
                once.abandon()
                raise
            once.store(value)
            return value
        clock.sleep(once.pause())
    raise once.in_flight("another caller")


def once_sync(once: Once, call: Callable[[], T]) -> T:
    """Replay the stored result of `once.key`, wait for it, or make the call and store it."""
    group = flights_of(once.guard)
    flight, leader = group.join(once.record)
    if leader:
        try:
            value = _turn_sync(once, call)
        except BaseException as exc:
            # A failed call frees the key for the next caller; a refusal is for everyone.
            group.land(once.record, flight, error=exc, shared=not once.call_failed)
            raise
        group.land(once.record, flight, value=value)
        return value
    if not flight.wait(once.policy.wait):
        raise once.in_flight("another caller in this process")
    if flight.shared:
        return cast(T, flight.outcome())
    return _turn_sync(once, call)


def _drop_orphan(once: Once, claim: Claim) -> None:
    """A claim taken for a caller that was cancelled meanwhile: let the next caller run."""
    if claim.status is ClaimStatus.CLAIMED:
        once.abandon()


async def _turn_async(once: Once, call: Callable[[], Awaitable[T]]) -> T:
    guard = once.guard
    for _ in range(once.tries):
        claim = await ledger_call(guard, once.claim, functools.partial(_drop_orphan, once))
        if claim.status is ClaimStatus.DONE:
            return cast(T, await ledger_call(guard, functools.partial(once.replay, claim)))
        if claim.status is ClaimStatus.CLAIMED:
            try:
                value = await call()
            except BaseException:
                once.call_failed = True
                await ledger_call(guard, once.abandon)
                raise
            await ledger_call(guard, functools.partial(once.store, value))
            return value
        await guard.clock.asleep(once.pause())
    raise once.in_flight("another caller")


async def once_async(once: Once, call: Callable[[], Awaitable[T]]) -> T:
    """`once_sync` for coroutines."""
    group = flights_of(once.guard)
    flight, leader = group.join(once.record)
    if leader:
        try:
            value = await _turn_async(once, call)
        except BaseException as exc:
            group.land(once.record, flight, error=exc, shared=not once.call_failed)
            raise
        group.land(once.record, flight, value=value)
        return value
    if not await flight.await_end(group, once.policy.wait):
        raise once.in_flight("another caller in this process")
    if flight.shared:
        return cast(T, flight.outcome())
    return await _turn_async(once, call)


# -- bindings ----------------------------------------------------------------------------------


def contract_once(contract: Contract, key: str) -> Once:
    """A keyed call of `contract`: replays honour the contract's kill switches."""
    guard = contract.guard
    policy = contract.idempotency or Idempotency()
    what = f"contract {contract.name!r}"

    def before_replay() -> None:
        guard.check_kill(contract.name, guard.current_run())

    return Once(
        guard,
        what=what,
        scope=f"contract:{contract.name}",
        key=check_key(key, what),
        policy=policy,
        lease=policy.lease if policy.lease is not None else contract.spec.hold_lease,
        before_replay=before_replay,
    )


def idempotent(guard: Guard, policy: Idempotency, name: str | None) -> Callable[[F], F]:
    """The decorator behind `Guard.idempotent`."""
    if policy.key is None:
        raise ContractError(
            "guard.idempotent needs key=...: a function of the call's arguments that "
            "returns its idempotency key, e.g. key=lambda event: f'stripe:{event.id}'"
        )
    lease = policy.lease if policy.lease is not None else DEFAULT_LEASE

    def decorate(fn: F) -> F:
        scope = name or fn.__qualname__
        what = f"function {scope!r}"

        def once_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Once:
            key = policy.key_of(what, args, kwargs)
            return Once(guard, what=what, scope=f"fn:{scope}", key=key, policy=policy, lease=lease)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                once = once_for(args, kwargs)
                return await once_async(once, functools.partial(fn, *args, **kwargs))

            return cast(F, guarded_async)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return once_sync(once_for(args, kwargs), functools.partial(fn, *args, **kwargs))

        return cast(F, guarded)

    return decorate
