"""Budget thresholds: each fires once per budget, window and threshold, across guards."""

from __future__ import annotations

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.alerts.conftest import Collector
from tests.helpers import contract

Watched = tuple[rg.Guard, rg.Alerts, Collector]


def spend(paid: rg.Contract, calls: int) -> None:
    for _ in range(calls):
        paid.call(lambda: None)


def day_thresholds(collector: Collector) -> list[str]:
    return [
        a.fields["threshold"]
        for a in collector.alerts
        if a.kind == "threshold" and a.fields["budget"].endswith("day:2026-11-22")
    ]


def test_each_default_threshold_fires_once_as_the_day_budget_fills(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.10", max_per_day="$1.00")
    spend(paid, 10)
    assert alerts.flush(5)
    assert ["50", "90", "100"] == day_thresholds(collector)


def test_threshold_alert_names_the_budget_and_the_numbers(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.10", max_per_day="$1.00")
    spend(paid, 5)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.fields.get("threshold") == "50"]
    assert "contract 'enrich' day budget at 50%: $0.50 of $1.00" == alert.title
    assert rg.alerts.Severity.INFO == alert.severity
    assert "contract:enrich|money|day:2026-11-22" == alert.fields["budget"]
    assert "ends 2026-11-23 00:00 UTC" in alert.detail


def test_hundred_percent_is_critical(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.10", max_per_day="$1.00")
    spend(paid, 10)
    assert alerts.flush(5)
    (alert,) = [a for a in collector.alerts if a.fields.get("threshold") == "100"]
    assert rg.alerts.Severity.CRITICAL == alert.severity


def test_a_settle_that_jumps_two_thresholds_raises_both(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.95", max_per_day="$1.00")
    spend(paid, 1)
    assert alerts.flush(5)
    assert ["50", "90"] == day_thresholds(collector)


def test_thresholds_below_the_next_one_stay_quiet(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.10", max_per_day="$1.00")
    spend(paid, 4)
    assert alerts.flush(5)
    assert [] == day_thresholds(collector)


def test_the_next_window_alerts_again(guard: rg.Guard, clock: FakeClock) -> None:
    collector = Collector()
    with rg.Alerts(guard, [collector.notifier], backoff=0.0) as alerts:
        paid = contract(guard, price="$0.10", max_per_day="$1.00")
        spend(paid, 5)
        clock.advance(3600)  # 2026-11-23 00:00: a new day window
        spend(paid, 5)
        assert alerts.flush(5)
    days = [a.fields["window"] for a in collector.alerts if a.fields.get("threshold") == "50"]
    assert ["day:2026-11-22", "day:2026-11-23"] == [d for d in days if d.startswith("day:")]


def test_two_watchers_on_one_ledger_send_each_threshold_once(
    ledger_url: str, clock: FakeClock
) -> None:
    """Two guards stand for two processes: the ledger's marks keep one alert each."""
    if ledger_url == "memory://":
        shared: str | rg.Ledger = rg.ledger.MemoryLedger()
    else:
        shared = ledger_url
    collector = Collector()
    first = rg.Guard(shared, clock=clock)
    second = rg.Guard(shared, clock=clock)
    try:
        watchers = [rg.Alerts(g, [collector.notifier], backoff=0.0) for g in (first, second)]
        paid = [contract(g, price="$0.10", max_per_day="$1.00") for g in (first, second)]
        for n in range(9):
            spend(paid[n % 2], 1)
        for watcher in watchers:
            assert watcher.flush(5)
    finally:
        first.close()
        second.close()
    # Two dispatcher threads deliver, so the order between them is not fixed.
    assert ["50", "90"] == sorted(day_thresholds(collector), key=int)


def test_a_budget_selector_replaces_the_default_thresholds(guard: rg.Guard) -> None:
    collector = Collector()
    with rg.Alerts(
        guard,
        [collector.notifier],
        budget_thresholds={"contract:enrich|money|day": [20, 40]},
        backoff=0.0,
    ) as alerts:
        spend(contract(guard, price="$0.10", max_per_day="$1.00"), 5)
        assert alerts.flush(5)
    assert ["20", "40"] == day_thresholds(collector)


def test_an_empty_threshold_list_silences_every_per_run_budget(guard: rg.Guard) -> None:
    collector = Collector()
    with rg.Alerts(
        guard, [collector.notifier], budget_thresholds={"*|*|run": []}, backoff=0.0
    ) as alerts:
        spend(contract(guard, price="$0.10", max_calls_per_run=2), 2)
        assert alerts.flush(5)
    assert [] == [a for a in collector.alerts if a.kind == "threshold"]


def test_thresholds_for_picks_the_most_specific_selector(guard: rg.Guard) -> None:
    with rg.Alerts(
        guard,
        [],
        budget_thresholds={"contract:a": [10], "contract:a|money": [20], "*|money|day": [30]},
    ) as alerts:
        assert (20,) == alerts.thresholds_for("contract:a|money|day:2026-11-22")
        assert (10,) == alerts.thresholds_for("contract:a|calls|day:2026-11-22")
        assert (30,) == alerts.thresholds_for("contract:b|money|day:2026-11-22")
        assert (50, 90, 100) == alerts.thresholds_for("contract:b|calls|hour:2026-11-22T23")


@pytest.mark.parametrize("selector", ["", "a|b|c|d", "contract:x|dollars", "*|*", "x|money|year"])
def test_a_bad_selector_is_refused(guard: rg.Guard, selector: str) -> None:
    with pytest.raises(rg.ConfigError, match="budget selector"):
        rg.Alerts(guard, [], budget_thresholds={selector: [50]})


@pytest.mark.parametrize("value", [0, 101, 50.5, True, "50"])
def test_a_threshold_that_is_not_a_whole_percentage_is_refused(
    guard: rg.Guard, value: object
) -> None:
    with pytest.raises(rg.ConfigError, match="whole percentage"):
        rg.Alerts(guard, [], thresholds=[value])  # type: ignore[list-item]


def test_a_counter_without_a_limit_never_alerts(watched: Watched) -> None:
    guard, alerts, collector = watched
    paid = contract(guard, price="$0.10", max_calls_per_run=1000)
    with guard.run("tracked"):  # the run's money counter only tracks
        spend(paid, 20)
    assert alerts.flush(5)
    assert [] == [a for a in collector.alerts if "run:tracked" in a.fields.get("budget", "")]


def test_a_closed_watcher_stops_alerting(watched: Watched) -> None:
    guard, alerts, collector = watched
    alerts.close()
    spend(contract(guard, price="$0.10", max_per_day="$1.00"), 10)
    assert [] == collector.alerts
