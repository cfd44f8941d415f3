"""`kill`, `revive` and `reap` act on the shared ledger that running guards read."""

from __future__ import annotations

from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.alerts.receiver import Receiver
from tests.cli.conftest import run


def paid(guard: rg.Guard) -> rg.Contract:
    return guard.contract("enrich", price="$0.002", max_calls_per_run=100, provider_cap="x")


def test_kill_stops_every_guard_on_the_ledger(ledger_url: str) -> None:
    result = run("kill", "contract:enrich", "--reason", "overnight loop", "--ledger", ledger_url)
    assert 0 == result.exit_code, result.output
    assert "kill switch engaged on contract:enrich" in result.stdout
    assert "revive with: runaway-guard revive contract:enrich" in result.stdout
    with (
        rg.Guard(ledger_url) as guard,
        pytest.raises(rg.KillSwitchEngaged, match="overnight loop"),
    ):
        paid(guard).call(lambda: None)


def test_kill_names_who_engaged_it(ledger_url: str) -> None:
    run("kill", "global", "--reason", "r", "--by", "alice", "--ledger", ledger_url)
    with rg.Guard(ledger_url) as guard:
        assert [("global", "alice")] == [(k.scope, k.by) for k in guard.kill_switches()]


def test_killing_twice_reports_the_first(ledger_url: str) -> None:
    run("kill", "global", "--reason", "first", "--by", "alice", "--ledger", ledger_url)
    result = run("kill", "global", "--reason", "second", "--ledger", ledger_url)
    assert 0 == result.exit_code
    assert "kill switch on global was already engaged by alice at" in result.stdout
    assert result.stdout.rstrip().endswith(": first")


@pytest.mark.parametrize("scope", ["enrich", "contract:", "tenant:acme"])
def test_a_scope_must_name_its_kind(ledger_url: str, scope: str) -> None:
    result = run("kill", scope, "--reason", "r", "--ledger", ledger_url)
    assert 2 == result.exit_code
    assert "kill switch scope" in result.stderr


def test_kill_needs_a_reason(ledger_url: str) -> None:
    result = run("kill", "global", "--ledger", ledger_url)
    assert 2 == result.exit_code
    assert "Missing option '--reason'" in result.stderr


def test_revive_lets_calls_through_again(ledger_url: str) -> None:
    run("kill", "contract:enrich", "--reason", "r", "--ledger", ledger_url)
    result = run("revive", "contract:enrich", "--ledger", ledger_url)
    assert 0 == result.exit_code
    assert "kill switch on contract:enrich cleared" in result.stdout
    with rg.Guard(ledger_url) as guard:
        assert "ok" == paid(guard).call(lambda: "ok")


def test_reviving_what_is_not_killed_exits_1_and_lists_what_is(ledger_url: str) -> None:
    run("kill", "run:nightly", "--reason", "r", "--ledger", ledger_url)
    result = run("revive", "contract:enrich", "--ledger", ledger_url)
    assert 1 == result.exit_code
    assert "no kill switch was engaged on contract:enrich; engaged: run:nightly" in result.stderr


@pytest.fixture
def dead_hold(ledger_url: str) -> str:
    """A $0.25 hold whose process died a day ago."""
    with rg.Guard(ledger_url, clock=FakeClock("2026-11-22T12:00:00+00:00")) as guard:
        guard.contract(
            "crashy", price="$0.25", max_calls_per_run=5, hold_lease=60.0, provider_cap="x"
        ).hold()
    return ledger_url


def test_reap_charges_expired_holds_at_their_estimate(dead_hold: str) -> None:
    result = run("reap", "--ledger", dead_hold)
    assert 0 == result.exit_code
    assert "reaped 1 hold(s), $0.25 charged at their estimates" in result.stdout
    assert "2026-11-22 12:01" in result.stdout  # when the lease ended
    with rg.Guard(dead_hold) as guard:
        assert [("reaped", 250_000_000)] == [(r.outcome, r.actual) for r in guard.ledger.spend()]


def test_reap_dry_run_changes_nothing(dead_hold: str) -> None:
    result = run("reap", "--dry-run", "--ledger", dead_hold)
    assert "1 hold(s) would be reaped, $0.25 charged at their estimates" in result.stdout
    with rg.Guard(dead_hold) as guard:
        assert ["held"] == [h.status for h in guard.ledger.holds()]


def test_reap_with_nothing_expired(ledger_url: str) -> None:
    assert "no expired holds: nothing to reap" in run("reap", "--ledger", ledger_url).stdout


def test_kill_sends_the_configured_alerts(
    ledger_url: str, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver().start()
    try:
        monkeypatch.setenv("OPS_HOOK", receiver.url)
        (scratch / "runaway-guard.toml").write_text(
            f'ledger = "{ledger_url}"\n'
            '[[alerts.notifiers]]\ntype = "webhook"\nurl_env = "OPS_HOOK"\n'
        )
        assert 0 == run("kill", "global", "--reason", "budget blown").exit_code
        (got,) = receiver.wait_for(1)
        assert ("kill_switch", "kill switch engaged on global") == (
            got.body["kind"],
            got.body["title"],
        )
    finally:
        receiver.stop()


def test_a_broken_configuration_does_not_block_an_explicit_kill(
    ledger_url: str, scratch: Path
) -> None:
    (scratch / "runaway-guard.toml").write_text("timezone = 5\n")
    result = run("kill", "global", "--reason", "r", "--ledger", ledger_url)
    assert 0 == result.exit_code
    assert "warning: ignoring the configuration" in result.stderr


def test_a_broken_configuration_stops_a_command_without_a_ledger(scratch: Path) -> None:
    (scratch / "runaway-guard.toml").write_text("timezone = 5\n")
    result = run("kill", "global", "--reason", "r")
    assert 2 == result.exit_code
    assert "runaway-guard.toml: timezone: must be a non-empty string" in result.stderr
