"""One parametrised ledger fixture: every conformance test runs on every backend.

To add a backend, add a `pytest.param` to `ALL_LEDGERS` whose factory returns a function
that opens a new connection to one fresh, isolated store each time it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runaway_guard.ledger import Ledger, MemoryLedger, SQLiteLedger

Opener = Callable[[], Ledger]


def _memory(tmp_path: Path) -> Opener:
    shared = MemoryLedger()  # one process: every "connection" is the same object
    return lambda: shared


def _sqlite(tmp_path: Path) -> Opener:
    path = tmp_path / "ledger.db"
    return lambda: SQLiteLedger(path)


ALL_LEDGERS = [
    pytest.param(_memory, id="memory"),
    pytest.param(_sqlite, id="sqlite"),
]


@pytest.fixture(params=ALL_LEDGERS)
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens connections to one fresh store of the parametrised backend."""
    opened: list[Ledger] = []
    factory: Callable[[Path], Opener] = request.param
    opener = factory(tmp_path)

    def open_one() -> Ledger:
        ledger = opener()
        opened.append(ledger)
        return ledger

    yield open_one
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(open_ledger: Opener) -> Ledger:
    return open_ledger()
