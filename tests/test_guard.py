"""The guard's public flow: contracts, runs, budgets, refusals before the call."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.helpers import contract


class Upstream:
    """Counts the calls that really got through to the 'provider'."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, payload: object = None) -> object:
        self.calls += 1
        return payload


def test_the_81st_call_is_refused_before_it_is_made(guard: rg.Guard) -> None:
    upstream = Upstream()
    enrich = guard.contract(
        "record-enrich",
        price="$0.002",
        max_calls_per_run=80,
        max_per_run="$0.16",
        max_per_day="$1.00",
        provider_cap="OpenAI org usage limit, $25/month",
    )
    complete = enrich(upstream)
    with guard.run("nightly-2026-11-22") as run:
        for payload in range(80):
            assert payload == complete(payload)
        with pytest.raises(rg.BudgetExceeded) as info:
            complete(80)
        assert rg.parse_money("$0.16") == run.spent()
    assert 80 == upstream.calls
    error = info.value
    assert ("calls", "contract:record-enrich") == (error.unit, error.scope)
    assert "80 calls" == error.limit
    assert "raise max_calls_per_run" in str(error)


def test_a_limit_of_zero_refuses_the_first_call_without_calling(guard: rg.Guard) -> None:
    upstream = Upstream()
    zero = contract(guard, max_calls_per_run=0)
    with pytest.raises(rg.BudgetExceeded):
        zero.call(upstream)
    assert 0 == upstream.calls


def test_a_money_limit_of_zero_refuses_too(guard: rg.Guard) -> None:
    upstream = Upstream()
    zero = contract(guard, max_calls_per_run=10, max_per_day="$0")
    with pytest.raises(rg.BudgetExceeded, match=r"\$0.00 limit"):
        zero.call(upstream)
    assert 0 == upstream.calls


def test_day_budget_message_names_every_number_and_the_reset(guard: rg.Guard) -> None:
    daily = contract(
        guard, "record-enrich", price="$0.05", max_calls_per_run=100, max_per_day="$1.00"
    )
    with guard.run("r"):
        for _ in range(20):
            daily.call(Upstream())
        with pytest.raises(rg.BudgetExceeded) as info:
            daily.call(Upstream())
    assert (
        "contract 'record-enrich' day budget: $1.00 spent + $0.00 held + $0.05 asked > "
        "$1.00 limit (raise max_per_day or wait for 2026-11-23 00:00 UTC)"
    ) == str(info.value)
    assert "day:2026-11-22" == info.value.window


def test_async_functions_are_guarded_the_same_way(guard: rg.Guard) -> None:
    calls = 0
    guarded = contract(guard, max_calls_per_run=2)

    @guarded
    async def complete(payload: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return payload * 2

    async def main() -> list[int]:
        async with guard.run("async"):
            results = [await complete(1), await complete(2)]
            with pytest.raises(rg.BudgetExceeded):
                await complete(3)
            return results

    assert [2, 4] == asyncio.run(main())
    assert 2 == calls


def test_call_passes_arguments_and_refuses_coroutines(guard: rg.Guard) -> None:
    guarded = contract(guard)
    assert (1, {"b": 2}) == guarded.call(lambda a, **kw: (a, kw), 1, b=2)

    async def later() -> None: ...

    with pytest.raises(rg.ContractError, match="acall"):
        _ = guarded.call(later)
    assert 3 == asyncio.run(guarded.acall(asyncio.sleep, 0, 3))


def test_each_run_has_its_own_allowance_and_a_reopened_run_continues(guard: rg.Guard) -> None:
    guarded = contract(guard, max_calls_per_run=2)
    for name in ("a", "b"):
        with guard.run(name):
            guarded.call(Upstream())
            guarded.call(Upstream())
    with guard.run("a"), pytest.raises(rg.BudgetExceeded):
        guarded.call(Upstream())


def test_nested_run_spend_counts_against_the_parent(guard: rg.Guard) -> None:
    guarded = contract(guard, price="$0.10")
    with guard.run("ticket-1", budget="$0.30") as ticket:
        with guard.run("sub-agent-1") as sub:
            guarded.call(Upstream())
            guarded.call(Upstream())
            assert "ticket-1/sub-agent-1" == sub.path
        with guard.run("sub-agent-2"):
            guarded.call(Upstream())
            with pytest.raises(rg.BudgetExceeded, match="run 'ticket-1' per-run budget") as info:
                guarded.call(Upstream())
            assert "run:ticket-1" == info.value.scope
        assert rg.parse_money("$0.30") == ticket.spent()


def test_contract_per_run_caps_hold_in_every_enclosing_run(guard: rg.Guard) -> None:
    guarded = contract(guard, max_calls_per_run=3)
    with guard.run("parent"):
        with guard.run("one"):
            guarded.call(Upstream())
            guarded.call(Upstream())
        with guard.run("two"):
            guarded.call(Upstream())
            with pytest.raises(rg.BudgetExceeded, match="run 'parent'"):
                guarded.call(Upstream())


def test_calls_outside_any_run_share_the_process_run(guard: rg.Guard) -> None:
    guarded = contract(guard, max_calls_per_run=2)
    guarded.call(Upstream())
    guarded.call(Upstream())
    with pytest.raises(rg.BudgetExceeded, match="process:"):
        guarded.call(Upstream())


def test_guard_wide_and_custom_scope_budgets(ledger_url: str, clock: FakeClock) -> None:
    with rg.Guard(ledger_url, clock=clock, budgets=[rg.Budget.money("$0.50", per="day")]) as guard:
        guarded = contract(guard, price="$0.20")
        tenant = rg.Budget.money("$0.30", per="day", scope="tenant:acme")
        with guard.run("r1", budgets=[tenant]):
            guarded.call(Upstream())
        with (
            guard.run("r2", budgets=[tenant]),
            pytest.raises(rg.BudgetExceeded, match="tenant 'acme'"),
        ):
            guarded.call(Upstream())
        guarded.call(Upstream())
        with pytest.raises(rg.BudgetExceeded, match="global day budget"):
            guarded.call(Upstream())


def test_a_new_day_is_a_new_window(guard: rg.Guard, clock: FakeClock) -> None:
    guarded = contract(guard, price="$0.50", max_per_day="$1.00")
    guarded.call(Upstream())
    guarded.call(Upstream())
    with pytest.raises(rg.BudgetExceeded):
        guarded.call(Upstream())
    clock.advance(3600)  # 23:00 -> 00:00 the next day
    guarded.call(Upstream())


def test_run_call_cap(guard: rg.Guard) -> None:
    guarded = contract(guard)
    with guard.run("r", max_calls=1):
        guarded.call(Upstream())
        with pytest.raises(rg.BudgetExceeded, match="run's max_calls"):
            guarded.call(Upstream())


def test_a_failed_call_is_charged_its_estimate_and_reraised(guard: rg.Guard) -> None:
    guarded = contract(guard, price="$0.10")

    def broken() -> None:
        raise KeyError("bug in the caller")

    with guard.run("r") as run:
        with pytest.raises(KeyError):
            guarded.call(broken)
        assert rg.parse_money("$0.10") == run.spent()


class HTTPError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def test_a_4xx_is_released_and_not_retried(guard: rg.Guard) -> None:
    calls = 0
    guarded = contract(guard, price="$0.10", retry=rg.Retry(5))

    def rejected() -> None:
        nonlocal calls
        calls += 1
        raise HTTPError(400)

    with guard.run("r") as run:
        with pytest.raises(HTTPError):
            guarded.call(rejected)
        assert rg.Money(0) == run.spent()
    assert 1 == calls
    assert [("released", 0)] == [(r.outcome, r.actual) for r in guard.ledger.spend()]


def test_actual_cost_from_a_dynamic_price(guard: rg.Guard) -> None:
    priced = contract(
        guard,
        price=rg.Dynamic(lambda call: "$0.05", lambda call, result: f"${result}"),
        max_calls_per_run=10,
    )
    events: list[rg.Event] = []
    guard.subscribe(events.append)
    with guard.run("r") as run:
        priced.call(lambda: "0.03")
        assert rg.parse_money("$0.03") == run.spent()
        priced.call(lambda: "0.08")
        assert rg.parse_money("$0.11") == run.spent()
    above = [e for e in events if isinstance(e, rg.CostAboveEstimate)]
    assert [(50_000_000, 80_000_000)] == [(e.estimate, e.actual) for e in above]


def test_a_price_that_cannot_read_the_result_charges_the_estimate(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    priced = contract(
        guard, price=rg.Dynamic(lambda call: "$0.05", lambda call, result: result["usage"])
    )
    with guard.run("r") as run, caplog.at_level(logging.WARNING):
        assert "no usage" == priced.call(lambda: "no usage")
        assert rg.parse_money("$0.05") == run.spent()
    assert "charging the estimate" in caplog.text


def test_a_token_budget_needs_a_token_estimate(guard: rg.Guard) -> None:
    guarded = contract(guard, max_tokens_per_run=1000)
    with pytest.raises(rg.ContractError, match="token estimate"):
        guarded.call(Upstream())


def test_prices_in_another_currency_need_a_rate(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with rg.Guard(url, clock=clock, exchange_rates={"EUR": "1.10"}) as guard:
        whois = contract(guard, "whois", price="€0.11", max_calls_per_run=5)
        with guard.run("t") as run:
            whois.call(Upstream())
            assert rg.parse_money("$0.121") == run.spent()
    with (
        rg.Guard(url, clock=clock) as guard,
        pytest.raises(rg.ContractError, match="exchange_rates"),
    ):
        contract(guard, "whois", price="€0.11", max_calls_per_run=5)


def test_a_ledger_keeps_its_currency(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    rg.Guard(url, currency="EUR").close()
    with pytest.raises(rg.ContractError, match="counts EUR"):
        rg.Guard(url, currency="USD")
    with rg.Guard(url) as guard:
        assert "EUR" == guard.currency


def test_redeclaring_a_contract(guard: rg.Guard) -> None:
    first = contract(guard, "x", max_calls_per_run=5)
    assert first is contract(guard, "x", max_calls_per_run=5)
    with pytest.raises(rg.ContractError, match="already declared"):
        contract(guard, "x", max_calls_per_run=6)


def test_exchange_rates_are_validated() -> None:
    with pytest.raises(rg.ContractError, match="positive"):
        rg.Guard("memory://", exchange_rates={"EUR": "-1"})
    with pytest.raises(rg.ContractError, match=r"not 1\.1"):
        rg.Guard("memory://", exchange_rates={"EUR": 1.1})  # type: ignore[dict-item]


def test_status_lists_counters_with_their_limits(guard: rg.Guard) -> None:
    guarded = contract(guard, "record-enrich", max_calls_per_run=80, max_per_day="$1.00")
    with guard.run("nightly"):
        guarded.call(Upstream())
    found = {s.key: s for s in guard.status()}
    day = found["contract:record-enrich|money|day:2026-11-22"]
    assert (2_000_000, 0, 1_000_000_000) == (day.settled, day.held, day.limit)
    assert Decimal("0.002") == Decimal(str(day.fill))


def test_a_failing_listener_never_breaks_a_call(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: rg.Event) -> None:
        raise RuntimeError("listener bug")

    guard.subscribe(explode)
    with caplog.at_level(logging.ERROR):
        assert 5 == contract(guard).call(lambda: 5)
    assert "listener" in caplog.text


def test_settled_events_carry_the_counters(guard: rg.Guard) -> None:
    events: list[rg.Settled] = []
    guard.subscribe(lambda e: events.append(e) if isinstance(e, rg.Settled) else None)
    contract(guard, max_per_day="$1").call(Upstream())
    (event,) = events
    assert "settled" == event.outcome
    keys = {line.key for line, _ in event.counters}
    assert "contract:enrich|money|day:2026-11-22" in keys


def test_low_level_hold_api(guard: rg.Guard) -> None:
    guarded = contract(guard, price="$0.10", max_calls_per_run=2)
    with guard.run("r") as run:
        first = guarded.hold()
        second = guarded.hold("$0.05")
        with pytest.raises(rg.BudgetExceeded):
            guarded.hold()
        first.settle(rg.Cost(rg.parse_money("$0.07")))
        second.release()
        second.release()  # ending twice is harmless
        assert rg.parse_money("$0.07") == run.spent()


def test_an_unreachable_ledger_refuses_the_call(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "ledger.db"
    guard = rg.Guard(f"sqlite:///{path}", clock=clock)
    guarded = contract(guard)
    upstream = Upstream()
    guarded.call(upstream)
    guard.ledger.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.mkdir()  # the ledger path is now a folder: SQLite cannot open it
    with pytest.raises(rg.LedgerUnavailable):
        guarded.call(upstream)
    assert 1 == upstream.calls


def test_errors_pickle_with_their_fields() -> None:
    import pickle

    error = rg.BudgetExceeded(
        budget="b",
        unit="money",
        limit="$1.00",
        spent="$1.00",
        held="$0.00",
        asked="$0.01",
        window="day:x",
        hint="h",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (str(error), "day:x") == (str(copy), copy.window)


def test_a_dev_guard_applies_the_dev_caps(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dev key pointed at production costs cents: RUNAWAY_GUARD_ENV picks the caps."""
    monkeypatch.setenv("RUNAWAY_GUARD_ENV", "dev")
    with rg.Guard("memory://", clock=clock) as guard:
        assert "dev" == guard.environment
        upstream = Upstream()
        paid = contract(
            guard,
            price="$0.05",
            max_calls_per_run=1000,
            environments={"dev": {"max_calls_per_run": 10}},
        )
        with guard.run("local-test") as run:
            for _ in range(10):
                paid.call(upstream)
            with pytest.raises(rg.BudgetExceeded, match="max_calls_per_run"):
                paid.call(upstream)
            assert (10, rg.parse_money("$0.50")) == (upstream.calls, run.spent())


def test_a_run_can_nest_in_the_implicit_process_run(guard: rg.Guard) -> None:
    guarded = contract(guard, max_calls_per_run=2)
    guarded.call(Upstream())
    with guard.run("inner", parent=guard.current_run()) as inner:
        assert inner.path.startswith("process:")
        guarded.call(Upstream())
        with pytest.raises(rg.BudgetExceeded, match="process:"):
            guarded.call(Upstream())


def test_a_ledger_lost_after_the_call_keeps_the_result(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The call already happened: losing its result would only make the caller pay again."""
    path = tmp_path / "ledger.db"
    guard = rg.Guard(f"sqlite:///{path}", clock=clock)
    limited = contract(guard, concurrency=1)

    def paid_then_ledger_lost() -> int:
        guard.ledger.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.mkdir()
        return 42

    with caplog.at_level(logging.WARNING):
        assert 42 == limited.call(paid_then_ledger_lost)
    assert "will be reaped at its estimate" in caplog.text
    assert "could not free a concurrency slot" in caplog.text


def test_a_free_flat_price_needs_a_call_bound(guard: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="nothing bounds the number of calls"):
        contract(guard, "free", price="$0", max_per_run="$1")
    free = contract(guard, "free-but-counted", price="$0", max_calls_per_run=2)
    free.call(Upstream())


def test_a_zero_estimate_without_an_integer_bound_is_refused(guard: rg.Guard) -> None:
    """A money cap bounds nothing when a call's estimate is $0: fail closed."""
    upstream = Upstream()
    priced = contract(guard, "maybe-free", price=rg.Dynamic(lambda call: "$0"), max_per_run="$1")
    with pytest.raises(rg.ContractError, match="nothing would bound how many"):
        priced.call(upstream)
    assert 0 == upstream.calls
    counted = contract(
        guard, "counted", price=rg.Dynamic(lambda call: "$0"), max_per_run="$1", max_calls_per_run=3
    )
    counted.call(upstream)
    assert 1 == upstream.calls


def test_an_actual_cost_in_an_unknown_currency_keeps_the_result(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    limited = contract(
        guard,
        price=rg.Dynamic(lambda call: "$0.05", lambda call, result: "€0.04"),
        max_calls_per_run=5,
        concurrency=1,
    )
    with guard.run("r") as run, caplog.at_level(logging.WARNING):
        assert 7 == limited.call(lambda: 7)
        assert rg.parse_money("$0.05") == run.spent()  # the estimate, since € is unknown
    assert "no exchange rate" in caplog.text
    assert [] == guard.ledger.holds()
    assert 0 == limited.in_flight()
