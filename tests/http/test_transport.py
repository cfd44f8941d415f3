"""The guarded transports without an SDK: routes, flat prices, grouping, streams, httpx."""

from __future__ import annotations

import gzip
import json
import logging
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest

import runaway_guard as rg
import runaway_guard.http as rg_http
from runaway_guard.http._sdk import for_sdks
from runaway_guard.testing import FakeClock
from tests.http import fake_api
from tests.http.conftest import llm

CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


def flat(guard: rg.Guard, price: str = "$0.05", **options: Any) -> rg.Contract:
    options.setdefault("max_calls_per_run", 10)
    return guard.contract(
        "images", price=price, provider_cap="vendor dashboard, $50/day", **options
    )


class Counting:
    """An in-process transport that answers with `answer(request)` and counts requests."""

    def __init__(self, answer: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.requests: list[httpx2.Request] = []
        self.answer = answer

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.answer(request)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={"ok": True})


def chat_answer(request: httpx2.Request) -> httpx2.Response:
    body = json.dumps({"model": "gpt-4o", "usage": USAGE}).encode()
    # A stream that is not read yet, as a real connection hands it over.
    return httpx2.Response(
        200, headers={"content-type": "application/json"}, stream=httpx2.ByteStream(body)
    )


def records(guard: rg.Guard) -> list[rg.ledger.SpendRecord]:
    return list(guard.ledger.spend())


# -- flat prices and routes ------------------------------------------------------------------


def test_a_flat_contract_charges_every_request_its_price(guard: rg.Guard) -> None:
    with rg_http.client(flat(guard), transport=httpx2.MockTransport(ok)) as client:
        client.post("https://images.example/v1/generate", json={"prompt": "a cat"})
        client.get("https://images.example/v1/lookup")
    assert [50_000_000, 50_000_000] == [r.actual for r in records(guard)]


def test_a_route_sets_the_price_of_the_requests_it_matches(guard: rg.Guard) -> None:
    routes = {"POST images.example/v1/*": "$0.05", "GET images.example/v1/status": None}
    contract = flat(guard, price="$0.01")
    with rg_http.client(contract, routes=routes, transport=httpx2.MockTransport(ok)) as client:
        client.post("https://images.example/v1/generate", json={})
        client.get("https://images.example/v1/status")
        client.get("https://lookup.example/v2/whois")
    assert [50_000_000, 10_000_000] == [r.actual for r in records(guard)]


def test_the_first_matching_route_wins(guard: rg.Guard) -> None:
    routes = {"/v1/cheap/*": "$0.01", "/v1/*": "$0.05"}
    with rg_http.client(flat(guard), routes=routes, transport=httpx2.MockTransport(ok)) as client:
        client.get("https://x.example/v1/cheap/a")
    assert [10_000_000] == [r.actual for r in records(guard)]


def test_a_route_may_name_a_port(guard: rg.Guard) -> None:
    routes = {"127.0.0.1:8080/*": "$0.02"}
    with rg_http.client(flat(guard), routes=routes, transport=httpx2.MockTransport(ok)) as client:
        client.get("http://127.0.0.1:8080/a")
    assert [20_000_000] == [r.actual for r in records(guard)]


def test_a_dynamic_price_reads_the_cost_the_response_reports(guard: rg.Guard) -> None:
    price = rg.Dynamic(lambda call: "$0.10", lambda call, response: response.headers["x-cost"])

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"x-cost": "$0.03"})

    contract = guard.contract(
        "lookup", price=price, max_per_run="$1", provider_cap="vendor, $5/day"
    )
    with rg_http.client(contract, transport=httpx2.MockTransport(answer)) as client:
        client.get("https://lookup.example/v1/ip")
    [record] = records(guard)
    assert (100_000_000, 30_000_000) == (record.estimate, record.actual)


@pytest.mark.parametrize("bad", ["", "api.example.com", "https://api.example.com/v1"])
def test_a_malformed_route_is_a_contract_error(guard: rg.Guard, bad: str) -> None:
    with pytest.raises(rg.ContractError, match="route"):
        rg_http.client(flat(guard), routes={bad: "$0.01"})


def test_a_flat_budget_refusal_sends_nothing(guard: rg.Guard) -> None:
    counting = Counting(ok)
    with rg_http.client(flat(guard, max_calls_per_run=1), transport=counting.transport()) as client:
        client.get("https://images.example/a")
        with pytest.raises(rg.BudgetExceeded):
            client.get("https://images.example/b")
    assert 1 == len(counting.requests)


def test_a_4xx_is_released(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json={"error": "bad prompt"})

    with rg_http.client(flat(guard), transport=httpx2.MockTransport(answer)) as client:
        response = client.post("https://images.example/v1/generate", json={})
    [record] = records(guard)
    assert (400, "released", 0) == (response.status_code, record.outcome, record.actual)


def test_a_redirect_is_released_and_the_target_charged(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/old":
            return httpx2.Response(307, headers={"location": "https://images.example/new"})
        return httpx2.Response(200)

    with rg_http.client(flat(guard), transport=httpx2.MockTransport(answer)) as client:
        client.post("https://images.example/old", json={})
    assert [("released", "HTTP 307"), ("settled", "")] == [
        (r.outcome, r.error) for r in records(guard)
    ]


def test_a_see_other_after_a_post_is_charged(guard: rg.Guard) -> None:
    """A 303 after a POST usually answers a request that was processed: it may be billed."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            return httpx2.Response(303, headers={"location": "https://images.example/result/1"})
        return httpx2.Response(200)

    with rg_http.client(
        flat(guard), transport=httpx2.MockTransport(answer), follow_redirects=False
    ) as client:
        client.post("https://images.example/v1/generate", json={})
    [record] = records(guard)
    assert ("settled", 50_000_000) == (record.outcome, record.actual)


# -- token-priced contracts ----------------------------------------------------------------------


def test_a_token_contract_refuses_a_post_it_cannot_price(guard: rg.Guard) -> None:
    counting = Counting(ok)
    with (
        rg_http.client(llm(guard), transport=counting.transport()) as client,
        pytest.raises(rg_http.UnpricedRequest, match="routes="),
    ):
        client.post("https://api.openai.com/v1/images/generations", json={"prompt": "a cat"})
    assert [] == counting.requests


def test_a_token_contract_lets_reads_through_free(guard: rg.Guard) -> None:
    with rg_http.client(llm(guard), transport=httpx2.MockTransport(ok)) as client:
        client.get("https://api.openai.com/v1/models")
        client.delete("https://api.openai.com/v1/files/file-1")
        client.post("https://api.openai.com/v1/files", files={"file": b"data"})
    assert [] == records(guard)


def test_a_token_route_body_that_is_not_json_is_refused(guard: rg.Guard) -> None:
    with (
        rg_http.client(llm(guard), transport=httpx2.MockTransport(ok)) as client,
        pytest.raises(rg_http.UnpricedRequest, match="not a JSON object"),
    ):
        client.post(CHAT_URL, content=b"not json")


def test_a_token_contract_with_a_flat_route(guard: rg.Guard) -> None:
    routes = {"POST api.openai.com/v1/images/generations": "$0.04"}
    with rg_http.client(llm(guard), routes=routes, transport=httpx2.MockTransport(ok)) as client:
        client.post("https://api.openai.com/v1/images/generations", json={"prompt": "a cat"})
    assert [40_000_000] == [r.actual for r in records(guard)]


def test_a_response_read_already_settles_at_once(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"model": "gpt-4o", "usage": USAGE})

    with rg_http.client(llm(guard), transport=httpx2.MockTransport(answer)) as client:
        client.post(CHAT_URL, json=CHAT_BODY)
    [record] = records(guard)
    assert (14, "settled") == (record.tokens, record.outcome)


def test_a_gzip_response_is_metered(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = gzip.compress(json.dumps({"model": "gpt-4o", "usage": USAGE}).encode())
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(body))

    with rg_http.client(llm(guard), transport=httpx2.MockTransport(answer)) as client:
        assert USAGE == client.post(CHAT_URL, json=CHAT_BODY).json()["usage"]
    assert 14 == records(guard)[0].tokens


def test_a_streamed_response_renews_its_lease(guard: rg.Guard, clock: FakeClock) -> None:
    """A stream longer than the hold's lease is never reaped while it is being read."""
    text = "".join(fake_api.iter_lines(fake_api.chat_stream("gpt-4o", USAGE)))
    reaped: list[object] = []

    class Slow(httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for line in text.splitlines(keepends=True):
                clock.advance(400)  # longer, all told, than the 900 s lease
                reaped.extend(guard.reap())
                yield line.encode()

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Slow())

    with (
        rg_http.client(llm(guard), transport=httpx2.MockTransport(answer)) as client,
        client.stream("POST", CHAT_URL, json={**CHAT_BODY, "stream": True}) as response,
    ):
        for _ in response.iter_bytes():
            pass
    [record] = records(guard)
    assert ([], "settled", 14) == (reaped, record.outcome, record.tokens)


def test_a_stream_holds_its_concurrency_slot_until_it_ends(guard: rg.Guard) -> None:
    contract = llm(guard, concurrency=1, queue_timeout=1.0)
    with rg_http.client(contract, transport=httpx2.MockTransport(chat_answer)) as client:
        with client.stream("POST", CHAT_URL, json=CHAT_BODY) as response:
            with pytest.raises(rg.ConcurrencyLimitReached):
                client.post(CHAT_URL, json=CHAT_BODY)
            response.read()
        client.post(CHAT_URL, json=CHAT_BODY)
    assert ["settled", "settled"] == [r.outcome for r in records(guard)]


# -- attempts of one call ------------------------------------------------------------------------


def test_an_idempotency_key_groups_attempts(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(502)

    contract = flat(guard, retry=rg.Retry(2))
    headers = {"Idempotency-Key": "order-17"}
    counting = Counting(answer)
    with rg_http.client(contract, transport=counting.transport()) as client:
        client.post("https://images.example/v1/generate", json={}, headers=headers)
        client.post("https://images.example/v1/generate", json={}, headers=headers)
        with pytest.raises(rg.RetriesExhausted, match="gave up after 2 attempt"):
            client.post("https://images.example/v1/generate", json={}, headers=headers)
    first, second = records(guard)
    assert (first.call_id, (1, 2), 2) == (
        second.call_id,
        (first.attempt, second.attempt),
        len(counting.requests),
    )


def test_a_new_call_after_a_success_with_the_same_key_is_a_new_call(guard: rg.Guard) -> None:
    headers = {"Idempotency-Key": "order-17"}
    with rg_http.client(flat(guard), transport=httpx2.MockTransport(ok)) as client:
        client.post("https://images.example/v1/generate", json={}, headers=headers)
        client.post("https://images.example/v1/generate", json={}, headers=headers)
    first, second = records(guard)
    assert (1, 1) == (first.attempt, second.attempt)
    assert first.call_id != second.call_id


def test_a_retry_after_the_guard_gave_up_is_refused_before_sending(guard: rg.Guard) -> None:
    """A client that ignores x-should-retry still cannot make the attempt."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503)

    counting = Counting(answer)
    with rg_http.client(flat(guard), transport=counting.transport()) as client:
        response = client.post(CHAT_URL, json={}, headers={"x-stainless-retry-count": "0"})
        with pytest.raises(rg.RetriesExhausted, match="does not retry server_error"):
            client.post(CHAT_URL, json={}, headers={"x-stainless-retry-count": "1"})
    assert ("false", 1) == (response.headers["x-should-retry"], len(counting.requests))


def test_a_retry_the_contract_allows_leaves_the_response_alone(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503)

    with rg_http.client(
        flat(guard, retry=rg.Retry(3)), transport=httpx2.MockTransport(answer)
    ) as client:
        response = client.post(CHAT_URL, json={}, headers={"x-stainless-retry-count": "0"})
    assert "x-should-retry" not in response.headers


def test_a_connect_failure_is_released_and_raised_as_is(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with (
        rg_http.client(
            flat(guard, retry=rg.Retry(3)), transport=httpx2.MockTransport(answer)
        ) as client,
        pytest.raises(httpx2.ConnectError),
    ):
        client.get("https://images.example/a")
    assert [("released", "ConnectError")] == [(r.outcome, r.error) for r in records(guard)]


def test_a_read_timeout_is_charged_its_estimate(guard: rg.Guard) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("no answer", request=request)

    with (
        rg_http.client(
            llm(guard, retry=rg.Retry(3)), transport=httpx2.MockTransport(answer)
        ) as client,
        pytest.raises(httpx2.ReadTimeout),
    ):
        client.post(CHAT_URL, json=CHAT_BODY)
    [record] = records(guard)
    assert ("failed", record.estimate, "ReadTimeout") == (
        record.outcome,
        record.actual,
        record.error,
    )


def test_a_chat_stream_without_usage_is_reported_once(
    guard: rg.Guard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runaway_guard")
    body = {**CHAT_BODY, "stream": True}
    with rg_http.client(llm(guard), transport=httpx2.MockTransport(chat_answer)) as client:
        client.post(CHAT_URL, json=body)
        client.post(CHAT_URL, json=body)
    assert 1 == caplog.text.count("include_usage")


def test_threads_sharing_a_client_never_pass_the_calls_budget(guard: rg.Guard) -> None:
    """Eight threads, forty calls, a budget of ten: exactly ten reach the API."""
    counting = Counting(chat_answer)
    contract = llm(guard, max_calls_per_run=10)
    refused: list[Exception] = []
    with rg_http.client(contract, transport=counting.transport()) as client:

        def worker() -> None:
            for _ in range(5):
                try:
                    client.post(CHAT_URL, json=CHAT_BODY)
                except rg.BudgetExceeded as exc:
                    refused.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert (10, 30, 10) == (len(counting.requests), len(refused), len(records(guard)))
    assert [] == guard.ledger.holds()


# -- clients ---------------------------------------------------------------------------------


def test_mounts_are_refused_because_they_would_bypass_the_guard(guard: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="mounts"):
        rg_http.client(flat(guard), mounts={"all://": httpx2.HTTPTransport()})


def test_transport_options_beside_a_transport_are_refused(guard: rg.Guard) -> None:
    with pytest.raises(rg.ContractError, match="verify"):
        rg_http.client(flat(guard), transport=httpx2.MockTransport(ok), verify=False)


def test_the_client_uses_the_sdk_timeouts(guard: rg.Guard) -> None:
    with flat(guard).http_client() as client:
        assert (600.0, 5.0, True) == (
            client.timeout.read,
            client.timeout.connect,
            client.follow_redirects,
        )


async def test_async_client_charges_a_flat_price(guard: rg.Guard) -> None:
    async with rg_http.async_client(flat(guard), transport=httpx2.MockTransport(ok)) as client:
        await client.get("https://images.example/a")
    assert [50_000_000] == [r.actual for r in records(guard)]


async def test_async_stream_settles_from_its_usage(guard: rg.Guard) -> None:
    text = "".join(fake_api.iter_lines(fake_api.chat_stream("gpt-4o", USAGE))).encode()

    async def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(text))

    async with (
        rg_http.async_client(llm(guard), transport=httpx2.MockTransport(answer)) as client,
        client.stream("POST", CHAT_URL, json=CHAT_BODY) as response,
    ):
        async for _ in response.aiter_bytes():
            pass
    assert [("settled", 14)] == [(r.outcome, r.tokens) for r in records(guard)]


class RemoteMemoryLedger(rg.ledger.MemoryLedger):
    """A memory ledger that says it is remote: async code must reach it from a thread."""

    remote = True


async def test_async_stream_with_a_remote_ledger_settles_from_a_worker_thread(
    clock: FakeClock,
) -> None:
    text = "".join(fake_api.iter_lines(fake_api.chat_stream("gpt-4o", USAGE))).encode()

    async def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(text))

    with rg.Guard(RemoteMemoryLedger(), clock=clock) as guard:
        contract = llm(guard)
        async with (
            rg_http.async_client(contract, transport=httpx2.MockTransport(answer)) as client,
            client.stream("POST", CHAT_URL, json=CHAT_BODY) as response,
        ):
            async for _ in response.aiter_bytes():
                pass
        assert [("settled", 14)] == [(r.outcome, r.tokens) for r in records(guard)]


def test_httpx_client_is_guarded_too(guard: rg.Guard) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"model": "gpt-4o", "usage": USAGE}).encode()
        return httpx.Response(200, stream=httpx.ByteStream(body))

    with rg_http.httpx_client(llm(guard), transport=httpx.MockTransport(answer)) as client:
        assert isinstance(client, httpx.Client)
        client.post(CHAT_URL, json=CHAT_BODY)
    assert [14] == [r.tokens for r in records(guard)]


async def test_httpx_async_client_refuses_past_the_budget(guard: rg.Guard) -> None:
    contract = llm(guard, max_per_run="$0.000001")
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    async with rg_http.httpx_async_client(contract, transport=transport) as client:
        with pytest.raises(rg.BudgetExceeded):
            await client.post(CHAT_URL, json=CHAT_BODY)


def test_a_refusal_for_the_sdks_is_still_the_guard_error_and_pickles_as_one() -> None:
    import anthropic
    import openai

    error = rg.BudgetExceeded(
        budget="b",
        unit="money",
        limit="$1",
        spent="$1",
        held="$0",
        asked="$1",
        window="w",
        hint="h",
    )
    mixed = for_sdks(error)
    assert isinstance(mixed, rg.BudgetExceeded)
    assert isinstance(mixed, anthropic.AnthropicError)
    assert isinstance(mixed, openai.OpenAIError)
    assert (str(error), "BudgetExceeded") == (str(mixed), type(mixed).__name__)
    restored = pickle.loads(pickle.dumps(mixed))
    assert (rg.BudgetExceeded, "h") == (type(restored), restored.hint)
