"""Exact token counts where an offline tokenizer exists: tiktoken, for OpenAI models.

tiktoken downloads its encoding files on first use. A guard must never make a network
call (or hang on one) on the way to a paid call, so it uses tiktoken only when the
encoding a model needs is already in tiktoken's local cache and matches its published
hash; otherwise the estimate stays on the byte bound, which needs no tokenizer.
Fill the cache once with ``python -c "import tiktoken; tiktoken.get_encoding('o200k_base')"``
(and ``TIKTOKEN_CACHE_DIR`` to keep it somewhere permanent).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable
from typing import Final

__all__ = ["Counter", "tiktoken_counter"]

logger = logging.getLogger("runaway_guard")

Counter = Callable[[str], int]
"""Counts the tokens of one piece of text."""

_BLOBS: Final = "https://openaipublic.blob.core.windows.net/encodings/"
# The files tiktoken fetches for these encodings and their published SHA-256 digests
# (tiktoken_ext/openai_public.py): a cached file is used only if it matches.
_ENCODINGS: Final = {
    "o200k_base": (
        _BLOBS + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        _BLOBS + "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


def cache_path(encoding: str) -> str | None:
    """Where tiktoken caches `encoding`'s file (None when caching is disabled or unknown)."""
    known = _ENCODINGS.get(encoding)
    if known is None:
        return None
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        folder = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        import tempfile  # only here: importing it costs milliseconds at start-up

        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if folder == "":
        return None
    return os.path.join(folder, hashlib.sha1(known[0].encode()).hexdigest())  # noqa: S324 - tiktoken's cache key


def available_offline(encoding: str) -> bool:
    """True when tiktoken can load `encoding` from its cache without a download."""
    path = cache_path(encoding)
    if path is None:
        return False
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == _ENCODINGS[encoding][1]


@functools.lru_cache(maxsize=128)
def tiktoken_counter(model: str) -> Counter | None:
    """A token counter for an OpenAI `model`, or None (not installed, not cached, unknown)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return None
    if not available_offline(name):
        return None
    try:
        encoding = tiktoken.get_encoding(name)
    except Exception:  # a broken install must not break paid calls: fall back to bytes
        logger.warning("runaway-guard could not load tiktoken encoding %s", name, exc_info=True)
        return None

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return count
