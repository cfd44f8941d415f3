"""Failure classification on real exception classes from httpx, requests and the stdlib."""

from __future__ import annotations

import httpx
import pytest
import requests

import runaway_guard as rg
from runaway_guard import Kind

NOW = 1_800_000_000.0


def _httpx_status(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://api.example.test/v1/x")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError("status", request=request, response=response)


def _requests_status(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError("status", response=response)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_httpx_status(400), Kind.CLIENT_ERROR),
        (_httpx_status(404), Kind.CLIENT_ERROR),
        (_httpx_status(408), Kind.CONFLICT),
        (_httpx_status(409), Kind.CONFLICT),
        (_httpx_status(429), Kind.RATE_LIMITED),
        (_httpx_status(500), Kind.SERVER_ERROR),
        (_httpx_status(529), Kind.SERVER_ERROR),
        (httpx.ConnectError("refused"), Kind.CONNECT_FAILED),
        (httpx.ConnectTimeout("slow connect"), Kind.CONNECT_FAILED),
        (httpx.ReadTimeout("slow read"), Kind.TIMEOUT),
        (httpx.RemoteProtocolError("dropped"), Kind.CONNECTION),
        (httpx.ReadError("reset"), Kind.CONNECTION),
        (_requests_status(401), Kind.CLIENT_ERROR),
        (_requests_status(503), Kind.SERVER_ERROR),
        (requests.ConnectTimeout(), Kind.CONNECT_FAILED),
        (requests.ReadTimeout(), Kind.TIMEOUT),
        (requests.ConnectionError(), Kind.CONNECTION),
        (TimeoutError(), Kind.TIMEOUT),
        (ConnectionRefusedError(), Kind.CONNECT_FAILED),
        (ConnectionResetError(), Kind.CONNECTION),
        (ValueError("bug"), Kind.OTHER),
        (rg.NonRetriableError("stop"), Kind.NON_RETRIABLE),
        (KeyboardInterrupt(), Kind.INTERRUPTED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_classification(exc: BaseException, kind: Kind) -> None:
    assert kind == rg.classify(exc, now=NOW).kind


def test_retry_after_is_read_from_the_response() -> None:
    assert 3.0 == rg.classify(_httpx_status(429, {"Retry-After": "3"}), now=NOW).retry_after
    assert (
        0.25 == rg.classify(_requests_status(429, {"retry-after-ms": "250"}), now=NOW).retry_after
    )
    assert rg.classify(_httpx_status(429, {"Retry-After": "soon"}), now=NOW).retry_after is None
    assert rg.classify(_httpx_status(429, {"Retry-After": "-5"}), now=NOW).retry_after is None


def test_a_refusal_inside_the_call_is_not_retried() -> None:
    refused = rg.CircuitOpen("open")
    assert Kind.REFUSED == rg.classify(refused, now=NOW).kind
    assert not rg.classify(refused, now=NOW).retriable
