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
