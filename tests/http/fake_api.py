"""A fake OpenAI and Anthropic API on 127.0.0.1, for driving the real SDKs in tests.

The server answers from a script of `Reply` objects (one per request, in order), and
counts every request it receives, so a test can prove that a refused call never reached
it. Replies are JSON bodies, SSE streams (optionally cut off mid-way, as a dropped
connection does) or bare statuses with headers such as Retry-After.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: the HTTP status.
        body: a JSON body (ignored when `events` is set).
        events: SSE events as ``(event name or None, data)``; data dicts become JSON.
        headers: extra response headers.
        cut_after: send only this many events, then drop the connection mid-body.
        drop: close the connection without answering at all.
    """

    status: int = 200
    body: Any = None
    events: list[tuple[str | None, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    drop: bool = False


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes a stream early resets the connection mid-write: expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAPI:
    """The server: ``with FakeAPI() as api: ... api.url ... api.requests``."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def reply(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self.script.extend(replies)

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            if not self.script:
                return Reply(500, {"error": {"message": "the fake API has no reply scripted"}})
            return self.script.popleft()

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    api: FakeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output (and captured logs) quiet

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        reply = self.api._next(Received(self.command, self.path, headers, body))
        if reply.drop:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if reply.events is not None:
            self._stream(reply)
            return
        payload = json.dumps(reply.body if reply.body is not None else {}).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        events = reply.events or []
        for number, (name, data) in enumerate(events):
            if reply.cut_after is not None and number >= reply.cut_after:
                # Drop the connection without the last chunk: an incomplete body.
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            chunk = frame.encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


# -- canned provider responses -------------------------------------------------------------


def chat(model: str, usage: dict[str, Any], *, service_tier: str | None = None) -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello."},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    if service_tier is not None:
        body["service_tier"] = service_tier
    return Reply(body=body)


def chat_stream(model: str, usage: dict[str, Any] | None, *, cut_after: int | None = None) -> Reply:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": None,
        }

    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": ""})),
        (None, chunk({"content": "Hel"})),
        (None, chunk({"content": "lo."})),
        (None, chunk({}, "stop")),
    ]
    if usage is not None:
        final = {**chunk({}), "choices": [], "usage": usage}
        events.append((None, final))
    events.append((None, "[DONE]"))
    return Reply(events=events, cut_after=cut_after)


def responses(model: str, usage: dict[str, Any]) -> Reply:
    return Reply(body=_response_object(model, usage))


def _response_object(model: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed" if usage else "in_progress",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def responses_stream(model: str, usage: dict[str, Any], *, cut_after: int | None = None) -> Reply:
    created = _response_object(model, None)
    done = _response_object(model, usage)
    events: list[tuple[str | None, Any]] = [
        (
            "response.created",
            {"type": "response.created", "response": created, "sequence_number": 0},
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hello.",
                "logprobs": [],
                "sequence_number": 1,
            },
        ),
        (
            "response.completed",
            {"type": "response.completed", "response": done, "sequence_number": 2},
        ),
    ]
    return Reply(events=events, cut_after=cut_after)


def embeddings(model: str, prompt_tokens: int, count: int = 1) -> Reply:
    return Reply(
        body={
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": [0.0, 0.5, 1.0]}
                for n in range(count)
            ],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def message(model: str, usage: dict[str, Any]) -> Reply:
    return Reply(body=_message_object(model, usage))


def _message_object(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def message_stream(
    model: str,
    start_usage: dict[str, Any],
    delta_usage: dict[str, Any],
    *,
    cut_after: int | None = None,
) -> Reply:
    start = {**_message_object(model, start_usage), "content": [], "stop_reason": None}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": delta_usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply(events=events, cut_after=cut_after)


def error(
    status: int, *, headers: dict[str, str] | None = None, retry_after_ms: str | None = "1"
) -> Reply:
    # retry-after-ms keeps the SDKs' own back-off sleeps to a millisecond.
    merged = {} if retry_after_ms is None else {"retry-after-ms": retry_after_ms}
    merged.update(headers or {})
    return Reply(status, {"error": {"type": "error", "message": f"fake {status}"}}, headers=merged)


def iter_lines(reply: Reply) -> Iterator[str]:
    """The SSE text of a streamed reply (for tests of the meter alone)."""
    for name, data in reply.events or []:
        text = data if isinstance(data, str) else json.dumps(data)
        yield (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
