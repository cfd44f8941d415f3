"""Run in child processes by the multi-process alert test (importable by spawn)."""

from __future__ import annotations

import runaway_guard as rg
from runaway_guard.testing import FakeClock

NOON = "2026-11-22T12:00:00+00:00"
PRICE = "$0.01"


def push_day_budget(url: str, webhook: str, calls: int, cap: str) -> int:
    """Make `calls` guarded calls against a shared day budget, alerting to `webhook`."""
    made = 0
    # Every process reads the same fixed time, so they all share one day window.
    with rg.Guard(url, clock=FakeClock(NOON)) as guard:
        rg.Alerts(guard, [rg.alerts.Webhook(webhook)], backoff=0.0)
        paid = guard.contract(
            "fleet-enrich",
            price=PRICE,
            max_calls_per_run=10_000,
            max_per_day=cap,
            provider_cap="test: none, loopback only",
        )

        def work() -> None:
            nonlocal made
            made += 1

        for _ in range(calls):
            paid.call(work)
    return made  # closing the guard delivered this process's queued alerts
