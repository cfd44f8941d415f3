"""CLI tests: every command runs against each ledger in `CLI_LEDGERS`.

To add a backend (Redis, PostgreSQL), append a `pytest.param` whose factory returns the
URL of a fresh, isolated store for one test (a random key prefix or schema).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import runaway_guard as rg
from runaway_guard.cli import app
from runaway_guard.config import CONFIG_ENV, ENV_VARS
from runaway_guard.testing import FakeClock
from tests.ledger.conftest import drop_redis_prefix, fresh_name, redis_url

NOON = "2026-11-22T12:00:00+00:00"


@contextlib.contextmanager
def _sqlite(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'ledger.db'}"


@contextlib.contextmanager
def _redis(tmp_path: Path) -> Iterator[str]:
    prefix = fresh_name("cli")
    try:
        yield redis_url(prefix)
    finally:
        drop_redis_prefix(prefix)


CLI_LEDGERS = [
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_redis, id="redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=CLI_LEDGERS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh ledger of each backend, with its schema created, removed afterwards."""
    factory: Callable[[Path], contextlib.AbstractContextManager[str]] = request.param
    with factory(tmp_path) as url:
        rg.Guard(url).close()
        yield url


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No runaway-guard variables, and a working folder without a configuration file."""
    for variable in (CONFIG_ENV, *ENV_VARS.values()):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


def run(*args: str) -> Result:
    """Run `runaway-guard ARGS` in this process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def line_with(output: str, *parts: str) -> str:
    """The one line of `output` that contains every part."""
    (found,) = [line for line in output.splitlines() if all(p in line for p in parts)]
    return found


def cells(line: str) -> list[str]:
    """The cells of a table row, whatever its box characters."""
    for edge in "│┃|":
        line = line.replace(edge, "  ")
    return [cell.strip() for cell in line.split("  ") if cell.strip()]
