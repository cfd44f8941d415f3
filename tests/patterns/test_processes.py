"""Real processes on one SQLite ledger: idempotency keys, concurrency slots, job leases."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.helpers import kill_when_ready
from tests.patterns import _workers
from tests.patterns._fakes import paid_calls

pytestmark = pytest.mark.slow

WORKERS = 4


def run_workers(target: Any, *args: Any) -> list[Any]:
    """Start WORKERS spawned processes that wait on one barrier; return what each reports."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    out = context.Queue()
    workers = [context.Process(target=target, args=(*args, start, out)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    try:
        results = [out.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
    assert [0] * WORKERS == [worker.exitcode for worker in workers]
    assert [] == [detail for status, detail in results if status == "error"]
    return [detail for _, detail in results]


def test_four_processes_with_one_idempotency_key_make_one_paid_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    counter = tmp_path / "in-flight.json"
    counter.write_text("")
    rg.Guard(url).close()
    results = run_workers(_workers.same_key, url, str(counter))
    assert 1 == _workers.InFlight(str(counter)).read()["calls"]
    assert 1 == len({result["made_by"] for result in results})  # everyone got the one image
    with rg.Guard(url) as guard:
        assert 1 == paid_calls(guard)
        assert 1 == len(list(guard.ledger.spend()))


def test_concurrency_three_holds_across_four_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    counter = tmp_path / "in-flight.json"
    counter.write_text("")
    rg.Guard(url).close()
    calls = 8
    assert [calls] * WORKERS == run_workers(_workers.bounded_calls, url, str(counter), calls)
    measured = _workers.InFlight(str(counter)).read()
    print(f"\nconcurrency=3 over {WORKERS} processes: {measured}")
    assert (WORKERS * calls, 0) == (measured["calls"], measured["now"])
    assert 3 == measured["most"]  # 4 processes could have had 4 in flight; never more than 3
    with rg.Guard(url) as guard:
        assert (
            0
            == guard.contract(
                "bounded",
                price="$0.01",
                max_calls_per_run=100,
                concurrency=3,
                queue_timeout=120,
                provider_cap=_workers.CAP,
            ).in_flight()
        )


def test_a_killed_jobs_lock_ends_with_its_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ready = tmp_path / "ready"
    kill_when_ready(_workers.job_and_hang, (url, str(ready)), ready)

    clock = FakeClock(time.time())
    with rg.Guard(url, clock=clock) as guard:
        job = guard.job("nightly", max_runs_per_day=5, lease=5.0, heartbeat=False)
        with pytest.raises(rg.JobOverlap), job:
            pass
        clock.advance(6)
        with job as run:
            assert 2 == run.number  # the crashed run counted; its lock did not outlive it
