"""Runs: scopes opened by a context manager, carried by contextvars, nesting.

A run is a cron run, a campaign, a support ticket, an agent session. Its name is its
identity in the ledger: opening ``nightly-2026-11-22`` again (a retried job) continues
the same counters rather than granting a fresh budget. That is what stops a job that
re-enqueues itself from multiplying its spend.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runaway_guard._budget import Budget, check_name
from runaway_guard._errors import ContractError
from runaway_guard._money import Money

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["Run", "RunScope"]


@dataclass(eq=False)
class Run:
    """An open run. Get the current one with `Guard.current_run()`.

    Attributes:
        name: the run's own name.
        path: names from the outermost run down, joined by ``/``.
        parent: the enclosing run, or None.
        budgets: budgets this run declared (they apply to every call inside it).
        implicit: True for the guard's per-process run, used outside any `guard.run`.
    """

    name: str
    path: str
    parent: Run | None
    budgets: tuple[Budget, ...]
    guard: Guard = field(repr=False)
    implicit: bool = False
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    """Per-contract hold templates, rebuilt when a calendar window rolls over."""

    @property
    def chain(self) -> tuple[Run, ...]:
        """This run and its ancestors, outermost first."""
        runs: list[Run] = []
        node: Run | None = self
        while node is not None:
            runs.append(node)
            node = node.parent
        return tuple(reversed(runs))

    def spent(self) -> Money:
        """Money settled by calls in this run and its nested runs so far."""
        return self.guard.run_spent(self)

    def kill(self, reason: str) -> None:
        """Engage the kill switch on this run (and so on its nested runs)."""
        self.guard.kill(f"run:{self.path}", reason)


class RunScope:
    """The context manager `Guard.run` returns; usable with ``with`` and ``async with``."""

    def __init__(
        self,
        guard: Guard,
        var: contextvars.ContextVar[Run | None],
        name: str,
        budgets: tuple[Budget, ...],
        parent: Run | None = None,
    ) -> None:
        check_name(name, "run name")
        if "/" in name:
            raise ContractError(f"run name {name!r} must not contain '/': nesting builds the path")
        self._guard = guard
        self._var = var
        self._name = name
        self._budgets = budgets
        self._parent = parent
        self._tokens: list[contextvars.Token[Run | None]] = []

    def _enter(self) -> Run:
        parent = self._parent if self._parent is not None else self._var.get()
        path = self._name if parent is None else f"{parent.path}/{self._name}"
        run = Run(self._name, path, parent, self._budgets, self._guard)
        self._tokens.append(self._var.set(run))
        return run

    def _exit(self) -> None:
        self._var.reset(self._tokens.pop())

    def __enter__(self) -> Run:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit()

    async def __aenter__(self) -> Run:
        return self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit()
