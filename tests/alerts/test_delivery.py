"""Delivery off the hot path: retries, drops, closing, and a notifier that hangs."""

from __future__ import annotations

import threading
import time

import pytest

import runaway_guard as rg
from runaway_guard.alerts import Alert
from runaway_guard.testing import FakeClock
from tests.alerts.conftest import Collector
from tests.alerts.receiver import Receiver
from tests.helpers import contract


def kill_and_revive(guard: rg.Guard, times: int) -> None:
    """Raise 2 x `times` alerts that are never deduplicated."""
    for n in range(times):
        guard.kill("global", f"drill {n}")
        guard.revive("global")


def test_a_failing_webhook_is_retried_then_succeeds(guard: rg.Guard, receiver: Receiver) -> None:
    receiver.answers.extend([(503, {}), (500, {})])
    with rg.Alerts(guard, [rg.alerts.Webhook(receiver.url)], attempts=3, backoff=0.0) as alerts:
        guard.kill("global", "drill")
        assert alerts.flush(10)
        assert (1, 0) == (alerts.delivery.delivered, alerts.delivery.failed)
    assert 3 == len(receiver.received)


def test_delivery_gives_up_after_its_attempts_and_says_so(
    guard: rg.Guard, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answers.extend([(500, {})] * 5)
    with rg.Alerts(guard, [rg.alerts.Webhook(receiver.url)], attempts=2, backoff=0.0) as alerts:
        guard.kill("global", "drill")
        assert alerts.flush(10)
        assert (0, 1) == (alerts.delivery.delivered, alerts.delivery.failed)
    assert 2 == len(receiver.received)
    assert any("gave up delivering alert" in r.getMessage() for r in caplog.records)


def test_a_client_error_is_not_retried(guard: rg.Guard, receiver: Receiver) -> None:
    receiver.answers.append((403, {}))
    with rg.Alerts(guard, [rg.alerts.Slack(receiver.url)], attempts=3, backoff=0.0) as alerts:
        guard.kill("global", "drill")
        assert alerts.flush(10)
    assert 1 == len(receiver.received)


def test_one_failing_notifier_does_not_stop_the_others(guard: rg.Guard) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("pager is down")

    collector = Collector()
    notifiers = [rg.alerts.Callback(broken), collector.notifier]
    with rg.Alerts(guard, notifiers, attempts=2, backoff=0.0) as alerts:
        guard.kill("global", "drill")
        assert alerts.flush(10)
        assert (1, 1) == (alerts.delivery.delivered, alerts.delivery.failed)
    assert ["kill_switch"] == collector.kinds()


def test_a_failing_notifier_never_breaks_the_paid_call(guard: rg.Guard) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("pager is down")

    with rg.Alerts(guard, [rg.alerts.Callback(broken)], attempts=1, backoff=0.0) as alerts:
        paid = contract(guard, price="$0.60", max_per_day="$1.00")
        assert "paid" == paid.call(lambda: "paid")
        assert alerts.flush(10)
        assert 1 == alerts.delivery.failed


def test_a_full_queue_drops_alerts_with_a_log_line(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    alerts = rg.Alerts(
        guard, [rg.alerts.Callback(lambda alert: gate.wait(10))], queue_size=1, backoff=0.0
    )
    try:
        kill_and_revive(guard, 10)
        assert alerts.delivery.dropped > 0
        assert any("runaway-guard dropped an alert" in r.getMessage() for r in caplog.records)
    finally:
        gate.set()
        alerts.close()


def test_close_delivers_what_is_queued(guard: rg.Guard) -> None:
    collector = Collector()
    alerts = rg.Alerts(guard, [collector.notifier], backoff=0.0)
    kill_and_revive(guard, 5)
    assert alerts.close() is True
    assert 10 == len(collector.alerts)


def test_close_gives_up_on_a_stuck_notifier_within_its_timeout(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    alerts = rg.Alerts(guard, [rg.alerts.Callback(lambda alert: gate.wait(30))], backoff=0.0)
    try:
        kill_and_revive(guard, 2)
        started = time.monotonic()
        assert alerts.close(timeout=0.2) is False
        assert time.monotonic() - started < 5.0
        assert any("undelivered" in r.getMessage() for r in caplog.records)
    finally:
        gate.set()


def test_a_notifier_that_hangs_adds_only_the_hand_off_to_paid_calls(
    tmp_path: object, receiver: Receiver
) -> None:
    """Every call crosses two thresholds; the webhook hangs 30 s on the first alert.

    The bound is generous (a shared, noisy machine): the precise figure comes from
    ``python -m benchmarks.alerts``.
    """
    receiver.hang = 30.0
    clock = FakeClock("2026-11-22T12:00:00+00:00")
    with rg.Guard("memory://", clock=clock) as guard:
        alerts = rg.Alerts(
            guard, [rg.alerts.Webhook(receiver.url, timeout=30.0)], queue_size=16, backoff=0.0
        )
        paid = contract(guard, price="$0.01", max_calls_per_run=1)
        slowest = 0.0
        for n in range(200):
            with guard.run(f"run-{n}"):  # a fresh run: its per-run budgets fill to 100%
                started = time.perf_counter()
                paid.call(lambda: None)
                slowest = max(slowest, time.perf_counter() - started)
        receiver.wait_for(1)
        assert 1 == len(receiver.received)  # the notifier is stuck in its first delivery
        assert alerts.delivery.dropped > 0  # and its queue overflowed instead of blocking
        # Generous: the machine is shared. The hang is 30 s; a call must not come near it.
        assert slowest < 1.0, f"a guarded call took {slowest * 1000:.1f} ms"
        receiver.release.set()
        alerts.close(timeout=5.0)
