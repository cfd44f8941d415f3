"""tiktoken tightens estimates only when its encoding is cached: never a download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken.load

import runaway_guard as rg
from runaway_guard.llm import Api
from runaway_guard.llm._tokens import available_offline, cache_path, tiktoken_counter


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tiktoken_counter.cache_clear()

    def no_download(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_download)
    yield tmp_path
    tiktoken_counter.cache_clear()


def test_no_cached_encoding_means_no_counter_and_no_download() -> None:
    assert tiktoken_counter("gpt-4o") is None


def test_a_cached_file_with_the_wrong_hash_is_not_used(empty_cache: Path) -> None:
    path = cache_path("o200k_base")
    assert path is not None
    Path(path).write_bytes(b"not the real encoding")
    assert (False, None) == (available_offline("o200k_base"), tiktoken_counter("gpt-4o"))


def test_an_empty_cache_dir_disables_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert cache_path("o200k_base") is None


def test_models_tiktoken_does_not_know_get_no_counter() -> None:
    assert tiktoken_counter("claude-sonnet-4-5") is None


def test_tokenizer_bytes_never_counts() -> None:
    assert rg.TokenPrice(tokenizer="bytes").counter(Api.CHAT, "gpt-4o") is None


def test_anthropic_models_are_not_counted_with_tiktoken() -> None:
    assert rg.TokenPrice().counter(Api.MESSAGES, "claude-sonnet-4-5") is None


def test_your_own_tokenizer_is_used() -> None:
    def words(text: str) -> int:
        return len(text.split())

    assert words is rg.TokenPrice(tokenizer=words).counter(Api.MESSAGES, "claude-sonnet-4-5")
