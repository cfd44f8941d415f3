"""`runaway-guard status`: the numbers it prints come from the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.cli.conftest import line_with, run


class Upstream500(Exception):
    status_code = 500


def fail() -> None:
    raise Upstream500


@pytest.fixture
def seeded(ledger_url: str, clock: FakeClock) -> str:
    """$0.60 of a $1.00 day budget spent, $0.10 held, a kill switch, an open breaker."""
    with rg.Guard(ledger_url, clock=clock) as guard:
        enrich = guard.contract(
            "enrich", price="$0.10", max_calls_per_run=50, max_per_day="$1.00", provider_cap="x"
        )
        for _ in range(6):
            enrich.call(lambda: None)
        enrich.hold()  # in flight: its process is still calling
        flaky = guard.contract(
            "flaky", price="$0.01", max_calls_per_run=9, provider_cap="x", breaker=rg.Breaker(2)
        )
        for _ in range(2):
            with pytest.raises(Upstream500):
                flaky.call(fail)
        guard.kill("contract:enrich", "overnight loop", by="ops")
    return ledger_url


def status(url: str, *args: str) -> str:
    result = run("status", "--ledger", url, "--at", "2026-11-22 12:00:30", *args)
    assert 0 == result.exit_code, result.output
    return result.stdout


def test_a_budget_shows_spent_held_limit_and_fill(seeded: str) -> None:
    row = line_with(status(seeded), "contract:enrich", "day:2026-11-22")
    assert ["$0.60", "$0.10", "$1.00", "70%", "11-23", "00:00"] == [
        word for word in row.split() if word[0] in "$0123456789"
    ]


def test_a_calls_budget_counts_calls(seeded: str) -> None:
    row = line_with(status(seeded), "contract:flaky", "calls")
    assert "2 calls" in row
    assert "9 calls" in row


def test_the_kill_switch_is_listed_with_its_reason(seeded: str) -> None:
    row = line_with(status(seeded), "contract:enrich", "overnight loop")
    assert "ops" in row


def test_an_open_breaker_is_listed(seeded: str) -> None:
    row = line_with(status(seeded), "flaky", "open")
    assert " 2 " in row


def test_holds_in_flight_are_counted(seeded: str) -> None:
    output = status(seeded)
    assert "1 hold(s) in flight, $0.10 held in total" in output
    row = line_with(output, "enrich", "$0.10", "left")
    assert ["1", "$0.10", "30s", "870s"] == [w for w in row.split() if w[0] in "$0123456789"]


def test_json_gives_exact_amounts(seeded: str) -> None:
    data = json.loads(status(seeded, "--format", "json"))
    (day,) = [b for b in data["budgets"] if b["key"] == "contract:enrich|money|day:2026-11-22"]
    assert ("0.60", "0.10", "1.00", 0.7) == (day["settled"], day["held"], day["limit"], day["fill"])
    assert ["contract:enrich"] == [k["scope"] for k in data["kill_switches"]]
    assert [("flaky", "open", 2)] == [
        (b["contract"], b["state"], b["failures"]) for b in data["breakers"]
    ]
    assert ["0.10"] == [h["estimate"] for h in data["holds"]]


def test_counters_without_a_limit_show_only_with_all(seeded: str, clock: FakeClock) -> None:
    with rg.Guard(seeded, clock=clock) as guard:
        guard.revive("contract:enrich")
        with guard.run("nightly"):
            guard.contract(
                "enrich", price="$0.10", max_calls_per_run=50, max_per_day="$1.00", provider_cap="x"
            ).call(lambda: None)
    assert "run:nightly|money" not in json.dumps(json.loads(status(seeded, "--format", "json")))
    (row,) = [
        line
        for line in status(seeded, "--all").splitlines()
        if line.split()[:2] == ["run:nightly"] * 2
    ]
    assert ["$0.10", "$0.00", "-", "-"] == row.split()[2:]  # no limit, no reset


def test_windows_that_ended_are_not_shown(seeded: str) -> None:
    result = run("status", "--ledger", seeded, "--at", "2026-11-24 12:00")
    assert "day:2026-11-22" not in result.stdout


def test_an_empty_ledger_says_so(ledger_url: str) -> None:
    output = run("status", "--ledger", ledger_url).stdout
    assert "budgets: no counter in a current window" in output
    assert "kill switches: none engaged" in output
    assert "holds in flight: none" in output


def test_a_missing_sqlite_ledger_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    result = run("status", "--ledger", f"sqlite:///{tmp_path / 'typo.db'}")
    assert 2 == result.exit_code
    assert "no ledger at" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_the_ledger_comes_from_the_environment(
    seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", seeded)
    result = run("status", "--at", "2026-11-22 12:00:30")
    assert "contract:enrich" in result.stdout


def test_the_ledger_comes_from_the_configuration_file(seeded: str, scratch: Path) -> None:
    (scratch / "runaway-guard.toml").write_text(f'ledger = "{seeded}"\n')
    result = run("status", "--at", "2026-11-22 12:00:30")
    assert "contract:enrich" in result.stdout


def test_ledger_option_wins_over_the_environment(
    seeded: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", f"sqlite:///{tmp_path / 'other.db'}")
    result = run("status", "--ledger", seeded, "--at", "2026-11-22 12:00:30")
    assert 0 == result.exit_code
    assert "contract:enrich" in result.stdout
