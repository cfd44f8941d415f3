"""Functions run in child processes by the pattern tests (importable under spawn)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import runaway_guard as rg

CAP = "test: none, loopback only"


class InFlight:
    """A count of calls in flight across processes: a file updated under an fcntl lock.

    The file holds ``{"now": n, "most": m, "calls": c}``.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _update(self, step: int) -> None:
        with self.path.open("r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                state = json.loads(handle.read() or '{"now": 0, "most": 0, "calls": 0}')
                state["now"] += step
                state["most"] = max(state["most"], state["now"])
                state["calls"] += step > 0
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state))
                handle.flush()  # before the lock is let go, or the next reader sees old data
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def enter(self) -> None:
        self._update(+1)

    def leave(self) -> None:
        self._update(-1)

    def read(self) -> dict[str, int]:
        return dict(json.loads(self.path.read_text() or "{}"))


def same_key(url: str, counter: str, start: Barrier, out: Queue[Any]) -> None:
    """Wait for the others, then make the call with the shared idempotency key."""
    in_flight = InFlight(counter)
    try:
        with rg.Guard(url) as guard:
            images = guard.contract(
                "flux-pro", price="$0.05", max_calls_per_run=10, provider_cap=CAP
            )

            def generate(prompt: str) -> dict[str, object]:
                in_flight.enter()
                time.sleep(0.3)  # long enough for the others to arrive while it runs
                in_flight.leave()
                return {"prompt": prompt, "made_by": os.getpid()}

            start.wait(60)
            out.put(("ok", images.call_once("campaign-42:prompt-1", generate, "a red fox")))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def bounded_calls(url: str, counter: str, calls: int, start: Barrier, out: Queue[Any]) -> None:
    """Make `calls` calls of a contract limited to 3 in flight across every process."""
    in_flight = InFlight(counter)
    try:
        with rg.Guard(url) as guard:
            paid = guard.contract(
                "bounded",
                price="$0.01",
                max_calls_per_run=100,
                concurrency=3,
                queue_timeout=120,
                provider_cap=CAP,
            )

            @paid
            def work() -> None:
                in_flight.enter()
                time.sleep(0.1)
                in_flight.leave()

            start.wait(60)
            for _ in range(calls):
                work()
            out.put(("ok", calls))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def job_and_hang(url: str, ready_path: str) -> None:
    """Start a run of a job with a short lease, say so, then hang until killed."""
    with rg.Guard(url) as guard, guard.job("nightly", max_runs_per_day=5, lease=5.0):
        Path(ready_path).write_text("running")
        time.sleep(600)
