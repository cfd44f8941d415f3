"""Bounded fan-out: an item bound before any call, a concurrency bound, ordered results."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time

import pytest

import runaway_guard as rg
from tests.helpers import contract
from tests.patterns._fakes import Provider, ProviderError

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")


def test_results_come_back_in_input_order_whatever_order_calls_finish(mem: rg.Guard) -> None:
    finished = [threading.Event() for _ in range(3)]

    def work(n: int) -> int:
        # Item 2 finishes first, then 1, then 0.
        if n < 2:
            assert finished[n + 1].wait(5)
        finished[n].set()
        return n * 10

    assert [0, 10, 20] == mem.map(work, [0, 1, 2], max_items=3, concurrency=3)


def test_an_empty_list_calls_nothing_and_touches_no_ledger(mem: rg.Guard) -> None:
    provider = Provider()
    paid = contract(mem)(provider)
    assert [] == mem.map(paid, [], max_items=50, concurrency=3)
    assert (0, [], []) == (provider.calls, list(mem.ledger.spend()), mem.status())


def test_a_list_longer_than_max_items_is_rejected_whole(mem: rg.Guard) -> None:
    provider = Provider()
    paid = contract(mem)(provider)
    with pytest.raises(rg.TooManyItems) as info:
        mem.map(paid, range(51), max_items=50, concurrency=3)
    assert (0, 51, 50) == (provider.calls, info.value.count, info.value.max_items)
    assert "51 items > max_items=50: rejected whole, nothing was called" in str(info.value)


def test_too_many_items_is_a_contract_error_a_scheduler_must_not_retry() -> None:
    assert issubclass(rg.TooManyItems, rg.ContractError)
    assert issubclass(rg.TooManyItems, rg.NonRetriableError)
    error = rg.TooManyItems("x", count=2, max_items=1)
    assert rg.Kind.NON_RETRIABLE == rg.classify(error, now=0).kind


def test_an_endless_iterator_is_read_one_past_the_bound_only(mem: rg.Guard) -> None:
    source = itertools.count()
    with pytest.raises(rg.TooManyItems, match="more than 5 items"):
        mem.map(str, source, max_items=5, concurrency=2)
    assert 6 == next(source)


def test_max_items_of_zero_admits_only_an_empty_list(mem: rg.Guard) -> None:
    assert [] == mem.map(str, [], max_items=0, concurrency=1)
    with pytest.raises(rg.TooManyItems):
        mem.map(str, [1], max_items=0, concurrency=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_items": 5, "concurrency": 0}, "concurrency must be at least 1"),
        ({"max_items": -1, "concurrency": 1}, "max_items must not be negative"),
        ({"max_items": 2.5, "concurrency": 1}, "max_items must be a whole number"),
        ({"max_items": 5, "concurrency": 1, "on_error": "ignore"}, "on_error must be"),
    ],
)
def test_bad_bounds_are_contract_errors(
    mem: rg.Guard, options: dict[str, object], message: str
) -> None:
    with pytest.raises(rg.ContractError, match=message):
        mem.map(str, [1], **options)  # type: ignore[arg-type]


def test_a_string_is_not_taken_for_a_list_of_items(mem: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="not one string"):
        mem.map(str, "prompts", max_items=100, concurrency=1)


def test_no_more_than_concurrency_calls_are_in_flight(mem: rg.Guard) -> None:
    lock = threading.Lock()
    full = threading.Event()
    now = most = 0

    def work(n: int) -> int:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
            if now == 3:
                full.set()
        full.wait(2)  # hold the slot until three calls overlap: a fourth would show
        time.sleep(0.01)
        with lock:
            now -= 1
        return n

    assert list(range(12)) == mem.map(work, range(12), max_items=12, concurrency=3)
    assert 3 == most


def test_each_call_runs_in_a_copy_of_the_callers_context(mem: rg.Guard) -> None:
    paid = contract(mem, price="$0.05", max_calls_per_run=10)
    TENANT.set("acme")

    @paid
    def work(n: int) -> str:
        return f"{TENANT.get()}:{n}"

    with mem.run("campaign-7") as run:
        assert ["acme:0", "acme:1", "acme:2"] == mem.map(work, range(3), max_items=3, concurrency=3)
        assert rg.parse_money("$0.15") == run.spent()


def test_stop_policy_stops_scheduling_after_the_first_failure(mem: rg.Guard) -> None:
    provider = Provider(fail=lambda n, _: ProviderError(400) if n == 4 else None)
    with pytest.raises(rg.FanOutFailed) as info:
        mem.map(provider, range(10), max_items=10, concurrency=1)
    failed = info.value
    assert 4 == provider.calls
    assert {0: "result:0", 1: "result:1", 2: "result:2"} == failed.results
    assert [3] == list(failed.errors)
    assert list(range(4, 10)) == failed.not_started
    assert failed.errors[3] is failed.__cause__
    assert "1 of 10 items failed (first: item 3" in str(failed)


def test_continue_policy_calls_every_item_and_collects_failures(mem: rg.Guard) -> None:
    provider = Provider(fail=lambda _, item: ProviderError(422) if item in (1, 3) else None)
    with pytest.raises(rg.FanOutFailed) as info:
        mem.map(provider, range(5), max_items=5, concurrency=2, on_error="continue")
    failed = info.value
    assert 5 == provider.calls
    assert ([0, 2, 4], [1, 3], []) == (
        sorted(failed.results),
        sorted(failed.errors),
        failed.not_started,
    )


def test_a_guard_refusal_stops_scheduling_even_when_continuing(mem: rg.Guard) -> None:
    provider = Provider()
    paid = contract(mem, max_calls_per_run=3)(provider)
    with mem.run("r"), pytest.raises(rg.FanOutFailed) as info:
        mem.map(paid, range(10), max_items=10, concurrency=1, on_error="continue")
    assert 3 == provider.calls
    assert isinstance(info.value.__cause__, rg.BudgetExceeded)
    assert list(range(4, 10)) == info.value.not_started


def test_an_interrupt_in_a_worker_is_raised_as_it_is(mem: rg.Guard) -> None:
    def work(n: int) -> int:
        if n == 1:
            raise KeyboardInterrupt
        return n

    with pytest.raises(KeyboardInterrupt):
        mem.map(work, range(3), max_items=3, concurrency=1)


async def test_amap_returns_results_in_order_within_the_bounds(mem: rg.Guard) -> None:
    running = most = 0

    async def work(n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (10 - n))
        running -= 1
        return n * 2

    assert [n * 2 for n in range(10)] == await mem.amap(
        work, range(10), max_items=10, concurrency=4
    )
    assert 4 == most


async def test_amap_rejects_an_oversized_list_and_calls_nothing_for_an_empty_one(
    mem: rg.Guard,
) -> None:
    calls = 0

    async def work(n: int) -> int:
        nonlocal calls
        calls += 1
        return n

    assert [] == await mem.amap(work, [], max_items=2, concurrency=1)
    with pytest.raises(rg.TooManyItems):
        await mem.amap(work, [1, 2, 3], max_items=2, concurrency=1)
    assert 0 == calls


async def test_amap_stops_scheduling_after_the_first_failure(mem: rg.Guard) -> None:
    started: list[int] = []

    async def work(n: int) -> int:
        started.append(n)
        if n == 2:
            raise ProviderError(400)
        return n

    with pytest.raises(rg.FanOutFailed) as info:
        await mem.amap(work, range(6), max_items=6, concurrency=1)
    assert ([0, 1, 2], {0: 0, 1: 1}, [3, 4, 5]) == (
        started,
        info.value.results,
        info.value.not_started,
    )


async def test_cancelling_amap_cancels_the_calls_in_flight(mem: rg.Guard) -> None:
    cancelled = 0
    entered = asyncio.Event()

    async def work(n: int) -> int:
        nonlocal cancelled
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return n

    task = asyncio.ensure_future(mem.amap(work, range(5), max_items=5, concurrency=2))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 2 == cancelled


async def test_amap_tasks_see_the_enclosing_run(mem: rg.Guard) -> None:
    paid = contract(mem, price="$0.01", max_calls_per_run=5)

    @paid
    async def work(n: int) -> int:
        return n

    async with mem.run("async-batch") as run:
        assert [0, 1, 2, 3] == await mem.amap(work, range(4), max_items=4, concurrency=2)
        assert rg.parse_money("$0.04") == run.spent()
