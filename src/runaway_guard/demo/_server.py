"""A fake metered API on 127.0.0.1: bills every request, and turns flaky on schedule.

The demo's clients send their virtual time in a header; the server answers from that
time (healthy, or 503 during the flaky window) and says how long the request would
have taken, so a night of traffic replays in seconds. It keeps its own meter, as a
provider's invoice would: the demo's numbers come from real HTTP requests.

Connections are kept alive (HTTP/1.1), so thousands of requests cost milliseconds of
real time each rather than a TCP handshake each.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from runaway_guard._money import Money
from runaway_guard.testing import FakeClock

__all__ = ["FakeMeteredAPI", "Meter", "MeteredClient"]

Responder = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Meter:
    """What the provider saw and billed, per client."""

    price: Money
    requests: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    by_hour: dict[str, Counter[int]] = field(default_factory=dict)

    def billed(self, client: str) -> Money:
        return self.price * self.requests[client]


def _echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"result": payload, "usage": {"calls": 1}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A naive fan-out opens hundreds of connections at once; the default backlog of 5
    # would turn that burst into refused connections and retransmits.
    request_queue_size = 1024


class FakeMeteredAPI:
    """``POST <path>`` on 127.0.0.1, billed per request; use as a context manager.

    Args:
        price: billed per request, failed or not (the provider counts what it received).
        path: the endpoint, e.g. ``/v1/enrich``, ``/v1/images``, ``/v1/whois``.
        flaky_from, flaky_until: virtual epoch seconds of the outage window, if any.
        ok_latency, failure_latency: simulated seconds a request takes.
        respond: builds the JSON answer to a healthy request from its JSON payload.
    """

    def __init__(
        self,
        *,
        price: Money,
        path: str = "/v1/enrich",
        flaky_from: float | None = None,
        flaky_until: float | None = None,
        ok_latency: float = 1.5,
        failure_latency: float = 4.7,
        respond: Responder = _echo,
    ) -> None:
        self.meter = Meter(price)
        self.path = path
        self.flaky_from = flaky_from
        self.flaky_until = flaky_until
        self.ok_latency = ok_latency
        self.failure_latency = failure_latency
        self.respond = respond
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-metered-api", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def client(self, name: str, clock: FakeClock, *, advance: bool = True) -> MeteredClient:
        """A client of this API that bills to `name` and sends `clock`'s time."""
        return MeteredClient(self.url, name, clock, advance=advance)

    def flaky_at(self, now: float) -> bool:
        """Whether a request sent at virtual time `now` fails."""
        if self.flaky_from is None or self.flaky_until is None:
            return False
        return self.flaky_from <= now < self.flaky_until

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
            protocol_version = "HTTP/1.1"  # keep-alive: one connection per client thread
            timeout = 30  # an idle kept-alive connection frees its thread
            # Headers and body go out in two writes; without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every kept-alive request.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                if self.path != api.path:
                    self._answer(404, b'{"error": "no such endpoint"}', 0.0)
                    return
                now = float(self.headers.get("X-Virtual-Time", "0"))
                client = self.headers.get("X-Client", "anonymous")
                failed = api.flaky_at(now)
                api._record(client, now, failed)
                if failed:
                    self._answer(503, b'{"error": "upstream overloaded"}', api.failure_latency)
                    return
                body = json.dumps(api.respond(json.loads(payload or b"{}"))).encode()
                self._answer(200, body, api.ok_latency)

            def _answer(self, status: int, body: bytes, latency: float) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Simulated-Latency", str(latency))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the demo prints its own summary."""

        return Handler


class MeteredClient:
    """A plain HTTP client of the fake API: one kept-alive connection per thread.

    Failures raise `urllib.error.HTTPError`, as the standard library's own client does,
    so the guard classifies them like any real provider's 5xx. With `advance`, each
    answer moves the virtual clock on by the request's simulated latency.
    """

    def __init__(self, url: str, name: str, clock: FakeClock, *, advance: bool = True) -> None:
        scheme, _, rest = url.partition("://")
        if scheme != "http":
            raise ValueError(f"the demo's client talks plain http to 127.0.0.1, got {url!r}")
        netloc, _, path = rest.partition("/")
        host, _, port = netloc.partition(":")
        self.url = url
        self.name = name
        self.clock = clock
        self.advance = advance
        self._host, self._port, self._path = host, int(port), f"/{path}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=10)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `payload` as JSON; return the JSON answer, or raise `HTTPError`."""
        connection = self._connection()
        connection.request(
            "POST",
            self._path,
            body=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Virtual-Time": repr(self.clock.now()),
                "X-Client": self.name,
            },
        )
        response = connection.getresponse()
        body = response.read()
        if self.advance:
            self.clock.advance(float(response.headers.get("X-Simulated-Latency", "0")))
        if response.status >= 400:
            headers = Message()
            for key, value in response.getheaders():
                headers[key] = value
            raise urllib.error.HTTPError(self.url, response.status, response.reason, headers, None)
        answer: dict[str, Any] = json.loads(body)
        return answer

    def close(self) -> None:
        """Close every connection this client opened, from any thread."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def __enter__(self) -> MeteredClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
