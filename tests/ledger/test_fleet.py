"""A fleet on one network ledger: real processes, one cap, no overshoot, no leaked hold.

Runs on the shared Redis and PostgreSQL servers, each test in a key prefix or schema of
its own (deleted afterwards), with worker processes started by spawn as in
`tests/test_processes.py`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from tests import _workers
from tests.helpers import assert_the_killed_hold_is_reaped, kill_when_ready
from tests.ledger.conftest import (
    drop_postgres_schema,
    drop_redis_prefix,
    fresh_name,
    postgres_url,
    redis_url,
)

pytestmark = pytest.mark.slow

WORKERS = 8
CALLS = 500


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def fleet_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty ledger on the shared server, removed after the test."""
    name = fresh_name("fleet")
    if request.param == "redis":
        yield redis_url(name)
        drop_redis_prefix(name)
    else:
        url = postgres_url(name)
        try:
            yield url
        finally:
            drop_postgres_schema(name)


def test_eight_processes_admit_exactly_the_cap(fleet_url: str) -> None:
    admitted = 1237  # 8 x 500 = 4,000 attempts; the cap admits exactly 1,237
    cap = rg.parse_money(_workers.PRICE) * admitted
    rg.Guard(fleet_url).close()  # create the schema once, up front
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        futures = [
            pool.submit(_workers.spend_until_refused, fleet_url, n, CALLS, str(cap))
            for n in range(WORKERS)
        ]
        results = [f.result(timeout=300) for f in futures]
    assert [] == [error for _, _, errors in results for error in errors]
    assert admitted == sum(made for made, _, _ in results)
    assert WORKERS * CALLS - admitted == sum(refused for _, refused, _ in results)
    with rg.Guard(fleet_url) as guard:
        (fleet,) = [s for s in guard.status() if s.scope == "fleet"]
        assert (cap.nanos, 0) == (fleet.settled, fleet.held)
        rows = list(guard.ledger.spend())
        assert admitted == sum(1 for row in rows if row.outcome == "settled")
        assert cap.nanos == sum(row.actual for row in rows)
        assert [] == guard.ledger.holds()


def test_a_killed_holder_is_reaped_at_its_estimate(fleet_url: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    rg.Guard(fleet_url).close()
    kill_when_ready(_workers.hold_and_hang, (fleet_url, str(ready)), ready)
    assert_the_killed_hold_is_reaped(fleet_url)
