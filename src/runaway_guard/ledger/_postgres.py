"""The PostgreSQL ledger: psycopg 3, a connection pool, one transaction per operation.

Every operation is one statement in autocommit mode, so one round trip and one
transaction: either a plain statement or a PL/pgSQL function from
``_postgres_schema.py`` (reserve, settle, reap, compare-and-set, ...). A hold is placed
by a conditional upsert per counter, ``settled + held + asked <= limit``, in ascending
key order: concurrent reserves on one counter queue on its row lock and each re-checks
the condition against the last committed value, so none can overshoot, and the fixed
order means they cannot deadlock.

Tables live in one schema (``?schema=NAME``, default ``runaway_guard``), created and
migrated on first use under an advisory lock, with the version in ``meta``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from runaway_guard._errors import ContractError, LedgerError, LedgerUnavailable
from runaway_guard.ledger import redact_url
from runaway_guard.ledger._common import (
    REAPED_RETENTION,
    first_refusal,
    lines_from_json,
    lines_to_json,
)
from runaway_guard.ledger._failopen import FailOpenLedger, parse_fail_open
from runaway_guard.ledger._postgres_schema import MIGRATIONS, SCHEMA_VERSION
from runaway_guard.ledger._protocol import (
    Blocked,
    Claim,
    ClaimStatus,
    CounterState,
    HoldInfo,
    HoldLine,
    HoldRequest,
    Ledger,
    Outcome,
    Refusal,
    SettleResult,
    SpendRecord,
    StateRecord,
)
from runaway_guard.ledger._remote import (
    COUNTER_GRACE,
    OpIds,
    positive,
    positive_int,
    retrying,
    split_options,
    unreachable,
)

__all__ = ["SCHEMA_VERSION", "PostgresLedger", "open_postgres"]

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_CHECK = (
    "check that the server is up and accepts connections, and the host, port, user, "
    "password and sslmode in the URL"
)
_MIGRATION_LOCK: Final = 0x72676C6564676572  # "rgledger": one migrator at a time
_HOLDS_SQL: Final = (
    "SELECT id, created, lease_until, contract, run, call_id, attempt, estimate, lines, status "
    'FROM holds ORDER BY created, id COLLATE "C"'
)


class PostgresLedger:
    """A ledger in PostgreSQL, shared by every process and host that uses its schema.

    Args:
        url: a libpq URL, ``postgresql://user[:password]@host:port/dbname``; libpq's own
            options (``sslmode``, ``connect_timeout``, ...) may follow in the query.
        schema: the schema that holds this ledger's tables; created if missing.
        timeout: seconds to wait for a connection, and the statement timeout, before
            an operation fails with `LedgerUnavailable`.
        pool_size: the most connections this object opens (one per concurrent thread).
    """

    remote = True

    def __init__(
        self,
        url: str = "postgresql://127.0.0.1:5432/postgres",
        *,
        schema: str = "runaway_guard",
        timeout: float = 5.0,
        pool_size: int = 4,
    ) -> None:
        if not _SCHEMA.fullmatch(schema):
            raise ContractError(
                f"PostgreSQL ledger schema {schema!r} must be a lower-case identifier "
                "(letters, digits, '_'; at most 63 characters)"
            )
        self.schema = schema
        sep = "&" if "?" in url else "?"
        self.url = redact_url(f"{url}{sep}schema={schema}")
        self._conninfo = url
        self._timeout = timeout
        self._pool_size = pool_size
        self._ops = OpIds()
        self._lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pid = 0
        self._migrate()

    # -- plumbing -----------------------------------------------------------------------------
    def _connections(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool
        # A pool (its sockets, its worker threads) must never cross a fork.
        if pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    ms = int(self._timeout * 1000)
                    self._pool = ConnectionPool(
                        self._conninfo,
                        kwargs={
                            "autocommit": True,
                            "connect_timeout": max(1, int(self._timeout)),
                            # A dead peer (a partition, a crashed host) drops the
                            # connection instead of leaving a call waiting for TCP.
                            "tcp_user_timeout": ms,
                            "keepalives_idle": max(1, int(self._timeout)),
                            "keepalives_interval": 1,
                            "keepalives_count": 3,
                            "options": f"-c search_path={self.schema} "
                            f"-c statement_timeout={ms} -c lock_timeout={ms}",
                        },
                        min_size=1,
                        max_size=self._pool_size,
                        timeout=self._timeout,
                        open=False,
                        name=f"runaway-guard:{self.schema}",
                    )
                    self._pool.open(wait=False)
                    self._pid = os.getpid()
                pool = self._pool
        assert pool is not None
        return pool

    def _run(self, query: str | sql.Composed, params: Sequence[Any] = ()) -> list[Any]:
        def attempt() -> list[Any]:
            with self._connections().connection() as conn:
                return conn.execute(query, params).fetchall()

        return retrying(
            attempt,
            transient=(psycopg.OperationalError,),
            fatal=(PoolTimeout,),
            fail=self._fail,
            recover=self._recover,
            other=(psycopg.Error,),
        )

    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self._run(query, params)[0][0]

    def _recover(self) -> None:
        # After a server restart every idle connection is dead: test them all now
        # rather than fail one operation per dead connection.
        if self._pool is not None:
            with contextlib.suppress(psycopg.Error):
                self._pool.check()

    def _fail(self, exc: BaseException) -> LedgerError:
        if isinstance(exc, PoolTimeout):
            # The pool backs off between reconnection attempts, up to minutes into a
            # long outage; a fresh pool tries at once, so work resumes as soon as the
            # server is back.
            self.close()
        return self._wrap(exc)

    def _wrap(self, exc: BaseException) -> LedgerError:
        if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            detail = (str(exc).splitlines() or [""])[0]
            return LedgerUnavailable(
                f"the PostgreSQL ledger at {self.url} did not answer within {self._timeout:g}s "
                f"({type(exc).__name__}: {detail}); every guarded call is refused until it "
                "does (a long transaction may hold the ledger's rows: look in "
                "pg_stat_activity; or raise ?timeout= in the URL)"
            )
        if isinstance(exc, PoolTimeout | psycopg.OperationalError):
            return unreachable("PostgreSQL", self.url, exc, _CHECK)
        if isinstance(exc, psycopg.errors.NumericValueOutOfRange):
            return LedgerError(
                f"the PostgreSQL ledger at {self.url} refused an amount: {exc}; a counter would "
                "pass the largest signed 64-bit integer (9,223,372,036 units of money in "
                "nano-units); nothing was written (check the amounts this code asks for)"
            )
        return LedgerError(f"the PostgreSQL ledger at {self.url} failed: {exc}")

    def _migrate(self) -> None:
        def attempt() -> None:
            with self._connections().connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                name = sql.Identifier(self.schema)
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text)")
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise LedgerError(
                        f"the PostgreSQL ledger at {self.url} has schema version {version}, "
                        f"newer than this runaway-guard understands ({SCHEMA_VERSION}); "
                        "upgrade runaway-guard"
                    )
                for statements in MIGRATIONS[version:]:
                    for statement in statements:
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )

        try:
            retrying(
                attempt,
                transient=(psycopg.OperationalError,),
                fatal=(PoolTimeout,),
                fail=self._fail,
                recover=self._recover,
                other=(psycopg.Error,),
            )
        except LedgerError:
            self.close()
            raise

    # -- holds and counters -------------------------------------------------------------------
    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        rows = self._run(
            "SELECT * FROM rg_reserve(%s, %s::float8, %s::float8, %s, %s, %s, %s::int, "
            "%s::bigint, %s::jsonb, %s::text[])",
            (
                request.hold_id,
                request.now,
                request.lease_until,
                request.contract,
                request.run,
                request.call_id,
                request.attempt,
                request.estimate,
                lines_to_json(request.lines),
                list(request.blockers),
            ),
        )
        if not rows:
            return None
        if rows[0][0] == "blocked":
            return Blocked(rows[0][1], rows[0][4])
        states = {key: (settled, held) for _, key, settled, held, _ in rows}
        refusal = first_refusal(request.lines, states)
        if refusal is not None:
            return refusal
        # The counters moved since the refusal (its locks are gone): report the line
        # that did not fit, as it was when it did not.
        key = next(row[1] for row in rows if row[0] == "refused")
        line = next(line for line in request.lines if line.key == key)
        return Refusal(line, *states[key])

    def settle(
        self,
        hold_id: str,
        actual: Mapping[str, int],
        *,
        now: float,
        outcome: Outcome = Outcome.SETTLED,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        reply = json.loads(
            self._one(
                "SELECT rg_end(%s, %s, %s::float8, %s, %s, %s, %s::jsonb, %s::text[])",
                (
                    self._ops(),
                    hold_id,
                    now,
                    str(outcome),
                    error,
                    report,
                    json.dumps(actual),
                    list(clear),
                ),
            )
        )
        cleared = tuple(reply["cleared"])
        if reply["status"] == "unknown" or not report:
            return SettleResult(reply["status"], (), cleared)
        lines = tuple(HoldLine(*line) for line in reply["lines"])
        counters = tuple(
            (line, CounterState(key, settled, held, limit))
            for line, (key, settled, held, limit) in zip(lines, reply["counters"], strict=True)
        )
        return SettleResult(reply["status"], counters, cleared)

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        return self.settle(
            hold_id,
            {},
            now=now,
            outcome=Outcome.RELEASED,
            error=error,
            report=report,
            clear=clear,
        )

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        reply = json.loads(
            self._one(
                "SELECT rg_reap(%s, %s::float8, %s::int, %s::float8, %s::float8)",
                (self._ops(), now, limit, REAPED_RETENTION, COUNTER_GRACE),
            )
        )
        return [_hold((*row, "held")) for row in reply]

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        rows = self._run(
            "UPDATE holds SET lease_until = %s WHERE id = %s AND status = 'held' RETURNING 1",
            (lease_until, hold_id),
        )
        return bool(rows)

    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        if not keys:
            return {}
        rows = self._run(
            "SELECT key, settled, held, lim FROM counters WHERE key = ANY(%s::text[])",
            (list(keys),),
        )
        return {row[0]: CounterState(*row) for row in rows}

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        rows = self._run(
            "SELECT key, settled, held, lim FROM counters WHERE left(key, %s) = %s "
            "AND (%s::float8 IS NULL OR expires IS NULL OR expires > %s::float8) "
            'ORDER BY key COLLATE "C"',
            (len(prefix), prefix, now, now),
        )
        return [CounterState(*row) for row in rows]

    def holds(self) -> list[HoldInfo]:
        rows = self._run(_HOLDS_SQL)
        return [_hold(row) for row in rows]

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        rows = self._run(
            "SELECT ts, hold_id, call_id, contract, run, attempt, estimate, actual, tokens, "
            "outcome, error FROM spend WHERE (%s::float8 IS NULL OR ts >= %s::float8) "
            "AND (%s::float8 IS NULL OR ts < %s::float8) AND (%s::text IS NULL OR contract = %s) "
            "ORDER BY ts, id",
            (since, since, until, until, contract, contract),
        )
        for row in rows:
            yield SpendRecord(*row)

    # -- state records ------------------------------------------------------------------------
    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        rows = self._run(
            "SELECT key, version, value, expires FROM states WHERE key = %s "
            "AND (expires IS NULL OR expires > %s)",
            (key, now),
        )
        return StateRecord(*rows[0]) if rows else None

    def cas_state(
        self,
        key: str,
        *,
        expected_version: int,
        value: str | None,
        now: float,
        expires: float | None = None,
    ) -> bool:
        reply = self._one(
            "SELECT rg_cas_state(%s, %s, %s::bigint, %s, %s::float8, %s::float8)",
            (self._ops(), key, expected_version, value, now, expires),
        )
        return bool(reply == "t")

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]:
        rows = self._run(
            "SELECT key, version, value, expires FROM states WHERE left(key, %s) = %s "
            'AND (expires IS NULL OR expires > %s) ORDER BY key COLLATE "C"',
            (len(prefix), prefix, now),
        )
        return [StateRecord(*row) for row in rows]

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        reply = self._one(
            "SELECT rg_mark_once(%s, %s, %s::float8, %s::float8)",
            (self._ops(), key, now, expires),
        )
        return bool(reply == "t")

    # -- concurrency slots --------------------------------------------------------------------
    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        return bool(
            self._one(
                "SELECT rg_acquire_slot(%s, %s::int, %s, %s::float8, %s::float8)",
                (name, limit, holder, now, lease_until),
            )
        )

    def release_slot(self, name: str, *, holder: str) -> None:
        self._run("DELETE FROM slots WHERE name = %s AND holder = %s RETURNING 1", (name, holder))

    def slots_in_use(self, name: str, *, now: float) -> int:
        return int(
            self._one(
                "SELECT count(*) FROM slots WHERE name = %s AND lease_until > %s", (name, now)
            )
        )

    # -- idempotency records ------------------------------------------------------------------
    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        status, result, holder = self._run(
            "SELECT * FROM rg_claim(%s, %s, %s::float8, %s::float8)",
            (key, owner, now, lease_until),
        )[0]
        kind = ClaimStatus(status)
        return Claim(kind, bytes(result) if kind is ClaimStatus.DONE else None, holder)

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        reply = self._one(
            "SELECT rg_complete(%s, %s, %s, %s::bytea, %s::float8)",
            (self._ops(), key, owner, result, expires),
        )
        return bool(reply == "t")

    def abandon(self, key: str, *, owner: str) -> None:
        self._run(
            "DELETE FROM claims WHERE key = %s AND owner = %s AND status = 'pending' RETURNING 1",
            (key, owner),
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def currency(self, default: str) -> str:
        return str(
            self._one(
                "WITH added AS (INSERT INTO meta (key, value) VALUES ('currency', %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING value) "
                "SELECT value FROM added UNION ALL "
                "SELECT value FROM meta WHERE key = 'currency' LIMIT 1",
                (default,),
            )
        )

    def close(self) -> None:
        """Close the pool; a later operation opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close(timeout=1.0)

    def __repr__(self) -> str:
        return f"PostgresLedger({self.url!r})"


def _hold(row: Sequence[Any]) -> HoldInfo:
    hold_id, created, lease, contract, run, call_id, attempt, estimate, lines, status = row
    text = lines if isinstance(lines, str) else json.dumps(lines)
    return HoldInfo(
        hold_id=hold_id,
        lines=lines_from_json(text),
        created=float(created),
        lease_until=float(lease),
        status=status,
        contract=contract,
        run=run,
        call_id=call_id,
        attempt=int(attempt),
        estimate=int(estimate),
    )


_OPTIONS: Final[dict[str, Callable[[str], object]]] = {
    "schema": str,
    "timeout": positive,
    "fail_open": parse_fail_open,
    "pool_size": positive_int,
}
# libpq's URL options that may pass through to the driver.
_PASSED: Final = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "connect_timeout",
        "application_name",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "passfile",
        "channel_binding",
    }
)


def open_postgres(url: str) -> Ledger:
    """``postgresql://user[:password]@host:port/db?schema=NAME`` (or ``postgres://``).

    Options: ``schema`` (default ``runaway_guard``), ``timeout`` (seconds, default 5),
    ``pool_size`` (default 4); libpq's own options (``sslmode``, ...) pass through.
    """
    driver_url, options = split_options(url, _OPTIONS, _PASSED)
    fail_open = options.pop("fail_open", None)
    ledger = PostgresLedger(driver_url, **options)  # type: ignore[arg-type]
    ledger.url = redact_url(url)
    if fail_open is None:
        return ledger
    return FailOpenLedger(ledger, int(fail_open))  # type: ignore[call-overload]
