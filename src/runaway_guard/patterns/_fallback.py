"""Fallback chains: providers tried in order, under one money cap summed across them.

Each provider has its own contract and caps; a chain of three could otherwise spend the
sum of all three caps. The chain adds one more: `max_per_run`, on everything its
providers spend within the enclosing run. It is a budget of a run nested in that run
(``fallback-<name>``), so the ledger enforces it atomically, with no overshoot, across
threads and processes; reopening the chain in the same run continues its count.
Outside any `guard.run` the chain nests in the guard's implicit per-process run, so the
providers' own per-run caps keep counting against that run too.

When to try the next provider: after the current one failed in a way another provider
might not (its upstream is down or rate limited, its retries ran out, its breaker is
open, its own budget or kill switch refused it). A request the provider rejected (a
4xx), a bug, the chain's own cap, or a kill switch on the run or the whole guard stop
the chain at once: the next provider would be refused or rejected too.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from runaway_guard._budget import check_name
from runaway_guard._classify import classify
from runaway_guard._errors import (
    BudgetExceeded,
    CircuitOpen,
    ConcurrencyLimitReached,
    ContractError,
    FallbackExhausted,
    GuardRefused,
    KillSwitchEngaged,
    NonRetriableError,
    RetriesExhausted,
)
from runaway_guard._money import Money, MoneyLike, parse_money

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard
    from runaway_guard._runs import Run

__all__ = ["FallOverIf", "Fallback"]

logger = logging.getLogger("runaway_guard")

R = TypeVar("R")

FallOverIf = Callable[[BaseException], "bool | None"]
"""``f(exc)``: True tries the next provider, False stops, None keeps the default rule."""


class Fallback(Generic[R]):
    """Providers tried in order; see the module docstring. Build one with `guard.fallback`.

    Args:
        guard: the guard every provider is bound to.
        name: the chain's name; its run is ``fallback-<name>``.
        providers: functions guarded by contracts (decorated with one), tried in order
            with the same arguments.
        max_per_run: the most the providers may spend together per enclosing run.
        fall_over_if: overrides the rule for trying the next provider.
    """

    def __init__(
        self,
        guard: Guard,
        name: str,
        providers: Sequence[Callable[..., R]],
        *,
        max_per_run: MoneyLike,
        fall_over_if: FallOverIf | None = None,
    ) -> None:
        self.guard = guard
        self.name = check_name(name, "fallback name")
        self.max_per_run: Money = parse_money(max_per_run, what=f"fallback {name!r} max_per_run")
        self.fall_over_if = fall_over_if
        if isinstance(providers, str) or not providers:
            raise ContractError(f"fallback {name!r} needs a list of one or more providers")
        self.providers = tuple(providers)
        self.contracts: tuple[Contract, ...] = tuple(self._contract_of(p) for p in self.providers)
        kinds = {inspect.iscoroutinefunction(p) for p in self.providers}
        if len(kinds) > 1:
            raise ContractError(
                f"fallback {name!r} mixes sync and async providers; make them all one kind"
            )
        self.is_async = kinds == {True}

    def _contract_of(self, provider: Callable[..., Any]) -> Contract:
        contract: Contract | None = getattr(provider, "contract", None)
        label = getattr(provider, "__qualname__", repr(provider))
        if contract is None:
            raise ContractError(
                f"fallback {self.name!r}: provider {label} is not guarded; decorate it with its "
                "contract (each provider needs its own price and caps)"
            )
        if contract.guard is not self.guard:
            raise ContractError(
                f"fallback {self.name!r}: provider {label} is bound to another guard"
            )
        return contract

    @property
    def run_name(self) -> str:
        return f"fallback-{self.name}"

    @contextlib.contextmanager
    def _scope(self) -> Iterator[Run]:
        guard = self.guard
        # Nest in the current run, the implicit one included: a top-level run would
        # start the providers' per-run counters afresh.
        parent = guard.current_run()
        with guard.run(self.run_name, budget=self.max_per_run, parent=parent) as run:
            yield run

    def spent(self) -> Money:
        """Money the providers spent together in the current run."""
        with self._scope() as run:
            return run.spent()

    def falls_over(self, contract: Contract, exc: BaseException) -> bool:
        """True when the next provider should be tried after `contract` failed with `exc`."""
        if self.fall_over_if is not None:
            verdict = self.fall_over_if(exc)
            if verdict is not None:
                return bool(verdict)
        if not isinstance(exc, Exception) or isinstance(exc, NonRetriableError):
            return False
        if isinstance(exc, BudgetExceeded):
            # Only a budget of the provider's own contract; a run's (the chain's cap
            # among them) or the guard's would refuse the next provider as well.
            return exc.budget.startswith(f"contract {contract.name!r}")
        if isinstance(exc, KillSwitchEngaged):
            return exc.scope == f"contract:{contract.name}"
        if isinstance(exc, CircuitOpen | ConcurrencyLimitReached | RetriesExhausted):
            return True
        if isinstance(exc, GuardRefused):
            return False
        return classify(exc, now=self.guard.clock.now()).retriable

    def _failed(self, index: int, exc: Exception, errors: list[tuple[str, BaseException]]) -> None:
        contract = self.contracts[index]
        if not self.falls_over(contract, exc):
            raise exc
        errors.append((contract.name, exc))
        if index + 1 < len(self.providers):
            logger.warning(
                "runaway-guard: fallback %r: provider %r failed (%s); trying %r",
                self.name,
                contract.name,
                type(exc).__name__,
                self.contracts[index + 1].name,
            )

    def _exhausted(self, errors: list[tuple[str, BaseException]]) -> FallbackExhausted:
        tried = "; ".join(f"{name}: {type(exc).__name__}" for name, exc in errors)
        return FallbackExhausted(
            f"fallback {self.name!r}: all {len(errors)} provider(s) failed ({tried}); "
            "exc.errors has each failure",
            errors=errors,
        )

    def call(self, *args: Any, **kwargs: Any) -> R:
        """Call the providers in order with these arguments; return the first success.

        Raises:
            FallbackExhausted: every provider failed in a way that allows the next.
            BudgetExceeded: the chain's `max_per_run` (or another shared budget) is spent.
        """
        if self.is_async:
            raise ContractError(f"fallback {self.name!r} has async providers: use acall")
        errors: list[tuple[str, BaseException]] = []
        with self._scope():
            for index, provider in enumerate(self.providers):
                try:
                    return provider(*args, **kwargs)
                except Exception as exc:
                    self._failed(index, exc, errors)
        raise self._exhausted(errors) from errors[-1][1]

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """`call` for async providers: returns what the first that answers returns."""
        if not self.is_async:
            raise ContractError(f"fallback {self.name!r} has sync providers: use call")
        errors: list[tuple[str, BaseException]] = []
        with self._scope():
            for index, provider in enumerate(self.providers):
                try:
                    return await cast(Callable[..., Awaitable[R]], provider)(*args, **kwargs)
                except Exception as exc:
                    self._failed(index, exc, errors)
        raise self._exhausted(errors) from errors[-1][1]

    def __repr__(self) -> str:
        names = ", ".join(c.name for c in self.contracts)
        return f"Fallback({self.name!r}, [{names}], max_per_run={self.max_per_run})"
