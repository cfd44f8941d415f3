"""One guard, one ticket, two frameworks: the caps hold across both."""

from __future__ import annotations

from decimal import Decimal

from agents.testing import ScriptedModel, assistant_message, function_call
from langchain_core.tools import tool

from agents import Agent, function_tool
from runaway_guard import agents
from runaway_guard.agents import langchain as rg_langchain
from runaway_guard.agents import openai_agents


@function_tool(name_override="whois_lookup")
def sdk_whois(asn: str) -> str:
    """Who owns an AS number."""
    return f"{asn}: Bremen"


@tool("whois_lookup")
def lc_whois(asn: str) -> str:
    """Who owns an AS number."""
    return f"{asn}: Bremen"


async def test_one_ticket_caps_a_tool_across_both_adapters(toolbox: agents.Toolbox) -> None:
    toolbox.register("whois_lookup", price="€0.11", max_per_run="€0.55")
    script = [[function_call("whois_lookup", {"asn": f"AS{n}"}, call_id=str(n))] for n in range(3)]
    model = ScriptedModel([*script, [assistant_message("over to the LangChain agent")]])
    sdk_agent = Agent(name="first-line", model=model, tools=[sdk_whois])
    lc_tool = rg_langchain.guard_tool(toolbox, lc_whois)
    async with toolbox.ticket("T-4821", budget="€2.00") as ticket:
        await openai_agents.run(toolbox, sdk_agent, "Who peers here?")
        answers = [await lc_tool.ainvoke({"asn": f"AS{n}"}) for n in range(3, 6)]
        assert Decimal("0.55") == ticket.spent().amount
    assert ["AS3: Bremen", "AS4: Bremen"] == answers[:2]
    assert answers[2].startswith("Refused: tool 'whois_lookup' is over its per-ticket money cap")
