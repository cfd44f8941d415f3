"""Money parses exactly, refuses what is not money, and never touches float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import runaway_guard as rg
from runaway_guard._money import ceil_nanos, floor_nanos, format_amount


@pytest.mark.parametrize(
    ("text", "nanos", "currency"),
    [
        ("$0.05", 50_000_000, "USD"),
        ("0.05 USD", 50_000_000, "USD"),
        ("USD 0.05", 50_000_000, "USD"),
        ("€4.80", 4_800_000_000, "EUR"),
        ("4.80 eur", 4_800_000_000, "EUR"),
        ("£1", 1_000_000_000, "GBP"),
        ("$1,000.50", 1_000_500_000_000, "USD"),
        ("0.000000001", 1, "USD"),
        ("  $ 2 ", 2_000_000_000, "USD"),
        ("12.5 CHF", 12_500_000_000, "CHF"),
    ],
)
def test_parse_text(text: str, nanos: int, currency: str) -> None:
    assert rg.Money(nanos, currency) == rg.parse_money(text)


def test_parse_decimal_and_int_use_the_default_currency() -> None:
    assert rg.Money(7_500_000, "EUR") == rg.parse_money(Decimal("0.0075"), currency="EUR")
    assert rg.Money(3_000_000_000, "USD") == rg.parse_money(3)


@pytest.mark.parametrize(
    "bad",
    ["NaN", "nan", "inf", "-$0.05", "$-1", "abc", "", "$", "0.0000000001", "$1 EUR", "1.2.3"],
)
def test_garbage_is_a_contract_error_naming_the_value(bad: str) -> None:
    with pytest.raises(rg.ContractError) as info:
        rg.parse_money(bad, what="max_per_day")
    assert "max_per_day" in str(info.value)
    assert repr(bad) in str(info.value) or "negative" in str(info.value)


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-0.01"), -1])
def test_non_finite_and_negative_numbers_are_refused(bad: object) -> None:
    with pytest.raises(rg.ContractError):
        rg.parse_money(bad)


def test_float_is_refused_with_the_exact_spelling() -> None:
    with pytest.raises(rg.ContractError, match=r"Decimal\('0.1'\)"):
        rg.parse_money(0.1)


def test_contract_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an amount"):
        rg.parse_money("lots")


def test_mixing_currencies_without_a_rate_is_an_error() -> None:
    with pytest.raises(rg.ContractError, match="exchange_rates"):
        rg.parse_money("€1").to("USD", None)
    with pytest.raises(rg.ContractError, match="different currencies"):
        _ = rg.parse_money("€1") + rg.parse_money("$1")


def test_conversion_rounds_up() -> None:
    converted = rg.parse_money("€0.000000001").to("USD", {"EUR": Decimal("1.08")})
    assert rg.Money(2, "USD") == converted


def test_rounding_helpers() -> None:
    assert 2 == ceil_nanos(Decimal("0.0000000011"))
    assert 1 == floor_nanos(Decimal("0.0000000019"))


@pytest.mark.parametrize(
    ("nanos", "currency", "text"),
    [
        (160_000_000, "USD", "$0.16"),
        (7_500_000, "USD", "$0.0075"),
        (4_800_000_000, "EUR", "€4.80"),
        (12_500_000_000, "CHF", "12.50 CHF"),
        (0, "USD", "$0.00"),
        (1, "USD", "$0.000000001"),
    ],
)
def test_format(nanos: int, currency: str, text: str) -> None:
    assert text == format_amount(nanos, currency)


@given(st.integers(min_value=0, max_value=10**18))
def test_format_then_parse_round_trips(nanos: int) -> None:
    money = rg.Money(nanos, "USD")
    assert money == rg.parse_money(str(money))


@given(st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False))
def test_decimal_amounts_are_exact(amount: Decimal) -> None:
    assert amount == rg.parse_money(amount).amount


def test_arithmetic() -> None:
    price = rg.parse_money("$0.002")
    assert rg.parse_money("$0.16") == price * 80
    assert rg.parse_money("$0.16") == 80 * price
    assert price < rg.parse_money("$0.01")
