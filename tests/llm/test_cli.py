"""`runaway-guard prices MODEL`."""

from __future__ import annotations

from click.testing import CliRunner

from runaway_guard.cli import app


def test_prices_shows_each_unit_price() -> None:
    result = CliRunner().invoke(app, ["prices", "gpt-4o", "--at", "2026-11-22"])
    assert 0 == result.exit_code
    assert "gpt-4o: model 'gpt-4o' of provider 'openai'" in result.output
    assert "input             $2.50 / MTok" in result.output
    assert "output            $10.00 / MTok" in result.output


def test_prices_shows_tiers() -> None:
    result = CliRunner().invoke(app, ["prices", "claude-sonnet-4-5", "--provider", "anthropic"])
    assert "$3.00 / MTok (above 200,000 input tokens: $6.00)" in result.output


def test_prices_of_an_unknown_model_fail_naming_the_fallback() -> None:
    result = CliRunner().invoke(app, ["prices", "gpt-9000"])
    assert 1 == result.exit_code
    assert "TokenPrice(fallback=" in result.output


def test_prices_reject_a_bad_date() -> None:
    result = CliRunner().invoke(app, ["prices", "gpt-4o", "--at", "yesterday"])
    assert 2 == result.exit_code
