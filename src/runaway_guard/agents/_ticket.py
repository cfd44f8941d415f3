"""Tickets: a run seen through the agent guard (its history, votes and context)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from runaway_guard._budget import Period, Unit
from runaway_guard._money import Money, format_amount
from runaway_guard._runs import Run, RunScope
from runaway_guard.agents import _context
from runaway_guard.agents._errors import ContextBudgetExceeded, MoneyWallReached
from runaway_guard.agents._state import TicketState, chain_states, log_halt, state_of
from runaway_guard.agents._vote import Verdict, decide

if TYPE_CHECKING:
    from runaway_guard.agents._toolbox import Toolbox

__all__ = ["Ticket", "TicketScope"]


class Ticket:
    """One ticket (a run) as the agent guard sees it. Get one from `Toolbox.ticket`
    (``with toolbox.ticket("T-4821", budget="€2.00") as ticket:``) or, inside any run,
    from `Toolbox.current()`.
    """

    def __init__(self, toolbox: Toolbox, run: Run) -> None:
        self.toolbox = toolbox
        self.run = run
        self.state: TicketState = state_of(run)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def path(self) -> str:
        return self.run.path

    def spent(self) -> Money:
        """Money settled by calls in this ticket and its nested runs."""
        return self.run.spent()

    @property
    def calls(self) -> int:
        """Tool calls made or refused in this ticket (nested runs included)."""
        return self.state.calls

    @property
    def refusals(self) -> int:
        """Refusals handed to the model in this ticket (nested runs included)."""
        return self.state.refusals

    def trail(self, last: int | None = None) -> list[str]:
        """The ticket's recent tool calls as text, oldest first (default: the loop window)."""
        count = last if last is not None else self.toolbox.trail_length
        return [record.render(self.toolbox.guard) for record in self.state.trail(count)]

    # -- the model's word ----------------------------------------------------------------------
    def model_replied(self, text: str, *, called_tools: bool) -> bool:
        """Record the model's latest reply; return whether it counts as "done"."""
        vote = self.toolbox.halt
        done = (
            not called_tools if vote is None else vote.claims_done(text, called_tools=called_tools)
        )
        self.state.model_said(text, done)
        return done

    # -- the halt vote ---------------------------------------------------------------------------
    def vote(
        self,
        *,
        model_done: bool | None = None,
        results: Sequence[str] | None = None,
        raise_on_wall: bool = False,
    ) -> Verdict:
        """Count the halt vote now (see `HaltVote`); truthy when the ticket should stop.

        Args:
            model_done: whether the model says it is done; None uses its latest reply as
                recorded by `model_replied` (the framework adapters record it).
            results: the results for the classifier; None uses the ticket's last ones.
            raise_on_wall: raise `MoneyWallReached` instead of returning a wall verdict.
        """
        policy = self.toolbox.halt
        if model_done is None:
            model_done = self.state.model[1]
        classifier_done = False
        if policy is not None and policy.classifier is not None:
            recent = list(results) if results is not None else self.state.results(policy.last)
            classifier_done = bool(policy.classifier(recent[-policy.last :]))
        wall = self.wall()
        verdict = decide(model_done=model_done, classifier_done=classifier_done, wall=wall)
        if verdict.wall and raise_on_wall:
            self._halt_on_wall(verdict)
        return verdict

    def wall(self) -> str | None:
        """Why the money wall stands in this ticket's way, or None."""
        for state in chain_states(self.run):
            if state.wall is not None:
                return state.wall
        guard = self.toolbox.guard
        policy = self.toolbox.halt
        if policy is not None and policy.wall is not None:
            wall = policy.wall.to(guard.currency, guard.exchange_rates)
            spent = self.spent()
            if spent.nanos >= wall.nanos:
                return f"ticket {self.path!r} spent {spent}, at its wall of {wall}"
        for node in reversed(self.run.chain):
            for budget in node.budgets:
                if budget.unit is not Unit.MONEY or budget.per is not Period.RUN or budget.scope:
                    continue
                limit = budget.limit_units(guard.currency, guard.exchange_rates)
                spent = node.spent()
                if spent.nanos >= limit:
                    return (
                        f"run {node.path!r} spent {spent} of its "
                        f"{format_amount(limit, guard.currency)} budget"
                    )
        return None

    def _halt_on_wall(self, verdict: Verdict) -> None:
        detail = f"MoneyWallReached: {verdict.reason}"
        log_halt(self.toolbox.guard, self.run, detail + self._trail_text())
        guard = self.toolbox.guard
        raise MoneyWallReached(
            f"ticket {self.path!r} stopped by the halt vote's {verdict.reason} (the wall alone "
            "always stops a ticket; hand it to a human or give it a larger budget)",
            ticket=self.path,
            trail=self.trail(),
            spent=str(self.spent()),
            wall=str(self.toolbox.halt.wall.to(guard.currency, guard.exchange_rates))
            if self.toolbox.halt is not None and self.toolbox.halt.wall is not None
            else "",
        )

    def _trail_text(self) -> str:
        lines = self.trail()
        return ("\ntrail:\n  " + "\n  ".join(lines)) if lines else ""

    # -- the context budget ----------------------------------------------------------------------
    def compact(self, results: Sequence[tuple[str, str]], *, other_tokens: int = 0) -> list[str]:
        """The texts to put in the model's context for `results`, summarised as budgeted.

        Args:
            results: ``(key, text)`` of every tool result in the context, oldest first;
                the key (a tool call id) must stay the same from one call to the next.
            other_tokens: estimated tokens of everything else in the context.

        Raises:
            ContextBudgetExceeded: still over `max_tokens` after summarising.
        """
        budget = self._budget()
        if budget is None:
            return [text for _, text in results]
        texts = dict(results)
        for batch in _context.plan(
            budget, results, self.state.replacements(), other_tokens
        ).batches:
            summary = _context.run_summariser(budget, [texts[key] for key in batch])
            self.state.remember(_context.summaries(batch, summary))
        return self._finish(budget, results, other_tokens)

    async def acompact(
        self, results: Sequence[tuple[str, str]], *, other_tokens: int = 0
    ) -> list[str]:
        """`compact` for async code and async summarisers."""
        budget = self._budget()
        if budget is None:
            return [text for _, text in results]
        texts = dict(results)
        for batch in _context.plan(
            budget, results, self.state.replacements(), other_tokens
        ).batches:
            summary = await _context.arun_summariser(budget, [texts[key] for key in batch])
            self.state.remember(_context.summaries(batch, summary))
        return self._finish(budget, results, other_tokens)

    def _budget(self) -> _context.ContextBudget | None:
        return self.toolbox.context

    def _finish(
        self, budget: _context.ContextBudget, results: Sequence[tuple[str, str]], other: int
    ) -> list[str]:
        shown, tokens = _context.finish(budget, results, self.state.replacements(), other)
        if budget.max_tokens is not None and tokens > budget.max_tokens:
            how = (
                "after summarising every tool result"
                if budget.on_over == "summarise"
                else "(on_over='refuse')"
            )
            message = (
                f"ticket {self.path!r} context: ~{tokens} tokens {how} > {budget.max_tokens} "
                "max_tokens; the model call was not made (raise max_tokens, summarise "
                "shorter, or hand the ticket to a human)"
            )
            log_halt(self.toolbox.guard, self.run, f"ContextBudgetExceeded: {message}")
            raise ContextBudgetExceeded(
                message,
                ticket=self.path,
                trail=self.trail(),
                tokens=tokens,
                limit=budget.max_tokens,
            )
        return shown

    def __repr__(self) -> str:
        return f"Ticket({self.path!r})"


class TicketScope:
    """The context manager `Toolbox.ticket` returns; ``with`` or ``async with``."""

    def __init__(self, toolbox: Toolbox, scope: RunScope) -> None:
        self._toolbox = toolbox
        self._scope = scope

    def __enter__(self) -> Ticket:
        return Ticket(self._toolbox, self._scope.__enter__())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Ticket:
        return Ticket(self._toolbox, await self._scope.__aenter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._scope.__aexit__(exc_type, exc, tb)
