"""The demo's numbers come from a real run against the fake metered API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import runaway_guard as rg
from runaway_guard.cli import app
from runaway_guard.demo import run_overnight

pytestmark = pytest.mark.slow


def test_the_overnight_replay(tmp_path: Path) -> None:
    result = run_overnight(tmp_path)
    naive, guarded = result.naive, result.guarded
    assert 4_200 <= naive.requests <= 4_400
    assert rg.parse_money("$0.002") * naive.requests == naive.billed
    assert 100 == guarded.requests
    assert rg.parse_money("$0.20") == guarded.billed == guarded.ledger_spent
    assert ["breaker", "retries", "budget"] == [kind for _, kind, _ in guarded.stops]
    assert sum(guarded.by_hour.values()) == guarded.requests


def test_the_demo_command_prints_both_nights() -> None:
    outcome = CliRunner().invoke(app, ["demo"], terminal_width=120)
    assert 0 == outcome.exit_code, outcome.output
    assert "with runaway-guard" in outcome.output
    assert "$0.20" in outcome.output
    assert "circuit breaker opened after 5 consecutive upstream failures" in outcome.output
