"""Fixtures for the guarded HTTP clients: the fake API server and token-priced contracts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from genai_prices import Usage, calc_price

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.http.fake_api import FakeAPI

OPENAI_KEY = "sk-test-7f3a9c2e-openai-never-stored"
ANTHROPIC_KEY = "sk-ant-test-5d81b0aa-never-stored"

T = TypeVar("T")


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    """A fake OpenAI/Anthropic API on 127.0.0.1, started and stopped per test."""
    with FakeAPI() as server:
        yield server


@pytest.fixture
def guard(clock: FakeClock) -> Iterator[rg.Guard]:
    with rg.Guard("memory://", clock=clock) as guard:
        yield guard


def llm(guard: rg.Guard, name: str = "chat", **options: Any) -> rg.Contract:
    """A token-priced contract with the provider cap filled in."""
    options.setdefault("price", rg.TokenPrice())
    options.setdefault("max_per_run", "$5.00")
    options.setdefault("provider_cap", "test: provider usage limit, $25/month")
    return guard.contract(name, **options)


def nanos(
    usage: Usage,
    model: str,
    provider: str,
    clock: FakeClock,
    context: dict[str, str] | None = None,
) -> int:
    """What genai_prices.calc_price charges for `usage`, rounded up to a nano-dollar."""
    result = calc_price(
        usage,
        model,
        provider_id=provider,
        genai_request_timestamp=clock.datetime(),
        price_context=context,
    )
    total: Decimal = result.total_price
    return rg.Money.from_decimal(total).nanos


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """SDK clients a test built, closed after it."""
    clients: list[Any] = []
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
async def async_opened() -> AsyncIterator[list[Any]]:
    """Async SDK clients a test built, closed after it."""
    clients: list[Any] = []
    yield clients
    for client in clients:
        await client.close()


def sdk_maker(
    sdk_class: Callable[..., T],
    base_url: str,
    api_key: str,
    opened: list[Any],
    *,
    asynchronous: bool = False,
) -> Callable[..., T]:
    """Builds SDK clients on the fake API, guarded by a contract: ``make(contract)``."""

    def make(contract: rg.Contract, **options: Any) -> T:
        guarded = contract.async_http_client() if asynchronous else contract.http_client()
        client = sdk_class(api_key=api_key, base_url=base_url, http_client=guarded, **options)
        opened.append(client)
        return client

    return make
