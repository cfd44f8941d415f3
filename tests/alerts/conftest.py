"""Fixtures for alert tests: a webhook receiver, a guard with a fake clock, a collector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.alerts.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


class Collector:
    """A notifier that keeps every alert it is sent (a `Callback` around a list)."""

    def __init__(self, min_severity: str = "info") -> None:
        self.alerts: list[rg.alerts.Alert] = []
        self.notifier = rg.alerts.Callback(self.alerts.append, min_severity=min_severity)

    def titles(self) -> list[str]:
        return [a.title for a in self.alerts]

    def kinds(self) -> list[str]:
        return [str(a.kind) for a in self.alerts]


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def watched(
    guard: rg.Guard, collector: Collector
) -> Iterator[tuple[rg.Guard, rg.Alerts, Collector]]:
    """A guard (memory and SQLite) watched by alerts that collect into a list."""
    alerts = rg.Alerts(guard, [collector.notifier], backoff=0.0)
    yield guard, alerts, collector
    alerts.close()


@pytest.fixture
def noon() -> FakeClock:
    return FakeClock("2026-11-22T12:00:00+00:00")
