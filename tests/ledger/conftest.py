"""One parametrised ledger fixture: every conformance test runs on every backend.

To add a backend, add a `pytest.param` to `ALL_LEDGERS` whose factory (given the test's
`tmp_path` and fixture request) yields a function that opens a new connection to one
fresh, isolated store each time it is called, and removes the store after the `yield`.

Redis and PostgreSQL tests use the shared servers on 127.0.0.1 (override with
``RUNAWAY_GUARD_TEST_REDIS`` / ``RUNAWAY_GUARD_TEST_POSTGRES``), each test in a key
prefix or schema of its own, deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from runaway_guard.ledger import Ledger, MemoryLedger, SQLiteLedger, ledger_from_url
from tests.conftest import require_service
from tests.ledger._servers import PrivateRedisCluster, private_redis_cluster

Opener = Callable[[], Ledger]

REDIS_URL = os.environ.get("RUNAWAY_GUARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "RUNAWAY_GUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return True
    except OSError:
        return False


def fresh_name(kind: str) -> str:
    return f"rgtest_{kind}_{uuid.uuid4().hex[:12]}"


def redis_url(prefix: str, base: str = REDIS_URL) -> str:
    require_service("Redis", reachable(base), base)
    return f"{base}?prefix={prefix}"


def drop_redis_prefix(prefix: str, base: str = REDIS_URL) -> None:
    """Delete every key of one ledger prefix (never anything else on the shared server)."""
    import redis

    client = redis.Redis.from_url(base)
    try:
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


def postgres_url(schema: str, base: str = POSTGRES_URL) -> str:
    require_service("PostgreSQL", reachable(base), base)
    return f"{base}?schema={schema}"


def drop_postgres_schema(schema: str, base: str = POSTGRES_URL) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """A private three-node Redis Cluster, started once, for the whole session."""
    with private_redis_cluster() as cluster:
        yield cluster


@contextlib.contextmanager
def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    shared = MemoryLedger()  # one process: every "connection" is the same object
    yield lambda: shared


@contextlib.contextmanager
def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    path = tmp_path / "ledger.db"
    yield lambda: SQLiteLedger(path)


@contextlib.contextmanager
def _redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    prefix = fresh_name("r")
    url = redis_url(prefix)
    try:
        yield lambda: ledger_from_url(url)
    finally:
        drop_redis_prefix(prefix)


@contextlib.contextmanager
def _redis_fail_open(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    """The fail-open wrapper must be invisible while the server answers."""
    prefix = fresh_name("r")
    url = f"{redis_url(prefix)}&fail_open=1"
    try:
        yield lambda: ledger_from_url(url)
    finally:
        drop_redis_prefix(prefix)


@contextlib.contextmanager
def _redis_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    """Every key under one hash tag: the whole ledger lives on one node of the cluster."""
    cluster: PrivateRedisCluster = request.getfixturevalue("redis_cluster")
    url = f"{cluster.url}?prefix={fresh_name('c')}&cluster=1"
    yield lambda: ledger_from_url(url)  # the cluster is thrown away after the session


@contextlib.contextmanager
def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    schema = fresh_name("p")
    url = postgres_url(schema)
    try:
        yield lambda: ledger_from_url(url)
    finally:
        drop_postgres_schema(schema)


ALL_LEDGERS = [
    pytest.param(_memory, id="memory"),
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_redis, id="redis", marks=pytest.mark.redis),
    pytest.param(_redis_fail_open, id="redis-fail-open", marks=pytest.mark.redis),
    pytest.param(_redis_cluster, id="redis-cluster", marks=pytest.mark.redis),
    pytest.param(_postgres, id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=ALL_LEDGERS)
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens connections to one fresh store of the parametrised backend."""
    opened: list[Ledger] = []
    factory: Callable[[Path, pytest.FixtureRequest], contextlib.AbstractContextManager[Opener]] = (
        request.param
    )
    with factory(tmp_path, request) as opener:

        def open_one() -> Ledger:
            ledger = opener()
            opened.append(ledger)
            return ledger

        try:
            yield open_one
        finally:
            for ledger in opened:
                ledger.close()


@pytest.fixture
def ledger(open_ledger: Opener) -> Ledger:
    return open_ledger()
