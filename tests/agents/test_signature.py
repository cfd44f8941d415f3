"""Loop signatures: what normalisation strips, collapses and keeps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runaway_guard import agents
from runaway_guard.agents._signature import normalise_text


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("trace 2025-05-11T06:14:03.512+02:00 done", "trace <time> done"),
        ("since 2025-05-11", "since <time>"),
        ("at 06:14:03", "at <time>"),
        ("epoch 1746944043 and 1746944043123", "epoch <time> and <time>"),
        ("job 123e4567-e89b-12d3-a456-426614174000", "job <uuid>"),
        ("X-Request-Id: 7f3a9 sent", "X-Request-Id: <id> sent"),
        ("retry req_8HtXq2LmN0", "retry <id>"),
        ("etag 9f86d081884c7d659a2f", "etag <hex>"),
        ("dig 203.0.113.77", "dig 203.0.113.0/24"),
        ("route 10.0.0.0/8", "route 10.0.0.0/8"),
        ("ping6 2001:db8:abcd:12::1", "ping6 2001:db8:abcd::/48"),
        ("port 33434 ttl 30", "port <n5> ttl 30"),
        ("whois AS4242420001", "whois AS4242420001"),
    ],
)
def test_text_normalisation(written: str, normalised: str) -> None:
    assert normalised == normalise_text(written)


def test_time_and_request_keys_lose_their_values() -> None:
    assert {"ts": "<time>", "created_at": "<time>", "request_id": "<id>", "n": 3} == (
        agents.normalise({"ts": 1746944043, "created_at": "x", "request_id": "abc", "n": 3})
    )


def test_integers_stay_exact_and_floats_read_by_shape() -> None:
    assert [4242420001, "<float:2>", "<float:2>"] == agents.normalise(
        [4242420001, 12.37, Decimal("45.1")]
    )


def test_neighbouring_addresses_and_new_timestamps_give_one_signature() -> None:
    first = agents.signature("traceroute", {"host": "203.0.113.7", "at": "2025-05-11T06:14:00Z"})
    later = agents.signature("traceroute", {"host": "203.0.113.9", "at": "2025-05-11T09:30:00Z"})
    assert first == later
    assert hash(first) == hash(later)


def test_another_tool_or_another_subnet_is_another_signature() -> None:
    base = agents.signature("traceroute", {"host": "203.0.113.7"})
    assert base != agents.signature("traceroute", {"host": "198.51.100.7"})
    assert base != agents.signature("ping", {"host": "203.0.113.7"})


def test_key_order_does_not_matter() -> None:
    assert agents.signature("t", {"a": 1, "b": 2}) == agents.signature("t", {"b": 2, "a": 1})


def test_the_hook_runs_first_on_the_raw_arguments() -> None:
    seen: list[object] = []

    def hook(tool: str, arguments: object) -> object:
        seen.append(arguments)
        return {"query": "<any>"}

    assert 'lookup{"query":"<any>"}' == agents.signature("lookup", {"q": "x"}, hook=hook).text
    assert [{"q": "x"}] == seen


def test_long_signatures_are_cut_for_display_but_compared_in_full() -> None:
    one = agents.signature("t", {"body": "z" * 500 + "1"})
    two = agents.signature("t", {"body": "z" * 500 + "2"})
    assert (240, 240) == (len(one.text), len(two.text))
    assert one != two
