"""Shared fixtures: a fake clock, ledgers of every backend, and service checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock

START = "2026-11-22T23:00:00+00:00"


def require_service(name: str, reachable: bool, detail: str) -> None:
    """Skip when a service is down, unless CI demands every service be tested."""
    if reachable:
        return
    message = f"{name} is not reachable ({detail})"
    if os.environ.get("RUNAWAY_GUARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and RUNAWAY_GUARD_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger URL of each embedded backend."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def guard(ledger_url: str, clock: FakeClock) -> Iterator[rg.Guard]:
    with rg.Guard(ledger_url, clock=clock) as guard:
        yield guard


@pytest.fixture(autouse=True, scope="session")
def _no_sdk_tracing() -> None:
    """The Agents SDK exports traces to OpenAI by default; no test touches the network
    (the docs' examples run the SDK too, so this applies to every test)."""
    try:
        from agents import set_tracing_disabled
    except ImportError:  # pragma: no cover - the test extra installs it
        return
    set_tracing_disabled(True)
