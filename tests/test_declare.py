"""Budgets, windows and contract declarations: pure data and arithmetic."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import runaway_guard as rg
from runaway_guard._budget import Period, window_for
from runaway_guard._contract import declare_contract

UTC = ZoneInfo("UTC")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_day_window_key_and_end_in_utc() -> None:
    window = window_for(Period.DAY, at("2026-11-22T23:59:59+00:00"), UTC, "r")
    assert "day:2026-11-22" == window.key
    assert at("2026-11-23T00:00:00+00:00") == window.end


def test_day_window_follows_the_configured_time_zone() -> None:
    # 23:30 UTC is already 00:30 the next day in Amsterdam.
    window = window_for(Period.DAY, at("2026-11-22T23:30:00+00:00"), AMSTERDAM, "r")
    assert "day:2026-11-23" == window.key
    assert at("2026-11-24T00:00:00+01:00") == window.end


def test_day_across_a_dst_change_is_23_hours_long() -> None:
    window = window_for(Period.DAY, at("2026-03-29T12:00:00+02:00"), AMSTERDAM, "r")
    assert "day:2026-03-29" == window.key
    assert window.end is not None
    assert 23 * 3600 == window.end - at("2026-03-29T00:00:00+01:00")


def test_hour_week_month_total_and_run_windows() -> None:
    now = at("2026-11-22T13:45:00+00:00")
    assert "hour:2026-11-22T13" == window_for(Period.HOUR, now, UTC, "r").key
    week = window_for(Period.WEEK, now, UTC, "r")
    assert "week:2026-W47" == week.key
    assert at("2026-11-23T00:00:00+00:00") == week.end
    month = window_for(Period.MONTH, at("2026-12-31T23:00:00+00:00"), UTC, "r")
    assert ("month:2026-12", at("2027-01-01T00:00:00+00:00")) == (month.key, month.end)
    assert ("total", None) == (window_for(Period.TOTAL, now, UTC, "r").key, None)
    assert "run:nightly/sub" == window_for(Period.RUN, now, UTC, "nightly/sub").key


def test_budget_constructors_validate() -> None:
    assert rg.Money(1_000_000_000) == rg.Budget.money("$1", per="day").limit
    assert 0 == rg.Budget.calls(0).limit
    with pytest.raises(rg.ContractError, match="whole number"):
        rg.Budget.calls(2.5)  # type: ignore[arg-type]
    with pytest.raises(rg.ContractError, match="negative"):
        rg.Budget.tokens(-1)
    with pytest.raises(rg.ContractError, match="unknown budget window 'fortnight'"):
        rg.Budget.money("$1", per="fortnight")
    with pytest.raises(rg.ContractError, match="must not contain"):
        rg.Budget.money("$1", scope="tenant|x")


def test_budget_limit_in_another_currency_converts_down_with_a_rate() -> None:
    budget = rg.Budget.money("€1.00")
    assert 1_080_000_000 == budget.limit_units("USD", {"EUR": Decimal("1.08")})
    with pytest.raises(rg.ContractError, match="exchange_rates"):
        budget.limit_units("USD", None)


def declare(**options: object) -> rg.ContractSpec:
    options.setdefault("price", "$0.002")
    options.setdefault("provider_cap", "OpenAI org usage limit, $25/month")
    return declare_contract("record-enrich", **options)  # type: ignore[arg-type]


def test_money_cap_is_derived_from_calls_times_price() -> None:
    spec = declare(max_calls_per_run=80)
    assert rg.parse_money("$0.16") == spec.max_per_run
    assert "max_per_run" in spec.derived


def test_call_cap_is_derived_from_money_over_price() -> None:
    spec = declare(max_per_run="$0.05")
    assert 25 == spec.max_calls_per_run
    assert "max_calls_per_run" in spec.derived


def test_a_provider_cap_is_required() -> None:
    with pytest.raises(rg.ContractError, match="provider_cap"):
        declare_contract("x", price="$0.01", max_calls_per_run=1)


def test_a_per_run_bound_is_required() -> None:
    with pytest.raises(rg.ContractError, match="no per-run bound"):
        declare(max_per_day="$1")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_calls_per_run", 2.5, "whole number"),
        ("max_calls_per_run", -1, "negative"),
        ("max_per_day", "NaN", "max_per_day"),
        ("max_per_day", 1.0, "float"),
        ("price", "-$0.01", "negative"),
        ("price", object(), "price must be"),
        ("concurrency", 0, "at least 1"),
        ("hold_lease", 0, "hold_lease"),
        ("anomaly_factor", "0.5", "anomaly_factor"),
    ],
)
def test_malformed_declarations_say_what_is_wrong(option: str, value: object, message: str) -> None:
    options: dict[str, object] = {"max_calls_per_run": 10, option: value}
    with pytest.raises(rg.ContractError, match=message):
        declare(**options)


def test_zero_is_a_bound_not_unlimited() -> None:
    spec = declare(max_calls_per_run=0)
    assert 0 == spec.max_calls_per_run
    assert rg.Money(0) == spec.max_per_run


def test_budgets_are_tagged_with_their_option() -> None:
    spec = declare(max_calls_per_run=80, max_per_day="$1.00", max_per_month="$20")
    options = {b.option: (b.unit, b.per) for b in spec.budgets()}
    assert (rg.Unit.CALLS, Period.RUN) == options["max_calls_per_run"]
    assert (rg.Unit.MONEY, Period.DAY) == options["max_per_day"]
    assert (rg.Unit.MONEY, Period.MONTH) == options["max_per_month"]


def test_summary_states_the_four_numbers_and_the_arithmetic() -> None:
    text = declare(max_calls_per_run=80, max_per_run="$0.10", max_per_day="$1.00").summary()
    assert "cost contract: record-enrich" in text
    assert "$0.002 per call" in text
    assert "80 x $0.002 = $0.16" in text
    assert "the money cap binds first, at 50 calls" in text
    assert "OpenAI org usage limit, $25/month" in text
    assert "worst case per run: $0.10" in text


def test_dynamic_price_has_no_derived_bounds() -> None:
    spec = declare(price=lambda call: "$0.01", max_calls_per_run=5)
    assert spec.max_per_run is None
    assert spec.unit_price is None


def test_retry_validates_its_bounds() -> None:
    with pytest.raises(rg.ContractError, match="at least 1"):
        rg.Retry(0)
    with pytest.raises(rg.ContractError, match="whole number"):
        rg.Retry(2.0)  # type: ignore[arg-type]
    with pytest.raises(rg.ContractError, match="backoff"):
        rg.Retry(3, backoff=float("nan"))
    with pytest.raises(rg.ContractError, match="'release' or 'estimate'"):
        rg.Charge(server_error="maybe")  # type: ignore[arg-type]


def test_backoff_is_exponential_capped_and_jittered_below_the_bound() -> None:
    fixed = rg.Retry(10, backoff=1, backoff_cap=8, jitter="none")
    assert [1.0, 2.0, 4.0, 8.0, 8.0] == [fixed.delay(n) for n in range(1, 6)]
    jittered = rg.Retry(10, backoff=1, backoff_cap=8, seed=7)
    for attempt in range(1, 8):
        assert 0.0 <= jittered.delay(attempt) <= min(8.0, 2.0 ** (attempt - 1))


def test_the_environment_picks_its_caps() -> None:
    envs = {"dev": {"max_calls_per_run": 2, "max_per_day": "$0.50"}}
    dev = declare(max_calls_per_run=80, max_per_day="$20", environments=envs, environment="dev")
    assert (2, rg.parse_money("$0.50")) == (dev.max_calls_per_run, dev.max_per_day)
    assert rg.parse_money("$0.004") == dev.max_per_run
    assert "dev" == dev.environment
    prod = declare(max_calls_per_run=80, environments=envs, environment="prod")
    assert (80, None) == (prod.max_calls_per_run, prod.environment)
    assert "applied: none (the declared caps)" in prod.summary()


def test_an_environment_may_only_set_caps() -> None:
    with pytest.raises(rg.ContractError, match="not caps"):
        declare(max_calls_per_run=1, environments={"dev": {"price": "$0"}})
