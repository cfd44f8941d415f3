"""The halt vote: stop when two of three signals agree; the money wall alone always stops.

The three signals:

- **the model** says it is done (it answered without calling a tool, or its text passes
  your `model_done` predicate, e.g. it wrote ``RESOLVED``);
- **a classifier** of yours reads the ticket's last few tool results and says done;
- **the money wall**: the ticket spent its money budget (or the vote's own `wall`), or a
  call was already refused by a budget that is not the tool's own.

The model alone cannot end the ticket, nor can the classifier alone: each needs the
other. The money wall needs nobody, so the vote reduces to ``wall or (model and
classifier)``; the model never gets to talk its way past the wall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runaway_guard._budget import check_count
from runaway_guard._errors import ContractError
from runaway_guard._money import Money, MoneyLike, parse_money
from runaway_guard.agents._state import MAX_RESULTS

__all__ = ["Classifier", "HaltVote", "ModelDone", "Verdict", "decide"]

Classifier = Callable[[Sequence[str]], bool]
"""``classifier(last_results) -> bool``: True when the results say the ticket is done."""

ModelDone = Callable[[str], bool]
"""``model_done(text) -> bool``: True when the model's text claims the ticket is done."""


class HaltVote:
    """How a ticket decides to stop (see the module docstring).

    Args:
        classifier: reads the ticket's last `last` tool results; None never votes done.
        last: how many recent results the classifier reads.
        wall: a money wall below the ticket's budget (``"€1.80"``); None uses the budget
            of the ticket and of every enclosing run.
        model_done: a predicate on the model's text, for models told to write a marker
            when they are done. Without one, the model says done only by answering
            without a tool call.
    """

    __slots__ = ("classifier", "last", "model_done", "wall")

    def __init__(
        self,
        *,
        classifier: Classifier | None = None,
        last: int = 3,
        wall: MoneyLike | None = None,
        model_done: ModelDone | None = None,
    ) -> None:
        check_count(last, "HaltVote last")
        if not 1 <= last <= MAX_RESULTS:
            raise ContractError(f"HaltVote last must be between 1 and {MAX_RESULTS}, got {last}")
        self.classifier = classifier
        self.last = last
        self.wall: Money | None = None if wall is None else parse_money(wall, what="wall")
        self.model_done = model_done

    def claims_done(self, text: str, *, called_tools: bool) -> bool:
        """Whether a model reply counts as the model saying it is done."""
        if self.model_done is not None:
            return bool(self.model_done(text))
        return not called_tools

    def __repr__(self) -> str:
        return f"HaltVote(last={self.last}, wall={self.wall})"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one halt vote; truthy when the ticket should stop."""

    stop: bool
    model_done: bool
    classifier_done: bool
    wall: bool
    reason: str

    def __bool__(self) -> bool:
        return self.stop


def decide(*, model_done: bool, classifier_done: bool, wall: str | None) -> Verdict:
    """Count the votes: the wall alone stops; otherwise two of the three must agree."""
    if wall is not None:
        return Verdict(True, model_done, classifier_done, True, f"money wall: {wall}")
    if model_done and classifier_done:
        return Verdict(
            True, True, True, False, "the model and the classifier agree the ticket is done"
        )
    if model_done:
        reason = "the model says done but the classifier does not agree: keep going"
    elif classifier_done:
        reason = "the classifier says done but the model does not agree: keep going"
    else:
        reason = "no signal says done"
    return Verdict(False, model_done, classifier_done, False, reason)
