"""The context budget: summarise raw tool results every N, and cap the context's tokens.

An agent that re-feeds every raw tool result into its context pays for all of them again
on every model call. The context budget replaces them, every `every` results, with one
summary from your summariser, and refuses a model call whose context would still be
over `max_tokens`.

Tokens are *estimated*, not counted: ``ceil(characters / 4)``, the usual rule of thumb
for English text and JSON with the GPT and Claude tokenizers. It needs no tokenizer and
no network; pass your own `estimate` when you need a real count.

A batch's summary goes into the last result of the batch; the earlier ones are replaced
by a short pointer to it, so every tool call keeps its (now short) result, as the chat
APIs require.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from runaway_guard._budget import check_count
from runaway_guard._errors import ContractError
from runaway_guard.agents._refusal import ADVICE, REFUSED

__all__ = [
    "ContextBudget",
    "Plan",
    "Summariser",
    "estimate_tokens",
    "finish",
    "is_refusal",
    "plan",
    "summaries",
]

Summariser = Callable[[Sequence[str]], "str | Awaitable[str]"]
"""``summarise(raw_results) -> str`` (or an awaitable of it): one note for a batch."""

POINTER: Final = "[raw tool result dropped; summarised in a later tool result]"


def is_refusal(text: str) -> bool:
    """Whether a tool result is a guard refusal (see `Refusal`)."""
    return text.startswith(REFUSED) and text.endswith(ADVICE)


def estimate_tokens(text: str) -> int:
    """Estimated tokens in `text`: ``ceil(len(text) / 4)``."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class ContextBudget:
    """Summarise tool results every `every` and keep the context under `max_tokens`.

    Args:
        summarise: ``summarise(raw_results) -> str``, sync or async.
        every: summarise each batch of this many raw results.
        max_tokens: cap on the estimated tokens of the whole model input; None for none.
        on_over: when over the cap: ``"summarise"`` the raw results left (even a short
            batch) and refuse only if still over, or ``"refuse"`` at once.
        estimate: token estimate of a text (default: `estimate_tokens`).
    """

    summarise: Summariser
    every: int = 5
    max_tokens: int | None = None
    on_over: Literal["summarise", "refuse"] = "summarise"
    estimate: Callable[[str], int] = estimate_tokens

    def __post_init__(self) -> None:
        check_count(self.every, "ContextBudget every")
        if self.every < 1:
            raise ContractError("ContextBudget every must be at least 1")
        if self.max_tokens is not None:
            check_count(self.max_tokens, "ContextBudget max_tokens")
        if self.on_over not in ("summarise", "refuse"):
            raise ContractError(
                f"ContextBudget on_over must be 'summarise' or 'refuse', got {self.on_over!r}"
            )


@dataclass(frozen=True, slots=True)
class Plan:
    """Batches of raw results (keys) to summarise, in order."""

    batches: tuple[tuple[str, ...], ...]


def plan(
    budget: ContextBudget,
    results: Sequence[tuple[str, str]],
    replaced: Mapping[str, str],
    other_tokens: int,
) -> Plan:
    """Which raw results to summarise now, given what was summarised before.

    Refusals are never summarised: the model must read them as written.
    """
    raw = [key for key, text in results if key not in replaced and not is_refusal(text)]
    full = len(raw) - len(raw) % budget.every
    batches = [tuple(raw[i : i + budget.every]) for i in range(0, full, budget.every)]
    leftover = tuple(raw[full:])
    if (
        leftover
        and budget.max_tokens is not None
        and budget.on_over == "summarise"
        and _tokens(budget, results, replaced, batches, other_tokens) > budget.max_tokens
    ):
        batches.append(leftover)
    return Plan(tuple(batches))


def _tokens(
    budget: ContextBudget,
    results: Sequence[tuple[str, str]],
    replaced: Mapping[str, str],
    batches: Sequence[tuple[str, ...]],
    other_tokens: int,
) -> int:
    # Summaries are not written yet: count a batch's results as pointers, a lower bound.
    pending = {key for batch in batches for key in batch}
    total = other_tokens
    for key, text in results:
        shown = POINTER if key in pending else replaced.get(key, text)
        total += budget.estimate(shown)
    return total


def summaries(batch: tuple[str, ...], summary: str) -> dict[str, str]:
    """The replacement text of each result in a summarised batch."""
    out = dict.fromkeys(batch[:-1], POINTER)
    out[batch[-1]] = f"[summary of {len(batch)} tool result(s)]\n{summary}"
    return out


def finish(
    budget: ContextBudget,
    results: Sequence[tuple[str, str]],
    replaced: Mapping[str, str],
    other_tokens: int,
) -> tuple[list[str], int]:
    """The texts to show for `results`, and the context's estimated tokens with them."""
    texts = [replaced.get(key, text) for key, text in results]
    tokens = other_tokens + sum(budget.estimate(text) for text in texts)
    return texts, tokens


def run_summariser(budget: ContextBudget, raw: Sequence[str]) -> str:
    value = budget.summarise(list(raw))
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if callable(close):
            close()  # never leave an un-awaited coroutine behind
        raise ContractError(
            "the context budget's summariser is async: use the async path (acompact, or "
            "an async agent framework) or give a sync summariser"
        )
    return _checked(value)


async def arun_summariser(budget: ContextBudget, raw: Sequence[str]) -> str:
    value = budget.summarise(list(raw))
    if inspect.isawaitable(value):
        value = await value
    return _checked(value)


def _checked(value: object) -> str:
    if not isinstance(value, str):
        raise ContractError(f"the context budget's summariser must return str, got {value!r}")
    return value
