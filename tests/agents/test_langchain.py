"""The agent guard through LangChain tools, driven by LangChain's own fake chat model."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

import runaway_guard as rg
from runaway_guard import agents
from runaway_guard.agents import langchain as rg_langchain

ran: list[str] = []


@tool
def traceroute(host: str, started: str) -> str:
    """Trace the route to a host."""
    ran.append(f"traceroute {host}")
    return f"7 hops to {host}"


@tool
def whois_lookup(asn: str) -> str:
    """Who owns an AS number."""
    ran.append(f"whois {asn}")
    return f"{asn}: hobbyist network, Bremen"


@tool
def egress_probe(target: str) -> str:
    """Send test traffic to a target."""
    ran.append(f"probe {target}")
    return f"{target} reachable"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@pytest.fixture
def tools(toolbox: agents.Toolbox) -> dict[str, BaseTool]:
    return {
        "traceroute": rg_langchain.guard_tool(toolbox, traceroute, max_calls_per_run=500),
        "whois_lookup": rg_langchain.guard_tool(
            toolbox, whois_lookup, price="€0.11", max_per_run="€0.55"
        ),
        "egress_probe": rg_langchain.guard_tool(
            toolbox, egress_probe, price="€0.40", max_per_run="€10.00"
        ),
    }


class Recorder(BaseCallbackHandler):
    """Keeps what the model was shown on each call (LangChain's own callback hook)."""

    def __init__(self) -> None:
        self.inputs: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        self.inputs.append(messages[0])


def turns(name: str, args: list[dict[str, str]]) -> list[AIMessage]:
    return [
        AIMessage(
            content="",
            tool_calls=[{"name": name, "args": a, "id": f"{name}-{n}", "type": "tool_call"}],
        )
        for n, a in enumerate(args)
    ]


def agent_loop(
    toolbox: agents.Toolbox,
    script: list[AIMessage],
    tools: dict[str, BaseTool],
    recorder: Recorder | None = None,
) -> list[BaseMessage]:
    """A plain tool-calling loop, as a LangChain user writes one with langchain-core."""
    model = GenericFakeChatModel(messages=iter(script))
    config: Any = {"callbacks": [recorder]} if recorder is not None else {}
    messages: list[BaseMessage] = [HumanMessage("Webhooks arrive late")]
    for _ in range(len(script)):
        reply = model.invoke(rg_langchain.compact(toolbox, messages), config=config)
        assert isinstance(reply, AIMessage)
        messages.append(reply)
        for call in reply.tool_calls:
            messages.append(tools[call["name"]].invoke(call))
        if rg_langchain.vote(toolbox, reply):
            break
    return messages


def test_a_traceroute_loop_is_halted_on_the_4th_repeat(
    toolbox: agents.Toolbox, tools: dict[str, BaseTool]
) -> None:
    hosts = ["203.0.113.7", "203.0.113.9", "203.0.113.12", "203.0.113.14"]
    script = turns(
        "traceroute",
        [{"host": h, "started": f"2025-05-11T06:1{n}:00Z"} for n, h in enumerate(hosts)],
    )
    with toolbox.ticket("T-4821", budget="€2.00"), pytest.raises(rg.LoopDetected) as caught:
        agent_loop(toolbox, script, tools)
    assert 3 == len(ran)
    assert 'traceroute{"host":"203.0.113.0/24","started":"<time>"}' == caught.value.signature


def test_whois_runs_5_times_and_the_model_then_receives_the_refusal(
    toolbox: agents.Toolbox, tools: dict[str, BaseTool]
) -> None:
    script = turns("whois_lookup", [{"asn": f"AS42424200{n:02d}"} for n in range(6)])
    script.append(AIMessage(content="Handing off to a human."))
    recorder = Recorder()
    with toolbox.ticket("T-4821", budget="€2.00") as ticket:
        messages = agent_loop(toolbox, script, tools, recorder)
        assert Decimal("0.55") == ticket.spent().amount
    assert 5 == len(ran)
    shown = recorder.inputs[6][-1]
    assert isinstance(shown, ToolMessage)
    assert (
        "Refused: tool 'whois_lookup' is over its per-ticket money cap of €0.55 (5 calls at "
        "€0.11 already made; this call would cost €0.11). The call was not made. Choose "
        "another plan or hand off to a human."
    ) == shown.content
    assert "Handing off to a human." == messages[-1].content


def test_a_2_euro_ticket_cap_ends_the_whole_run(
    toolbox: agents.Toolbox, tools: dict[str, BaseTool]
) -> None:
    script = turns("whois_lookup", [{"asn": f"AS42424200{n:02d}"} for n in range(5)])
    script += turns("egress_probe", [{"target": f"peer{n}.dn42"} for n in range(10)])
    with toolbox.ticket("T-4821", budget="€2.00") as ticket:
        with pytest.raises(rg.BudgetExceeded) as caught:
            agent_loop(toolbox, script, tools)
        assert Decimal("1.75") == ticket.spent().amount
    assert "run 'T-4821' per-run budget" in caught.value.budget
    assert 3 == sum(1 for line in ran if line.startswith("probe"))


async def test_async_runs_are_guarded_and_a_sync_tool_run_async_pays_once(
    toolbox: agents.Toolbox, tools: dict[str, BaseTool]
) -> None:
    @tool
    async def async_probe(target: str) -> str:
        """Send test traffic to a target, asynchronously."""
        return f"{target} reachable"

    probe = rg_langchain.guard_tool(toolbox, async_probe, price="€0.40", max_per_run="€0.40")
    async with toolbox.ticket("T-1") as ticket:
        assert "peer0 reachable" == await probe.ainvoke({"target": "peer0"})
        await tools["whois_lookup"].ainvoke({"asn": "AS1"})  # runs _run in a worker thread
        refused = await probe.ainvoke({"target": "peer1"})
        assert (Decimal("0.51"), 3) == (ticket.spent().amount, ticket.calls)
    assert refused.startswith("Refused: tool 'async_probe'")


def test_a_refusal_keeps_the_content_and_artifact_shape(toolbox: agents.Toolbox) -> None:
    @tool(response_format="content_and_artifact")
    def fetch(url: str) -> tuple[str, dict[str, int]]:
        """Fetch a URL."""
        return "body", {"bytes": 4}

    guarded = rg_langchain.guard_tool(toolbox, fetch, price="€0.05", max_per_run="€0.05")
    call = {"name": "fetch", "args": {"url": "https://example.org"}, "type": "tool_call"}
    with toolbox.ticket("T-1"):
        first = guarded.invoke({**call, "id": "1"})
        second = guarded.invoke({**call, "id": "2"})
    assert ({"bytes": 4}, None) == (first.artifact, second.artifact)
    assert second.content.startswith("Refused: tool 'fetch'")


def test_the_context_budget_summarises_tool_messages(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, context=agents.ContextBudget(lambda r: "noted", every=2))
    messages: list[BaseMessage] = [
        HumanMessage("go"),
        ToolMessage("raw one", tool_call_id="a"),
        ToolMessage("raw two", tool_call_id="b"),
        ToolMessage("raw three", tool_call_id="c"),
    ]
    with toolbox.ticket("T-1"):
        shown = rg_langchain.compact(toolbox, messages)
        again = asyncio.run(rg_langchain.acompact(toolbox, messages))
    assert [
        "go",
        "[raw tool result dropped; summarised in a later tool result]",
        "[summary of 2 tool result(s)]\nnoted",
        "raw three",
    ] == [m.content for m in shown]
    assert [m.content for m in shown] == [m.content for m in again]
    assert "raw one" == messages[1].content  # the caller's messages are left alone


def test_the_halt_vote_reads_the_ai_message(eur: rg.Guard) -> None:
    vote = agents.HaltVote(classifier=lambda results: True)
    toolbox = agents.Toolbox(eur, halt=vote)
    with toolbox.ticket("T-1"):
        calling = AIMessage(
            content="", tool_calls=[{"name": "x", "args": {}, "id": "1", "type": "tool_call"}]
        )
        assert not rg_langchain.vote(toolbox, calling)
        assert rg_langchain.vote(toolbox, AIMessage(content="All fixed."))


def test_an_unregistered_tool_is_refused(toolbox: agents.Toolbox) -> None:
    with pytest.raises(rg.ContractError, match="'traceroute' is not registered"):
        rg_langchain.guard_tools(toolbox, [traceroute])


def test_the_guarded_tool_keeps_its_name_schema_and_description(
    tools: dict[str, BaseTool],
) -> None:
    guarded = tools["whois_lookup"]
    assert (whois_lookup.name, whois_lookup.description, whois_lookup.args) == (
        guarded.name,
        guarded.description,
        guarded.args,
    )


def test_guarding_a_guarded_tool_again_does_not_charge_twice(
    toolbox: agents.Toolbox, tools: dict[str, BaseTool]
) -> None:
    again = rg_langchain.guard_tool(toolbox, tools["whois_lookup"])
    with toolbox.ticket("T-1") as ticket:
        again.invoke({"asn": "AS1"})
        assert (Decimal("0.11"), 1) == (ticket.spent().amount, ticket.calls)
    other = agents.Toolbox(toolbox.guard)
    other.register("whois_lookup", contract=toolbox["whois_lookup"].contract)
    with pytest.raises(rg.ContractError, match="another toolbox"):
        rg_langchain.guard_tool(other, again)
