"""`runaway-guard report`: spend per hour, day, contract, run and tool, exactly."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import runaway_guard as rg
from runaway_guard.cli._report import spend_by
from runaway_guard.ledger import SpendRecord
from runaway_guard.testing import FakeClock
from tests.cli.conftest import line_with, run

PERIOD = ("--since", "2026-11-22 20:00", "--until", "2026-11-23 02:00")


class Upstream500(Exception):
    status_code = 500


def fail() -> None:
    raise Upstream500


@pytest.fixture
def seeded(ledger_url: str) -> str:
    """A quiet evening, then a cliff: 20:00 2 calls; 23:00 11; 00:00 13; 01:00 a reap."""
    clock = FakeClock("2026-11-22T20:10:00+00:00")
    with rg.Guard(ledger_url, clock=clock) as guard:
        enrich = guard.contract(
            "record-enrich", price="$0.002", max_calls_per_run=1000, provider_cap="x"
        )
        whois = guard.contract("tool:whois", price="$0.11", max_calls_per_run=9, provider_cap="x")
        crashy = guard.contract("crashy", price="$0.25", max_calls_per_run=9, provider_cap="x")
        with guard.run("nightly"):
            for _ in range(2):
                enrich.call(lambda: None)
            clock.set("2026-11-22T23:05:00+00:00")
            for _ in range(10):
                enrich.call(lambda: None)
            with pytest.raises(Upstream500):
                enrich.call(fail)
            clock.set("2026-11-23T00:15:00+00:00")
            for _ in range(10):
                enrich.call(lambda: None)
        with guard.run("ticket-1841"):
            for _ in range(3):
                whois.call(lambda: None)
        crashy.hold()  # its process dies; the lease (15 min) runs out
        clock.set("2026-11-23T01:20:00+00:00")
        assert 1 == len(guard.reap())
    return ledger_url


def report(url: str, *args: str) -> str:
    result = run("report", "--ledger", url, *args)
    assert 0 == result.exit_code, result.output
    return result.stdout


def numbers(row: str) -> list[str]:
    return [w for w in row.split() if w[0] in "$0123456789" and ":" not in w and "-" not in w]


def test_spend_by_hour_lists_every_hour_with_its_numbers(seeded: str) -> None:
    output = report(seeded, "--by", "hour", *PERIOD)
    rows = {
        hour: numbers(line_with(output, f"│ {hour}"))
        for hour in ("2026-11-22 20:00", "2026-11-22 21:00", "2026-11-22 23:00")
    }
    rows["00:00"] = numbers(line_with(output, "2026-11-23 00:00"))
    rows["01:00"] = numbers(line_with(output, "2026-11-23 01:00"))
    # calls, spend, failed, reaped
    assert {
        "2026-11-22 20:00": ["2", "$0.004", "0", "0"],
        "2026-11-22 21:00": ["0", "$0.00", "0", "0"],
        "2026-11-22 23:00": ["11", "$0.022", "1", "0"],
        "00:00": ["13", "$0.35", "0", "0"],
        "01:00": ["1", "$0.25", "0", "1"],
    } == rows
    assert ["27", "$0.626", "1", "1"] == numbers(line_with(output, "│ total"))


def test_the_hourly_chart_shows_the_cliff(seeded: str) -> None:
    output = report(seeded, "--by", "hour", *PERIOD)
    chart = output[output.index("spend per hour") :].splitlines()
    assert "spend per hour (tallest: $0.35)" == chart[0]
    top = chart[1]
    assert top.startswith("$0.35 │")
    # Six columns of three cells: only 00:00 (the fifth) reaches the top line.
    assert ["   ", "   ", "   ", "   ", "██ ", "   "] == [
        top[7 + 3 * n : 10 + 3 * n] for n in range(6)
    ]
    assert "11-22 20:00" in chart[-1]
    assert "11-23 01:00" in chart[-1]


def test_spend_by_day(seeded: str) -> None:
    output = report(seeded, "--by", "day", "--since", "2026-11-22", "--until", "2026-11-24")
    assert ["13", "$0.026", "1", "0"] == numbers(line_with(output, "│ 2026-11-22"))
    assert ["14", "$0.60", "0", "1"] == numbers(line_with(output, "│ 2026-11-23"))


def test_spend_by_contract_puts_the_most_expensive_first(seeded: str) -> None:
    output = report(seeded, "--by", "contract", *PERIOD)
    table = [line for line in output.splitlines() if line.startswith("│ ")]
    assert ["tool:whois", "crashy", "record-enrich"] == [row.split()[1] for row in table[:3]]
    assert ["23", "$0.046", "1", "0"] == numbers(line_with(output, "record-enrich"))


def test_spend_by_run(seeded: str) -> None:
    output = report(seeded, "--by", "run", *PERIOD)
    assert ["23", "$0.046", "1", "0"] == numbers(line_with(output, "│ nightly"))
    assert ["3", "$0.33", "0", "0"] == numbers(line_with(output, "│ ticket-1841"))


def test_spend_by_tool_takes_contracts_named_tool(seeded: str) -> None:
    output = report(seeded, "--by", "tool", *PERIOD)
    assert ["3", "$0.33", "0", "0"] == numbers(line_with(output, "│ whois"))
    assert "(24 attempt(s) of contracts not named tool:NAME left out)" in output


def test_one_contract_only(seeded: str) -> None:
    output = report(seeded, "--by", "day", "--contract", "crashy", *PERIOD)
    assert ["1", "$0.25", "0", "1"] == numbers(line_with(output, "│ total"))


def test_one_run_only(seeded: str) -> None:
    output = report(seeded, "--by", "contract", "--run", "ticket-1841", *PERIOD)
    assert ["3", "$0.33", "0", "0"] == numbers(line_with(output, "│ total"))


def test_csv_has_exact_amounts(seeded: str) -> None:
    output = report(seeded, "--by", "contract", "--format", "csv", *PERIOD)
    assert [
        "contract,calls,spend,currency,tokens,failed,released,reaped",
        "tool:whois,3,0.33,USD,0,0,0,0",
        "crashy,1,0.25,USD,0,0,0,1",
        "record-enrich,23,0.046,USD,0,1,0,0",
    ] == output.splitlines()


def test_json_has_rows_and_a_total(seeded: str) -> None:
    data = json.loads(report(seeded, "--by", "hour", "--format", "json", *PERIOD))
    assert 6 == len(data["rows"])
    assert ("2026-11-23 00:00", 13, "0.35") == (
        data["rows"][4]["label"],
        data["rows"][4]["calls"],
        data["rows"][4]["spend"],
    )
    assert (27, "0.626", "USD") == (
        data["total"]["calls"],
        data["total"]["spend"],
        data["currency"],
    )


def test_hours_are_local_to_the_configured_time_zone(seeded: str, scratch: Path) -> None:
    Path("runaway-guard.toml").write_text('timezone = "Asia/Kolkata"\n')  # UTC+05:30
    output = report(
        seeded, "--by", "hour", "--since", "2026-11-23 05:00", "--until", "2026-11-23 07:00"
    )
    assert ["13", "$0.35", "0", "0"] == numbers(line_with(output, "│ 2026-11-23 05:00"))


def test_a_period_with_nothing_says_so(seeded: str) -> None:
    output = report(seeded, "--since", "2026-12-01", "--until", "2026-12-02")
    assert "no spend recorded in this period" in output


def test_a_bad_time_is_explained(seeded: str) -> None:
    result = run("report", "--ledger", seeded, "--since", "last tuesday")
    assert 2 == result.exit_code
    assert "write a time like 2026-11-22" in result.stderr


def test_until_must_follow_since(seeded: str) -> None:
    result = run("report", "--ledger", seeded, "--since", "2026-11-23", "--until", "2026-11-22")
    assert 2 == result.exit_code
    assert "must be after --since" in result.stderr


def test_too_many_hours_asks_for_days(seeded: str) -> None:
    result = run("report", "--ledger", seeded, "--by", "hour", "--since", "90d")
    assert 2 == result.exit_code
    assert "use --by day or a shorter --since" in result.stderr


def test_the_hour_repeated_when_clocks_fall_back_is_two_buckets() -> None:
    amsterdam = ZoneInfo("Europe/Amsterdam")
    since = datetime(2026, 10, 25, tzinfo=amsterdam).timestamp()
    first_two_am = since + 2 * 3600  # 02:00 CEST, 00:00 UTC
    rows = [
        SpendRecord(first_two_am + 60, "h1", "c1", "a", "r", 1, 10, 10, 0, "settled"),
        SpendRecord(first_two_am + 3600 + 60, "h2", "c2", "a", "r", 1, 10, 10, 0, "settled"),
    ]
    buckets, _ = spend_by(rows, by="hour", since=since, until=since + 25 * 3600, tz=amsterdam)
    assert 25 == len(buckets)  # the day has 25 hours
    assert [("2026-10-25 02:00 CEST", 1), ("2026-10-25 02:00 CET", 1)] == [
        (b.label, b.calls) for b in buckets[2:4]
    ]
