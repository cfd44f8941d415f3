"""A webhook receiver on 127.0.0.1 that records what it is sent, for notifier tests.

It can answer with chosen statuses (500, 429 with Retry-After) and can hang until
released, to play a notifier endpoint that is down or slow.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """Records every POST; answers 200 unless `answers` says otherwise."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[tuple[int, dict[str, str]]] = deque()
        self.hang: float = 0.0
        """Seconds each request waits (for `release`) before it is answered."""
        self.release = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._changed:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    receiver._changed.notify_all()
                    status, headers = receiver.answers.popleft() if receiver.answers else (200, {})
                if receiver.hang:
                    receiver.release.wait(receiver.hang)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until `count` requests arrived (or `timeout` passed); return all so far."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)

    def bodies(self) -> list[Any]:
        with self._changed:
            return [r.body for r in self.received]
