"""What only the PostgreSQL backend has: its schema, migrations, indexes and URL."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psycopg
import pytest

import runaway_guard as rg
from runaway_guard.ledger import HoldLine, HoldRequest, Refusal, ledger_from_url
from runaway_guard.ledger._postgres import SCHEMA_VERSION, PostgresLedger
from runaway_guard.ledger._remote import COUNTER_GRACE
from tests.ledger.conftest import POSTGRES_URL, drop_postgres_schema, fresh_name, postgres_url

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000.0


@pytest.fixture
def schema() -> Iterator[str]:
    name = fresh_name("p")
    yield name
    drop_postgres_schema(name)


@pytest.fixture
def ledger(schema: str) -> Iterator[PostgresLedger]:
    ledger = ledger_from_url(postgres_url(schema))
    assert isinstance(ledger, PostgresLedger)
    yield ledger
    ledger.close()


def query(sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(POSTGRES_URL) as conn:
        return conn.execute(sql, params).fetchall()


def test_the_schema_records_its_version(ledger: PostgresLedger, schema: str) -> None:
    rows = query(f"SELECT value FROM {schema}.meta WHERE key = 'schema_version'")
    assert [(str(SCHEMA_VERSION),)] == rows


def test_the_spend_log_is_indexed_by_time_contract_and_hold(
    ledger: PostgresLedger, schema: str
) -> None:
    rows = query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'spend'", schema
    )
    definitions = " ".join(str(row[0]) for row in rows)
    assert "(ts)" in definitions
    assert "(contract, ts)" in definitions
    assert "(hold_id)" in definitions


def test_reopening_keeps_the_data_and_migrates_nothing(schema: str) -> None:
    first = ledger_from_url(postgres_url(schema))
    first.cas_state("k", expected_version=0, value="v", now=NOW)
    first.close()
    second = ledger_from_url(postgres_url(schema))
    record = second.get_state("k", now=NOW)
    second.close()
    assert record is not None
    assert "v" == record.value


def test_a_newer_schema_is_refused(ledger: PostgresLedger, schema: str) -> None:
    with psycopg.connect(POSTGRES_URL) as conn:
        conn.execute(f"UPDATE {schema}.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(rg.LedgerError, match="upgrade runaway-guard"):
        ledger_from_url(postgres_url(schema))


def test_amounts_near_the_int64_limit_stay_exact(ledger: PostgresLedger) -> None:
    top = 2**63 - 1
    line = HoldLine("k|money|total", top - 1, top, "money")
    assert ledger.reserve(HoldRequest("a", (line,), NOW, NOW + 60)) is None
    one = HoldLine("k|money|total", 1, top, "money")
    assert ledger.reserve(HoldRequest("b", (one,), NOW, NOW + 60)) is None
    assert isinstance(ledger.reserve(HoldRequest("c", (one,), NOW, NOW + 60)), Refusal)


def test_reaping_drops_counters_of_windows_long_over(ledger: PostgresLedger) -> None:
    old = HoldLine("k|money|day:old", 5, 10, "money", NOW + 10)
    ledger.reserve(HoldRequest("a", (old,), NOW, NOW + 5))
    ledger.settle("a", {"money": 5}, now=NOW)
    ledger.reap(now=NOW + 11)
    assert ["k|money|day:old"] == [c.key for c in ledger.list_counters()]
    ledger.reap(now=NOW + 11 + COUNTER_GRACE)
    assert [] == ledger.list_counters()


@pytest.mark.parametrize(
    ("query_text", "message"),
    [
        ("schema=Bad-Name", "lower-case identifier"),
        ("schema=x&color=blue", "unknown ledger URL option 'color'"),
        ("schema=x&pool_size=0", "pool_size"),
    ],
)
def test_bad_urls_say_how_to_fix_them(query_text: str, message: str) -> None:
    with pytest.raises(rg.ContractError, match=message):
        ledger_from_url(f"postgresql://u:hunter2@127.0.0.1:1/db?{query_text}")


def test_the_postgres_scheme_alias_works(schema: str) -> None:
    url = postgres_url(schema).replace("postgresql://", "postgres://", 1)
    ledger = ledger_from_url(url)
    try:
        assert "USD" == ledger.currency("USD")
    finally:
        ledger.close()


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "runaway_guard.ledger._postgres", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(rg.LedgerError, match=r"pip install 'runaway-guard\[postgres\]'"):
        ledger_from_url("postgresql://u:hunter2@127.0.0.1:5432/db")


def test_a_counter_that_would_pass_int64_writes_nothing(ledger: PostgresLedger) -> None:
    big = 3 * 2**61  # two of them pass 2**63 - 1
    lines = (HoldLine("a", 1, None, "calls"), HoldLine("k|money|total", big, None, "money"))
    assert ledger.reserve(HoldRequest("x", lines, NOW, NOW + 60)) is None
    with pytest.raises(rg.LedgerError, match="64-bit"):
        ledger.reserve(HoldRequest("y", lines, NOW, NOW + 60))
    assert 1 == ledger.counters(["a"])["a"].held
    assert ["x"] == [h.hold_id for h in ledger.holds()]
