"""The toolbox: every tool an agent may call, each with a price and per-ticket caps.

Each tool is a cost contract (`guard.contract(...)`) whose per-run caps are per-ticket
caps, because a ticket is a run. A call goes:

```
loop signature repeated in the ticket?  -- LoopDetected (logged with its trail)
  -> the contract's hold on every budget (the tool's caps, the ticket's, the guard's)
       a tool's own cap refuses   -- a Refusal string for the model (or BudgetExceeded),
                                     and past max_refusals, RefusalLimitReached
       any other budget refuses   -- BudgetExceeded: the money wall ends the ticket
  -> the tool runs -> settled at its actual cost
```
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from runaway_guard._errors import BudgetExceeded, ContractError, LoopDetected
from runaway_guard._money import Money, MoneyLike
from runaway_guard._offload import offload
from runaway_guard._policy import Retry
from runaway_guard._runs import Run
from runaway_guard.agents._context import ContextBudget
from runaway_guard.agents._errors import RefusalLimitReached
from runaway_guard.agents._refusal import Refusal
from runaway_guard.agents._signature import LoopRule, NormaliseHook, Signature, signature
from runaway_guard.agents._state import TicketState, chain_states, log_halt
from runaway_guard.agents._ticket import Ticket, TicketScope
from runaway_guard.agents._vote import HaltVote

if TYPE_CHECKING:
    from runaway_guard._budget import Budget
    from runaway_guard._guard import Contract, Guard

__all__ = ["Tool", "Toolbox"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

OnExceed = Literal["refuse", "raise"]

DEFAULT_LOOP = LoopRule()
"""Four identical signatures within ten calls halt the ticket."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A registered tool: its name and the contract that prices and caps it."""

    name: str
    contract: Contract

    def summary(self) -> str:
        """The tool's cost contract as text."""
        return self.contract.summary()


class Toolbox:
    """Tools with prices and per-ticket caps, and the rules every ticket runs under.

    Args:
        guard: the guard whose ledger counts the money.
        loop: the loop rule (4 identical signatures within 10 calls by default); None
            turns loop detection off.
        on_exceed: when a tool's own cap refuses a call: ``"refuse"`` hands the model a
            `Refusal` string instead of the result; ``"raise"`` raises `BudgetExceeded`.
            Budgets that are not the tool's own (the ticket's, the guard's) always raise.
        max_refusals: refusals a ticket may hand out; the next one raises
            `RefusalLimitReached`. 0 raises at the first.
        normalise: ``normalise(tool, arguments) -> arguments``: more loop-signature
            normalisation, run before the default.
        context: the context budget (summaries every N results, a token cap), if any.
        halt: the halt vote's classifier, wall and model predicate, if any.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        loop: LoopRule | None = DEFAULT_LOOP,
        on_exceed: OnExceed = "refuse",
        max_refusals: int = 3,
        normalise: NormaliseHook | None = None,
        context: ContextBudget | None = None,
        halt: HaltVote | None = None,
    ) -> None:
        if on_exceed not in ("refuse", "raise"):
            raise ContractError(f"on_exceed must be 'refuse' or 'raise', got {on_exceed!r}")
        if isinstance(max_refusals, bool) or not isinstance(max_refusals, int) or max_refusals < 0:
            raise ContractError(f"max_refusals must be a whole number >= 0, got {max_refusals!r}")
        self.guard = guard
        if loop is not None and not isinstance(loop, LoopRule):
            raise ContractError(f"loop must be an agents.LoopRule or None, got {loop!r}")
        self.loop = loop
        self.on_exceed: OnExceed = on_exceed
        self.max_refusals = max_refusals
        self.normalise = normalise
        self.context = context
        self.halt = halt
        self._tools: dict[str, Tool] = {}

    @property
    def trail_length(self) -> int:
        """Calls shown in a trail: the loop window (10 without a loop rule)."""
        return self.loop.window if self.loop is not None else 10

    # -- registration ------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        price: Any = None,
        max_per_run: MoneyLike | None = None,
        max_calls_per_run: int | None = None,
        max_per_day: MoneyLike | None = None,
        provider_cap: str | None = None,
        retry: Retry | int | None = None,
        concurrency: int | None = None,
        budgets: tuple[Budget, ...] = (),
        contract: Contract | None = None,
    ) -> Tool:
        """Register a tool by name, with its price and per-ticket caps.

        Args:
            name: the name the model calls the tool by.
            price: per call: ``"€0.11"``, or ``rg.Dynamic(f)`` to estimate from the
                arguments (``f(call)`` reads them by name in ``call.kwargs``). A tool
                without a price is only allowed with `max_calls_per_run`, and counts
                calls but no money.
            max_per_run: the tool's money cap per ticket.
            max_calls_per_run: the tool's call cap per ticket.
            max_per_day: the tool's money cap per day, across tickets.
            provider_cap: where the matching cap is set at the tool's vendor, if it has one.
            retry, concurrency, budgets: as for `Guard.contract`.
            contract: a contract declared already, instead of all of the above.

        Raises:
            ContractError: no price and no call cap, no per-ticket cap, or a name that is
                registered with other settings.
        """
        if contract is not None:
            given = (price, max_per_run, max_calls_per_run, max_per_day, provider_cap, retry)
            if any(value is not None for value in given) or concurrency is not None or budgets:
                raise ContractError(
                    f"tool {name!r}: pass either contract= or the tool's price and caps, not both"
                )
            if contract.guard is not self.guard:
                raise ContractError(f"tool {name!r}: the contract is bound to another guard")
        else:
            if price is None:
                if max_calls_per_run is None:
                    raise ContractError(
                        f"tool {name!r} has no price and no call cap, so it is refused: give it "
                        "price= (an amount, or rg.Dynamic(...) to estimate from the arguments) "
                        "or max_calls_per_run= (a hard count of calls per ticket)"
                    )
                price = Money(0, self.guard.currency)  # counted in calls, not priced
            if max_per_run is None and max_calls_per_run is None:
                raise ContractError(
                    f"tool {name!r} needs a per-ticket cap: max_per_run= (money) or "
                    "max_calls_per_run= (calls)"
                )
            # Named tool:NAME so reports can group spend by tool (`report --by tool`).
            contract = self.guard.contract(
                f"tool:{name}",
                price=price,
                provider_cap=provider_cap
                or f"none: agent tool {name!r} is capped per ticket in code only",
                max_per_run=max_per_run,
                max_calls_per_run=max_calls_per_run,
                max_per_day=max_per_day,
                retry=retry,
                concurrency=concurrency,
                budgets=budgets,
            )
        tool = Tool(name, contract)
        existing = self._tools.get(name)
        if existing is not None and existing.contract is not contract:
            raise ContractError(f"tool {name!r} is already registered with other settings")
        self._tools[name] = tool
        return tool

    def __getitem__(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ContractError(
                f"tool {name!r} is not registered, so it has no price and no cap and is "
                f"refused; register it with toolbox.register({name!r}, price=..., "
                f"max_per_run=...) (registered: {known})"
            )
        return tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    @property
    def tools(self) -> dict[str, Tool]:
        """Registered tools, by name."""
        return dict(self._tools)

    # -- the framework-free decorator --------------------------------------------------------------
    @overload
    def tool(self, fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R | Refusal]]: ...

    @overload
    def tool(self, fn: Callable[P, R], /) -> Callable[P, R | Refusal]: ...

    @overload
    def tool(
        self,
        /,
        *,
        name: str | None = None,
        price: Any = None,
        max_per_run: MoneyLike | None = None,
        max_calls_per_run: int | None = None,
        max_per_day: MoneyLike | None = None,
        provider_cap: str | None = None,
        retry: Retry | int | None = None,
        concurrency: int | None = None,
    ) -> _Decorator: ...

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        price: Any = None,
        max_per_run: MoneyLike | None = None,
        max_calls_per_run: int | None = None,
        max_per_day: MoneyLike | None = None,
        provider_cap: str | None = None,
        retry: Retry | int | None = None,
        concurrency: int | None = None,
    ) -> Any:
        """Guard a plain function as a tool: ``@toolbox.tool(price="€0.11", max_per_run="€0.55")``.

        Sync and async functions alike. Bare ``@toolbox.tool`` uses a registration made
        earlier under the function's name. The wrapper returns the function's result, or
        a `Refusal` string when one of the tool's caps refuses the call. Prices and
        signatures see the arguments by name, defaults filled in.
        """
        given = {
            "price": price,
            "max_per_run": max_per_run,
            "max_calls_per_run": max_calls_per_run,
            "max_per_day": max_per_day,
            "provider_cap": provider_cap,
            "retry": retry,
            "concurrency": concurrency,
        }
        options = {key: value for key, value in given.items() if value is not None}
        decorator = _Decorator(self, name, options)
        return decorator if fn is None else decorator(fn)

    # -- tickets -----------------------------------------------------------------------------------
    def ticket(
        self,
        name: str,
        *,
        budget: MoneyLike | None = None,
        max_calls: int | None = None,
        budgets: tuple[Budget, ...] = (),
    ) -> TicketScope:
        """Open a ticket: a run (`Guard.run`) with the agent guard's history attached.

        Tickets nest: a sub-agent's ticket opened inside another counts its spend, its
        calls and its refusals against the parent too.
        """
        return TicketScope(
            self, self.guard.run(name, budget=budget, max_calls=max_calls, budgets=budgets)
        )

    def current(self) -> Ticket:
        """The ticket of the current run (the guard's implicit run outside any)."""
        return Ticket(self, self.guard.current_run())

    # -- calling -----------------------------------------------------------------------------------
    def invoke(self, name: str, arguments: Mapping[str, Any], body: Callable[[], T]) -> T | Refusal:
        """Call `body()` as tool `name` with `arguments` (for adapters; see the module doc)."""
        tool = self[name]
        states = self._admit(tool, arguments)
        started = False

        def call(**_: Any) -> T:
            nonlocal started
            started = True
            return body()

        try:
            result = tool.contract.call(call, **arguments)
        except BudgetExceeded as exc:
            if started:
                raise  # the tool itself ran out of a budget: not ours to turn into a refusal
            return self._exceeded(tool, states, exc)
        self._done(states, result)
        return result

    async def ainvoke(
        self, name: str, arguments: Mapping[str, Any], body: Callable[[], Awaitable[T]]
    ) -> T | Refusal:
        """`invoke` for async bodies."""
        tool = self[name]
        remote = self.guard.ledger.remote
        states = await offload(remote, functools.partial(self._admit, tool, arguments))
        started = False

        async def call(**_: Any) -> T:
            nonlocal started
            started = True
            return await body()

        try:
            result = await tool.contract.acall(call, **arguments)
        except BudgetExceeded as exc:
            if started:
                raise
            return await offload(remote, functools.partial(self._exceeded, tool, states, exc))
        self._done(states, result)
        return result

    # -- decisions, shared by the sync and async shells --------------------------------------------
    def signature(self, name: str, arguments: Mapping[str, Any]) -> Signature:
        """The loop signature of a call of tool `name` with `arguments`."""
        return signature(name, arguments, hook=self.normalise)

    def _admit(self, tool: Tool, arguments: Mapping[str, Any]) -> tuple[TicketState, ...]:
        run = self.guard.current_run()
        states = chain_states(run)
        sig = self.signature(tool.name, arguments)
        now = self.guard.clock.now()
        counts = [state.record_call(sig, now, self.loop) for state in states]
        rule = self.loop
        if rule is not None:
            for state, count in zip(states, counts, strict=True):
                if count >= rule.repeats:
                    raise self._loop(run, state, sig, count, rule)
        return states

    def _loop(
        self, run: Run, state: TicketState, sig: Signature, count: int, rule: LoopRule
    ) -> LoopDetected:
        trail = [record.render(self.guard) for record in state.trail(rule.window)]
        message = (
            f"tool {sig.tool!r} was called {count} times with the same signature within the "
            f"last {rule.window} calls of run {state.run.path!r}, the loop rule's limit of "
            f"{rule.repeats}; the call was not made (hand the ticket to a human, or widen "
            f"the rule with LoopRule(repeats=..., window=...))\n"
            f"signature: {sig.text}\ntrail:\n  " + "\n  ".join(trail)
        )
        log_halt(self.guard, run, f"LoopDetected: {message}")
        return LoopDetected(message, signature=sig.text, trail=trail)

    def _exceeded(
        self, tool: Tool, states: tuple[TicketState, ...], exc: BudgetExceeded
    ) -> Refusal:
        if exc.scope != f"contract:{tool.contract.name}":
            # Not the tool's own cap: the ticket's or the guard's money is gone. The wall.
            for state in states:
                state.hit_wall(str(exc))
            raise exc
        if self.on_exceed == "raise":
            raise exc
        counts = [state.add_refusal() for state in states]
        worst = max(counts)
        if worst > self.max_refusals:
            run = states[0].run
            owner = states[counts.index(worst)]
            trail = [record.render(self.guard) for record in owner.trail(self.trail_length)]
            message = (
                f"run {owner.run.path!r} reached {worst} refused tool calls, past "
                f"max_refusals={self.max_refusals}: the model keeps asking for calls its caps "
                f"refuse (the last: {exc}); hand the ticket to a human, or raise max_refusals"
            )
            log_halt(
                self.guard,
                run,
                f"RefusalLimitReached: {message}\ntrail:\n  " + "\n  ".join(trail),
            )
            raise RefusalLimitReached(
                message,
                ticket=owner.run.path,
                trail=trail,
                refusals=worst,
                limit=self.max_refusals,
            ) from exc
        return Refusal.of(tool.name, tool.contract.spec, exc, counts[0], self.guard.currency)

    def _done(self, states: tuple[TicketState, ...], result: object) -> None:
        text = result if isinstance(result, str) else repr(result)
        for state in states:
            state.record_result(text)

    def __repr__(self) -> str:
        return f"Toolbox({sorted(self._tools)})"


class _Decorator:
    """``@toolbox.tool(...)``: registers (when given options) and wraps a function."""

    def __init__(self, toolbox: Toolbox, name: str | None, options: dict[str, Any]) -> None:
        self._toolbox = toolbox
        self._name = name
        self._options = options

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Refusal]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R | Refusal]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        name = self._name or fn.__name__
        toolbox = self._toolbox
        if self._options or name not in toolbox:
            toolbox.register(name, **self._options)
        binder = inspect.signature(fn)

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = binder.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await toolbox.ainvoke(
                    name, arguments(args, kwargs), lambda: fn(*args, **kwargs)
                )

            guarded_async.tool = toolbox[name]  # type: ignore[attr-defined]
            return guarded_async

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return toolbox.invoke(name, arguments(args, kwargs), lambda: fn(*args, **kwargs))

        guarded.tool = toolbox[name]  # type: ignore[attr-defined]
        return guarded
