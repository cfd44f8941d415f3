"""What the guarded transport adds to each request: guarded client vs the same client.

Run: ``python -m benchmarks.transport`` (``--quick`` for fewer rounds).

Both clients send through one fake in-process transport that answers every request with
a canned response (no sockets), so the difference is the guard's work alone: pricing
the request body, the hold and the settle on a memory ledger, and metering the usage in
the response body. Short rounds of the bare and the guarded client run side by side,
timed in CPU time of the benchmark's thread (the path is CPU-bound, and the shared
machine's wall clock also counts other processes' turns), and the added latency is the
median of the per-round differences. Target: <= 100 us added per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
import openai

import runaway_guard as rg
import runaway_guard.http as rg_http
from benchmarks._report import Figure

TARGET_US = 100.0

URL = "https://api.openai.com/v1/chat/completions"
REQUEST = json.dumps(
    {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Summarise the incident report in one line."},
        ],
        "max_tokens": 200,
    }
).encode()
USAGE = {
    "prompt_tokens": 31,
    "completion_tokens": 6,
    "total_tokens": 37,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "All systems nominal."},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()


def _sse(*events: object) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _chunk(delta: dict[str, str], usage: object = None) -> dict[str, object]:
    choices = [{"index": 0, "delta": delta, "finish_reason": None}] if delta else []
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": choices,
        "usage": usage,
    }


STREAM = _sse(
    _chunk({"role": "assistant", "content": ""}),
    *[_chunk({"content": "word "}) for _ in range(20)],
    _chunk({}, USAGE),
)


class Canned(httpx2.BaseTransport):
    """Answers every request with the same body, as an unread stream (like a socket)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.headers = {"content-type": content_type, "content-length": str(len(body))}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=self.headers, stream=httpx2.ByteStream(self.body))


@dataclass(frozen=True)
class Comparison:
    name: str
    bare: float
    guarded: float
    added: float
    target: bool


def _per_request_us(send: Callable[[], object], requests: int) -> float:
    # CPU time of this thread, not wall time: on a shared machine the wall clock also
    # counts the time other processes held the CPU, which is not the guard's cost. The
    # path measured is CPU-bound (no sockets, no sleeps), so its CPU time is its latency.
    start = time.thread_time_ns()
    for _ in range(requests):
        send()
    return (time.thread_time_ns() - start) / requests / 1000


def _compare(
    name: str,
    bare: Callable[[], object],
    guarded: Callable[[], object],
    requests: int,
    rounds: int,
    *,
    target: bool = True,
) -> Comparison:
    """Short rounds, bare and guarded side by side (order swapped each round); the added
    latency is the median of the per-round differences, so a noisy neighbour's bursts
    hit both sides of a pair alike."""
    for _ in range(3):  # warm caches and connection-free code paths
        bare()
        guarded()
    bare_samples, guarded_samples, added = [], [], []
    for number in range(rounds):
        if number % 2:
            plain = _per_request_us(bare, requests)
            with_guard = _per_request_us(guarded, requests)
        else:
            with_guard = _per_request_us(guarded, requests)
            plain = _per_request_us(bare, requests)
        bare_samples.append(plain)
        guarded_samples.append(with_guard)
        added.append(with_guard - plain)
    return Comparison(
        name,
        statistics.median(bare_samples),
        statistics.median(guarded_samples),
        statistics.median(added),
        target,
    )


def _contract(guard: rg.Guard) -> rg.Contract:
    return guard.contract(
        "bench",
        price=rg.TokenPrice(tokenizer="bytes"),
        max_per_run="$1000000",
        provider_cap="benchmark: no provider",
        breaker=False,
    )


def comparisons(quick: bool) -> list[Comparison]:
    requests = 100
    rounds = 30 if quick else 120
    figures = []
    guard = rg.Guard("memory://")
    contract = _contract(guard)
    headers = {"content-type": "application/json"}
    with guard.run("bench"):
        for name, body, kind in (
            ("chat completion, JSON usage", COMPLETION, "application/json"),
            ("chat completion, SSE stream of 22 events", STREAM, "text/event-stream"),
        ):
            bare = httpx2.Client(transport=Canned(body, kind))
            guarded = rg_http.client(contract, transport=Canned(body, kind))

            def send_bare(client: httpx2.Client = bare) -> object:
                return client.post(URL, content=REQUEST, headers=headers).content

            def send_guarded(client: httpx2.Client = guarded) -> object:
                return client.post(URL, content=REQUEST, headers=headers).content

            figures.append(_compare(name, send_bare, send_guarded, requests, rounds))

        flat = guard.contract(
            "images",
            price="$0.05",
            max_calls_per_run=10**9,
            provider_cap="benchmark",
            breaker=False,
        )
        bare_flat = httpx2.Client(transport=Canned(b"{}", "application/json"))
        guarded_flat = rg_http.client(flat, transport=Canned(b"{}", "application/json"))
        image_url = "https://images.example/v1/generate"
        figures.append(
            _compare(
                "flat price per call ($0.05 route)",
                lambda: bare_flat.post(image_url, content=b"{}").content,
                lambda: guarded_flat.post(image_url, content=b"{}").content,
                requests,
                rounds,
            )
        )

        canned = Canned(COMPLETION, "application/json")
        sdk_bare = openai.OpenAI(api_key="sk-bench", http_client=httpx2.Client(transport=canned))
        sdk_guarded = openai.OpenAI(
            api_key="sk-bench", http_client=rg_http.client(contract, transport=canned)
        )
        messages: list[dict[str, str]] = json.loads(REQUEST)["messages"]

        def sdk_call(client: openai.OpenAI) -> Callable[[], object]:
            return lambda: client.chat.completions.create(
                model="gpt-4o",
                messages=messages,  # type: ignore[arg-type]
                max_tokens=200,
            )

        figures.append(
            _compare(
                "whole OpenAI SDK call (for scale)",
                sdk_call(sdk_bare),
                sdk_call(sdk_guarded),
                requests // 5,
                rounds,
                target=False,
            )
        )
    return figures


def measure(quick: bool) -> list[Figure]:
    """The added latency per request, with the target, for `python -m benchmarks`."""
    return [
        Figure(
            f"added per request: {c.name}",
            c.added,
            "us",
            f"<= {TARGET_US:.0f} us" if c.target else "",
            c.added <= TARGET_US if c.target else None,
        )
        for c in comparisons(quick)
    ]


def render(figures: list[Comparison]) -> str:
    width = max(len(f.name) for f in figures)
    lines = [
        "guarded transport: added latency per request "
        "(CPU time, medians of paired rounds, memory ledger)",
        "",
        f"  {'':<{width}}  {'bare':>10}  {'guarded':>10}  {'added':>10}",
    ]
    for figure in figures:
        verdict = ""
        if figure.target:
            ok = figure.added <= TARGET_US
            verdict = f"  target <= {TARGET_US:.0f} us  {'ok' if ok else 'MISSED'}"
        lines.append(
            f"  {figure.name:<{width}}  {figure.bare:8.1f} us  {figure.guarded:8.1f} us"
            f"  {figure.added:8.1f} us{verdict}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    print(render(comparisons(args.quick)))


if __name__ == "__main__":
    main()
