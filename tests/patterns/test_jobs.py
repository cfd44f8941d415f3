"""Jobs: a lease lock against overlap and a daily run count, both in the ledger."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock


def test_a_run_takes_the_lock_and_is_counted(guard: rg.Guard) -> None:
    nightly = guard.job("nightly-enrich", max_runs_per_day=4)
    with nightly as run:
        assert (1, "day:2026-11-22", True) == (run.number, run.day, nightly.running())
    assert (1, False) == (nightly.runs_today(), nightly.running())
    with nightly as run:
        assert 2 == run.number


def test_an_overlapping_run_is_refused_and_not_counted(guard: rg.Guard) -> None:
    first = guard.job("nightly-enrich", max_runs_per_day=4)
    second = guard.job("nightly-enrich", max_runs_per_day=4)
    with first, pytest.raises(rg.JobOverlap) as info, second:
        pass
    assert 1 == first.runs_today()
    assert "job 'nightly-enrich' is already running" in str(info.value)
    assert "overlap='refuse'" in str(info.value)
    assert isinstance(info.value, rg.GuardRefused)


def test_runs_past_the_daily_bound_are_refused_until_midnight(
    guard: rg.Guard, clock: FakeClock
) -> None:
    job = guard.job("self-scheduling", max_runs_per_day=3)
    for _ in range(3):
        with job:
            pass
    with pytest.raises(rg.BudgetExceeded) as info, job:
        pass
    assert (
        "job 'self-scheduling' runs-per-day budget: 3 runs spent + 0 runs held + 1 run asked > "
        "3 runs limit (raise max_runs_per_day or wait for 2026-11-23 00:00 UTC; a job that "
        "keeps re-scheduling itself is the usual cause)"
    ) == str(info.value)
    assert not job.running()  # the refused run gave its lock back
    clock.set("2026-11-23T00:00:00+00:00")
    with job as run:
        assert (1, "day:2026-11-23") == (run.number, run.day)


def test_a_daily_bound_of_zero_refuses_every_run(mem: rg.Guard) -> None:
    with pytest.raises(rg.BudgetExceeded), mem.job("off", max_runs_per_day=0):
        pass


def test_the_day_follows_the_guards_time_zone(clock: FakeClock) -> None:
    with (
        rg.Guard("memory://", clock=clock, timezone="Europe/Amsterdam") as guard,
        guard.job("tz", max_runs_per_day=1) as run,
    ):
        assert "day:2026-11-23" == run.day  # 23:00 UTC is midnight in Amsterdam


def test_a_crashed_runs_lock_ends_with_its_lease(guard: rg.Guard, clock: FakeClock) -> None:
    crashed = guard.job("nightly", max_runs_per_day=5, lease=120, heartbeat=False)
    crashed.__enter__()  # the process dies inside the run: no __exit__, no renewal
    with pytest.raises(rg.JobOverlap), guard.job("nightly", max_runs_per_day=5):
        pass
    clock.advance(121)
    with guard.job("nightly", max_runs_per_day=5) as run:
        assert 2 == run.number


def test_renew_keeps_the_lock_and_reports_a_lost_one(mem: rg.Guard, clock: FakeClock) -> None:
    job = mem.job("long", max_runs_per_day=5, lease=60, heartbeat=False)
    with job as run:
        clock.advance(50)
        assert run.renew()
        clock.advance(50)
        with pytest.raises(rg.JobOverlap), mem.job("long", max_runs_per_day=5):
            pass
        clock.advance(61)
        with mem.job("long", max_runs_per_day=5, heartbeat=False):
            assert not run.renew()


def test_the_heartbeat_renews_a_live_run(tmp_path: Path) -> None:
    with (
        rg.Guard(f"sqlite:///{tmp_path / 'ledger.db'}") as guard,
        guard.job("heartbeat", max_runs_per_day=5, lease=0.6) as run,
    ):
        time.sleep(1.5)  # over two leases: only the heartbeat keeps the lock
        with pytest.raises(rg.JobOverlap), guard.job("heartbeat", max_runs_per_day=5):
            pass
        assert run.renew()


def test_overlap_wait_queues_behind_the_running_run() -> None:
    with rg.Guard("memory://") as guard:
        inside = threading.Event()
        order: list[str] = []

        def first() -> None:
            with guard.job("sync", max_runs_per_day=5):
                order.append("first in")
                inside.set()
                time.sleep(0.1)
                order.append("first out")

        def second() -> int:
            assert inside.wait(5)
            with guard.job("sync", max_runs_per_day=5, overlap="wait", wait=5) as run:
                order.append("second in")
                return run.number

        with ThreadPoolExecutor(2) as pool:
            pool.submit(first)
            assert 2 == pool.submit(second).result(10)
        assert ["first in", "first out", "second in"] == order


def test_overlap_wait_is_bounded(mem: rg.Guard, clock: FakeClock) -> None:
    start = clock.now()
    waited = r"waited \d+(\.\d+)?s \(overlap='wait', wait=30s\)"
    with (
        mem.job("sync", max_runs_per_day=5),
        pytest.raises(rg.JobOverlap, match=waited),
        mem.job("sync", max_runs_per_day=5, overlap="wait", wait=30),
    ):
        pass
    assert 30 >= clock.now() - start > 29


def test_a_decorated_job_counts_every_call(mem: rg.Guard) -> None:
    @mem.job("digest", max_runs_per_day=2)
    def send_digest(user: str) -> str:
        return f"sent to {user}"

    assert ["sent to a", "sent to b"] == [send_digest("a"), send_digest("b")]
    with pytest.raises(rg.BudgetExceeded):
        send_digest("c")


async def test_async_jobs_lock_and_count(mem: rg.Guard) -> None:
    job = mem.job("async-sync", max_runs_per_day=2)
    async with job as run:
        assert 1 == run.number
        with pytest.raises(rg.JobOverlap):
            async with mem.job("async-sync", max_runs_per_day=2):
                pass

    @mem.job("async-sync", max_runs_per_day=2)
    async def again() -> int:
        return 7

    assert 7 == await again()
    assert 2 == job.runs_today()


def test_a_job_cannot_be_entered_twice_in_one_context(mem: rg.Guard) -> None:
    job = mem.job("nested", max_runs_per_day=5)
    with job, pytest.raises(rg.ContractError, match="already entered"), job:
        pass
    assert 1 == job.runs_today()


def test_two_guards_on_one_ledger_share_lock_and_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with rg.Guard(url) as one, rg.Guard(url) as two:
        with one.job("fleet", max_runs_per_day=2), pytest.raises(rg.JobOverlap):
            two.job("fleet", max_runs_per_day=2).__enter__()
        with two.job("fleet", max_runs_per_day=2) as run:
            assert 2 == run.number


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_runs_per_day": -1}, "max_runs_per_day must not be negative"),
        ({"max_runs_per_day": 1, "overlap": "queue"}, "overlap must be 'refuse' or 'wait'"),
        ({"max_runs_per_day": 1, "wait": 5}, "wait= applies to overlap='wait' only"),
        ({"max_runs_per_day": 1, "lease": 0}, "lease must be a finite number"),
    ],
)
def test_bad_job_settings_are_refused(
    mem: rg.Guard, options: dict[str, object], message: str
) -> None:
    with pytest.raises(rg.ContractError, match=message):
        mem.job("bad", **options)  # type: ignore[arg-type]
