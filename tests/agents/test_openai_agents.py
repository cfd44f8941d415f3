"""The agent guard through the OpenAI Agents SDK, driven by the SDK's own ScriptedModel."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from agents.testing import ScriptedModel, assistant_message, function_call

import runaway_guard as rg
from agents import Agent, FunctionTool, Runner, UserError, WebSearchTool, function_tool
from runaway_guard import agents
from runaway_guard.agents import openai_agents
from runaway_guard.testing import FakeClock

ran: list[str] = []


@function_tool
def traceroute(host: str, started: str) -> str:
    """Trace the route to a host."""
    ran.append(f"traceroute {host}")
    return f"7 hops to {host}, asymmetric via AS4242420000"


@function_tool
def whois_lookup(asn: str) -> str:
    """Who owns an AS number."""
    ran.append(f"whois {asn}")
    return f"{asn}: hobbyist network, Bremen"


@function_tool
async def egress_probe(target: str) -> str:
    """Send test traffic to a target."""
    ran.append(f"probe {target}")
    return f"{target} reachable"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@pytest.fixture
def support(toolbox: agents.Toolbox) -> agents.Toolbox:
    toolbox.register("traceroute", max_calls_per_run=500)
    toolbox.register("whois_lookup", price="€0.11", max_per_run="€0.55")
    toolbox.register("egress_probe", price="€0.40", max_per_run="€10.00")
    return toolbox


def agent(model: ScriptedModel, *tools: FunctionTool) -> Agent[Any]:
    return Agent(
        name="support",
        instructions="Resolve the ticket.",
        model=model,
        tools=list(tools or (traceroute, whois_lookup, egress_probe)),
    )


def calls(name: str, args: Sequence[dict[str, str]]) -> list[list[Any]]:
    """One scripted model turn per tool call."""
    return [[function_call(name, a, call_id=f"{name}-{n}")] for n, a in enumerate(args)]


def outputs(model: ScriptedModel, turn: int) -> list[str]:
    """The tool outputs the model was given on its `turn`-th call."""
    items = model.calls[turn].input
    assert isinstance(items, list)
    return [
        i["output"]
        for i in items
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    ]


async def test_a_traceroute_loop_is_halted_on_the_4th_repeat(
    support: agents.Toolbox, clock: FakeClock
) -> None:
    hosts = ["203.0.113.7", "203.0.113.9", "203.0.113.12", "203.0.113.14"]
    script = calls(
        "traceroute",
        [{"host": h, "started": f"2025-05-11T06:1{n}:00Z"} for n, h in enumerate(hosts)],
    )
    model = ScriptedModel([*script, [assistant_message("never reached")]])
    with support.ticket("T-4821", budget="€2.00"), pytest.raises(rg.LoopDetected) as caught:
        await openai_agents.run(support, agent(model), "Webhooks arrive late")
    assert 3 == len(ran)
    assert 'traceroute{"host":"203.0.113.0/24","started":"<time>"}' == caught.value.signature
    assert 1 == model.remaining_steps


async def test_whois_runs_5_times_and_the_model_then_receives_the_refusal(
    support: agents.Toolbox,
) -> None:
    script = calls("whois_lookup", [{"asn": f"AS42424200{n:02d}"} for n in range(6)])
    model = ScriptedModel([*script, [assistant_message("Handing off to a human.")]])
    with support.ticket("T-4821", budget="€2.00") as ticket:
        result = await openai_agents.run(support, agent(model), "Who peers with the VPS?")
        assert Decimal("0.55") == ticket.spent().amount
    assert 5 == len(ran)
    assert "Handing off to a human." == result.final_output
    assert (
        "Refused: tool 'whois_lookup' is over its per-ticket money cap of €0.55 (5 calls at "
        "€0.11 already made; this call would cost €0.11). The call was not made. Choose "
        "another plan or hand off to a human."
    ) == outputs(model, 6)[-1]


async def test_a_2_euro_ticket_cap_ends_the_whole_run(support: agents.Toolbox) -> None:
    script = calls("whois_lookup", [{"asn": f"AS42424200{n:02d}"} for n in range(5)])
    script += calls("egress_probe", [{"target": f"peer{n}.dn42"} for n in range(10)])
    model = ScriptedModel(script)
    with support.ticket("T-4821", budget="€2.00") as ticket:
        with pytest.raises(rg.BudgetExceeded) as caught:
            await openai_agents.run(support, agent(model), "Route a test through DN42")
        assert Decimal("1.75") == ticket.spent().amount
    assert "run 'T-4821' per-run budget" in caught.value.budget
    assert 3 == sum(1 for line in ran if line.startswith("probe"))
    assert 6 == model.remaining_steps


async def test_runner_run_itself_wraps_the_guard_error_and_unwrap_finds_it(
    support: agents.Toolbox,
) -> None:
    model = ScriptedModel(calls("whois_lookup", [{"asn": "AS1"}, {"asn": "AS2"}]))
    strict = agents.Toolbox(support.guard, on_exceed="raise")
    strict.register("whois_lookup", contract=support["whois_lookup"].contract)
    with strict.ticket("T-1", budget="€0.11"), pytest.raises(UserError) as caught:
        await Runner.run(openai_agents.guard_agent(strict, agent(model, whois_lookup)), "go")
    assert isinstance(openai_agents.unwrap(caught.value), rg.BudgetExceeded)


async def test_the_context_budget_rewrites_tool_outputs_before_each_model_call(
    eur: rg.Guard,
) -> None:
    batches: list[list[str]] = []

    def summarise(results: Sequence[str]) -> str:
        batches.append(list(results))
        return "three Bremen hobbyist networks"

    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(summarise, every=3))
    toolbox.register("whois_lookup", price="€0.11", max_per_run="€0.55")
    script = calls("whois_lookup", [{"asn": f"AS{n}"} for n in range(4)])
    model = ScriptedModel([*script, [assistant_message("done")]])
    with toolbox.ticket("T-1"):
        await openai_agents.run(toolbox, agent(model, whois_lookup), "go")
    assert 1 == len(batches)
    assert "[summary of 3 tool result(s)]\nthree Bremen hobbyist networks" == outputs(model, 3)[2]
    assert "AS3: hobbyist network, Bremen" == outputs(model, 4)[3]


async def test_the_context_cap_refuses_the_model_call(eur: rg.Guard) -> None:
    budget = agents.ContextBudget(lambda results: "x" * 400, every=1, max_tokens=50)
    toolbox = agents.Toolbox(eur, context=budget)
    toolbox.register("whois_lookup", price="€0.11", max_per_run="€0.55")
    model = ScriptedModel([*calls("whois_lookup", [{"asn": "AS1"}]), [assistant_message("-")]])
    with toolbox.ticket("T-1"), pytest.raises(agents.ContextBudgetExceeded):
        await openai_agents.run(toolbox, agent(model, whois_lookup), "go")
    assert 1 == model.remaining_steps


async def test_the_halt_vote_ends_the_run_when_model_and_classifier_agree(
    eur: rg.Guard,
) -> None:
    vote = agents.HaltVote(
        classifier=lambda results: any("retry interval" in r for r in results),
        model_done=lambda text: "RESOLVED" in text,
    )
    toolbox = agents.Toolbox(eur, halt=vote)

    @function_tool
    def stripe_settings(account: str) -> str:
        """Read the customer's webhook settings."""
        return "webhook retry interval: 3600s (misconfigured)"

    toolbox.register("stripe_settings", price="€0.02", max_per_run="€0.40")
    model = ScriptedModel(
        [
            [
                assistant_message("Checking."),
                function_call("stripe_settings", {"account": "a"}, call_id="1"),
            ],
            [
                assistant_message("RESOLVED: retry interval."),
                function_call("stripe_settings", {"account": "a"}, call_id="2"),
            ],
            [assistant_message("never reached")],
        ]
    )
    with toolbox.ticket("T-1"):
        result = await openai_agents.run(toolbox, agent(model, stripe_settings), "go")
    assert "RESOLVED: retry interval." == result.final_output
    assert 1 == model.remaining_steps


async def test_the_money_wall_alone_stops_the_run(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, halt=agents.HaltVote(wall="€0.80"))
    toolbox.register("egress_probe", price="€0.40", max_per_run="€10.00")
    script = calls("egress_probe", [{"target": f"peer{n}"} for n in range(5)])
    model = ScriptedModel(script)
    with toolbox.ticket("T-1", budget="€2.00"), pytest.raises(agents.MoneyWallReached):
        await openai_agents.run(toolbox, agent(model, egress_probe), "go")
    assert 2 == len(ran)


def test_an_unregistered_tool_is_refused_when_the_agent_is_guarded(
    toolbox: agents.Toolbox,
) -> None:
    with pytest.raises(rg.ContractError, match="'traceroute' is not registered"):
        openai_agents.guard_agent(toolbox, agent(ScriptedModel([]), traceroute))


def test_a_hosted_tool_cannot_be_guarded_per_call(support: agents.Toolbox) -> None:
    hosted = Agent(name="a", model=ScriptedModel([]), tools=[WebSearchTool()])
    with pytest.raises(rg.ContractError, match="runs at the provider"):
        openai_agents.guard_agent(support, hosted)


def test_guard_tool_can_register_the_tool_itself(toolbox: agents.Toolbox) -> None:
    guarded = openai_agents.guard_tool(toolbox, whois_lookup, price="€0.11", max_per_run="€0.55")
    assert ("whois_lookup", whois_lookup.params_json_schema) == (
        guarded.name,
        guarded.params_json_schema,
    )
    assert "whois_lookup" in toolbox


async def test_guarding_a_guarded_agent_again_does_not_charge_twice(
    support: agents.Toolbox,
) -> None:
    model = ScriptedModel([*calls("whois_lookup", [{"asn": "AS1"}]), [assistant_message("ok")]])
    twice = openai_agents.guard_agent(support, agent(model, whois_lookup))
    with support.ticket("T-1") as ticket:
        await openai_agents.run(support, twice, "go")
        assert (Decimal("0.11"), 1) == (ticket.spent().amount, ticket.calls)


async def test_an_agent_handed_off_to_is_guarded_too(support: agents.Toolbox) -> None:
    model = ScriptedModel(
        [
            [function_call("transfer_to_network_desk", {}, call_id="h")],
            *calls("whois_lookup", [{"asn": f"AS{n}"} for n in range(6)]),
            [assistant_message("escalated")],
        ]
    )
    desk = Agent(name="network desk", model=model, tools=[whois_lookup])
    front = Agent(name="front", model=model, handoffs=[desk])
    with support.ticket("T-1") as ticket:
        result = await openai_agents.run(support, front, "go")
        assert (Decimal("0.55"), 1) == (ticket.spent().amount, ticket.refusals)
    assert "escalated" == result.final_output
