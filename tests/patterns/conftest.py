"""Fixtures for the pattern tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock


@pytest.fixture
def mem(clock: FakeClock) -> Iterator[rg.Guard]:
    """A guard on a memory ledger, for behaviour that does not depend on the backend."""
    with rg.Guard("memory://", clock=clock) as guard:
        yield guard
