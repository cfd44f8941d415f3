"""Singleflight: concurrent identical requests in one process share one paid call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

import runaway_guard as rg
from tests.helpers import contract
from tests.patterns._fakes import Provider, ProviderError, charged

T = TypeVar("T")


def together(callers: int, fn: Callable[[int], T]) -> list[T]:
    """Run `fn(n)` on `callers` threads released at once, as a stampede arrives."""
    start = threading.Barrier(callers)

    def caller(n: int) -> T:
        start.wait(10)
        return fn(n)

    with ThreadPoolExecutor(callers) as pool:
        return list(pool.map(caller, range(callers)))


def test_a_cache_miss_stampede_makes_one_paid_call(mem: rg.Guard) -> None:
    provider = Provider()
    calls = 0

    @contract(mem, "geocode", price="$0.005")
    def geocode(address: str) -> dict[str, str]:
        nonlocal calls
        time.sleep(0.2)
        calls += 1
        return {"address": address, "via": str(provider(address))}

    flights = rg.Singleflight()
    results = together(50, lambda _: flights.do("Main St 1", geocode, "Main St 1"))
    assert 1 == calls
    assert all(result is results[0] for result in results)
    assert rg.parse_money("$0.005") == charged(mem)
    assert 0 == flights.in_flight()


def test_waiters_share_the_leaders_exception() -> None:
    flights = rg.Singleflight()
    calls = 0

    def failing() -> None:
        nonlocal calls
        calls += 1
        time.sleep(0.2)
        raise ProviderError(500)

    def attempt(_: int) -> str:
        try:
            flights.do("k", failing)
        except ProviderError as exc:
            return str(exc)
        return "no error"

    outcomes = together(20, attempt)
    assert (["HTTP 500"] * 20, 1) == (outcomes, calls)


def test_a_call_after_the_flight_ended_is_a_new_call() -> None:
    flights = rg.Singleflight()
    provider = Provider()
    flights.do("k", provider, 1)
    flights.do("k", provider, 2)
    assert [1, 2] == provider.requests


def test_different_keys_fly_separately() -> None:
    flights = rg.Singleflight()
    provider = Provider(delay=0.2)
    results = together(4, lambda n: flights.do(n % 2, provider, n % 2))
    assert ["result:0", "result:1", "result:0", "result:1"] == results
    assert 2 == provider.calls


async def test_a_hundred_tasks_share_one_call() -> None:
    flights = rg.Singleflight()
    calls = 0

    async def lookup(sku: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return sku.lower()

    results = await asyncio.gather(*(flights.ado("SKU-1", lookup, "SKU-1") for _ in range(100)))
    assert (["sku-1"] * 100, 1) == (results, calls)


async def test_a_task_can_wait_for_a_flight_led_by_a_thread() -> None:
    flights = rg.Singleflight()
    started = threading.Event()
    release = threading.Event()
    calls = 0

    def blocking() -> str:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(5)
        return "from the thread"

    thread_result = asyncio.get_running_loop().run_in_executor(None, flights.do, "k", blocking)
    assert await asyncio.to_thread(started.wait, 5)

    async def never() -> str:
        raise AssertionError("the waiter must not call")

    waiter = asyncio.ensure_future(flights.ado("k", never))
    await asyncio.sleep(0.01)
    release.set()
    assert ("from the thread", "from the thread", 1) == (await waiter, await thread_result, calls)


async def test_a_cancelled_leader_hands_the_call_to_a_waiter() -> None:
    flights = rg.Singleflight()
    calls = 0
    entered = asyncio.Event()

    async def lookup() -> str:
        nonlocal calls
        calls += 1
        entered.set()
        await asyncio.sleep(0.05 if calls > 1 else 60)
        return "answer"

    leader = asyncio.ensure_future(flights.ado("k", lookup))
    await entered.wait()
    waiter = asyncio.ensure_future(flights.ado("k", lookup))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert ("answer", 2) == (await waiter, calls)
