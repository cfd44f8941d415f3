"""Network ledgers when the server fails: fail closed, resume, and never count twice.

Each test runs against a private Redis or PostgreSQL server (see `_servers`) that it may
stop and start; the shared servers are never touched.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

import runaway_guard as rg
from runaway_guard.ledger import HoldLine, HoldRequest, Ledger, ledger_from_url
from runaway_guard.testing import FakeClock
from tests.ledger._proxy import LossyProxy
from tests.ledger._servers import PASSWORD, private_postgres, private_redis

NOW = 1_800_000_000.0
MONEY = "c|money|day:x"
CALLS = "c|calls|run:r"


class Server(Protocol):
    port: int

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Backend:
    kind: str
    server: Server

    def url(self, name: str, port: int | None = None) -> str:
        base = self.server.url
        if port is not None:
            base = base.replace(f":{self.server.port}/", f":{port}/")
        option = "prefix" if self.kind == "redis" else "schema"
        return f"{base}?{option}={name}&timeout=2"

    def open(self, port: int | None = None) -> Ledger:
        return ledger_from_url(self.url(f"faults_{uuid.uuid4().hex[:10]}", port))


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Server]:
    with private_redis() as server:
        yield server


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[Server]:
    with private_postgres() as server:
        yield server


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    server: Server = request.getfixturevalue(f"{request.param}_server")
    yield Backend(request.param, server)
    server.stop()  # a test that stopped it may have failed before starting it again
    server.start()


@pytest.fixture
def ledger(backend: Backend) -> Iterator[Ledger]:
    ledger = backend.open()
    yield ledger
    ledger.close()


def request(hold_id: str, money: int = 100, *, lease: float = 60.0) -> HoldRequest:
    return HoldRequest(
        hold_id=hold_id,
        lines=(
            HoldLine(MONEY, money, 1000, "money", NOW + 86400),
            HoldLine(CALLS, 1, 10, "calls"),
        ),
        now=NOW,
        lease_until=NOW + lease,
        contract="c",
        run="r",
        call_id=f"call-{hold_id}",
        estimate=money,
    )


def state(ledger: Ledger, key: str = MONEY) -> tuple[int, int]:
    found = ledger.counters([key]).get(key)
    return (found.settled, found.held) if found else (0, 0)


def test_a_server_that_is_down_refuses_with_ledger_unavailable(
    backend: Backend, ledger: Ledger
) -> None:
    backend.server.stop()
    with pytest.raises(rg.LedgerUnavailable) as caught:
        ledger.reserve(request("h1"))
    message = str(caught.value)
    assert f"127.0.0.1:{backend.server.port}" in message
    assert "every guarded call is refused" in message
    assert caught.value.__cause__ is not None  # the driver's error, chained


def test_the_password_never_shows_in_the_url_or_the_errors(
    backend: Backend, ledger: Ledger
) -> None:
    assert PASSWORD not in ledger.url
    assert ":***@" in ledger.url
    assert PASSWORD not in repr(ledger)
    backend.server.stop()
    with pytest.raises(rg.LedgerUnavailable) as caught:
        ledger.counters([MONEY])
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in str(caught.value.__cause__)


def test_a_guard_cannot_open_while_the_server_is_down(backend: Backend) -> None:
    backend.server.stop()
    with pytest.raises(rg.LedgerUnavailable):
        rg.Guard(backend.url("never_opened"))


def test_no_paid_call_is_made_while_the_ledger_is_down(backend: Backend) -> None:
    made: list[int] = []
    with rg.Guard(backend.url(f"guard_{uuid.uuid4().hex[:10]}")) as guard:
        paid = guard.contract(
            "down", price="$0.01", max_calls_per_run=10, provider_cap="test: loopback only"
        )
        backend.server.stop()
        with pytest.raises(rg.LedgerUnavailable):
            paid.call(lambda: made.append(1))
    assert [] == made


def test_work_resumes_with_the_same_ledger_after_a_restart(
    backend: Backend, ledger: Ledger
) -> None:
    assert ledger.reserve(request("before", 100)) is None
    backend.server.stop()
    with pytest.raises(rg.LedgerUnavailable):
        ledger.reserve(request("during", 100))
    backend.server.start()
    assert "settled" == ledger.settle("before", {"money": 80, "calls": 1}, now=NOW).status
    assert ledger.reserve(request("after", 100)) is None
    assert (80, 100) == state(ledger)
    assert ["after"] == [h.hold_id for h in ledger.holds()]


def test_a_hold_placed_before_an_outage_is_reaped_after_it(
    backend: Backend, ledger: Ledger
) -> None:
    assert ledger.reserve(request("orphan", 100, lease=10)) is None
    backend.server.stop()
    backend.server.start()
    assert ["orphan"] == [h.hold_id for h in ledger.reap(now=NOW + 11)]
    assert (100, 0) == state(ledger)
    assert [("reaped", 100)] == [(r.outcome, r.actual) for r in ledger.spend()]


@pytest.fixture
def proxy(backend: Backend) -> Iterator[LossyProxy]:
    proxy = LossyProxy(backend.server.port)
    yield proxy
    proxy.close()


def test_a_settle_whose_reply_was_lost_counts_once(backend: Backend, proxy: LossyProxy) -> None:
    ledger = backend.open(port=proxy.port)
    try:
        ledger.reserve(request("h1", 100))
        proxy.lose_next_reply()
        result = ledger.settle("h1", {"money": 70, "calls": 1}, now=NOW)
        assert 1 == proxy.lost
        assert "settled" == result.status  # the retry got the first run's answer
        assert {MONEY: (70, 0), CALLS: (1, 0)} == {
            line.key: (after.settled, after.held) for line, after in result.counters
        }
        assert (70, 0) == state(ledger)
        assert 1 == len(list(ledger.spend()))
    finally:
        ledger.close()


def test_a_reserve_whose_reply_was_lost_counts_once(backend: Backend, proxy: LossyProxy) -> None:
    ledger = backend.open(port=proxy.port)
    try:
        proxy.lose_next_reply()
        assert ledger.reserve(request("h1", 100)) is None
        assert 1 == proxy.lost
        assert (0, 100) == state(ledger)
        assert (0, 1) == state(ledger, CALLS)
    finally:
        ledger.close()


def test_a_kill_switch_set_whose_reply_was_lost_still_reports_it_set(
    backend: Backend, proxy: LossyProxy
) -> None:
    ledger = backend.open(port=proxy.port)
    try:
        proxy.lose_next_reply()
        assert ledger.cas_state("kill:global", expected_version=0, value="stop", now=NOW)
        assert 1 == proxy.lost
        record = ledger.get_state("kill:global", now=NOW)
        assert record is not None
        assert (1, "stop") == (record.version, record.value)
    finally:
        ledger.close()


def test_a_reap_whose_reply_was_lost_still_returns_the_reaped_holds(
    backend: Backend, proxy: LossyProxy
) -> None:
    ledger = backend.open(port=proxy.port)
    try:
        ledger.reserve(request("h1", 100, lease=10))
        proxy.lose_next_reply()
        assert ["h1"] == [h.hold_id for h in ledger.reap(now=NOW + 11)]
        assert 1 == proxy.lost
        assert (100, 0) == state(ledger)
        assert ["reaped"] == [r.outcome for r in ledger.spend()]
    finally:
        ledger.close()


@pytest.mark.slow
def test_an_outage_mid_run_stops_paid_calls_and_leaves_consistent_counters(
    backend: Backend,
) -> None:
    """A worker keeps calling while the server goes down for 2.5 s and comes back.

    While it is down no paid call is made and the guard raises `LedgerUnavailable`; after
    the restart every call that ran is in the log exactly once (settled, or reaped if
    its settle was lost in the outage) and the counters equal the log.
    """
    # One second per try: the outage (2.5 s) outlasts a try, so some call is refused
    # rather than merely delayed until the server is back.
    url = backend.url(f"outage_{uuid.uuid4().hex[:10]}").replace("timeout=2", "timeout=1")
    called: list[tuple[float, str]] = []  # (monotonic time, hold id) of each paid call
    refusals: list[float] = []
    done = threading.Event()
    with rg.Guard(url) as guard:
        paid = guard.contract(
            "outage",
            price="$0.01",
            max_calls_per_run=100_000,
            hold_lease=2.0,
            provider_cap="test: loopback only",
        )

        def worker() -> None:
            with guard.run("fleet"):
                for _ in range(3000):  # bounded, and stopped by `done` long before
                    if done.is_set():
                        return
                    try:
                        hold = paid.hold()
                    except rg.LedgerUnavailable:
                        refusals.append(time.monotonic())
                        time.sleep(0.02)
                        continue
                    called.append((time.monotonic(), hold.hold_id))  # the "paid call"
                    hold.settle()
                    time.sleep(0.002)

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            _wait_until(lambda: len(called) >= 50)
            backend.server.stop()
            down_at = time.monotonic()
            time.sleep(2.5)
            up_at = time.monotonic()
            backend.server.start()
            resumed = len(called)
            _wait_until(lambda: len(called) >= resumed + 50)
        finally:
            done.set()
            thread.join(timeout=60)

    assert refusals, "the guard never raised LedgerUnavailable during the outage"
    # A call that had its hold just before the stop may still be running as it returns.
    assert [] == [t for t, _ in called if down_at + 0.2 < t < up_at]
    clock = FakeClock(time.time() + 3)  # past every lease: reap the holds left behind
    with rg.Guard(url, clock=clock) as guard:
        guard.reap()
        # Reaped holds stay listed (awaiting a late settle); none may still be held.
        assert [] == [h.hold_id for h in guard.ledger.holds() if h.status == "held"]
        rows = list(guard.ledger.spend())
        logged = [row.hold_id for row in rows]
        assert len(logged) == len(set(logged))  # nothing counted twice
        ran = {hold_id for _, hold_id in called}
        assert ran <= set(logged)  # every call that ran is charged
        phantoms = [row for row in rows if row.hold_id not in ran]
        # At most the one reserve in flight when the server died: applied, reply lost,
        # never called, so reaped at its estimate (fail-safe, never under-counted).
        assert len(phantoms) <= 1
        assert all(row.outcome == "reaped" for row in phantoms)
        (run_money,) = [s for s in guard.status() if s.key == "run:fleet|money|run:fleet"]
        assert (10_000_000 * len(rows), 0) == (run_money.settled, run_money.held)


def _wait_until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.01)


def test_fail_open_admits_calls_up_to_its_local_cap_while_down(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[int] = []
    with rg.Guard(backend.url(f"open_{uuid.uuid4().hex[:10]}") + "&fail_open=0.02") as guard:
        paid = guard.contract(
            "open", price="$0.01", max_calls_per_run=10, provider_cap="test: loopback only"
        )
        backend.server.stop()
        paid.call(lambda: made.append(1))
        paid.call(lambda: made.append(2))
        with pytest.raises(rg.LedgerUnavailable, match="fail-open allowance"):
            paid.call(lambda: made.append(3))
    assert [1, 2] == made
    assert 2 == sum("admitting" in record.message for record in caplog.records)


def test_calls_made_fail_open_are_written_to_the_ledger_once_it_is_back(
    backend: Backend,
) -> None:
    url = backend.url(f"open_{uuid.uuid4().hex[:10]}") + "&fail_open=0.05"
    with rg.Guard(url) as guard:
        paid = guard.contract(
            "open", price="$0.01", max_calls_per_run=10, provider_cap="test: loopback only"
        )
        with guard.run("r"):
            backend.server.stop()
            paid.call(lambda: None)
            paid.call(lambda: None)
            backend.server.start()
            paid.call(lambda: None)  # the ledger answers: the two are written after it
        rows = list(guard.ledger.spend())
        assert 3 == len(rows)
        assert ["settled"] * 3 == [row.outcome for row in rows]
        (money,) = [s for s in guard.status() if s.key == "run:r|money|run:r"]
        assert (30_000_000, 0) == (money.settled, money.held)
        assert [] == guard.ledger.holds()


def test_a_bad_fail_open_amount_is_refused(backend: Backend) -> None:
    with pytest.raises(rg.ContractError, match="fail_open"):
        ledger_from_url(backend.url("x") + "&fail_open=lots")


@pytest.mark.redis
def test_a_redis_that_stops_answering_times_out_into_ledger_unavailable(
    redis_server: Server,
) -> None:
    ledger = ledger_from_url(f"{redis_server.url}?prefix=hung_{uuid.uuid4().hex[:10]}&timeout=0.5")
    process = redis_server.process  # type: ignore[attr-defined]
    process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(rg.LedgerUnavailable, match="Timeout"):
            ledger.reserve(request("h1"))
        assert time.monotonic() - started < 10  # three tries of 0.5 s, not forever
    finally:
        process.send_signal(signal.SIGCONT)
        ledger.close()


@pytest.mark.postgres
def test_a_counter_locked_too_long_times_out_into_ledger_unavailable(
    postgres_server: Server,
) -> None:
    import psycopg

    schema = f"locked_{uuid.uuid4().hex[:10]}"
    ledger = ledger_from_url(f"{postgres_server.url}?schema={schema}&timeout=0.5")
    try:
        ledger.reserve(request("h1"))
        with psycopg.connect(postgres_server.url) as admin:  # a transaction left open
            admin.execute(f"SELECT * FROM {schema}.counters FOR UPDATE")
            with pytest.raises(rg.LedgerUnavailable, match=r"did not answer within 0\.5s"):
                ledger.reserve(request("h2"))
        assert ledger.reserve(request("h3")) is None  # the lock is gone: work resumes
    finally:
        ledger.close()
