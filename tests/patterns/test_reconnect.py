"""Bounded reconnects: a counted number of reconnects, with capped backoff on the guard clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.helpers import contract
from tests.patterns._fakes import ProviderError, charged


class Feed:
    """A price feed that drops its connection after `drops[n]` events on connection n."""

    def __init__(self, total: int, drops: list[int | None], error: Exception | None = None):
        self.total = total
        self.drops = drops
        self.error = error
        self.connections = 0
        self.closed = 0
        self.cursor = 0  # the consumer's resume position (a Last-Event-ID)

    def connect(self) -> Iterator[int]:
        self.connections += 1
        drop_after = (
            self.drops[self.connections - 1] if self.connections <= len(self.drops) else None
        )
        return self._events(drop_after)

    def _events(self, drop_after: int | None) -> Iterator[int]:
        sent = 0
        try:
            while self.cursor < self.total:
                if drop_after is not None and sent == drop_after:
                    raise self.error or ConnectionResetError("stream dropped")
                sent += 1
                self.cursor += 1
                yield self.cursor
        finally:
            self.closed += 1


def test_a_dropped_stream_is_reopened_and_resumed(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=6, drops=[2, 3])
    events = list(mem.reconnect(feed.connect, max_reconnects=3, backoff=0.5, jitter="none"))
    assert ([1, 2, 3, 4, 5, 6], 3) == (events, feed.connections)
    assert [0.5, 1.0] == clock.sleeps


def test_backoff_doubles_up_to_its_cap(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=1, drops=[0] * 6)
    list(mem.reconnect(feed.connect, max_reconnects=6, backoff=1, backoff_cap=4, jitter="none"))
    assert [1.0, 2.0, 4.0, 4.0, 4.0, 4.0] == clock.sleeps


def test_full_jitter_stays_within_the_backoff(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=1, drops=[0] * 4)
    list(mem.reconnect(feed.connect, max_reconnects=4, backoff=1, backoff_cap=3))
    assert all(0 <= pause <= bound for pause, bound in zip(clock.sleeps, [1, 2, 3, 3], strict=True))


def test_reconnects_run_out_loudly(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=100, drops=[1] * 10)
    received: list[int] = []
    stream = mem.reconnect(feed.connect, max_reconnects=3, jitter="none", name="prices")
    with pytest.raises(rg.ReconnectsExhausted) as info:
        received.extend(stream)
    assert (4, [1, 2, 3, 4], 3) == (feed.connections, received, len(clock.sleeps))
    exhausted = info.value
    assert isinstance(exhausted, rg.RetriesExhausted)
    assert ("attempts", 4) == (exhausted.reason, len(exhausted.attempts))
    assert isinstance(exhausted.__cause__, ConnectionResetError)
    assert "stream 'prices' gave up after 4 failed connection(s)" in str(exhausted)


def test_zero_reconnects_means_one_connection(mem: rg.Guard) -> None:
    feed = Feed(total=5, drops=[1])
    with pytest.raises(rg.ReconnectsExhausted):
        list(mem.reconnect(feed.connect, max_reconnects=0))
    assert 1 == feed.connections


def test_a_client_error_is_not_reconnected(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=5, drops=[0], error=ProviderError(401))
    with pytest.raises(ProviderError):
        list(mem.reconnect(feed.connect, max_reconnects=5))
    assert (1, []) == (feed.connections, clock.sleeps)


def test_retry_after_is_honoured_up_to_its_cap(mem: rg.Guard, clock: FakeClock) -> None:
    feed = Feed(total=2, drops=[0], error=ProviderError(429, retry_after="7"))
    assert [1, 2] == list(mem.reconnect(feed.connect, max_reconnects=2))
    assert [7.0] == clock.sleeps
    slow = Feed(total=2, drops=[0], error=ProviderError(429, retry_after="3600"))
    with pytest.raises(rg.ReconnectsExhausted, match="asked to wait 3600s"):
        list(mem.reconnect(slow.connect, max_reconnects=2))
    assert [7.0] == clock.sleeps


def test_a_contract_prices_every_connection(mem: rg.Guard) -> None:
    feed = Feed(total=3, drops=[1, 1])
    stream = contract(mem, "feed-connect", price="$0.01", max_calls_per_run=10)
    assert [1, 2, 3] == list(mem.reconnect(feed.connect, max_reconnects=5, contract=stream))
    assert rg.parse_money("$0.03") == charged(mem)


def test_leaving_the_loop_closes_the_stream_without_reconnecting(mem: rg.Guard) -> None:
    feed = Feed(total=10, drops=[])
    for event in mem.reconnect(feed.connect, max_reconnects=3):
        if event == 2:
            break
    assert (1, 1) == (feed.connections, feed.closed)


def test_a_negative_bound_is_refused(mem: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="max_reconnects must not be negative"):
        mem.reconnect(Feed(1, []).connect, max_reconnects=-1)


async def test_areconnect_reopens_an_async_stream(mem: rg.Guard, clock: FakeClock) -> None:
    connections = 0

    async def connect() -> AsyncIterator[int]:
        nonlocal connections
        connections += 1
        yield connections
        if connections < 3:
            raise TimeoutError("read timed out")

    events = [e async for e in mem.areconnect(connect, max_reconnects=3, jitter="none")]
    assert ([1, 2, 3], [0.5, 1.0]) == (events, clock.sleeps)


async def test_areconnect_awaits_a_connect_coroutine_and_gives_up(mem: rg.Guard) -> None:
    opened = 0

    async def events() -> AsyncIterator[str]:
        raise ConnectionResetError("dropped")
        yield "never"

    async def connect() -> AsyncIterator[str]:
        nonlocal opened
        opened += 1
        return events()

    stream = contract(mem, "sse", price="$0.002", max_calls_per_run=10)
    with pytest.raises(rg.ReconnectsExhausted):
        async for _ in mem.areconnect(connect, max_reconnects=2, contract=stream):
            pass
    assert (3, rg.parse_money("$0.006")) == (opened, charged(mem))
