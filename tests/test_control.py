"""Circuit breakers, kill switches and anomaly trips, shared through the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.helpers import contract


class Down(Exception):
    status_code = 503


def down() -> None:
    raise Down("503 Service Unavailable")


def up() -> str:
    return "ok"


def breaker_contract(guard: rg.Guard, **options: object) -> rg.Contract:
    options.setdefault("breaker", rg.Breaker(failures=3, cooldown=60))
    return contract(guard, "flaky", **options)


def trip(paid: rg.Contract, times: int = 3) -> None:
    for _ in range(times):
        with pytest.raises(Down):
            paid.call(down)


def test_the_breaker_opens_after_consecutive_failures(guard: rg.Guard) -> None:
    events: list[rg.Event] = []
    guard.subscribe(events.append)
    paid = breaker_contract(guard)
    trip(paid)
    calls = []
    with pytest.raises(rg.CircuitOpen, match="open after 3 consecutive upstream failures"):
        paid.call(lambda: calls.append(1))
    assert [] == calls
    opened = [e for e in events if isinstance(e, rg.BreakerOpened)]
    assert [("flaky", 3)] == [(e.contract, e.failures) for e in opened]


def test_a_success_breaks_the_streak(guard: rg.Guard) -> None:
    paid = breaker_contract(guard)
    trip(paid, 2)
    paid.call(up)
    trip(paid, 2)
    assert "ok" == paid.call(up)


def test_a_client_error_breaks_the_streak(guard: rg.Guard) -> None:
    class BadRequest(Exception):
        status_code = 400

    paid = breaker_contract(guard)
    trip(paid, 2)
    with pytest.raises(BadRequest):
        paid.call(lambda: (_ for _ in ()).throw(BadRequest()))
    trip(paid, 2)
    assert "ok" == paid.call(up)


def test_after_the_cooldown_one_probe_closes_it(guard: rg.Guard, clock: FakeClock) -> None:
    events: list[rg.Event] = []
    guard.subscribe(events.append)
    paid = breaker_contract(guard)
    trip(paid)
    clock.advance(61)
    assert "ok" == paid.call(up)
    assert "ok" == paid.call(up)
    assert ["flaky"] == [e.contract for e in events if isinstance(e, rg.BreakerClosed)]


def test_a_failed_probe_reopens_it(guard: rg.Guard, clock: FakeClock) -> None:
    paid = breaker_contract(guard)
    trip(paid)
    clock.advance(61)
    trip(paid, 1)  # the probe fails: open again at once, for a new cooldown
    with pytest.raises(rg.CircuitOpen):
        paid.call(up)
    clock.advance(61)
    assert "ok" == paid.call(up)


def test_only_one_probe_goes_through_half_open(guard: rg.Guard, clock: FakeClock) -> None:
    paid = breaker_contract(guard)
    trip(paid)
    clock.advance(61)
    probe = paid.hold()
    with pytest.raises(rg.CircuitOpen, match="another caller is probing"):
        paid.hold()
    probe.settle()
    paid.hold().settle()


def test_no_breaker_when_disabled(guard: rg.Guard) -> None:
    paid = contract(guard, "tough", breaker=False)
    trip(paid, 10)
    assert "ok" == paid.call(up)


def test_kill_switch_refuses_before_calling_and_says_who_and_why(guard: rg.Guard) -> None:
    paid = contract(guard, "record-enrich")
    assert guard.kill("contract:record-enrich", "usage graph looks like a cliff", by="ops@acme")
    assert not guard.kill(paid, "again")
    calls: list[int] = []
    with pytest.raises(rg.KillSwitchEngaged) as info:
        paid.call(lambda: calls.append(1))
    assert [] == calls
    error = info.value
    assert ("contract:record-enrich", "ops@acme") == (error.scope, error.by)
    assert "usage graph looks like a cliff" in str(error)
    assert "2026-11-22 23:00:00 UTC" in str(error)
    assert "guard.revive('contract:record-enrich')" in str(error)
    assert guard.revive(paid)
    assert not guard.revive(paid)
    paid.call(lambda: calls.append(1))
    assert [1] == calls


def test_global_and_run_kill_switches(guard: rg.Guard) -> None:
    paid = contract(guard)
    guard.kill("global", "incident 42")
    with pytest.raises(rg.KillSwitchEngaged, match="'global'"):
        paid.call(up)
    guard.revive("global")
    with guard.run("ticket-7") as ticket:
        ticket.kill("agent loops on traceroute")
        with guard.run("sub-agent"), pytest.raises(rg.KillSwitchEngaged, match="run:ticket-7"):
            paid.call(up)
    with guard.run("ticket-8"):
        assert "ok" == paid.call(up)
    assert ["run:ticket-7"] == [k.scope for k in guard.kill_switches()]


def test_kill_switch_scopes_and_reasons_are_validated(guard: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="'global', 'contract:NAME' or 'run:PATH'"):
        guard.kill("everything", "x")
    with pytest.raises(rg.ContractError, match="needs a reason"):
        guard.kill("global", " ")


def test_a_kill_switch_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with rg.Guard(url, clock=clock) as first:
        first.kill("contract:enrich", "rotating the key")
    with rg.Guard(url, clock=clock) as second:
        paid = contract(second)
        with pytest.raises(rg.KillSwitchEngaged, match="rotating the key"):
            paid.call(up)


def test_the_anomaly_trip_engages_the_kill_switch(guard: rg.Guard, clock: FakeClock) -> None:
    events: list[rg.Event] = []
    guard.subscribe(events.append)
    paid = contract(guard, "record-enrich", expected_calls_per_hour=10, anomaly_factor=3)
    for _ in range(31):  # the 31st call passes 10 x 3 = 30
        paid.call(up)
    with pytest.raises(rg.KillSwitchEngaged) as info:
        paid.call(up)
    assert "31 calls this hour > expected 10 x factor 3 = 30" in str(info.value)
    assert "anomaly trip" == info.value.by
    tripped = [e for e in events if isinstance(e, rg.AnomalyTripped)]
    assert [(31, 10)] == [(e.calls, e.expected) for e in tripped]
    clock.advance(3600)  # a new hour does not revive it: a person must
    with pytest.raises(rg.KillSwitchEngaged):
        paid.call(up)


def test_calls_within_the_expectation_do_not_trip(guard: rg.Guard, clock: FakeClock) -> None:
    paid = contract(guard, expected_calls_per_hour=10, anomaly_factor=2)
    for _ in range(3):
        for _ in range(20):
            paid.call(up)
        clock.advance(3600)
    assert [] == guard.kill_switches()


def test_a_probe_refused_before_sending_hands_the_probe_back(
    guard: rg.Guard, clock: FakeClock
) -> None:
    """Otherwise the breaker would say 'another caller is probing' for probe_timeout."""
    paid = breaker_contract(guard)
    trip(paid)
    clock.advance(61)
    with guard.run("capped", max_calls=0), pytest.raises(rg.BudgetExceeded):
        paid.call(up)  # it won the probe, then its own run's budget refused it
    with guard.run("another"):
        assert "ok" == paid.call(up)  # another caller may probe at once
