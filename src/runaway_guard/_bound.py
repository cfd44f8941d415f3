"""A contract bound to a guard: the decorator, `call` / `acall`, and one-off holds.

```python
@enrich
def complete(payload): ...          # sync or async functions alike

enrich.call(client.complete, payload)
```
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from runaway_guard._budget import check_count
from runaway_guard._contract import ContractSpec
from runaway_guard._errors import ContractError
from runaway_guard._flow import CallFlow, _admit_async, _admit_sync, run_async, run_sync
from runaway_guard._holds import Hold
from runaway_guard._money import Money, MoneyLike
from runaway_guard._price import Call, Cost, PerCall
from runaway_guard.patterns import Idempotency
from runaway_guard.patterns._entries import ContractPatterns

if TYPE_CHECKING:
    import httpx2

    from runaway_guard._guard import Guard

__all__ = ["Contract"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("runaway_guard")


class Contract(ContractPatterns):
    """A contract bound to a guard: a decorator, and `call` / `acall` for one-off calls.

    ```python
    @enrich
    def complete(payload): ...          # sync or async functions alike

    enrich.call(client.complete, payload)
    ```
    """

    def __init__(
        self,
        guard: Guard,
        spec: ContractSpec,
        *,
        queue_timeout: float = 30.0,
        idempotency: Idempotency | None = None,
    ) -> None:
        self.guard = guard
        self.spec = spec
        self.queue_timeout = float(queue_timeout)
        self.idempotency = idempotency
        """How repeats are replayed by key, or None (every call is made)."""
        self._flat = Cost(spec.price.amount) if type(spec.price) is PerCall else None
        self.flat = self._flat is not None
        """True when the price is a plain `PerCall`: the estimate is the actual."""
        if not 0 <= self.queue_timeout < float("inf"):
            raise ContractError(
                f"contract {spec.name!r}: queue_timeout must be a finite number of seconds "
                f">= 0, got {queue_timeout!r} (every wait needs a deadline)"
            )

    @property
    def name(self) -> str:
        return self.spec.name

    def summary(self) -> str:
        """The cost contract as text (see `ContractSpec.summary`)."""
        return self.spec.summary()

    # -- calling -----------------------------------------------------------------------------------
    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Guard every call of `fn` (a sync or an async function) with this contract."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await run_async(self, fn, args, kwargs)

            guarded_async.contract = self  # type: ignore[attr-defined]
            return guarded_async

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run_sync(self, fn, args, kwargs)

        guarded.contract = self  # type: ignore[attr-defined]
        return guarded

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)` under this contract (use `acall` for coroutines)."""
        if inspect.iscoroutinefunction(fn):
            raise ContractError(
                f"{fn.__qualname__} is async: use `await contract.acall(fn, ...)` instead of call"
            )
        return run_sync(self, fn, args, kwargs)

    async def acall(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await `fn(*args, **kwargs)` under this contract."""
        return await run_async(self, fn, args, kwargs)

    # -- low level: one hold, for transports and custom integrations -------------------------------
    def hold(self, estimate: Cost | MoneyLike | None = None, *, attempt: int = 1) -> Hold:
        """Place one hold now (waiting for a concurrency slot if needed) and return it.

        For integrations that make the paid call themselves, such as an HTTP transport:
        end the hold with ``hold.settle(cost)``, ``hold.release()`` or ``hold.fail(exc)``.
        """
        return _admit_sync(self._single(estimate, attempt))

    async def ahold(self, estimate: Cost | MoneyLike | None = None, *, attempt: int = 1) -> Hold:
        """`hold` for async code."""
        return await _admit_async(self._single(estimate, attempt))

    def _single(self, estimate: Cost | MoneyLike | None, attempt: int) -> CallFlow:
        flow = CallFlow(self, (), {})
        flow.attempt = check_count(attempt, "attempt") - 1
        if estimate is not None:
            flow.fixed_estimate = Cost.of(estimate, what=f"estimate of {self.name!r}")
        return flow

    # -- pricing -----------------------------------------------------------------------------------
    def estimate(self, call: Call) -> Cost:
        """The price's worst-case estimate for `call`, validated."""
        if self._flat is not None:
            return self._flat  # validated once, when the contract was declared
        value = self.spec.price.estimate(call)
        return Cost.of(value, what=f"estimate of {self.name!r}")

    def actual(self, call: Call, result: object) -> Cost | None:
        """The price's actual cost for `result`; None (charge the estimate) if it fails."""
        try:
            value = self.spec.price.actual(call, result)
            return None if value is None else Cost.of(value, what=f"actual cost of {self.name!r}")
        except Exception:
            logger.warning(
                "runaway-guard: the price of %r could not read the actual cost; charging the "
                "estimate",
                self.name,
                exc_info=True,
            )
            return None

    def retry_money_bound(self) -> Money | None:
        retry_cap = self.spec.retry.max_cost
        bound = retry_cap if retry_cap is not None else self.spec.max_per_run
        return None if bound is None else bound.to(self.guard.currency, self.guard.exchange_rates)

    # -- concurrency -------------------------------------------------------------------------------
    def acquire_slot(self, holder: str, *, lease: float | None = None) -> bool:
        """Take (or, for a holder that has one, extend) a concurrency slot."""
        limit = self.spec.concurrency
        if limit is None:
            return True
        now = self.guard.clock.now()
        return self.guard.ledger.acquire_slot(
            f"contract:{self.name}",
            limit=limit,
            holder=holder,
            now=now,
            lease_until=now + (self.spec.hold_lease if lease is None else lease),
        )

    def release_slot(self, holder: str) -> None:
        if self.spec.concurrency is not None:
            try:
                self.guard.ledger.release_slot(f"contract:{self.name}", holder=holder)
            except Exception:  # the slot's lease frees it later; never mask the call's outcome
                logger.warning("runaway-guard could not free a concurrency slot", exc_info=True)

    def in_flight(self) -> int:
        """Concurrency slots of this contract in use, across every process."""
        return self.guard.ledger.slots_in_use(f"contract:{self.name}", now=self.guard.clock.now())

    def __repr__(self) -> str:
        return f"Contract({self.name!r})"

    # -- guarded HTTP clients (runaway_guard.http) -------------------------------------------------
    def http_client(self, **options: Any) -> httpx2.Client:
        """An ``httpx2.Client`` that holds and settles every request under this contract.

        ``OpenAI(http_client=contract.http_client())``: each attempt the SDK makes, its
        retries included, is held before a byte is sent. Options (``routes=``,
        ``transport=``, client options) are those of `runaway_guard.http.client`.
        """
        from runaway_guard.http import client  # noqa: PLC0415 - httpx2 is an optional extra

        return client(self, **options)

    def async_http_client(self, **options: Any) -> httpx2.AsyncClient:
        """`http_client` for async SDK clients (``AsyncOpenAI``, ``AsyncAnthropic``)."""
        from runaway_guard.http import async_client  # noqa: PLC0415 - an optional extra

        return async_client(self, **options)
