"""The toolbox: registration, refusals, walls, nesting, and concurrency."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import pickle
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard import agents
from runaway_guard.testing import FakeClock


def test_a_tool_with_no_price_and_no_call_cap_is_refused(toolbox: agents.Toolbox) -> None:
    with pytest.raises(rg.ContractError, match="no price and no call cap, so it is refused"):
        toolbox.register("shell", max_per_run="€1.00")


def test_a_tool_with_no_price_but_a_call_cap_counts_calls_and_no_money(
    toolbox: agents.Toolbox,
) -> None:
    @toolbox.tool(max_calls_per_run=2)
    def shell(command: str) -> str:
        return "ok"

    with toolbox.ticket("T-1") as ticket:
        assert ["ok", "ok"] == [shell("uptime"), shell("df -h")]
        refused = shell("nmap 10.0.0.0/16")
        assert Decimal(0) == ticket.spent().amount
    assert isinstance(refused, agents.Refusal)
    assert ("per-ticket call cap", "2 calls") == (refused.cap, refused.limit)


def test_a_priced_tool_needs_a_per_ticket_cap(toolbox: agents.Toolbox) -> None:
    with pytest.raises(rg.ContractError, match="needs a per-ticket cap"):
        toolbox.register("whois", price="€0.11")


def test_an_unregistered_tool_is_refused_by_name(toolbox: agents.Toolbox) -> None:
    with pytest.raises(rg.ContractError, match="'whois' is not registered"):
        toolbox.invoke("whois", {}, lambda: "never")


def test_a_tool_can_be_an_existing_contract(toolbox: agents.Toolbox, eur: rg.Guard) -> None:
    contract = eur.contract("whois", price="€0.11", max_calls_per_run=2, provider_cap="vendor")
    assert contract is toolbox.register("whois", contract=contract).contract
    with pytest.raises(rg.ContractError, match="not both"):
        toolbox.register("whois", contract=contract, price="€0.11")


def test_a_dynamic_price_is_estimated_from_the_arguments_by_name(
    toolbox: agents.Toolbox,
) -> None:
    def estimate(call: rg.Call) -> str:
        return "€0.50" if "/16" in call.kwargs["target"] else "€0.01"

    @toolbox.tool(price=rg.Dynamic(estimate), max_per_run="€5.00")
    def scan(target: str, ports: str = "443") -> str:
        return "done"

    with toolbox.ticket("T-1") as ticket:
        scan("203.0.113.7")
        scan(target="10.0.0.0/16")
        assert Decimal("0.51") == ticket.spent().amount


def test_on_exceed_raise_raises_the_budget_error_instead_of_refusing(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, on_exceed="raise")

    @toolbox.tool(price="€0.11", max_per_run="€0.11")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1"):
        whois("AS1")
        with pytest.raises(rg.BudgetExceeded):
            whois("AS2")


def test_the_refusal_after_max_refusals_ends_the_ticket(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, max_refusals=2)

    @toolbox.tool(price="€0.11", max_per_run="€0.11")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1") as ticket:
        whois("AS1")
        refusals = [whois(f"AS{n}") for n in (2, 3)]
        assert [1, 2] == [r.number for r in refusals if isinstance(r, agents.Refusal)]
        with pytest.raises(agents.RefusalLimitReached) as caught:
            whois("AS4")
        assert 3 == ticket.refusals
    assert (3, 2, "T-1") == (caught.value.refusals, caught.value.limit, caught.value.ticket)
    assert isinstance(caught.value.__cause__, rg.BudgetExceeded)
    assert "RefusalLimitReached" in list(eur.ledger.spend(contract="agents:halt"))[-1].error


def test_max_refusals_zero_raises_at_the_first_refusal(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, max_refusals=0)

    @toolbox.tool(price="€0.11", max_per_run="€0.11")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1"):
        whois("AS1")
        with pytest.raises(agents.RefusalLimitReached):
            whois("AS2")


def test_a_budget_error_from_inside_the_tool_is_not_turned_into_a_refusal(
    toolbox: agents.Toolbox, eur: rg.Guard
) -> None:
    llm = eur.contract("llm", price="€0.10", max_calls_per_run=0, provider_cap="vendor")

    @toolbox.tool(price="€0.01", max_per_run="€1.00")
    def summarise(text: str) -> str:
        return llm.call(str.upper, text)

    with toolbox.ticket("T-1"), pytest.raises(rg.BudgetExceeded, match="contract 'llm'"):
        summarise("hops")


def test_a_sub_agent_spends_against_its_parent_ticket(toolbox: agents.Toolbox) -> None:
    @toolbox.tool(price="€0.40", max_per_run="€10.00")
    def probe(target: str) -> str:
        return target

    with toolbox.ticket("T-1", budget="€1.00") as parent:
        probe("a")
        with toolbox.ticket("sub-agent") as child:
            probe("b")
            with pytest.raises(rg.BudgetExceeded):
                probe("c")
        assert (Decimal("0.40"), Decimal("0.80")) == (child.spent().amount, parent.spent().amount)
        assert (2, 3) == (child.calls, parent.calls)


def test_a_loop_spread_over_sub_agents_is_caught_in_the_parent(
    toolbox: agents.Toolbox,
) -> None:
    @toolbox.tool(max_calls_per_run=50)
    def traceroute(host: str) -> str:
        return host

    def sub_agent(n: int) -> None:
        with toolbox.ticket(f"sub-{n}"):
            traceroute(f"203.0.113.{n}")

    with toolbox.ticket("T-1"):
        for n in range(3):
            sub_agent(n)
        with pytest.raises(rg.LoopDetected, match="run 'T-1'"):
            sub_agent(3)


def test_a_tool_per_ticket_cap_holds_across_the_ticket_and_its_sub_agents(
    toolbox: agents.Toolbox,
) -> None:
    @toolbox.tool(price="€0.11", max_per_run="€0.22")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1") as parent:
        whois("AS1")
        with toolbox.ticket("sub"):
            whois("AS2")
            assert isinstance(whois("AS3"), agents.Refusal)
        assert 1 == parent.refusals


def test_threads_sharing_a_ticket_admit_exactly_the_cap(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, max_refusals=100)

    @toolbox.tool(price="€0.11", max_per_run="€0.55")
    def whois(asn: str) -> str:
        return asn

    results: list[object] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        answer = whois(f"AS{n}")
        with lock:
            results.append(answer)

    with toolbox.ticket("T-1") as ticket:
        # Each thread runs in a copy of this context, so all of them are inside T-1.
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work, n))
            for n in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert (Decimal("0.55"), 20, 15) == (ticket.spent().amount, ticket.calls, ticket.refusals)
    assert 5 == sum(1 for r in results if not isinstance(r, agents.Refusal))


async def test_asyncio_tasks_in_one_ticket_share_its_history(toolbox: agents.Toolbox) -> None:
    @toolbox.tool(max_calls_per_run=50)
    async def traceroute(host: str) -> str:
        await asyncio.sleep(0)
        return host

    async with toolbox.ticket("T-1") as ticket:
        outcomes = await asyncio.gather(
            *(traceroute(f"203.0.113.{n}") for n in range(6)), return_exceptions=True
        )
        assert 6 == ticket.calls
    assert 3 == sum(1 for o in outcomes if isinstance(o, str))
    assert 3 == sum(1 for o in outcomes if isinstance(o, rg.LoopDetected))


def test_the_halt_log_works_on_sqlite_too(tmp_path: Path, clock: FakeClock) -> None:
    with rg.Guard(f"sqlite:///{tmp_path / 'l.db'}", currency="EUR", clock=clock) as guard:
        toolbox = agents.Toolbox(guard, loop=agents.LoopRule(repeats=2, window=2))

        @toolbox.tool(max_calls_per_run=5)
        def ping(host: str) -> str:
            return host

        with toolbox.ticket("T-1"):
            ping("198.51.100.1")
            with pytest.raises(rg.LoopDetected):
                ping("198.51.100.2")
        [record] = guard.ledger.spend(contract="agents:halt")
        halts = {s.key: s.settled for s in guard.status() if s.scope == "agents:halt"}
    assert record.error.startswith("LoopDetected")
    assert {"agents:halt|calls|run:T-1": 1} == halts


def test_loop_detection_can_be_turned_off(eur: rg.Guard) -> None:
    toolbox = agents.Toolbox(eur, loop=None)

    @toolbox.tool(max_calls_per_run=10)
    def ping(host: str) -> str:
        return host

    with toolbox.ticket("T-1"):
        assert 6 == len([ping("198.51.100.1") for _ in range(6)])


def test_a_user_hook_normalises_more(eur: rg.Guard) -> None:
    def same_host(tool: str, arguments: object) -> object:
        return {"host": "any"} if tool == "ping" else arguments

    toolbox = agents.Toolbox(eur, normalise=same_host)

    @toolbox.tool(max_calls_per_run=10)
    def ping(host: str) -> str:
        return host

    with toolbox.ticket("T-1"):
        for host in ["example.org", "example.net", "example.com"]:
            ping(host)
        with pytest.raises(rg.LoopDetected):
            ping("example.edu")


def test_refusals_survive_copies_and_pickles(toolbox: agents.Toolbox) -> None:
    @toolbox.tool(price="€0.11", max_per_run="€0")
    def whois(asn: str) -> str:
        return asn

    with toolbox.ticket("T-1"):
        refusal = whois("AS1")
    assert isinstance(refusal, agents.Refusal)
    for twin in (copy.deepcopy(refusal), pickle.loads(pickle.dumps(refusal))):
        assert (str(refusal), refusal.cap, refusal.number) == (str(twin), twin.cap, twin.number)


def test_the_decorator_reuses_an_earlier_registration(toolbox: agents.Toolbox) -> None:
    toolbox.register("whois", price="€0.11", max_per_run="€0.55")

    @toolbox.tool
    def whois(asn: str) -> str:
        return asn

    assert toolbox["whois"] is whois.tool  # type: ignore[attr-defined]


def test_toolbox_settings_are_validated(eur: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="on_exceed"):
        agents.Toolbox(eur, on_exceed="warn")  # type: ignore[arg-type]
    with pytest.raises(rg.ContractError, match="max_refusals"):
        agents.Toolbox(eur, max_refusals=-1)
    with pytest.raises(rg.ContractError, match="at least 2"):
        agents.LoopRule(repeats=1)
    with pytest.raises(rg.ContractError, match="window"):
        agents.LoopRule(repeats=5, window=4)
