"""Delivery off the hot path: bounded queues, one worker thread per notifier.

A paid call only ever does `Delivery.submit`: a non-blocking put on a bounded queue.
A dispatcher thread turns what was submitted into alerts (deduplicating them through the
ledger), then hands each alert to every notifier's own bounded queue, so a Slack outage
does not delay Telegram. Each notifier's worker retries a failed delivery a bounded
number of times with capped exponential backoff. A full queue drops the alert and says
so in the log; nothing here ever blocks, or raises into, the thread of a paid call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from runaway_guard.alerts._alert import Alert
from runaway_guard.alerts._notifiers import DeliveryFailed, Notifier

__all__ = ["Delivery"]

logger = logging.getLogger("runaway_guard.alerts")

T = TypeVar("T")

_DROP_LOG_EVERY: Final = 100
_RETRY_AFTER_CAP: Final = 60.0


@dataclass(frozen=True, slots=True)
class _Stop:
    deadline: float


class Delivery(Generic[T]):
    """Queues and worker threads that deliver alerts to notifiers.

    Args:
        notifiers: where alerts go; each gets its own queue and worker thread.
        prepare: turns a submitted item into an `Alert`, or None to send nothing (the
            alert was already sent by another process). Runs on the dispatcher thread.
        attempts: deliveries tried per alert and notifier, the first included.
        backoff: seconds before the second attempt; doubles per attempt.
        backoff_cap: the longest wait between attempts.
        queue_size: items each queue holds before new ones are dropped.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        prepare: Callable[[T], Alert | None],
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        backoff_cap: float = 30.0,
        queue_size: int = 1000,
    ) -> None:
        self.notifiers = tuple(notifiers)
        self.prepare = prepare
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self.delivered = 0
        """Alerts delivered (one per notifier that got it)."""
        self.failed = 0
        """Alerts a notifier gave up on after its attempts."""
        self.dropped = 0
        """Items and alerts dropped because a queue was full."""
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._inbox: queue.Queue[T | _Stop] = queue.Queue(self.queue_size)
        self._outboxes: list[queue.Queue[Alert | _Stop]] = [
            queue.Queue(self.queue_size) for _ in self.notifiers
        ]
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closed = False
        self._stop = threading.Event()

    # -- the hot path ------------------------------------------------------------------------
    def submit(self, item: T) -> None:
        """Queue `item` for the dispatcher without ever blocking; drop it when full."""
        if not self._started:
            try:
                self._start()
            except RuntimeError:  # no new threads at interpreter shutdown
                logger.warning("runaway-guard could not start alert delivery", exc_info=True)
                return
            if self._closed:
                return
        self._track(1)
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            self._track(-1)
            self._drop("the alert queue is full", None)

    # -- threads -----------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._started or self._closed:
                return
            threads = [threading.Thread(target=self._dispatch, name="runaway-guard-alerts")]
            threads += [
                threading.Thread(
                    target=self._work,
                    args=(notifier, box),
                    name=f"runaway-guard-alerts-{notifier.name}",
                )
                for notifier, box in zip(self.notifiers, self._outboxes, strict=True)
            ]
            for thread in threads:
                # Daemon threads: a notifier that hangs must not keep the process alive.
                thread.daemon = True
                thread.start()
            self._threads = threads
            self._started = True

    def _dispatch(self) -> None:
        while True:
            item = self._inbox.get()
            if isinstance(item, _Stop):
                for box in self._outboxes:
                    # A worker stuck in its notifier cannot take it; `close` reports that.
                    with contextlib.suppress(queue.Full):
                        box.put(item, timeout=max(item.deadline - time.monotonic(), 0.001))
                return
            try:
                self._fan_out(item)
            finally:
                self._track(-1)

    def _fan_out(self, item: T) -> None:
        if self._outboxes and all(box.full() for box in self._outboxes):
            # Every notifier is backed up (one hangs): drop before building and claiming
            # the alert, so a flood costs this thread, and the GIL, next to nothing.
            self._drop("every notifier's queue is full", None)
            return
        try:
            alert = self.prepare(item)
        except Exception:
            logger.exception("runaway-guard could not prepare an alert from %r", item)
            return
        if alert is None:
            return
        for notifier, box in zip(self.notifiers, self._outboxes, strict=True):
            if alert.severity < notifier.min_severity:
                continue
            self._track(1)
            try:
                box.put_nowait(alert)
            except queue.Full:
                self._track(-1)
                self._drop(f"the queue of notifier {notifier.name} is full", alert)

    def _work(self, notifier: Notifier, box: queue.Queue[Alert | _Stop]) -> None:
        while True:
            alert = box.get()
            if isinstance(alert, _Stop):
                return
            try:
                self._deliver(notifier, alert)
            finally:
                self._track(-1)

    def _deliver(self, notifier: Notifier, alert: Alert) -> None:
        error = ""
        for attempt in range(1, self.attempts + 1):
            retry_after = None
            try:
                notifier.send(alert)
            except DeliveryFailed as exc:
                error = str(exc)
                if not exc.retriable:
                    logger.error(
                        "runaway-guard alert %r was refused by notifier %s: %s (not retried: "
                        "check the notifier's URL, token or chat)",
                        alert.title,
                        notifier.name,
                        error,
                    )
                    self._count_failed()
                    return
                retry_after = exc.retry_after
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    self.delivered += 1
                return
            if attempt == self.attempts:
                break
            delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_cap)
            if retry_after is not None:
                delay = min(max(delay, retry_after), _RETRY_AFTER_CAP)
            logger.warning(
                "runaway-guard alert delivery to %s failed (attempt %d of %d): %s; "
                "retrying in %.1fs",
                notifier.name,
                attempt,
                self.attempts,
                error,
                delay,
            )
            if self._stop.wait(delay):
                break  # closing: do not hold the process up for a retry
        logger.error(
            "runaway-guard gave up delivering alert %r to %s after %d attempt(s): %s",
            alert.title,
            notifier.name,
            attempt,
            error,
        )
        self._count_failed()

    def _count_failed(self) -> None:
        with self._lock:
            self.failed += 1

    def _drop(self, why: str, alert: Alert | None) -> None:
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        # One line per hundred drops: a flood of alerts must not become a flood of logs
        # on the thread of a paid call.
        if dropped == 1 or dropped % _DROP_LOG_EVERY == 0:
            logger.warning(
                "runaway-guard dropped an alert%s: %s (%d dropped so far)",
                f" ({alert.title})" if alert is not None else "",
                why,
                dropped,
            )

    def _track(self, change: int) -> None:
        with self._idle:
            self._busy += change
            if self._busy == 0:
                self._idle.notify_all()

    # -- lifecycle ---------------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until everything submitted was handled."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy <= 0, timeout=timeout)

    def pending(self) -> int:
        """Items and alerts waiting in the queues."""
        return self._inbox.qsize() + sum(box.qsize() for box in self._outboxes)

    def close(self, timeout: float) -> bool:
        """Deliver what is queued for up to `timeout` seconds, then stop.

        Returns True when everything queued was handled. Workers stuck in a notifier are
        left behind (they are daemon threads) and what they hold is logged as lost.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            started = self._started
        if not started:
            return True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._inbox.put(_Stop(deadline), timeout=max(timeout, 0.001))
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._stop.set()
        stuck = [t.name for t in self._threads if t.is_alive()]
        if not stuck:
            return True
        logger.warning(
            "runaway-guard stopped alert delivery after %.1fs with %d alert(s) undelivered; "
            "still busy: %s",
            timeout,
            self.pending(),
            ", ".join(stuck),
        )
        return False

    def _after_fork(self) -> None:
        # Threads do not survive a fork, and a queue's lock may have been held by one of
        # them: the child starts over with fresh queues and threads of its own.
        closed = self._closed
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._reset()
        self._closed = closed


_LIVE: weakref.WeakSet[Delivery[Any]] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for delivery in list(_LIVE):
        delivery._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
