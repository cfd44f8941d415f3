"""What only the SQLite backend has: a file, its mode, its schema, its URL."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.ledger import SQLiteLedger, ledger_from_url
from runaway_guard.ledger._sqlite import SCHEMA_VERSION


def test_the_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.db"
    SQLiteLedger(path).close()
    assert 0o600 == stat.S_IMODE(os.stat(path).st_mode)
    assert 0o700 == stat.S_IMODE(os.stat(path.parent).st_mode)


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as conn:
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert str(SCHEMA_VERSION) == version


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = SQLiteLedger(path)
    first.cas_state("k", expected_version=0, value="v", now=0)
    first.close()
    second = SQLiteLedger(path)
    record = second.get_state("k", now=0)
    assert record is not None
    assert "v" == record.value


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(rg.LedgerError, match="upgrade runaway-guard"):
        SQLiteLedger(path)


def test_an_unopenable_path_is_ledger_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(rg.LedgerUnavailable, match="RUNAWAY_GUARD_LEDGER"):
        SQLiteLedger(blocker / "ledger.db")


def test_a_corrupt_file_is_ledger_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(rg.LedgerUnavailable):
        SQLiteLedger(path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite:////tmp/x/absolute.db", "/tmp/x/absolute.db"),
    ],
)
def test_url_paths_follow_sqlalchemy(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = ledger_from_url(url)
    assert isinstance(ledger, SQLiteLedger)
    assert Path(expected) == ledger.path
    ledger.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "no path"),
        ("sqlite:///x.db?cache=big", "unknown SQLite ledger option"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
        ("ledger.db", "no scheme"),
        ("mongodb://x", "unknown ledger URL scheme 'mongodb'"),
    ],
)
def test_bad_urls_say_how_to_fix_them(url: str, message: str) -> None:
    with pytest.raises(rg.ContractError, match=message):
        ledger_from_url(url)


def test_options_in_the_url(tmp_path: Path) -> None:
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'l.db'}?busy_timeout=5&synchronous=FULL")
    assert isinstance(ledger, SQLiteLedger)
    ledger.close()


def test_the_default_ledger_honours_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", f"sqlite:///{tmp_path / 'env.db'}")
    with rg.Guard() as guard:
        assert guard.ledger.url.endswith("env.db")


def test_the_default_ledger_lives_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNAWAY_GUARD_LEDGER", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with rg.Guard() as guard:
        assert str(tmp_path / "runaway-guard" / "ledger.db") in guard.ledger.url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0?prefix=p", "redis://:***@h:6379/0?prefix=p"),
        (
            "postgresql://u:pw@h/db?sslpassword=x&schema=s",
            "postgresql://u:***@h/db?sslpassword=***&schema=s",
        ),
        ("postgresql://h/db?password=hunter2", "postgresql://h/db?password=***"),
        ("sqlite:///ledger.db", "sqlite:///ledger.db"),
    ],
)
def test_urls_are_shown_without_secrets(url: str, shown: str) -> None:
    from runaway_guard.ledger import redact_url

    assert shown == redact_url(url)


def test_an_amount_past_64_bits_is_a_clear_error(tmp_path: Path) -> None:
    from runaway_guard.ledger import HoldLine, HoldRequest

    ledger = SQLiteLedger(tmp_path / "ledger.db")
    huge = HoldLine("c|money|total", 2**63, None, "money")
    with pytest.raises(rg.ContractError, match="2\\*\\*63"):
        ledger.reserve(HoldRequest("h", (huge,), 0.0, 60.0))
    assert [] == ledger.holds()
    ledger.close()
