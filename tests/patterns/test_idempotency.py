"""Idempotent replay: one paid call per key; repeats get the stored result at $0."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import runaway_guard as rg
from runaway_guard.ledger import Claim, MemoryLedger
from runaway_guard.testing import FakeClock
from tests.helpers import contract
from tests.patterns._fakes import Provider, ProviderError, charged, paid_calls

DAY = 24 * 3600


def keyed(guard: rg.Guard, name: str = "sms", **options: Any) -> rg.Contract:
    options.setdefault("price", "$0.0075")
    options.setdefault("idempotency", rg.Idempotency(key=lambda payload: f"evt:{payload}"))
    return contract(guard, name, **options)


def test_a_repeat_of_a_key_replays_the_stored_result_at_no_cost(guard: rg.Guard) -> None:
    provider = Provider()
    send = keyed(guard)(provider)
    assert "result:42" == send(42)
    assert "result:42" == send(42)
    assert 1 == provider.calls
    assert rg.parse_money("$0.0075") == charged(guard)
    assert 1 == len(list(guard.ledger.spend()))


def test_different_keys_are_different_calls(guard: rg.Guard) -> None:
    provider = Provider()
    send = keyed(guard)(provider)
    assert ["result:1", "result:2"] == [send(1), send(2)]
    assert 2 == provider.calls


def test_keys_belong_to_their_contract(mem: rg.Guard) -> None:
    provider = Provider()
    sms = keyed(mem, "sms")(provider)
    email = keyed(mem, "email")(provider)
    sms(7)
    email(7)
    assert 2 == provider.calls


def test_a_replay_returns_the_decoded_copy(mem: rg.Guard) -> None:
    send = keyed(mem)(lambda payload: {"id": payload, "parts": (1, 2)})
    assert {"id": 1, "parts": (1, 2)} == send(1)
    assert {"id": 1, "parts": [1, 2]} == send(1)


def test_call_once_takes_the_key_per_call(mem: rg.Guard) -> None:
    provider = Provider()
    paid = contract(mem)
    assert "result:a" == paid.call_once("order-1", provider, "a")
    assert "result:a" == paid.call_once("order-1", provider, "b")
    assert "result:b" == paid.call_once("order-2", provider, "b")
    assert ["a", "b"] == provider.requests


def test_the_stored_result_expires_after_its_ttl(guard: rg.Guard, clock: FakeClock) -> None:
    provider = Provider()
    send = keyed(guard)(provider)
    send(1)
    clock.advance(DAY - 1)
    send(1)
    assert 1 == provider.calls
    clock.advance(2)
    send(1)
    assert 2 == provider.calls


def test_a_shorter_ttl_is_honoured(mem: rg.Guard, clock: FakeClock) -> None:
    provider = Provider()
    send = keyed(mem, idempotency=rg.Idempotency(key=str, ttl=60))(provider)
    send(1)
    clock.advance(61)
    send(1)
    assert 2 == provider.calls


def test_a_failed_first_call_lets_the_next_one_run(guard: rg.Guard) -> None:
    provider = Provider(fail=lambda n, _: ProviderError(503) if n == 1 else None)
    send = keyed(guard)(provider)
    with pytest.raises(ProviderError):
        send(5)
    assert "result:5" == send(5)
    assert "result:5" == send(5)
    assert 2 == provider.calls


def test_a_replay_does_not_count_against_the_run_bounds(mem: rg.Guard) -> None:
    provider = Provider()
    send = keyed(mem, max_calls_per_run=1)(provider)
    with mem.run("webhooks"):
        send(1)
        assert "result:1" == send(1)
        with pytest.raises(rg.BudgetExceeded):
            send(2)
    assert 1 == provider.calls


def test_a_duplicate_waits_then_gives_up_while_the_first_is_in_flight(
    guard: rg.Guard, clock: FakeClock
) -> None:
    provider = Provider()
    send = keyed(guard, idempotency=rg.Idempotency(key=str, wait=10))(provider)
    start = clock.now()
    taken = guard.ledger.claim(
        "idem:contract:sms:3", owner="worker-b", now=start, lease_until=start + 900
    )
    assert rg.ledger.ClaimStatus.CLAIMED == taken.status
    with pytest.raises(rg.DuplicateInFlight) as info:
        send(3)
    assert 0 == provider.calls
    assert "3" == info.value.key
    assert 10 >= clock.now() - start > 9
    assert "still in flight" in str(info.value)
    assert "nothing was called" in str(info.value)


def test_a_claim_whose_holder_died_is_taken_over_after_its_lease(
    guard: rg.Guard, clock: FakeClock
) -> None:
    provider = Provider()
    send = keyed(guard, hold_lease=60)(provider)
    start = clock.now()
    guard.ledger.claim("idem:contract:sms:evt:9", owner="dead", now=start, lease_until=start + 60)
    with pytest.raises(rg.DuplicateInFlight):
        send(9)
    clock.advance(61)
    assert "result:9" == send(9)
    assert 1 == provider.calls


def test_a_duplicate_on_another_guard_waits_for_the_result(tmp_path: Path) -> None:
    """Two guards on one SQLite file: the second polls the ledger until the first is done."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    polling = threading.Event()

    class SignallingClock(rg.SystemClock):
        def sleep(self, seconds: float) -> None:
            polling.set()
            super().sleep(seconds)

    provider = Provider()
    claimed = threading.Event()

    def slow(payload: object) -> object:
        claimed.set()
        assert polling.wait(10), "the duplicate never started waiting"
        return provider(payload)

    with rg.Guard(url) as first, rg.Guard(url, clock=SignallingClock()) as second:
        send_first = keyed(first)(slow)
        send_second = keyed(second)(provider)
        with ThreadPoolExecutor(1) as pool:
            leader = pool.submit(send_first, 11)
            assert claimed.wait(10)  # the leader holds the key and is making the call
            assert "result:11" == send_second(11)
            assert "result:11" == leader.result(10)
    assert 1 == provider.calls


def test_a_hundred_threads_with_one_key_make_one_paid_call(tmp_path: Path) -> None:
    with rg.Guard(f"sqlite:///{tmp_path / 'ledger.db'}") as guard:
        provider = Provider(delay=0.05)
        send = keyed(guard)(provider)
        with ThreadPoolExecutor(100) as pool:
            results = list(pool.map(lambda _: send("same"), range(100)))
        assert ["result:same"] * 100 == results
        assert (1, 1) == (provider.calls, paid_calls(guard))
        assert rg.parse_money("$0.0075") == charged(guard)


async def test_a_hundred_tasks_with_one_key_make_one_paid_call(mem: rg.Guard) -> None:
    calls = 0

    async def slow(payload: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return payload.upper()

    send = keyed(mem)(slow)
    results = await asyncio.gather(*(send("same") for _ in range(100)))
    assert (["SAME"] * 100, 1) == (results, calls)


async def test_acall_once_replays_for_coroutines(guard: rg.Guard) -> None:
    calls = 0

    async def work(n: int) -> int:
        nonlocal calls
        calls += 1
        return n * 2

    paid = contract(guard)
    assert [4, 4] == [await paid.acall_once("k", work, 2), await paid.acall_once("k", work, 3)]
    assert 1 == calls


async def test_a_failed_async_call_frees_the_key(mem: rg.Guard) -> None:
    calls = 0

    async def flaky(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ProviderError(502)
        return n

    send = keyed(mem)(flaky)
    with pytest.raises(ProviderError):
        await send(1)
    assert [1, 1] == [await send(1), await send(1)]
    assert 2 == calls


def test_a_kill_switch_refuses_replays_too(mem: rg.Guard) -> None:
    send = keyed(mem)(Provider())
    send(1)
    mem.kill("contract:sms", "incident 42")
    with pytest.raises(rg.KillSwitchEngaged):
        send(1)


def test_a_result_the_codec_cannot_store_is_a_loud_error(mem: rg.Guard) -> None:
    provider = Provider()
    send = keyed(mem)(lambda payload: {provider(payload), "not json"})
    with pytest.raises(rg.ContractError, match="was made and charged, but its result"):
        send(1)
    with pytest.raises(rg.ContractError):
        send(1)
    assert 2 == provider.calls  # the key was freed: nothing was stored to replay


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class PointCodec:
    def encode(self, value: Any) -> bytes:
        return f"{value.x},{value.y}".encode()

    def decode(self, data: bytes) -> Any:
        x, y = data.decode().split(",")
        return Point(int(x), int(y))


def test_the_codec_is_pluggable(mem: rg.Guard) -> None:
    send = keyed(mem, idempotency=rg.Idempotency(key=str, codec=PointCodec()))(
        lambda n: Point(n, n + 1)
    )
    send(1)
    replayed = send(1)
    assert (Point, 1, 2) == (type(replayed), replayed.x, replayed.y)


def test_a_stored_result_the_codec_cannot_read_is_a_loud_error(mem: rg.Guard) -> None:
    owner = "writer"
    mem.ledger.claim("idem:contract:sms:evt:1", owner=owner, now=mem.clock.now(), lease_until=1e12)
    mem.ledger.complete(
        "idem:contract:sms:evt:1",
        owner=owner,
        result=b"\x00junk",
        now=mem.clock.now(),
        expires=1e12,
    )
    send = keyed(mem)(Provider())
    with pytest.raises(rg.ContractError, match="cannot be decoded"):
        send(1)


@pytest.mark.parametrize("bad", [None, "", 42])
def test_a_key_function_must_return_a_non_empty_string(mem: rg.Guard, bad: object) -> None:
    send = keyed(mem, idempotency=rg.Idempotency(key=lambda _: bad))(Provider())  # type: ignore[arg-type,return-value]
    with pytest.raises(rg.ContractError, match="non-empty string"):
        send(1)


def test_idempotency_without_a_key_function_needs_call_once(mem: rg.Guard) -> None:
    paid = keyed(mem, idempotency=rg.Idempotency())
    with pytest.raises(rg.ContractError, match="call_once"):
        paid.call(Provider(), 1)
    assert "result:1" == paid.call_once("k", Provider(), 1)


def test_a_bare_key_function_is_accepted(mem: rg.Guard) -> None:
    paid = contract(mem, idempotency=lambda n: f"n:{n}")
    assert rg.Idempotency(key=paid.idempotency.key) == paid.idempotency  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "ttl must be a finite number of seconds, above 0"),
        ({"wait": -1}, "wait must be a finite number"),
        ({"lease": float("inf")}, "lease must be a finite number"),
        ({"codec": object()}, "codec must have encode"),
        ({"key": "evt"}, "key must be a function"),
    ],
)
def test_bad_idempotency_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(rg.ContractError, match=message):
        rg.Idempotency(**options)


def test_redeclaring_with_other_idempotency_is_an_error(mem: rg.Guard) -> None:
    def key(n: int) -> str:
        return str(n)

    first = contract(mem, idempotency=rg.Idempotency(key=key))
    assert first is contract(mem, idempotency=rg.Idempotency(key=key))
    with pytest.raises(rg.ContractError, match="already declared"):
        contract(mem, idempotency=rg.Idempotency(key=key, ttl=60))


class CountingLedger(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        self.claims += 1
        return super().claim(key, owner=owner, now=now, lease_until=lease_until)


def test_a_contract_without_idempotency_never_looks_for_claims(clock: FakeClock) -> None:
    ledger = CountingLedger()
    with rg.Guard(ledger, clock=clock) as guard:
        paid = contract(guard)(Provider())
        paid(1)
        paid(1)
    assert 0 == ledger.claims


def test_an_idempotent_handler_runs_once_per_key(mem: rg.Guard) -> None:
    provider = Provider()
    sms = contract(mem, "sms", price="$0.0075")

    @mem.idempotent(key=lambda event: f"stripe:{event['id']}")
    def handle(event: dict[str, str]) -> dict[str, str]:
        return {"sent": str(sms.call(provider, event["to"]))}

    event = {"id": "evt_1", "to": "+31600000000"}
    assert handle(event) == handle(event) == {"sent": "result:+31600000000"}
    assert 1 == provider.calls


async def test_an_async_idempotent_handler_runs_once_per_key(mem: rg.Guard) -> None:
    calls = 0

    @mem.idempotent(key=lambda event_id: event_id, name="webhook")
    async def handle(event_id: str) -> str:
        nonlocal calls
        calls += 1
        return event_id.upper()

    assert ["EVT", "EVT"] == [await handle("evt"), await handle("evt")]
    assert 1 == calls


def test_idempotent_needs_a_key_function(mem: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="needs key="):
        mem.idempotent(key=None)  # type: ignore[arg-type]


class UnstorableLedger(MemoryLedger):
    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        raise rg.LedgerUnavailable("the ledger went away")


def test_a_result_the_ledger_cannot_store_is_still_returned(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with rg.Guard(UnstorableLedger(), clock=clock) as guard:
        provider = Provider()
        send = keyed(guard)(provider)
        assert "result:1" == send(1)
        with pytest.raises(rg.DuplicateInFlight):
            send(1)  # the claim stands until its lease ends: no second paid call
    assert 1 == provider.calls
    assert "could not store the result of idempotency key 'evt:1'" in caplog.text


def test_retries_renew_the_claim_so_a_duplicate_cannot_pay_again() -> None:
    """Attempts and back-offs that outlast the claim's lease keep the key, renewed per attempt."""
    clock, shared = FakeClock(), MemoryLedger()

    def worker() -> rg.Contract:
        guard = rg.Guard(shared, clock=clock)
        return contract(
            guard,
            "charge-card",
            price="$0.40",
            max_calls_per_run=10,
            breaker=False,
            retry=rg.Retry(3, backoff=300, backoff_cap=300, jitter="none"),
            idempotency=rg.Idempotency(key=lambda order: order, lease=500, wait=1),
        )

    first, duplicate = worker(), worker()
    paid: list[str] = []

    class Unavailable(Exception):
        status_code = 503

    def from_first(order: str) -> str:
        paid.append("first")
        clock.advance(200)  # each attempt takes 200 s; with the back-offs, 1,300 s in all
        if len(paid) == 3:
            with pytest.raises(rg.DuplicateInFlight):  # the key is still ours at t=1,300
                duplicate.call(lambda order: paid.append("duplicate"), order)
            return "charged"
        raise Unavailable("503")

    assert "charged" == first.call(from_first, "order-42")
    assert ["first", "first", "first"] == paid
