"""Run a ledger operation from async code: off the event loop, and never orphaned.

A network ledger (Redis, PostgreSQL) would block the event loop for a round trip, so
async callers run its operations in a worker thread. A task can be cancelled while that
thread is still talking to the ledger (``asyncio.wait_for``, a cancel scope, a fan-out
cancelling its siblings); the operation then completes with nobody to receive its
result. A concurrency slot or a hold placed that way would stay taken until its lease
ends and the hold would then be charged its full estimate, for a call never made.

`offload` shields the operation so it always completes, and when its caller was
cancelled it hands the orphaned result to `undo` (release the slot, release the hold at
$0, abandon the claim) exactly once: in the worker thread if the operation was still
running, or right away if it had finished.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["offload"]

T = TypeVar("T")

logger = logging.getLogger("runaway_guard")


class _Handoff(Generic[T]):
    """Who received the result: the awaiting task, or (when it was cancelled) `undo`."""

    __slots__ = ("cancelled", "done", "lock", "result")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.cancelled = False
        self.result: T | None = None


async def offload(
    remote: bool, op: Callable[[], T], undo: Callable[[T], object] | None = None
) -> T:
    """Run `op` (in a worker thread when `remote`); `undo` its result if nobody gets it."""
    if not remote:
        return op()  # in-process ledgers answer at once; nothing can interrupt them
    handoff: _Handoff[T] = _Handoff()

    def run() -> T:
        result = op()
        with handoff.lock:
            orphaned = handoff.cancelled
            if not orphaned:
                handoff.done, handoff.result = True, result
        if orphaned and undo is not None:
            _undo(undo, result)
        return result

    context = contextvars.copy_context()
    future = asyncio.get_running_loop().run_in_executor(None, context.run, run)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with handoff.lock:
            handoff.cancelled = True
            finished, result = handoff.done, handoff.result
        if finished and undo is not None:
            _undo(undo, result)  # type: ignore[arg-type]  # set together with done
        raise


def _undo(undo: Callable[[T], object], result: T) -> None:
    try:
        undo(result)
    except Exception:  # the caller is already gone: log, and let leases end what remains
        logger.warning("runaway-guard could not undo a cancelled ledger operation", exc_info=True)
