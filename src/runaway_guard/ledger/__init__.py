"""Ledgers: where budgets, holds and the spend log live.

Build one from a URL with `ledger_from_url`:

- ``memory://``: in this process only (tests);
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: the embedded
  default, shared by every process on the host; options ``?busy_timeout=30&synchronous=FULL``;
- ``redis://[:password@]host:port/db?prefix=NAME`` (``rediss://`` for TLS): a fleet's
  shared ledger, one atomic Lua script per operation (extra ``redis``);
- ``postgresql://user[:password]@host:port/db?schema=NAME`` (or ``postgres://``): a
  fleet's shared ledger, one transaction per operation (extra ``postgres``).

Backends are looked up in an explicit registry keyed by URL scheme; `register_ledger`
adds one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from runaway_guard._errors import ContractError, LedgerError
from runaway_guard.ledger._memory import MemoryLedger
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
from runaway_guard.ledger._sqlite import SQLiteLedger

__all__ = [
    "Blocked",
    "Claim",
    "ClaimStatus",
    "CounterState",
    "HoldInfo",
    "HoldLine",
    "HoldRequest",
    "Ledger",
    "LedgerFactory",
    "MemoryLedger",
    "Outcome",
    "Refusal",
    "SQLiteLedger",
    "SettleResult",
    "SpendRecord",
    "StateRecord",
    "default_ledger_url",
    "ledger_from_url",
    "redact_url",
    "register_ledger",
]

LedgerFactory = Callable[[str], Ledger]
"""Builds a ledger from its full URL."""

_REGISTRY: dict[str, LedgerFactory] = {}

LEDGER_ENV: Final = "RUNAWAY_GUARD_LEDGER"


def register_ledger(scheme: str, factory: LedgerFactory) -> None:
    """Make `ledger_from_url` build `scheme://...` URLs with `factory`."""
    _REGISTRY[scheme.lower()] = factory


def ledger_from_url(url: str) -> Ledger:
    """Build the ledger a URL names.

    Raises:
        ContractError: the scheme is unknown or the URL is malformed.
        LedgerUnavailable: the ledger cannot be opened or reached.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ContractError(
            f"ledger URL {url!r} has no scheme; write 'sqlite:///path/ledger.db', "
            f"'memory://' or one of: {', '.join(sorted(_REGISTRY))}"
        )
    scheme = url.split("://", 1)[0].lower()
    factory = _REGISTRY.get(scheme)
    if factory is None:
        raise ContractError(
            f"unknown ledger URL scheme {scheme!r} in {redact_url(url)!r}; "
            f"known schemes: {', '.join(sorted(_REGISTRY))}"
        )
    return factory(url)


def default_ledger_url() -> str:
    """``$RUNAWAY_GUARD_LEDGER``, else a SQLite file in the user's state folder.

    One file per user (``$XDG_STATE_HOME/runaway-guard/ledger.db``, by default
    ``~/.local/state/runaway-guard/ledger.db``) so every process of that user shares
    the same budgets whatever folder it was started from.
    """
    from_env = os.environ.get(LEDGER_ENV)
    if from_env:
        return from_env
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite:///{Path(state) / 'runaway-guard' / 'ledger.db'}"


_SECRET_OPTIONS: Final = ("password", "secret", "token", "key")


def redact_url(url: str) -> str:
    """`url` with its password, and any secret-looking query option, replaced by ``***``.

    ``postgresql://u:pw@h/db?sslpassword=x`` becomes ``postgresql://u:***@h/db?sslpassword=***``.
    """
    parts = urlsplit(url)
    changed = False
    if parts.password is not None:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        parts, changed = parts._replace(netloc=netloc), True
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        masked = [
            (name, "***" if any(word in name.lower() for word in _SECRET_OPTIONS) else value)
            for name, value in pairs
        ]
        if masked != pairs:
            parts, changed = parts._replace(query=urlencode(masked, safe="*")), True
    # geturl() would also rewrite sqlite:/// as sqlite:/, so only rebuild what changed.
    return parts.geturl() if changed else url


def _open_memory(url: str) -> Ledger:
    return MemoryLedger()


def _open_sqlite(url: str) -> Ledger:
    parts = urlsplit(url)
    # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
    path = url.split("://", 1)[1].split("?", 1)[0]
    if not path.startswith("/") or path == "/":
        raise ContractError(
            f"SQLite ledger URL {url!r} has no path; write 'sqlite:///ledger.db' (relative) "
            "or 'sqlite:////var/lib/app/ledger.db' (absolute)"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"busy_timeout", "synchronous"}
    if unknown:
        raise ContractError(
            f"unknown SQLite ledger option(s) {sorted(unknown)} in {url!r}; "
            "known: busy_timeout, synchronous"
        )
    try:
        busy_timeout = float(options.get("busy_timeout", "30"))
    except ValueError:
        raise ContractError(f"busy_timeout in {url!r} must be a number of seconds") from None
    return SQLiteLedger(
        path[1:], busy_timeout=busy_timeout, synchronous=options.get("synchronous", "NORMAL")
    )


def _open_redis(url: str) -> Ledger:
    try:
        from runaway_guard.ledger._redis import open_redis  # noqa: PLC0415 (optional extra)
    except ImportError as exc:
        raise LedgerError(
            f"the ledger {redact_url(url)!r} needs the redis package: "
            "pip install 'runaway-guard[redis]'"
        ) from exc
    return open_redis(url)


def _open_postgres(url: str) -> Ledger:
    try:
        from runaway_guard.ledger._postgres import open_postgres  # noqa: PLC0415 (optional extra)
    except ImportError as exc:
        raise LedgerError(
            f"the ledger {redact_url(url)!r} needs psycopg 3 and psycopg_pool: "
            "pip install 'runaway-guard[postgres]'"
        ) from exc
    return open_postgres(url)


register_ledger("memory", _open_memory)
register_ledger("sqlite", _open_sqlite)
register_ledger("redis", _open_redis)
register_ledger("rediss", _open_redis)
register_ledger("postgresql", _open_postgres)
register_ledger("postgres", _open_postgres)
