"""The halt vote: two of three signals stop a ticket; the money wall alone always does."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import runaway_guard as rg
from runaway_guard import agents
from runaway_guard.agents._vote import decide


@pytest.mark.parametrize(
    ("model", "classifier", "wall", "stop"),
    [
        (False, False, False, False),
        (True, False, False, False),
        (False, True, False, False),
        (True, True, False, True),
        (False, False, True, True),
        (True, False, True, True),
        (False, True, True, True),
        (True, True, True, True),
    ],
)
def test_two_of_three_and_the_wall_alone(
    model: bool, classifier: bool, wall: bool, stop: bool
) -> None:
    verdict = decide(model_done=model, classifier_done=classifier, wall="spent" if wall else None)
    assert stop == bool(verdict)


def said_resolved(results: Sequence[str]) -> bool:
    return any("resolved" in text for text in results)


def toolbox_with_vote(guard: rg.Guard, **vote: object) -> agents.Toolbox:
    toolbox = agents.Toolbox(guard, halt=agents.HaltVote(classifier=said_resolved, **vote))  # type: ignore[arg-type]

    @toolbox.tool(price="€0.40", max_per_run="€10.00")
    def check(what: str) -> str:
        return f"{what}: resolved" if what == "stripe" else f"{what}: unclear"

    return toolbox


def test_the_classifier_reads_the_tickets_last_results(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur, last=2)
    check = toolbox.tools["check"]
    with toolbox.ticket("T-1") as ticket:
        toolbox.invoke("check", {"what": "stripe"}, lambda: "stripe: resolved")
        assert ticket.vote(model_done=True).stop
        for what in ("dns", "tls"):
            toolbox.invoke("check", {"what": what}, lambda: "unclear")
        assert not ticket.vote(model_done=True).stop
    assert "check" == check.name


def test_the_model_alone_does_not_stop_the_ticket(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur)
    with toolbox.ticket("T-1") as ticket:
        toolbox.invoke("check", {"what": "dns"}, lambda: "unclear")
        verdict = ticket.vote(model_done=True)
    assert (False, "the model says done but the classifier does not agree: keep going") == (
        verdict.stop,
        verdict.reason,
    )


def test_the_spent_ticket_budget_is_the_wall(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur)
    with toolbox.ticket("T-1", budget="€0.80") as ticket:
        for what in ("dns", "tls"):
            toolbox.invoke("check", {"what": what}, lambda: "unclear")
        verdict = ticket.vote(model_done=False)
    assert (True, True) == (verdict.stop, verdict.wall)
    assert "money wall: run 'T-1' spent €0.80 of its €0.80 budget" == verdict.reason


def test_a_wall_below_the_budget_raises_when_asked(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur, wall="€0.40")
    with toolbox.ticket("T-1", budget="€2.00") as ticket:
        toolbox.invoke("check", {"what": "dns"}, lambda: "unclear")
        with pytest.raises(agents.MoneyWallReached) as caught:
            ticket.vote(model_done=False, raise_on_wall=True)
    assert ("€0.40", "€0.40") == (caught.value.spent, caught.value.wall)
    assert "MoneyWallReached" in list(eur.ledger.spend(contract="agents:halt"))[-1].error


def test_a_parent_budget_spent_by_a_sub_agent_is_the_wall(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur)
    with toolbox.ticket("T-1", budget="€0.40"), toolbox.ticket("sub") as child:
        toolbox.invoke("check", {"what": "dns"}, lambda: "unclear")
        assert child.vote(model_done=False).wall


def test_a_refused_wall_call_is_the_wall_even_below_the_budget(eur: rg.Guard) -> None:
    toolbox = toolbox_with_vote(eur)
    with toolbox.ticket("T-1", budget="€0.50") as ticket:
        toolbox.invoke("check", {"what": "dns"}, lambda: "unclear")
        with pytest.raises(rg.BudgetExceeded):
            toolbox.invoke("check", {"what": "tls"}, lambda: "unclear")
        assert ticket.vote(model_done=False).wall


def test_a_model_predicate_lets_the_model_claim_done_while_calling_tools(
    eur: rg.Guard,
) -> None:
    toolbox = agents.Toolbox(eur, halt=agents.HaltVote(model_done=lambda text: "DONE" in text))
    with toolbox.ticket("T-1") as ticket:
        assert ticket.model_replied("Checked. DONE", called_tools=True)
        assert not ticket.model_replied("Let me look again", called_tools=False)


def test_vote_settings_are_validated() -> None:
    with pytest.raises(rg.ContractError, match="last"):
        agents.HaltVote(last=0)
