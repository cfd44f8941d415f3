"""The DN42 incident, replayed through the framework-free decorator.

A support agent with a traceroute-like diagnostics tool and a paid WHOIS lookup looped
for eleven hours on one ticket. Each guard rail is replayed as its own scene.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import runaway_guard as rg
from runaway_guard import agents
from runaway_guard.testing import FakeClock


def incident_tools(toolbox: agents.Toolbox, ran: list[str]) -> tuple[Any, Any, Any]:
    @toolbox.tool(max_calls_per_run=500)  # a shell: no price, so a hard count instead
    def traceroute(host: str, started: str, probe_id: str) -> str:
        ran.append(f"traceroute {host}")
        return f"7 hops to {host}, asymmetric via AS4242420000"

    @toolbox.tool(price="€0.11", max_per_run="€0.55", provider_cap="WHOIS vendor, €20/month")
    def whois_lookup(asn: str) -> str:
        ran.append(f"whois {asn}")
        return f"{asn}: hobbyist network, Bremen"

    @toolbox.tool(price="€0.40", max_per_run="€10.00")
    def egress_probe(target: str) -> str:
        ran.append(f"probe {target}")
        return f"{target} reachable"

    return traceroute, whois_lookup, egress_probe


def test_traceroute_with_changing_timestamps_and_neighbouring_ips_halts_on_the_4th_repeat(
    toolbox: agents.Toolbox, clock: FakeClock
) -> None:
    ran: list[str] = []
    traceroute, _, _ = incident_tools(toolbox, ran)
    hosts = ["203.0.113.7", "203.0.113.9", "203.0.113.12", "203.0.113.14"]

    def trace(number: int) -> str:
        clock.advance(61)
        probe_id = f"{number:08x}-aaaa-4bbb-8ccc-{number:012x}"
        return str(traceroute(hosts[number], started=clock.isoformat(), probe_id=probe_id))

    with toolbox.ticket("T-4821", budget="€2.00"):
        for number in range(3):
            trace(number)
        with pytest.raises(rg.LoopDetected) as caught:
            trace(3)
    assert ["traceroute 203.0.113.7", "traceroute 203.0.113.9", "traceroute 203.0.113.12"] == ran
    assert 'traceroute{"host":"203.0.113.0/24","probe_id":"<uuid>","started":"<time>"}' == (
        caught.value.signature
    )
    assert 4 == len(caught.value.trail)


def test_whois_at_11_cents_with_a_55_cent_cap_runs_5_times_then_the_model_reads_a_refusal(
    toolbox: agents.Toolbox,
) -> None:
    ran: list[str] = []
    _, whois_lookup, _ = incident_tools(toolbox, ran)
    with toolbox.ticket("T-4821", budget="€2.00") as ticket:
        answers = [whois_lookup(f"AS42424200{n:02d}") for n in range(6)]
        assert Decimal("0.55") == ticket.spent().amount
    assert 5 == len(ran)
    refusal = answers[-1]
    assert isinstance(refusal, agents.Refusal)
    assert (
        "Refused: tool 'whois_lookup' is over its per-ticket money cap of €0.55 (5 calls at "
        "€0.11 already made; this call would cost €0.11). The call was not made. Choose "
        "another plan or hand off to a human."
    ) == refusal


def test_a_2_euro_ticket_cap_ends_the_whole_run(toolbox: agents.Toolbox) -> None:
    ran: list[str] = []
    _, whois_lookup, egress_probe = incident_tools(toolbox, ran)
    with toolbox.ticket("T-4821", budget="€2.00") as ticket:
        for n in range(5):
            whois_lookup(f"AS42424200{n:02d}")
        for n in range(3):
            egress_probe(f"peer{n}.dn42")
        with pytest.raises(rg.BudgetExceeded) as caught:
            egress_probe("peer3.dn42")
        assert Decimal("1.75") == ticket.spent().amount  # 5 x €0.11 + 3 x €0.40
        assert ticket.wall() is not None
    assert "run 'T-4821' per-run budget" in caught.value.budget
    assert 3 == sum(1 for line in ran if line.startswith("probe"))


def test_the_loop_halt_and_its_trail_are_in_the_spend_log(
    toolbox: agents.Toolbox, clock: FakeClock
) -> None:
    traceroute, _, _ = incident_tools(toolbox, [])
    with toolbox.ticket("T-4821"):
        for n in range(3):
            clock.advance(1)
            traceroute(f"203.0.113.{n}", started=clock.isoformat(), probe_id="x")
        with pytest.raises(rg.LoopDetected):
            traceroute("203.0.113.3", started=clock.isoformat(), probe_id="x")
    record = list(toolbox.guard.ledger.spend(contract="agents:halt"))[-1]
    assert ("T-4821", "released", 0) == (record.run, record.outcome, record.actual)
    assert record.error.startswith("LoopDetected: tool 'traceroute' was called 4 times")
    assert 5 == record.error.count("traceroute{")  # the signature, then 4 trail lines
