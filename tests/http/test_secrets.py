"""API keys never reach the ledger, the spend log, errors or logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import runaway_guard as rg
from runaway_guard.testing import FakeClock
from tests.http import fake_api
from tests.http.conftest import ANTHROPIC_KEY, OPENAI_KEY, llm
from tests.http.fake_api import FakeAPI

CHAT = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
MESSAGE = {"input_tokens": 10, "output_tokens": 4}
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def test_api_keys_never_reach_the_sqlite_ledger_or_the_logs(
    api: FakeAPI, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' and httpx2's included
    errors: list[str] = []
    path = tmp_path / "ledger.db"
    with rg.Guard(f"sqlite:///{path}", clock=clock) as guard:
        chat = llm(guard, retry=rg.Retry(2))
        broke = llm(guard, "broke", max_per_run="$0.000001")
        with (
            openai.OpenAI(
                api_key=OPENAI_KEY, base_url=f"{api.url}/v1", http_client=chat.http_client()
            ) as oa,
            anthropic.Anthropic(
                api_key=ANTHROPIC_KEY, base_url=api.url, http_client=chat.http_client()
            ) as an,
            openai.OpenAI(
                api_key=OPENAI_KEY, base_url=f"{api.url}/v1", http_client=broke.http_client()
            ) as refused,
        ):
            # A success, a retried 500, a 429, a broken stream, a 400, and refusals.
            api.reply(
                fake_api.chat("gpt-4o", CHAT),
                fake_api.error(500),
                fake_api.message("claude-sonnet-5-5", MESSAGE),
                fake_api.error(429),
                fake_api.chat("gpt-4o", CHAT),
                fake_api.chat_stream("gpt-4o", CHAT, cut_after=2),
                fake_api.error(400),
            )
            oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=5)
            an.messages.create(model="claude-sonnet-5-5", messages=MESSAGES, max_tokens=5)
            oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=5)
            for attempt in (
                lambda: list(
                    oa.chat.completions.create(
                        model="gpt-4o", messages=MESSAGES, max_tokens=5, stream=True
                    )
                ),
                lambda: oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=5),
                lambda: refused.chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, max_tokens=5
                ),
                lambda: oa.chat.completions.create(model="gpt-9", messages=MESSAGES, max_tokens=5),
            ):
                with pytest.raises(Exception) as caught:  # noqa: PT011 - any failure will do
                    attempt()
                errors.append(f"{caught.value!s} {caught.value!r} {caught.value.__cause__!r}")
        assert 7 == len(list(guard.ledger.spend()))
        files = {p.name: p.read_bytes() for p in tmp_path.glob("ledger.db*")}
    files.update({f"{p.name} (closed)": p.read_bytes() for p in tmp_path.glob("ledger.db*")})
    stored = b"".join(files.values())
    assert "ledger.db-wal" in files  # the write-ahead log, while open, was searched too
    assert b"gpt-4o" not in stored  # nothing of the request body is stored either
    assert 4 == len(errors)
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key.encode() not in stored
        assert key not in caplog.text
        assert all(key not in text for text in errors)
    # The keys really were sent, so their absence above means something.
    sent = {
        r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in api.requests
    }
    assert any(OPENAI_KEY in header for header in sent)
    assert any(ANTHROPIC_KEY in header for header in sent)
