"""Refusals: what the model reads when one of a tool's own caps says no.

A refusal is a plain string (so any framework can hand it to the model as the tool's
result) that also carries its numbers as attributes for code.
"""

from __future__ import annotations

from typing import Any, Final

from runaway_guard._budget import Unit, render_units
from runaway_guard._contract import ContractSpec
from runaway_guard._errors import BudgetExceeded

__all__ = ["Refusal"]

ADVICE: Final = "Choose another plan or hand off to a human."
REFUSED: Final = "Refused: tool "

_WINDOWS: Final = {
    "run": "per-ticket",
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "total": "lifetime",
}


class Refusal(str):
    """The text handed to the model in place of a refused tool call's result.

    Attributes:
        tool: the refused tool.
        cap: which cap refused it, e.g. ``"per-ticket money cap"``.
        limit: the cap, as text (``"€0.55"``, ``"20 calls"``).
        spent: what the ticket already used against the cap, as text.
        asked: what the refused call would have added, as text.
        number: this refusal's number in the ticket (1 for the first).
        error: the `BudgetExceeded` the guard raised underneath.
    """

    tool: str
    cap: str
    limit: str
    spent: str
    asked: str
    number: int
    error: BudgetExceeded | None

    def __new__(
        cls,
        text: str,
        *,
        tool: str = "",
        cap: str = "",
        limit: str = "",
        spent: str = "",
        asked: str = "",
        number: int = 0,
        error: BudgetExceeded | None = None,
    ) -> Refusal:
        self = super().__new__(cls, text)
        self.tool = tool
        self.cap = cap
        self.limit = limit
        self.spent = spent
        self.asked = asked
        self.number = number
        self.error = error
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Frameworks deep-copy tool outputs; keep the numbers through copies and pickles.
        return (_rebuild, (str(self), dict(self.__dict__)))

    @classmethod
    def of(
        cls,
        tool: str,
        spec: ContractSpec,
        error: BudgetExceeded,
        number: int,
        currency: str,
    ) -> Refusal:
        """The refusal for `error`, raised by one of `tool`'s own caps."""
        window = error.window.split(":", 1)[0]
        period = _WINDOWS.get(window, window)
        zero = render_units(Unit(error.unit), 0, currency)
        used = error.spent if error.held == zero else f"{error.spent} (+{error.held} in flight)"
        unit_price = spec.unit_price
        limit = error.limit
        if error.unit == Unit.MONEY:
            cap = f"{period} money cap"
            numbers = f"{used} already spent on it; this call would cost {error.asked}"
        elif (
            window == "run"
            and "max_calls_per_run" in spec.derived
            and spec.max_per_run is not None
            and unit_price is not None
        ):
            # The call cap was derived from the money cap: name the cap the user wrote.
            cap, limit = f"{period} money cap", str(spec.max_per_run)
            numbers = f"{used} at {unit_price} already made; this call would cost {unit_price}"
        else:
            cap = f"{period} call cap"
            numbers = f"{used} already made"
        text = (
            f"{REFUSED}{tool!r} is over its {cap} of {limit} ({numbers}). "
            f"The call was not made. {ADVICE}"
        )
        return cls(
            text,
            tool=tool,
            cap=cap,
            limit=limit,
            spent=error.spent,
            asked=error.asked,
            number=number,
            error=error,
        )


def _rebuild(text: str, attributes: dict[str, Any]) -> Refusal:
    return Refusal(text, **attributes)
