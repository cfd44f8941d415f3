"""The context budget: summaries every N results, and a cap on estimated tokens."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import runaway_guard as rg
from runaway_guard import agents


class Summariser:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, results: Sequence[str]) -> str:
        self.batches.append(list(results))
        return f"{len(results)} results: nothing new"


def results(count: int, size: int = 40) -> list[tuple[str, str]]:
    return [(f"call-{n}", f"r{n}:" + "x" * size) for n in range(count)]


def test_tokens_are_estimated_as_characters_over_four_rounded_up() -> None:
    assert (0, 1, 1, 2) == tuple(agents.estimate_tokens("x" * n) for n in (0, 1, 4, 5))


def test_every_fifth_result_the_batch_is_replaced_by_one_summary(eur: rg.Guard) -> None:
    summarise = Summariser()
    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=5))
    with toolbox.ticket("T-1") as ticket:
        shown = ticket.compact(results(7))
    assert [[f"r{n}:" + "x" * 40 for n in range(5)]] == summarise.batches
    assert "[summary of 5 tool result(s)]\n5 results: nothing new" == shown[4]
    assert 4 == sum(1 for text in shown[:4] if text.startswith("[raw tool result dropped"))
    assert [f"r{n}:" + "x" * 40 for n in (5, 6)] == shown[5:]


def test_a_batch_is_summarised_once_across_model_calls(eur: rg.Guard) -> None:
    summarise = Summariser()
    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=2))
    with toolbox.ticket("T-1") as ticket:
        first = ticket.compact(results(2))
        again = ticket.compact(results(3))
    assert 1 == len(summarise.batches)
    assert first == again[:2]


def test_refusals_are_never_summarised(eur: rg.Guard) -> None:
    summarise = Summariser()
    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=2))

    @toolbox.tool(price="€0.11", max_per_run="€0")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1") as ticket:
        refusal = str(whois("AS1"))
        shown = ticket.compact([("a", "raw a"), ("b", refusal), ("c", "raw c")])
    assert [["raw a", "raw c"]] == summarise.batches
    assert refusal == shown[1]


def test_over_the_cap_the_short_batch_is_summarised_too(eur: rg.Guard) -> None:
    summarise = Summariser()
    budget = agents.ContextBudget(summarise, every=5, max_tokens=60)
    toolbox = agents.Toolbox(eur, context=budget)
    with toolbox.ticket("T-1") as ticket:
        shown = ticket.compact(results(3, size=100), other_tokens=10)
    assert 1 == len(summarise.batches)
    assert shown[2].startswith("[summary of 3 tool result(s)]")


def test_still_over_the_cap_after_summarising_refuses_the_model_call(eur: rg.Guard) -> None:
    budget = agents.ContextBudget(Summariser(), every=5, max_tokens=60)
    toolbox = agents.Toolbox(eur, context=budget)
    with toolbox.ticket("T-1") as ticket, pytest.raises(agents.ContextBudgetExceeded) as caught:
        ticket.compact(results(3), other_tokens=500)
    assert (60, "T-1") == (caught.value.limit, caught.value.ticket)
    assert caught.value.tokens > 500
    assert "ContextBudgetExceeded" in list(eur.ledger.spend(contract="agents:halt"))[-1].error


def test_on_over_refuse_refuses_without_summarising_early(eur: rg.Guard) -> None:
    summarise = Summariser()
    budget = agents.ContextBudget(summarise, every=5, max_tokens=60, on_over="refuse")
    toolbox = agents.Toolbox(eur, context=budget)
    with toolbox.ticket("T-1") as ticket, pytest.raises(agents.ContextBudgetExceeded):
        ticket.compact(results(3, size=100), other_tokens=10)
    assert [] == summarise.batches


async def test_an_async_summariser_works_on_the_async_path(eur: rg.Guard) -> None:
    async def summarise(results: Sequence[str]) -> str:
        return f"{len(results)} noted"

    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=2))
    async with toolbox.ticket("T-1") as ticket:
        shown = await ticket.acompact(results(2))
    assert "[summary of 2 tool result(s)]\n2 noted" == shown[1]


def test_an_async_summariser_on_the_sync_path_is_an_error(eur: rg.Guard) -> None:
    async def summarise(results: Sequence[str]) -> str:
        return "never"

    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=1))
    with toolbox.ticket("T-1") as ticket, pytest.raises(rg.ContractError, match="async"):
        ticket.compact(results(1))


def test_without_a_budget_results_pass_through(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur)
    with toolbox.ticket("T-1") as ticket:
        assert ["a", "b"] == ticket.compact([("1", "a"), ("2", "b")])


def test_budget_settings_are_validated() -> None:
    with pytest.raises(rg.ContractError, match="every"):
        agents.ContextBudget(Summariser(), every=0)
    with pytest.raises(rg.ContractError, match="on_over"):
        agents.ContextBudget(Summariser(), on_over="warn")  # type: ignore[arg-type]
