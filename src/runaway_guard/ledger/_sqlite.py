"""The embedded default ledger: one SQLite file shared by every process on a host.

Each operation is one ``BEGIN IMMEDIATE`` transaction: SQLite takes the write lock at the
start, so two processes can never both read a counter, both see room, and both write.
WAL mode lets readers (``status``, reports) run beside writers; a busy timeout makes
writers queue instead of failing. The file is created with mode 0600: it says what your
code spends, and nothing else should write to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from runaway_guard._errors import ContractError, LedgerError, LedgerUnavailable
from runaway_guard.ledger._common import (
    REAPED_RETENTION,
    counter_deltas,
    first_refusal,
    lines_from_json,
    lines_to_json,
    reap_actual,
    spend_row,
)
from runaway_guard.ledger._protocol import (
    Blocked,
    Claim,
    ClaimStatus,
    CounterState,
    HoldInfo,
    HoldRequest,
    Outcome,
    Refusal,
    SettleResult,
    SpendRecord,
    StateRecord,
)
from runaway_guard.ledger._sqlite_schema import (
    HOLD_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    apply_sql,
    hold_sql,
    lookup_sql,
)

__all__ = ["SCHEMA_VERSION", "SQLiteLedger"]

T = TypeVar("T")

_LOCK_RETRIES: Final = 5


class SQLiteLedger:
    """A ledger in one SQLite file.

    Args:
        path: the database file; parent folders are created (mode 0700).
        busy_timeout: seconds a writer waits for the lock before the operation fails
            with `LedgerUnavailable`.
        synchronous: SQLite's ``synchronous`` pragma. ``NORMAL`` (the default) survives a
            crash of any process; ``FULL`` also survives power loss, at a cost per commit.
    """

    remote = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise LedgerError(f"synchronous={synchronous!r}: choose NORMAL, FULL or EXTRA")
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._create_file()
        self._migrate()

    # -- connections ----------------------------------------------------------------------
    def _create_file(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        except OSError as exc:
            raise LedgerUnavailable(
                f"cannot open the SQLite ledger at {self.path}: {exc.strerror} "
                "(check the path and its permissions, or set RUNAWAY_GUARD_LEDGER)"
            ) from exc

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        # A connection must never cross a fork: the child gets its own.
        if conn is None or local.pid != os.getpid():
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,  # one connection per thread, closable by close()
                )
                # Small pages: each commit appends whole pages to the WAL, and a ledger
                # transaction touches a handful of short rows (measured: ~30% faster).
                conn.execute("PRAGMA page_size=1024")  # no effect once the file exists
                conn.execute("PRAGMA journal_mode=WAL")
                # Small pages fill the WAL faster; checkpoint (and fsync) every 16 MB
                # rather than every 1 MB.
                conn.execute("PRAGMA wal_autocheckpoint=16000")
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
            except sqlite3.Error as exc:
                raise LedgerUnavailable(
                    f"cannot open the SQLite ledger at {self.path}: {exc}"
                ) from exc
            local.conn, local.pid = conn, os.getpid()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside ``BEGIN IMMEDIATE``; retry a bounded number of lock timeouts."""
        conn = self._conn()
        for attempt in range(1, _LOCK_RETRIES + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) and attempt < _LOCK_RETRIES:
                    time.sleep(0.01 * attempt)
                    continue
                raise self._wrap(exc) from exc
            try:
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except _Abort as abort:
                conn.execute("ROLLBACK")
                return abort.result  # type: ignore[return-value]
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._wrap(exc) from exc
                if isinstance(exc, OverflowError):
                    raise ContractError(
                        "an amount passes what the SQLite ledger can count (2**63 - 1 units: "
                        "about 9.2 billion in money, as nano-units); lower the limit or the "
                        "estimate"
                    ) from exc
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    def _wrap(self, exc: sqlite3.Error) -> LedgerError:
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            return LedgerUnavailable(
                f"the SQLite ledger at {self.path} stayed locked for more than "
                f"{self._busy_timeout:g}s x {_LOCK_RETRIES} tries; another process holds a long "
                "transaction (raise busy_timeout in the URL: ?busy_timeout=60)"
            )
        if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
            return LedgerUnavailable(f"the SQLite ledger at {self.path} failed: {exc}")
        return LedgerError(f"the SQLite ledger at {self.path} failed: {exc}")

    def _migrate(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger at {self.path} has schema version {version}, newer than this "
                    f"runaway-guard understands ({SCHEMA_VERSION}); upgrade runaway-guard"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

        self._tx(work)

    # -- holds and counters ---------------------------------------------------------------
    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        def work(conn: sqlite3.Connection) -> Refusal | Blocked | None:
            # Insert the hold first: a duplicate id means it was placed already, and a
            # refusal below rolls the insert back with everything else.
            inserted = conn.execute(
                f"INSERT INTO holds ({HOLD_COLUMNS}) "
                "VALUES (?, ?, ?, ?, 'held', ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    request.hold_id,
                    lines_to_json(request.lines),
                    request.now,
                    request.lease_until,
                    request.contract,
                    request.run,
                    request.call_id,
                    request.attempt,
                    request.estimate,
                ),
            ).rowcount
            if inserted == 0:
                return None
            keys = [line.key for line in request.lines]
            rows = conn.execute(
                lookup_sql(len(keys), len(request.blockers)),
                (*keys, *request.blockers, request.now),
            ).fetchall()
            blocked = {row[1]: row[4] for row in rows if row[0]}
            for key in request.blockers:
                if key in blocked:
                    raise _Abort(Blocked(key, blocked[key]))
            states = {row[1]: (row[2], row[3]) for row in rows if not row[0]}
            refusal = first_refusal(request.lines, states)
            if refusal is not None:
                raise _Abort(refusal)
            if request.lines:
                conn.execute(
                    hold_sql(len(request.lines)),
                    [v for ln in request.lines for v in (ln.key, ln.amount, ln.limit, ln.expires)],
                )
            return None

        return self._tx(work)

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
        return self._tx(
            lambda conn: self._cleared(
                conn, self._end(conn, hold_id, actual, now, outcome, error, report), clear
            )
        )

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        return self._tx(
            lambda conn: self._cleared(
                conn, self._end(conn, hold_id, {}, now, Outcome.RELEASED, error, report), clear
            )
        )

    @staticmethod
    def _cleared(
        conn: sqlite3.Connection, result: SettleResult, clear: Sequence[str]
    ) -> SettleResult:
        if not clear:
            return result
        marks = ",".join("?" * len(clear))
        rows = conn.execute(
            f"DELETE FROM states WHERE key IN ({marks}) RETURNING key",
            list(clear),
        ).fetchall()
        if not rows:
            return result
        found = {row[0] for row in rows}
        return dataclasses.replace(result, cleared=tuple(k for k in clear if k in found))

    def _end(
        self,
        conn: sqlite3.Connection,
        hold_id: str,
        actual: Mapping[str, int],
        now: float,
        outcome: Outcome,
        error: str,
        report: bool,
    ) -> SettleResult:
        rows = conn.execute(
            f"DELETE FROM holds WHERE id = ? RETURNING {HOLD_COLUMNS}",
            (hold_id,),
        ).fetchall()
        if not rows:
            return SettleResult("unknown")
        hold = _hold(rows[0])
        reaped = hold.status == "reaped"
        self._apply(conn, counter_deltas(hold.lines, actual, reaped=reaped))
        self._log(
            conn, spend_row(hold, actual, now=now, outcome=outcome, error=error, reaped=reaped)
        )
        status = "corrected" if reaped else "settled"
        if not report:
            return SettleResult(status)
        states = self._states_in(conn, [line.key for line in hold.lines])
        return SettleResult(status, tuple((line, states[line.key]) for line in hold.lines))

    @staticmethod
    def _apply(conn: sqlite3.Connection, deltas: list[tuple[str, int, int]]) -> None:
        if not deltas:
            return
        conn.execute(apply_sql(len(deltas)), [v for delta in deltas for v in delta])

    @staticmethod
    def _log(conn: sqlite3.Connection, row: SpendRecord) -> None:
        conn.execute(
            "INSERT INTO spend (ts, hold_id, call_id, contract, run, attempt, estimate, actual, "
            "tokens, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.ts,
                row.hold_id,
                row.call_id,
                row.contract,
                row.run,
                row.attempt,
                row.estimate,
                row.actual,
                row.tokens,
                row.outcome,
                row.error,
            ),
        )

    @staticmethod
    def _states_in(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, CounterState]:
        unique = sorted(set(keys))
        marks = ",".join("?" * len(unique))
        found = {
            row[0]: CounterState(*row)
            for row in conn.execute(
                f"SELECT key, settled, held, lim FROM counters WHERE key IN ({marks})",
                unique,
            )
        }
        return {key: found.get(key, CounterState(key, 0, 0)) for key in unique}

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        def work(conn: sqlite3.Connection) -> list[HoldInfo]:
            conn.execute(
                "DELETE FROM holds WHERE status = 'reaped' AND lease_until < ?",
                (now - REAPED_RETENTION,),
            )
            rows = conn.execute(
                f"SELECT {HOLD_COLUMNS} FROM holds "
                "WHERE status = 'held' AND lease_until < ? ORDER BY lease_until LIMIT ?",
                (now, limit),
            ).fetchall()
            reaped = []
            for row in rows:
                hold = _hold(row)
                actual = reap_actual(hold)
                self._apply(conn, counter_deltas(hold.lines, actual, reaped=False))
                conn.execute("UPDATE holds SET status = 'reaped' WHERE id = ?", (hold.hold_id,))
                self._log(
                    conn,
                    spend_row(
                        hold, actual, now=now, outcome=Outcome.REAPED, error="", reaped=False
                    ),
                )
                reaped.append(hold)
            return reaped

        return self._tx(work)

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE holds SET lease_until = ? WHERE id = ? AND status = 'held'",
                (lease_until, hold_id),
            )
            return cursor.rowcount == 1

        return self._tx(work)

    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self._read(
            f"SELECT key, settled, held, lim FROM counters WHERE key IN ({marks})",
            list(keys),
        )
        return {row[0]: CounterState(*row) for row in rows}

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        rows = self._read(
            "SELECT key, settled, held, lim FROM counters WHERE substr(key, 1, ?) = ? "
            "AND (? IS NULL OR expires IS NULL OR expires > ?) ORDER BY key",
            (len(prefix), prefix, now, now),
        )
        return [CounterState(*row) for row in rows]

    def holds(self) -> list[HoldInfo]:
        rows = self._read(f"SELECT {HOLD_COLUMNS} FROM holds ORDER BY created, id")
        return [_hold(row) for row in rows]

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        rows = self._read(
            "SELECT ts, hold_id, call_id, contract, run, attempt, estimate, actual, tokens, "
            "outcome, error FROM spend WHERE (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?) "
            "AND (? IS NULL OR contract = ?) ORDER BY ts, id",
            (since, since, until, until, contract, contract),
        )
        for row in rows:
            yield SpendRecord(*row)

    # -- state records ----------------------------------------------------------------------
    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        rows = self._read(
            "SELECT key, version, value, expires FROM states WHERE key = ? "
            "AND (expires IS NULL OR expires > ?)",
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
        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT version, expires FROM states WHERE key = ?", (key,)
            ).fetchone()
            live = row is not None and (row[1] is None or row[1] > now)
            if (row[0] if live else 0) != expected_version:
                return False
            if value is None:
                conn.execute("DELETE FROM states WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO states (key, version, value, expires) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET version = excluded.version, "
                    "value = excluded.value, expires = excluded.expires",
                    (key, expected_version + 1, value, expires),
                )
            return True

        return self._tx(work)

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]:
        rows = self._read(
            "SELECT key, version, value, expires FROM states WHERE substr(key, 1, ?) = ? "
            "AND (expires IS NULL OR expires > ?) ORDER BY key",
            (len(prefix), prefix, now),
        )
        return [StateRecord(*row) for row in rows]

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT expires FROM marks WHERE key = ?", (key,)).fetchone()
            if row is not None and (row[0] is None or row[0] > now):
                return False
            conn.execute(
                "INSERT INTO marks (key, expires) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET expires = excluded.expires",
                (key, expires),
            )
            return True

        return self._tx(work)

    # -- slots --------------------------------------------------------------------------------
    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM slots WHERE name = ? AND lease_until <= ?", (name, now))
            mine = conn.execute(
                "SELECT 1 FROM slots WHERE name = ? AND holder = ?", (name, holder)
            ).fetchone()
            if mine is None:
                (used,) = conn.execute(
                    "SELECT count(*) FROM slots WHERE name = ?", (name,)
                ).fetchone()
                if used >= limit:
                    return False
            conn.execute(
                "INSERT INTO slots (name, holder, lease_until) VALUES (?, ?, ?) "
                "ON CONFLICT (name, holder) DO UPDATE SET lease_until = excluded.lease_until",
                (name, holder, lease_until),
            )
            return True

        return self._tx(work)

    def release_slot(self, name: str, *, holder: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM slots WHERE name = ? AND holder = ?", (name, holder))

        self._tx(work)

    def slots_in_use(self, name: str, *, now: float) -> int:
        rows = self._read(
            "SELECT count(*) FROM slots WHERE name = ? AND lease_until > ?", (name, now)
        )
        return int(rows[0][0])

    # -- idempotency ----------------------------------------------------------------------------
    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        def work(conn: sqlite3.Connection) -> Claim:
            row = conn.execute(
                "SELECT owner, status, result, until FROM claims WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                holder, status, result, until = row
                if status == "done" and until > now:
                    return Claim(ClaimStatus.DONE, bytes(result), holder)
                if status == "pending" and until > now and holder != owner:
                    return Claim(ClaimStatus.IN_FLIGHT, None, holder)
            conn.execute(
                "INSERT INTO claims (key, owner, status, result, until) "
                "VALUES (?, ?, 'pending', NULL, ?) ON CONFLICT (key) DO UPDATE SET "
                "owner = excluded.owner, status = 'pending', result = NULL, until = excluded.until",
                (key, owner, lease_until),
            )
            return Claim(ClaimStatus.CLAIMED, None, owner)

        return self._tx(work)

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE claims SET status = 'done', result = ?, until = ? "
                "WHERE key = ? AND owner = ? AND status = 'pending'",
                (result, expires, key, owner),
            )
            return cursor.rowcount == 1

        return self._tx(work)

    def abandon(self, key: str, *, owner: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM claims WHERE key = ? AND owner = ? AND status = 'pending'",
                (key, owner),
            )

        self._tx(work)

    # -- lifecycle --------------------------------------------------------------------------------
    def currency(self, default: str) -> str:
        def work(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('currency', ?) ON CONFLICT (key) DO NOTHING",
                (default,),
            )
            (value,) = conn.execute("SELECT value FROM meta WHERE key = 'currency'").fetchone()
            return str(value)

        return self._tx(work)

    def close(self) -> None:
        """Close every connection this object opened (in any thread of this process)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r})"


class _Abort(Exception):
    """Roll the transaction back and return `result` from `_tx`."""

    def __init__(self, result: object) -> None:
        self.result = result


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _hold(row: Sequence[Any]) -> HoldInfo:
    hold_id, lines, created, lease_until, status, contract, run, call_id, attempt, estimate = row
    return HoldInfo(
        hold_id=hold_id,
        lines=lines_from_json(lines),
        created=created,
        lease_until=lease_until,
        status=status,
        contract=contract,
        run=run,
        call_id=call_id,
        attempt=attempt,
        estimate=estimate,
    )
