"""Property test: settled + held <= limit for every budget, at every step.

Hypothesis drives random sequences of reserve, settle (at or below the estimate),
release, reap and clock moves against each backend, and checks the invariant and the
bookkeeping after every step against a simple model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from runaway_guard.ledger import (
    HoldLine,
    HoldRequest,
    Ledger,
    MemoryLedger,
    SQLiteLedger,
    ledger_from_url,
)
from tests.ledger.conftest import (
    POSTGRES_URL,
    drop_postgres_schema,
    drop_redis_prefix,
    fresh_name,
    postgres_url,
    redis_url,
)

KEYS = ("a|money|day:x", "b|money|run:r", "c|calls|run:r")
LIMITS = {"a|money|day:x": 1000, "b|money|run:r": 600, "c|calls|run:r": 7}


class LedgerMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._folder = tempfile.TemporaryDirectory()
        self.ledger: Ledger = self.open()
        self.now = 1_000.0
        self.next_id = 0
        self.live: dict[str, tuple[int, float]] = {}  # hold id -> (estimate, lease end)
        self.charged = 0  # money settled on key a, by the model

    def open(self) -> Ledger:
        if self.backend == "memory":
            return MemoryLedger()
        return SQLiteLedger(Path(self._folder.name) / "l.db")

    def teardown(self) -> None:
        self.ledger.close()
        self._folder.cleanup()

    @rule(
        amount=st.integers(min_value=0, max_value=400), lease=st.integers(min_value=1, max_value=50)
    )
    def reserve(self, amount: int, lease: int) -> None:
        self.next_id += 1
        hold_id = f"h{self.next_id}"
        lines = (
            HoldLine(KEYS[0], amount, LIMITS[KEYS[0]], "money"),
            HoldLine(KEYS[1], amount, LIMITS[KEYS[1]], "money"),
            HoldLine(KEYS[2], 1, LIMITS[KEYS[2]], "calls"),
        )
        asked = {KEYS[0]: amount, KEYS[1]: amount, KEYS[2]: 1}
        fits = all(sum(self._state(k)) + asked[k] <= LIMITS[k] for k in KEYS)
        outcome = self.ledger.reserve(
            HoldRequest(hold_id, lines, self.now, self.now + lease, estimate=amount)
        )
        assert fits == (outcome is None), (fits, outcome)
        if outcome is None:
            self.live[hold_id] = (amount, self.now + lease)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.live)))
        estimate, _ = self.live.pop(hold_id)
        actual = data.draw(st.integers(min_value=0, max_value=estimate))
        self.ledger.settle(hold_id, {"money": actual, "calls": 1}, now=self.now)
        self.charged += actual

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.live)))
        self.live.pop(hold_id)
        self.ledger.release(hold_id, now=self.now)

    @rule(seconds=st.integers(min_value=0, max_value=30))
    def advance_and_reap(self, seconds: int) -> None:
        self.now += seconds
        reaped = {h.hold_id for h in self.ledger.reap(now=self.now)}
        expected = {h for h, (_, until) in self.live.items() if until < self.now}
        assert expected == reaped
        for hold_id in reaped:
            self.charged += self.live.pop(hold_id)[0]

    def _state(self, key: str) -> tuple[int, int]:
        found = self.ledger.counters([key]).get(key)
        return (found.settled, found.held) if found else (0, 0)

    @invariant()
    def never_overshoots(self) -> None:
        for key in KEYS:
            settled, held = self._state(key)
            assert settled + held <= LIMITS[key], (key, settled, held)
            assert held >= 0

    @invariant()
    def held_is_exactly_the_live_holds(self) -> None:
        settled, held = self._state(KEYS[0])
        assert sum(est for est, _ in self.live.values()) == held
        assert self.charged == settled


class SQLiteLedgerMachine(LedgerMachine):
    backend = "sqlite"


class RedisLedgerMachine(LedgerMachine):
    """A fresh key prefix per example: creating one costs nothing."""

    def open(self) -> Ledger:
        self.prefix = fresh_name("inv")
        return ledger_from_url(redis_url(self.prefix))

    def teardown(self) -> None:
        super().teardown()
        drop_redis_prefix(self.prefix)


_POSTGRES_SCHEMA = fresh_name("inv")
_POSTGRES_TABLES = ("counters", "holds", "spend", "states", "marks", "slots", "claims", "ops")
_postgres_used = False


class PostgresLedgerMachine(LedgerMachine):
    """One schema for every example (migrating one costs ~0.1 s), emptied after each."""

    def open(self) -> Ledger:
        global _postgres_used
        _postgres_used = True
        return ledger_from_url(postgres_url(_POSTGRES_SCHEMA))

    def teardown(self) -> None:
        import psycopg
        from psycopg import sql

        super().teardown()
        tables = sql.SQL(", ").join(
            sql.Identifier(_POSTGRES_SCHEMA, table) for table in _POSTGRES_TABLES
        )
        with psycopg.connect(POSTGRES_URL) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(tables))


@pytest.fixture(scope="module", autouse=True)
def _drop_postgres_schema() -> Iterator[None]:
    yield
    if _postgres_used:
        drop_postgres_schema(_POSTGRES_SCHEMA)


TestMemoryInvariant = LedgerMachine.TestCase
TestMemoryInvariant.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSQLiteInvariant = SQLiteLedgerMachine.TestCase
TestSQLiteInvariant.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRedisInvariant = pytest.mark.redis(RedisLedgerMachine.TestCase)
TestRedisInvariant.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPostgresInvariant = pytest.mark.postgres(PostgresLedgerMachine.TestCase)
TestPostgresInvariant.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
