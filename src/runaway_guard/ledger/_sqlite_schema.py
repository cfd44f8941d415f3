"""The SQLite ledger's schema, its migrations, and the SQL its hot path builds.

Each migration is a tuple of statements; a ledger file records how many it has applied
(``meta.schema_version``) and applies the rest in one transaction when opened. SQL text is
built from constant fragments and ``?`` placeholders only; values are always bound.
"""

from __future__ import annotations

import functools
from typing import Final

__all__ = ["HOLD_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "apply_sql", "hold_sql", "lookup_sql"]

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE counters (
            key TEXT PRIMARY KEY,
            settled INTEGER NOT NULL DEFAULT 0,
            held INTEGER NOT NULL DEFAULT 0,
            lim INTEGER,
            expires REAL
        ) WITHOUT ROWID""",
        """CREATE TABLE holds (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            created REAL NOT NULL,
            lease_until REAL NOT NULL,
            contract TEXT NOT NULL,
            run TEXT NOT NULL,
            call_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            estimate INTEGER NOT NULL,
            lines TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE spend (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            hold_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            contract TEXT NOT NULL,
            run TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            estimate INTEGER NOT NULL,
            actual INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT NOT NULL
        )""",
        "CREATE INDEX spend_by_ts ON spend (ts)",
        """CREATE TABLE states (
            key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL, expires REAL
        ) WITHOUT ROWID""",
        "CREATE TABLE marks (key TEXT PRIMARY KEY, expires REAL) WITHOUT ROWID",
        """CREATE TABLE slots (
            name TEXT NOT NULL, holder TEXT NOT NULL, lease_until REAL NOT NULL,
            PRIMARY KEY (name, holder)
        ) WITHOUT ROWID""",
        """CREATE TABLE claims (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL,
            result BLOB, until REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

HOLD_COLUMNS: Final = (
    "id, lines, created, lease_until, status, contract, run, call_id, attempt, estimate"
)


# One multi-row statement instead of executemany: a ledger operation is a handful of
# short statements, and each one costs a round through the SQLite API.
@functools.lru_cache(maxsize=64)
def hold_sql(lines: int) -> str:
    return (
        "INSERT INTO counters (key, held, lim, expires) VALUES "
        + ", ".join(["(?, ?, ?, ?)"] * lines)
        + " ON CONFLICT (key) DO UPDATE SET held = held + excluded.held, lim = excluded.lim"
    )


@functools.lru_cache(maxsize=64)
def apply_sql(lines: int) -> str:
    return (
        "INSERT INTO counters (key, settled, held) VALUES "
        + ", ".join(["(?, ?, ?)"] * lines)
        + " ON CONFLICT (key) DO UPDATE SET settled = settled + excluded.settled, "
        "held = held + excluded.held"
    )


@functools.lru_cache(maxsize=64)
def lookup_sql(keys: int, blockers: int) -> str:
    """One round trip for a hold: the counters it touches and any blocker that exists."""
    sql = f"SELECT 0, key, settled, held, NULL FROM counters WHERE key IN ({','.join('?' * keys)})"
    if blockers:
        sql += (
            " UNION ALL SELECT 1, key, 0, 0, value FROM states "
            f"WHERE key IN ({','.join('?' * blockers)}) AND (expires IS NULL OR expires > ?)"
        )
    else:
        sql += " AND ? IS NOT NULL"  # keeps the parameter count fixed
    return sql
