"""The agent loop, naive and guarded: a support ticket that turns into a network survey.

The second incident, replayed with a scripted agent (no model, no network). Asked why a
customer's webhooks arrive late, the agent traceroutes the customer's host, finds hops
through autonomous systems it does not know, and looks each one up with a paid WHOIS
tool (EUR 0.11 a lookup, on the fake metered API). Then it traceroutes a neighbouring
address, with a new timestamp, and looks up the next hops. Its only halt condition is
"the task is done", which never comes: a person stops it in the evening.

The guarded agent is the same script behind `runaway_guard.agents`: WHOIS capped at
EUR 0.55 per ticket, traceroute at 20 calls, the ticket at EUR 2.00, and the default loop
rule (the 4th call with one signature among the last 10 halts the ticket).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from runaway_guard._errors import GuardRefused, LoopDetected
from runaway_guard._guard import Guard
from runaway_guard._money import Money, parse_money
from runaway_guard.agents import AgentHalted, Refusal, Toolbox
from runaway_guard.demo._server import FakeMeteredAPI
from runaway_guard.testing import FakeClock

__all__ = ["AgentResult", "run_agent"]

MORNING: Final = "2025-05-11T06:14:00+00:00"  # a Sunday
EVENING: Final = "2025-05-11T17:32:00+00:00"  # someone finally looks, and stops it
TICKET: Final = "T-4821"
WHOIS_PRICE: Final = parse_money("€0.11")
WHOIS_CAP: Final = "€0.55"  # five lookups per ticket
TRACEROUTE_CAP: Final = 20  # a shell has no price: a hard count of calls per ticket
TICKET_BUDGET: Final = "€2.00"
MODEL_SECONDS: Final = 6.0  # one turn of the model, choosing the next call
TRACEROUTE_SECONDS: Final = 14.0
HOPS_PER_PATH: Final = 4  # unknown autonomous systems on each path
MAX_STEPS: Final = 5_000  # the demo's own bound; the evening comes long before it


@dataclass
class Call:
    """One tool call the agent asked for, and what came of it."""

    at: float
    tool: str
    arguments: dict[str, Any]
    outcome: str


@dataclass
class AgentRun:
    """One ticket, as the WHOIS provider billed it and as the guard saw it."""

    name: str
    traceroutes: int = 0
    """Traceroutes that ran."""
    lookups: int = 0
    """WHOIS requests the provider metered."""
    billed: Money = field(default_factory=lambda: Money(0, "EUR"))
    ledger_spent: Money | None = None
    calls: list[Call] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    """The refusals the model received in place of a tool's result."""
    ended_at: float = 0.0
    ended_by: str = ""
    halt: LoopDetected | None = None


@dataclass
class AgentResult:
    naive: AgentRun
    guarded: AgentRun
    rules: list[str]
    """The guarded ticket's caps, read back from the toolbox's contracts and loop rule."""
    start: float


Tools = dict[str, Callable[..., str]]


def neighbour(step: int) -> str:
    """The address the agent probes at `step`: always the next one in the same /24."""
    return f"172.20.42.{17 + step % 200}"


def hops(step: int) -> list[str]:
    """The autonomous systems a traceroute at `step` reports (DN42's numbering)."""
    return [f"AS{4242420000 + (step * HOPS_PER_PATH + n) % 3000}" for n in range(HOPS_PER_PATH)]


def agent_loop(tools: Tools, clock: FakeClock, run: AgentRun, evening: float) -> None:
    """The scripted model: survey the path, look up every unknown hop, probe the next.

    After a refusal it drops the refused tool and tries harder with the other one, as a
    model that reasons about the refusal would. It never decides that it is done.
    """
    refused: set[str] = set()
    for step in range(MAX_STEPS):
        if clock.now() >= evening:
            run.ended_by = "a person stopped it"
            return
        wanted = [("traceroute", {"host": neighbour(step)})]
        if "whois_lookup" not in refused:
            wanted += [("whois_lookup", {"asn": asn}) for asn in hops(step)]
        for tool, asked in wanted:
            if tool in refused:
                break
            clock.advance(MODEL_SECONDS)
            arguments = dict(asked)
            if tool == "traceroute":
                arguments["started"] = clock.datetime().isoformat("T", "seconds")
            call = Call(clock.now(), tool, arguments, "")
            run.calls.append(call)
            try:
                answer = tools[tool](**arguments)
            except GuardRefused as exc:
                call.outcome = f"halted: {type(exc).__name__}"
                raise
            if isinstance(answer, Refusal):
                call.outcome = f"refused: {answer.cap}"
                run.refusals.append(str(answer))
                refused.add(tool)
            else:
                call.outcome = "ok"
    run.ended_by = f"the demo's bound of {MAX_STEPS} steps"


def _tools(
    api: FakeMeteredAPI, clock: FakeClock, run: AgentRun
) -> tuple[Tools, Callable[[], None]]:
    client = api.client(run.name, clock)

    def traceroute(host: str, started: str) -> str:
        clock.advance(TRACEROUTE_SECONDS)
        run.traceroutes += 1
        step = int(host.rsplit(".", 1)[1]) - 17
        return f"traceroute to {host} at {started}: asymmetric path via {', '.join(hops(step))}"

    def whois_lookup(asn: str) -> str:
        answer = client.post({"asn": asn})
        return f"{answer['asn']}: {answer['owner']}"

    return {"traceroute": traceroute, "whois_lookup": whois_lookup}, client.close


def run_agent(folder: Path) -> AgentResult:
    """Run the naive ticket and the guarded ticket; every number comes from these runs."""
    start = datetime.fromisoformat(MORNING).timestamp()
    evening = datetime.fromisoformat(EVENING).timestamp()

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return {"asn": payload.get("asn"), "owner": "a hobbyist network on DN42"}

    with FakeMeteredAPI(price=WHOIS_PRICE, path="/v1/whois", ok_latency=0.8, respond=answer) as api:
        naive = AgentRun("naive")
        clock = FakeClock(start)
        tools, close = _tools(api, clock, naive)
        try:
            agent_loop(tools, clock, naive, evening)
        finally:
            close()
        naive.ended_at = clock.now()

        guarded = AgentRun("guarded")
        clock = FakeClock(start)
        plain, close = _tools(api, clock, guarded)
        with Guard(f"sqlite:///{folder / 'ledger.db'}", currency="EUR", clock=clock) as guard:
            toolbox = Toolbox(guard)
            tools = {
                "traceroute": toolbox.tool(max_calls_per_run=TRACEROUTE_CAP)(plain["traceroute"]),
                "whois_lookup": toolbox.tool(
                    price=WHOIS_PRICE,
                    max_per_run=WHOIS_CAP,
                    provider_cap="WHOIS vendor account limit, €20/month",
                )(plain["whois_lookup"]),
            }
            try:
                with toolbox.ticket(TICKET, budget=TICKET_BUDGET) as ticket:
                    try:
                        agent_loop(tools, clock, guarded, evening)
                    except LoopDetected as exc:
                        guarded.halt = exc
                        guarded.ended_by = "the loop rule halted the ticket"
                    except (AgentHalted, GuardRefused) as exc:
                        guarded.ended_by = f"{type(exc).__name__}: {exc}"
                    guarded.ledger_spent = ticket.spent()
            finally:
                close()
            guarded.ended_at = clock.now()
            rules = _rules(toolbox)

    for outcome in (naive, guarded):
        outcome.lookups = api.meter.requests[outcome.name]
        outcome.billed = api.meter.billed(outcome.name)
    return AgentResult(naive, guarded, rules, start)


def _rules(toolbox: Toolbox) -> list[str]:
    """The caps the guarded ticket ran under, as the toolbox holds them."""
    rules = []
    for name, tool in sorted(toolbox.tools.items(), reverse=True):
        spec = tool.contract.spec
        price = spec.unit_price
        if price is not None and price.nanos:
            rules.append(
                f"{name}: {price} a call, at most {spec.max_per_run} per ticket "
                f"({spec.max_calls_per_run} calls)"
            )
        else:
            rules.append(f"{name}: no price, at most {spec.max_calls_per_run} calls per ticket")
    rules.append(f"ticket {TICKET}: at most {parse_money(TICKET_BUDGET)} for everything")
    if toolbox.loop is not None:
        rules.append(
            f"loop rule: the call that would be the {toolbox.loop.repeats}th with one "
            f"signature among the ticket's last {toolbox.loop.window} halts the ticket"
        )
    return rules
