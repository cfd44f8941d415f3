"""Errors that end an agent's ticket, under the core tree's `GuardRefused`.

```
GuardRefused
├── LoopDetected                 (core) the same call keeps being repeated
└── AgentHalted                  the agent guard ended the ticket
    ├── RefusalLimitReached      the model kept asking for refused calls
    ├── ContextBudgetExceeded    the model's context is over its token cap
    └── MoneyWallReached         the halt vote's money wall was reached
```

Like every `GuardRefused`, they are raised *before* the next paid call: nothing was spent
on the call that raised them.
"""

from __future__ import annotations

from collections.abc import Sequence

from runaway_guard._errors import GuardRefused

__all__ = ["AgentHalted", "ContextBudgetExceeded", "MoneyWallReached", "RefusalLimitReached"]


class AgentHalted(GuardRefused):
    """The agent guard ended the ticket.

    Attributes:
        ticket: the run path of the ticket (``"T-4821"`` or ``"T-4821/sub-agent"``).
        trail: the ticket's recent calls, oldest first, as text.
    """

    def __init__(self, message: str, *, ticket: str = "", trail: Sequence[str] = ()) -> None:
        self.ticket = ticket
        self.trail = list(trail)
        super().__init__(message)


class RefusalLimitReached(AgentHalted):
    """More tool calls were refused in a ticket than its `max_refusals` allows.

    Attributes:
        refusals: how many refusals the ticket had, this one included.
        limit: the toolbox's `max_refusals`.
    """

    def __init__(
        self,
        message: str,
        *,
        ticket: str = "",
        trail: Sequence[str] = (),
        refusals: int = 0,
        limit: int = 0,
    ) -> None:
        self.refusals = refusals
        self.limit = limit
        super().__init__(message, ticket=ticket, trail=trail)


class ContextBudgetExceeded(AgentHalted):
    """The model's context would be over its token cap even with every result summarised.

    Attributes:
        tokens: the estimated tokens of the context after summarising.
        limit: the cap (`ContextBudget.max_tokens`).
    """

    def __init__(
        self,
        message: str,
        *,
        ticket: str = "",
        trail: Sequence[str] = (),
        tokens: int = 0,
        limit: int = 0,
    ) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(message, ticket=ticket, trail=trail)


class MoneyWallReached(AgentHalted):
    """The halt vote's money wall stopped the ticket; it alone always stops it.

    Attributes:
        spent: the ticket's settled spend, as text.
        wall: the wall it reached, as text.
    """

    def __init__(
        self,
        message: str,
        *,
        ticket: str = "",
        trail: Sequence[str] = (),
        spent: str = "",
        wall: str = "",
    ) -> None:
        self.spent = spent
        self.wall = wall
        super().__init__(message, ticket=ticket, trail=trail)
