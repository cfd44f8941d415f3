"""Alerts for refusals, kill switches, breakers, costs above estimate, reaps, give-ups."""

from __future__ import annotations

import contextlib

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.alerts.conftest import Collector
from tests.helpers import contract

Watched = tuple[rg.Guard, rg.Alerts, Collector]


class Upstream500(Exception):
    status_code = 500


def fail() -> None:
    raise Upstream500("upstream down")


def test_a_full_budget_alerts_once_that_calls_are_refused(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.30", max_per_day="$1.00")
    for _ in range(6):
        with contextlib.suppress(rg.BudgetExceeded):
            paid.call(lambda: None)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "exhausted"]
    assert "contract 'enrich' day budget is full: calls are being refused" == alert.title
    assert "$0.90 spent + $0.00 held + $0.30 asked > $1.00 limit" in alert.detail
    assert rg.alerts.Severity.CRITICAL == alert.severity


def test_a_kill_switch_alerts_with_its_reason(watched: Watched) -> None:
    guard, alerts, collector = watched
    guard.kill("contract:enrich", "overnight loop", by="ops")
    assert alerts.flush(5)
    (alert,) = collector.alerts
    assert ("kill_switch", "kill switch engaged on contract:enrich") == (alert.kind, alert.title)
    assert "engaged by ops: overnight loop" in alert.detail


def test_reviving_alerts_at_info(watched: Watched) -> None:
    guard, alerts, collector = watched
    guard.kill("global", "stop")
    guard.revive("global", by="ops")
    assert alerts.flush(5)
    assert ["kill_switch", "revived"] == collector.kinds()
    assert rg.alerts.Severity.INFO == collector.alerts[1].severity


def test_an_anomaly_trip_alerts_through_its_kill_switch(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, expected_calls_per_hour=2, anomaly_factor=2)
    for _ in range(6):
        try:
            paid.call(lambda: None)
        except rg.KillSwitchEngaged:
            break
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "kill_switch"]
    assert "anomaly trip: 5 calls this hour > expected 2" in alert.detail


def test_an_opened_breaker_alerts(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, breaker=rg.Breaker(failures=2, cooldown=60))
    for _ in range(2):
        with pytest.raises(Upstream500):
            paid.call(fail)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "breaker_opened"]
    assert "circuit breaker of contract 'enrich' opened after 2 upstream failures" == alert.title


def test_a_repeated_event_alerts_once_per_quiet_period(guard: rg.Guard, clock: FakeClock) -> None:
    collector = Collector()
    price = rg.Dynamic(lambda call: "$0.01", lambda call, result: "$0.02", label="bad price")
    with rg.Alerts(guard, [collector.notifier], quiet=600, backoff=0.0) as alerts:
        paid = contract(guard, price=price, max_per_run="$1.00", max_calls_per_run=50)
        for _ in range(5):  # every call costs more than its estimate, a minute apart
            paid.call(lambda: None)
            clock.advance(60)
        clock.advance(600)
        paid.call(lambda: None)  # the quiet period is over: one more alert
        assert alerts.flush(5)
    assert 2 == collector.kinds().count("cost_above_estimate")


def test_a_cost_above_its_estimate_alerts(watched: Watched) -> None:
    guard, alerts, collector = watched
    price = rg.Dynamic(lambda call: "$0.01", lambda call, result: "$0.05", label="bad price")
    contract(guard, price=price, max_per_run="$1.00", max_calls_per_run=10).call(lambda: None)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "cost_above_estimate"]
    assert "contract 'enrich' cost $0.05, above its worst-case estimate $0.01" == alert.title


def test_a_reaped_hold_alerts_with_what_it_charged(watched: Watched, clock: FakeClock) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.25", hold_lease=5.0)
    paid.hold()  # its holder "dies": nobody settles it
    clock.advance(6)
    assert 1 == len(guard.reap())
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "hold_reaped"]
    assert "a hold of contract 'enrich' was reaped: charged its estimate $0.25" == alert.title


def test_giving_up_on_retries_alerts(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, retry=rg.Retry(3, backoff=0.0), breaker=False)
    with pytest.raises(rg.RetriesExhausted):
        paid.call(fail)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.kind == "retries_exhausted"]
    assert "contract 'enrich' gave up after 3 attempt(s): its attempts bound ran out" == (
        alert.title
    )


def test_a_notifier_only_gets_alerts_at_or_above_its_severity(guard: rg.Guard) -> None:
    loud = Collector(min_severity="critical")
    with rg.Alerts(guard, [loud.notifier], backoff=0.0) as alerts:
        paid = contract(guard, price="$0.10", max_per_day="$1.00")
        for _ in range(10):
            paid.call(lambda: None)
        assert alerts.flush(5)
    assert ["100"] == [a.fields.get("threshold") for a in loud.alerts if a.kind == "threshold"]


def test_alerts_carry_the_host_and_environment(ledger_url: str, clock: FakeClock) -> None:
    collector = Collector()
    with rg.Guard(ledger_url, clock=clock, environment="staging") as guard:
        alerts = rg.Alerts(guard, [collector.notifier], backoff=0.0)
        guard.kill("global", "test")
        assert alerts.flush(5)
    (alert,) = collector.alerts
    assert "staging" == alert.fields["environment"]
    assert "environment staging" in alert.text()
    assert alert.fields["host"]


def test_closing_the_guard_delivers_what_is_queued_first(ledger_url: str, clock: FakeClock) -> None:
    collector = Collector()
    guard = rg.Guard(ledger_url, clock=clock)
    rg.Alerts(guard, [collector.notifier], backoff=0.0)
    guard.kill("global", "end of the night")
    guard.close()
    assert ["kill_switch"] == collector.kinds()
