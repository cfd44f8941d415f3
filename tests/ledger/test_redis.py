"""What only the Redis backend has: exact int64 in Lua, one hash slot, TTLs, the stream."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

import runaway_guard as rg
from runaway_guard.ledger import HoldLine, HoldRequest, Refusal, ledger_from_url
from runaway_guard.ledger._redis import RedisLedger
from runaway_guard.ledger._remote import COUNTER_GRACE
from tests.ledger.conftest import REDIS_URL, drop_redis_prefix, fresh_name, redis_url

pytestmark = pytest.mark.redis

NOW = 1_800_000_000.0
BIG = 2**53  # where a Lua double stops counting by one


@pytest.fixture
def prefix() -> Iterator[str]:
    name = fresh_name("r")
    yield name
    drop_redis_prefix(name)


@pytest.fixture
def ledger(prefix: str) -> Iterator[RedisLedger]:
    ledger = ledger_from_url(redis_url(prefix))
    assert isinstance(ledger, RedisLedger)
    yield ledger
    ledger.close()


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def hold(hold_id: str, amount: int, limit: int | None, expires: float | None = None) -> HoldRequest:
    return HoldRequest(
        hold_id, (HoldLine("k|money|total", amount, limit, "money", expires),), NOW, NOW + 60
    )


def test_amounts_past_two_to_the_53_stay_exact(ledger: RedisLedger) -> None:
    limit = BIG + 1
    assert ledger.reserve(hold("a", BIG, limit)) is None
    assert ledger.reserve(hold("b", 1, limit)) is None
    refusal = ledger.reserve(hold("c", 1, limit))  # a double would see BIG + 1 + 1 == limit
    assert isinstance(refusal, Refusal)
    assert (0, BIG + 1) == (refusal.settled, refusal.held)
    ledger.settle("a", {"money": BIG - 3}, now=NOW)
    assert (BIG - 3, 1) == (
        ledger.counters(["k|money|total"])["k|money|total"].settled,
        ledger.counters(["k|money|total"])["k|money|total"].held,
    )


def test_the_largest_int64_limit_compares_exactly(ledger: RedisLedger) -> None:
    top = 2**63 - 1
    assert ledger.reserve(hold("a", top - 1, top)) is None
    assert ledger.reserve(hold("b", 1, top)) is None
    assert isinstance(ledger.reserve(hold("c", 1, top)), Refusal)  # the sum passes int64


def test_a_corrected_reaped_hold_logs_an_exact_negative_difference(ledger: RedisLedger) -> None:
    amount = BIG + 7
    ledger.reserve(
        HoldRequest("a", (HoldLine("k", amount, None, "money"),), NOW, NOW + 1, estimate=amount)
    )
    ledger.reap(now=NOW + 2)
    ledger.settle("a", {"money": 5}, now=NOW + 3)
    assert [amount, 5 - amount] == [row.actual for row in ledger.spend()]


def test_every_key_of_a_ledger_shares_one_hash_slot(
    ledger: RedisLedger, prefix: str, client: redis.Redis
) -> None:
    ledger.reserve(hold("a", 1, 10, NOW + 100))
    ledger.settle("a", {"money": 1}, now=NOW)
    ledger.cas_state("kill:x", expected_version=0, value="v", now=NOW)
    ledger.mark_once("alert", now=NOW, expires=None)
    ledger.acquire_slot("s", limit=1, holder="h", now=NOW, lease_until=NOW + 5)
    ledger.claim("idem", owner="o", now=NOW, lease_until=NOW + 5)
    keys = list(client.scan_iter(match=f"{{{prefix}}}:*"))
    assert len(keys) >= 8
    assert 1 == len({key_slot(key) for key in keys})


def test_a_window_counter_expires_after_its_window_and_the_grace(
    ledger: RedisLedger, prefix: str, client: redis.Redis
) -> None:
    ledger.reserve(hold("a", 1, 10, expires=NOW + 3600))
    ttl_ms = client.pttl(f"{{{prefix}}}:c:k|money|total")
    expected_ms = (3600 + COUNTER_GRACE) * 1000
    assert expected_ms - 60_000 < ttl_ms <= expected_ms


def test_a_counter_without_a_window_never_expires(
    ledger: RedisLedger, prefix: str, client: redis.Redis
) -> None:
    ledger.reserve(hold("a", 1, 10))
    assert -1 == client.pttl(f"{{{prefix}}}:c:k|money|total")


def test_the_spend_stream_is_bounded(prefix: str, client: redis.Redis) -> None:
    ledger = ledger_from_url(f"{redis_url(prefix)}&spend_maxlen=10")
    try:
        for n in range(300):
            ledger.reserve(hold(f"h{n}", 1, None))
            ledger.settle(f"h{n}", {"money": 1}, now=NOW)
    finally:
        ledger.close()
    # MAXLEN ~ trims whole stream nodes (100 entries each), so a little more may stay.
    assert 10 <= client.xlen(f"{{{prefix}}}:spend") <= 110


def test_a_newer_schema_is_refused(prefix: str, client: redis.Redis) -> None:
    client.hset(f"{{{prefix}}}:meta", "schema", "99")
    with pytest.raises(rg.LedgerError, match="upgrade runaway-guard"):
        ledger_from_url(redis_url(prefix))


def test_tls_urls_speak_tls(prefix: str) -> None:
    plain_server = REDIS_URL.replace("redis://", "rediss://", 1)
    with pytest.raises(rg.LedgerUnavailable, match="rediss://"):
        ledger_from_url(f"{plain_server}?prefix={prefix}&timeout=1")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("prefix=a}b", "hash tag"),
        ("prefix=x&color=blue", "unknown ledger URL option 'color'"),
        ("prefix=x&timeout=soon", "timeout"),
        ("prefix=x&spend_maxlen=0", "spend_maxlen"),
    ],
)
def test_bad_urls_say_how_to_fix_them(query: str, message: str) -> None:
    with pytest.raises(rg.ContractError, match=message):
        ledger_from_url(f"redis://:hunter2@127.0.0.1:1/0?{query}")


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "runaway_guard.ledger._redis")
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(rg.LedgerError, match=r"pip install 'runaway-guard\[redis\]'"):
        ledger_from_url("redis://:hunter2@127.0.0.1:6379/0")


def test_a_counter_that_would_pass_int64_writes_nothing(ledger: RedisLedger) -> None:
    big = 3 * 2**61  # two of them pass 2**63 - 1
    lines = (HoldLine("a", 1, None, "calls"), HoldLine("k|money|total", big, None, "money"))
    assert ledger.reserve(HoldRequest("x", lines, NOW, NOW + 60)) is None
    with pytest.raises(rg.LedgerError, match="64-bit"):
        ledger.reserve(HoldRequest("y", lines, NOW, NOW + 60))
    assert 1 == ledger.counters(["a"])["a"].held  # the line before it was not written
    assert ["x"] == [h.hold_id for h in ledger.holds()]


def test_a_late_settle_never_brings_an_expired_window_back(
    ledger: RedisLedger, prefix: str, client: redis.Redis
) -> None:
    ledger.reserve(hold("a", 5, 10, expires=NOW + 60))
    client.delete(f"{{{prefix}}}:c:k|money|total")  # what its TTL does, 8 days on
    assert "settled" == ledger.settle("a", {"money": 5}, now=NOW + 9 * 86400).status
    assert {} == ledger.counters(["k|money|total"])
    assert [] == ledger.list_counters()


@pytest.mark.parametrize("days", ["-1", "nan", "inf"])
def test_spend_retention_must_be_finite_and_not_negative(days: str) -> None:
    """A negative retention would trim the whole spend log at every reap."""
    with pytest.raises(rg.ContractError, match="spend_days"):
        ledger_from_url(f"redis://127.0.0.1:6379/0?prefix=x&spend_days={days}")
