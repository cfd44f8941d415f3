"""What alerts add to a guarded call, and what a notifier that hangs 30 s adds.

Run: ``python -m benchmarks.alerts`` (``--quick`` for fewer calls).

All on the memory ledger, to isolate alerting from the ledger's own cost:

1. The threshold check: guarded no-op calls in one run whose caps are never reached, with
   no listener, with a listener that does nothing, and with `rg.Alerts` watching, in
   interleaved batches. Any listener makes the settle read the counters back and build
   a `Settled` event (the core's cost); the rest is what `rg.Alerts` adds, too small to
   resolve end to end on a noisy machine, so its listener is also timed alone on a real
   `Settled` event: that figure carries the target.
2. The hand-off: the time of the one thing a paid call does when a threshold is crossed,
   queueing the crossing (`Alerts.delivery.submit`), measured while the only notifier
   is a webhook on 127.0.0.1 that accepts the connection and never answers (it hangs
   30 s), so its queue is full and every hand-off takes the drop path.
3. A flood: every call crosses its per-run thresholds (a fresh run per call and
   ``max_calls_per_run=1``), without alerts, and with alerts whose notifier hangs. This is
   the worst case: the dispatcher thread competes for the GIL on every call. No call
   may come near the 30 s hang.

Prints medians, 99th percentiles and the slowest call, with the targets beside them.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import threading
import time
import timeit
from dataclasses import dataclass

import runaway_guard as rg
from benchmarks._report import Figure, render
from runaway_guard.testing import FakeClock

TARGET_CHECK_US = 5.0
"""Added per call by `rg.Alerts` over any listener (thresholds checked, none crossed)."""
TARGET_HANDOFF_P99_US = 100.0
"""99th percentile added by handing an alert off while the notifier hangs."""
TARGET_SLOWEST_MS = 100.0
"""No single call may take longer: far from the 30 s hang, and above what thread
scheduling on a shared 2-core machine adds (the GIL's switch interval is 5 ms)."""
HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Latencies:
    p50: float
    p99: float
    slowest: float

    @classmethod
    def of(cls, samples: list[float]) -> Latencies:
        ordered = sorted(samples)
        return cls(
            statistics.median(ordered),
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            ordered[-1],
        )


class HangingServer:
    """Accepts connections on 127.0.0.1 and never answers (until closed or 30 s)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0
        self.stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/hook"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + HANG_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._held.append(conn)  # never read, never answered

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()


def _guard(notifiers: list[rg.alerts.Notifier] | None) -> tuple[rg.Guard, rg.Alerts | None]:
    guard = rg.Guard("memory://", clock=FakeClock("2026-11-22T12:00:00+00:00"))
    alerts = None
    if notifiers is not None:
        alerts = rg.Alerts(guard, notifiers, queue_size=64, backoff=0.0, drain_timeout=0.1)
    return guard, alerts


def _noop() -> None:
    return None


def _steady(calls: int, rounds: int) -> dict[str, float]:
    """Median per-call time (us) of batches, interleaved across three guards."""
    guards = {
        "none": _guard(None)[0],
        "listener": _guard(None)[0],
        "alerts": _guard([rg.alerts.Log("benchmarks.alerts")])[0],
    }
    guards["listener"].subscribe(lambda event: None)
    batches: dict[str, list[float]] = {name: [] for name in guards}
    paid = {
        name: guard.contract(
            "bench",
            price="$0.001",
            max_calls_per_run=10**12,
            max_per_day="$1000000",
            provider_cap="benchmark: no provider",
        )
        for name, guard in guards.items()
    }
    batch = max(calls // rounds, 1)
    for _ in range(rounds):
        for name, guard in guards.items():
            with guard.run("steady"):
                started = time.perf_counter_ns()
                for _ in range(batch):
                    paid[name].call(_noop)
                batches[name].append((time.perf_counter_ns() - started) / batch / 1000)
    for guard in guards.values():
        guard.close()
    return {name: statistics.median(values) for name, values in batches.items()}


def _check_us(calls: int) -> float:
    """The `rg.Alerts` listener on a real `Settled` event, timed alone (best of 7)."""
    guard, alerts = _guard([rg.alerts.Log("benchmarks.alerts")])
    assert alerts is not None
    settled: list[rg.Event] = []
    guard.subscribe(lambda event: settled.append(event) if type(event) is rg.Settled else None)
    paid = guard.contract(
        "bench",
        price="$0.001",
        max_calls_per_run=10**12,
        max_per_day="$1000000",
        provider_cap="benchmark: no provider",
    )
    with guard.run("steady"):
        paid.call(_noop)
        paid.call(_noop)
    event = settled[-1]
    listener = alerts._on_event  # the function every settle calls
    best = min(timeit.repeat(lambda: listener(event), number=calls, repeat=7))
    guard.close()
    return best / calls * 1e6


def _flood(calls: int, notifiers: list[rg.alerts.Notifier] | None) -> tuple[list[float], int]:
    guard, alerts = _guard(notifiers)
    paid = guard.contract(
        "bench", price="$0.001", max_calls_per_run=1, provider_cap="benchmark: no provider"
    )
    samples = []
    for n in range(calls):
        with guard.run(f"run-{n}"):
            started = time.perf_counter_ns()
            paid.call(_noop)
            samples.append((time.perf_counter_ns() - started) / 1000)
    dropped = alerts.delivery.dropped if alerts is not None else 0
    guard.close()
    return samples, dropped


def _handoff(calls: int, url: str) -> list[float]:
    guard, alerts = _guard([rg.alerts.Webhook(url, timeout=HANG_SECONDS)])
    assert alerts is not None
    guard.kill("global", "benchmark: the first alert, which hangs in the webhook")
    time.sleep(0.2)  # let the worker take it and hang
    event = rg.KillSwitchCleared(0.0, "global", "benchmark")
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        alerts.delivery.submit(event)
        samples.append((time.perf_counter_ns() - started) / 1000)
    guard.close()
    return samples


def _run(quick: bool) -> tuple[list[str], list[Figure]]:
    calls = 3_000 if quick else 20_000
    steady = _steady(calls * 5, rounds=25 if quick else 60)
    crossing = Latencies.of(_flood(calls, None)[0])
    server = HangingServer()
    try:
        handoff = Latencies.of(_handoff(calls, server.url))
        flood_samples, dropped = _flood(
            calls, [rg.alerts.Webhook(server.url, timeout=HANG_SECONDS)]
        )
        flood = Latencies.of(flood_samples)
        accepted = server.accepted
    finally:
        server.close()
    check = _check_us(calls)
    rows = [
        ("2. hand-off of one alert, notifier hung (submit)", handoff),
        ("3. every call crosses 2 thresholds, no alerts", crossing),
        ("3. every call crosses, alerts, notifier hung 30 s", flood),
    ]
    lines = ["1. one run, caps never reached: median per-call time of interleaved batches", ""]
    for name, label in (
        ("none", "no listener"),
        ("listener", "a listener that does nothing (the core reads counters back)"),
        ("alerts", "rg.Alerts watching (thresholds checked on every settle)"),
    ):
        lines.append(f"  {label:<72} {steady[name]:8.2f} us")
    lines.append(
        f"  {'rg.Alerts listener alone, on one Settled event of 5 budgets (best of 7)':<72} "
        f"{check:8.2f} us"
    )
    lines += ["", f"memory ledger, {calls} samples each (microseconds)", ""]
    lines.append(f"  {'workload':<52} {'p50':>8} {'p99':>8} {'slowest':>10}")
    for name, lat in rows:
        lines.append(f"  {name:<52} {lat.p50:8.2f} {lat.p99:8.2f} {lat.slowest:10.1f}")
    figures = [
        Figure(
            "threshold check per settle (listener alone)",
            check,
            "us",
            f"<= {TARGET_CHECK_US:g} us",
            check <= TARGET_CHECK_US,
        ),
        Figure(
            "hand-off to a hung notifier, p99",
            handoff.p99,
            "us",
            f"<= {TARGET_HANDOFF_P99_US:g} us",
            handoff.p99 <= TARGET_HANDOFF_P99_US,
        ),
        Figure(
            "slowest call in the flood, notifier hung",
            flood.slowest / 1000,
            "ms",
            f"<= {TARGET_SLOWEST_MS:g} ms (the hang is {HANG_SECONDS:g} s)",
            flood.slowest / 1000 <= TARGET_SLOWEST_MS,
        ),
    ]
    lines += [
        "",
        f"  (webhook connections accepted and left hanging: {accepted}; "
        f"flood alerts dropped because the notifier's queue was full: {dropped})",
    ]
    return lines, figures


def measure(quick: bool) -> list[Figure]:
    """The figures with targets, for `python -m benchmarks`."""
    logging.getLogger("runaway_guard").setLevel(logging.CRITICAL)
    return _run(quick)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args()
    # Dropped and undelivered alerts are the point here, not news: keep the output clean.
    logging.getLogger("runaway_guard").setLevel(logging.CRITICAL)
    lines, figures = _run(args.quick)
    print("\n".join(lines))
    print(render("alert delivery", figures))


if __name__ == "__main__":
    main()
