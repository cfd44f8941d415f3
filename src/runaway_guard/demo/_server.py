"""A fake metered API on 127.0.0.1: bills every request, and turns flaky on schedule.

The demo's clients send their virtual time in a header; the server answers from that
time (healthy, or 503 during the flaky window) and says how long the request would
have taken, so a night of traffic replays in seconds. It keeps its own meter, as a
provider's invoice would: the demo's numbers come from real HTTP requests.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from runaway_guard._money import Money

__all__ = ["FakeMeteredAPI", "Meter"]


@dataclass
class Meter:
    """What the provider saw and billed, per client."""

    price: Money
    requests: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    by_hour: dict[str, Counter[int]] = field(default_factory=dict)

    def billed(self, client: str) -> Money:
        return self.price * self.requests[client]


class FakeMeteredAPI:
    """``POST /v1/enrich`` on 127.0.0.1; use as a context manager.

    Args:
        price: billed per request, failed or not (the provider counts what it received).
        flaky_from, flaky_until: virtual epoch seconds of the outage window.
        ok_latency, failure_latency: simulated seconds a request takes.
    """

    def __init__(
        self,
        *,
        price: Money,
        flaky_from: float,
        flaky_until: float,
        ok_latency: float = 1.5,
        failure_latency: float = 4.7,
    ) -> None:
        self.meter = Meter(price)
        self.flaky_from = flaky_from
        self.flaky_until = flaky_until
        self.ok_latency = ok_latency
        self.failure_latency = failure_latency
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/enrich"

    def __enter__(self) -> FakeMeteredAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, client: str, now: float, failed: bool) -> None:
        with self._lock:
            self.meter.requests[client] += 1
            if failed:
                self.meter.failures[client] += 1
            hour = int(now // 3600) * 3600
            self.meter.by_hour.setdefault(client, Counter())[hour] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                now = float(self.headers.get("X-Virtual-Time", "0"))
                client = self.headers.get("X-Client", "anonymous")
                failed = api.flaky_from <= now < api.flaky_until
                api._record(client, now, failed)
                if failed:
                    body = b'{"error": "upstream overloaded"}'
                    self.send_response(503)
                    latency = api.failure_latency
                else:
                    record = json.loads(payload or b"{}")
                    body = json.dumps({"enriched": record, "usage": {"calls": 1}}).encode()
                    self.send_response(200)
                    latency = api.ok_latency
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Simulated-Latency", str(latency))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the demo prints its own summary."""

        return Handler
