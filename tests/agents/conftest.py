"""Fixtures for the agent guard: a EUR ledger on the fake clock, and a toolbox on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import runaway_guard as rg
from runaway_guard import agents
from runaway_guard.testing import FakeClock


@pytest.fixture
def eur(clock: FakeClock) -> Iterator[rg.Guard]:
    """A guard whose ledger counts euros, as in the incident."""
    with rg.Guard("memory://", currency="EUR", clock=clock) as guard:
        yield guard


@pytest.fixture
def toolbox(eur: rg.Guard) -> agents.Toolbox:
    return agents.Toolbox(eur)


@pytest.fixture(autouse=True, scope="session")
def _no_sdk_tracing() -> None:
    """The Agents SDK exports traces to OpenAI by default; tests never touch the network."""
    try:
        from agents import set_tracing_disabled
    except ImportError:  # pragma: no cover - the test extra installs it
        return
    set_tracing_disabled(True)
