"""The Redis ledger: every operation is one atomic Lua script and one round trip.

Keys (all under one hash tag, so one deployment fits one Redis Cluster slot)::

    {prefix}:meta            hash: schema version, currency
    {prefix}:c:<counter>     hash: s (settled), h (held), l (limit), x (window end)
    {prefix}:cidx            sorted set: counter names, for prefix listings
    {prefix}:h:<hold id>     hash: one hold (in flight, or reaped awaiting a late settle)
    {prefix}:live            sorted set: holds in flight by lease end (the reaper's queue)
    {prefix}:reaped          sorted set: reaped holds by lease end
    {prefix}:spend           stream: the spend log
    {prefix}:s:<key>         hash: a state record (kill switch, breaker); {prefix}:sidx
    {prefix}:m:<key>         string: an alert mark
    {prefix}:slot:<name>     sorted set: concurrency slot holders by lease end
    {prefix}:k:<key>         hash: an idempotency claim
    {prefix}:op:<op id>      string: the reply of an operation, kept for its retry

The scripts live in ``_redis_scripts.lua``; their header says how amounts stay exact.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any, Final

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
)
from redis.retry import Retry

from runaway_guard._errors import ContractError, LedgerError, LedgerUnavailable
from runaway_guard.ledger import redact_url
from runaway_guard.ledger._common import REAPED_RETENTION
from runaway_guard.ledger._failopen import FailOpenLedger, parse_fail_open
from runaway_guard.ledger._protocol import (
    Blocked,
    Claim,
    ClaimStatus,
    CounterState,
    HoldInfo,
    HoldLine,
    HoldRequest,
    Ledger,
    Outcome,
    Refusal,
    SettleResult,
    SpendRecord,
    StateRecord,
)
from runaway_guard.ledger._remote import (
    COUNTER_GRACE,
    MEMO_TTL,
    STATE_GRACE,
    OpIds,
    non_negative,
    positive,
    positive_int,
    retrying,
    split_options,
    unreachable,
)

__all__ = ["SCHEMA_VERSION", "RedisLedger", "open_redis"]

SCHEMA_VERSION: Final = 1
SPEND_MAXLEN: Final = 1_000_000
"""Default bound of the spend stream, in entries (trimmed approximately, ``MAXLEN ~``)."""
SPEND_DAYS: Final = 90.0
"""Default age past which spend entries are trimmed (``MINID ~``, server time, at reaps)."""

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CHECK = "check that the server is up, and the host, port, password and TLS settings in the URL"
# A cluster that is failing over answers CLUSTERDOWN for a moment: worth a retry.
_TRANSIENT: Final = (ConnectionError, TimeoutError, ClusterDownError)
_FATAL: Final = (AuthenticationError, ResponseError)
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "OOM", "CLUSTERDOWN", "TRYAGAIN")


@functools.cache
def _scripts() -> dict[str, str]:
    text = resources.files("runaway_guard.ledger").joinpath("_redis_scripts.lua").read_text()
    preamble, *parts = re.split(r"^--@@ ", text, flags=re.MULTILINE)
    found = {}
    for part in parts:
        name, _, body = part.partition("\n")
        found[name.strip()] = f"{preamble}\n{body}"
    return found


@functools.lru_cache(maxsize=256)
def _lines_arg(lines: tuple[HoldLine, ...]) -> str:
    # Amounts travel as strings: the scripts' JSON decoder would turn numbers into doubles.
    return json.dumps(
        [
            [
                ln.key,
                str(ln.amount),
                "" if ln.limit is None else str(ln.limit),
                ln.unit,
                "" if ln.expires is None else repr(float(ln.expires)),
            ]
            for ln in lines
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


@functools.lru_cache(maxsize=256)
def _lines_from_arg(text: str) -> tuple[HoldLine, ...]:
    return tuple(
        HoldLine(k, int(a), int(lim) if lim else None, u, float(x) if x else None)
        for k, a, lim, u, x in json.loads(text)
    )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _num(value: float) -> str:
    return repr(float(value))


class RedisLedger:
    """A ledger in Redis, shared by every process and host that uses the same prefix.

    Args:
        url: ``redis://[[user]:password@]host:port/db`` or ``rediss://...`` for TLS.
        prefix: names this ledger's keys (``{prefix}:...``); ledgers with different
            prefixes on one server are independent.
        timeout: seconds to wait for a connection or a reply before the operation fails
            with `LedgerUnavailable`.
        spend_maxlen: the spend stream keeps about this many entries.
        spend_days: and none older than this many days (server time); 0 keeps all.
        cluster: `url` names a node of a Redis Cluster; every key of the ledger lives
            in the slot of its ``{prefix}`` hash tag, and the client follows that slot.
    """

    remote = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "runaway-guard",
        timeout: float = 5.0,
        spend_maxlen: int = SPEND_MAXLEN,
        spend_days: float = SPEND_DAYS,
        cluster: bool = False,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ContractError(
                f"Redis ledger prefix {prefix!r} must be 1-64 letters, digits or '_.:-' "
                "(it becomes the keys' hash tag)"
            )
        self.prefix = prefix
        self.url = redact_url(_with_prefix(url, prefix))
        self._meta = f"{{{prefix}}}:meta"
        self._spend = f"{{{prefix}}}:spend"
        self._maxlen = str(spend_maxlen)
        self._spend_ms = str(int(spend_days * 86_400_000))
        self._memo_ms = str(int(MEMO_TTL * 1000))
        self._ops = OpIds()
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # Retries are ours (`retrying`): bounded, and each carries its op id.
            "retry": Retry(NoBackoff(), 0),
        }
        self._client: redis.Redis | RedisCluster
        try:
            if cluster:
                self._client = RedisCluster.from_url(url, **options)
            else:
                self._client = redis.Redis.from_url(url, health_check_interval=30, **options)
        except ValueError as exc:
            raise ContractError(f"Redis ledger URL {self.url!r}: {exc}") from None
        except (RedisError, RedisClusterException) as exc:
            raise unreachable("Redis", self.url, exc, _CHECK) from exc
        self._script: dict[str, Script] = {
            name: self._client.register_script(text) for name, text in _scripts().items()
        }
        stored = int(self._run("init", str(SCHEMA_VERSION)))
        if stored > SCHEMA_VERSION:
            raise LedgerError(
                f"the Redis ledger at {self.url} has schema version {stored}, newer than this "
                f"runaway-guard understands ({SCHEMA_VERSION}); upgrade runaway-guard"
            )

    # -- plumbing -----------------------------------------------------------------------------
    def _run(self, name: str, *args: str | bytes) -> Any:
        script = self._script[name]
        return retrying(
            lambda: script(keys=(self._meta,), args=args),
            transient=_TRANSIENT,
            fatal=_FATAL,
            fail=self._wrap,
            other=(RedisError, RedisClusterException),
        )

    def _run_once(self, name: str, *args: str | bytes) -> Any:
        """`_run` for a script whose reply the server keeps for a retry (first arg: op id)."""
        script = self._script[name]
        op = self._ops()
        tries = itertools.count()
        # "0<id>" the first time, "1<id>" on a retry: only a retry looks for a kept reply.
        return retrying(
            lambda: script(keys=(self._meta,), args=(f"{min(next(tries), 1)}{op}", *args)),
            transient=_TRANSIENT,
            fatal=_FATAL,
            fail=self._wrap,
            other=(RedisError, RedisClusterException),
        )

    def _wrap(self, exc: BaseException) -> LedgerError:
        if isinstance(exc, AuthenticationError):
            return unreachable("Redis", self.url, exc, "check the password in the URL")
        if isinstance(
            exc, ConnectionError | TimeoutError | BusyLoadingError | RedisClusterException
        ):
            return unreachable("Redis", self.url, exc, _CHECK)
        text = str(exc)
        if text.startswith(_UNAVAILABLE_REPLIES):
            return LedgerUnavailable(
                f"the Redis ledger at {self.url} refused a write ({text}); every guarded call "
                "is refused until it accepts writes (check the server's memory, role and logs)"
            )
        return LedgerError(f"the Redis ledger at {self.url} failed: {text}")

    def _overflow(self, key: bytes) -> LedgerError:
        return LedgerError(
            f"the Redis ledger at {self.url} refused an amount: counter {_s(key)!r} would pass "
            "the largest signed 64-bit integer (9,223,372,036 units of money in nano-units); "
            "nothing was written (check the amounts this code asks for)"
        )

    # -- holds and counters -------------------------------------------------------------------
    def reserve(self, request: HoldRequest) -> Refusal | Blocked | None:
        reply = self._run(
            "reserve",
            request.hold_id,
            _num(request.now),
            _num(request.lease_until),
            request.contract,
            request.run,
            request.call_id,
            str(request.attempt),
            str(request.estimate),
            _lines_arg(request.lines),
            _num(COUNTER_GRACE),
            *request.blockers,
        )
        kind = reply[0]
        if kind == b"placed":
            return None
        if kind == b"blocked":
            return Blocked(_s(reply[1]), _s(reply[2]))
        if kind == b"overflow":
            raise self._overflow(reply[1])
        line = request.lines[int(reply[1]) - 1]
        return Refusal(line, int(reply[2]), int(reply[3]))

    def settle(
        self,
        hold_id: str,
        actual: Mapping[str, int],
        *,
        now: float,
        outcome: Outcome = Outcome.SETTLED,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        flat = [v for unit, amount in actual.items() for v in (unit, str(amount))]
        reply = self._run_once(
            "settle",
            hold_id,
            _num(now),
            str(outcome),
            error,
            "1" if report else "0",
            self._memo_ms,
            self._maxlen,
            str(len(actual)),
            *flat,
            *clear,
        )
        status = _s(reply[0])
        if status == "overflow":
            raise self._overflow(reply[1])
        cleared = tuple(_s(key) for key in reply[2])
        if status == "unknown" or not report:
            return SettleResult(status, (), cleared)
        lines = _lines_from_arg(_s(reply[3]))
        counters = tuple(
            (line, _counter(line.key, found)) for line, found in zip(lines, reply[1], strict=True)
        )
        return SettleResult(status, counters, cleared)

    def release(
        self,
        hold_id: str,
        *,
        now: float,
        error: str = "",
        report: bool = True,
        clear: Sequence[str] = (),
    ) -> SettleResult:
        return self.settle(
            hold_id,
            {},
            now=now,
            outcome=Outcome.RELEASED,
            error=error,
            report=report,
            clear=clear,
        )

    def reap(self, *, now: float, limit: int = 100) -> list[HoldInfo]:
        reply = self._run_once(
            "reap",
            _num(now),
            str(limit),
            _num(REAPED_RETENTION),
            self._memo_ms,
            self._maxlen,
            self._spend_ms,
        )
        return [_hold(row, "held") for row in reply]

    def renew(self, hold_id: str, *, lease_until: float) -> bool:
        return bool(self._run("renew", hold_id, _num(lease_until)))

    def counters(self, keys: Sequence[str]) -> dict[str, CounterState]:
        if not keys:
            return {}
        reply = self._run("counters", *keys)
        return {_s(row[0]): _counter(_s(row[0]), row[1:]) for row in reply}

    def list_counters(self, prefix: str = "", *, now: float | None = None) -> list[CounterState]:
        reply = self._run("list_counters", prefix, "" if now is None else _num(now))
        return [_counter(_s(row[0]), row[1:]) for row in reply]

    def holds(self) -> list[HoldInfo]:
        found = [_hold(row[:9], _s(row[9])) for row in self._run("holds")]
        return sorted(found, key=lambda h: (h.created, h.hold_id))

    def spend(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        contract: str | None = None,
    ) -> Iterator[SpendRecord]:
        """Spend rows in time order, read from the stream in pages (off the hot path)."""
        rows: list[SpendRecord] = []
        start = "-"
        while True:
            page: list[tuple[bytes, dict[bytes, bytes]]] = retrying(
                functools.partial(self._page, start),
                transient=_TRANSIENT,
                fatal=_FATAL,
                fail=self._wrap,
                other=(RedisError, RedisClusterException),
            )
            for entry_id, fields in page:
                row = _spend_row({_s(k): _s(v) for k, v in fields.items()})
                if (
                    (since is None or row.ts >= since)
                    and (until is None or row.ts < until)
                    and (contract is None or row.contract == contract)
                ):
                    rows.append(row)
                start = "(" + _s(entry_id)
            if len(page) < 1000:
                break
        rows.sort(key=lambda r: r.ts)  # stable: entries of one instant keep stream order
        yield from rows

    def _page(self, start: str) -> Any:
        return self._client.xrange(self._spend, start, "+", 1000)

    # -- state records ------------------------------------------------------------------------
    def get_state(self, key: str, *, now: float) -> StateRecord | None:
        reply = self._run("get_state", key, _num(now))
        if reply is None:
            return None
        version, value, expires = reply
        return StateRecord(key, int(version), _s(value), float(expires) if expires else None)

    def cas_state(
        self,
        key: str,
        *,
        expected_version: int,
        value: str | None,
        now: float,
        expires: float | None = None,
    ) -> bool:
        reply = self._run_once(
            "cas_state",
            key,
            str(expected_version),
            "0" if value is None else "1",
            value or "",
            _num(now),
            "" if expires is None else _num(expires),
            _num(STATE_GRACE),
            self._memo_ms,
        )
        return bool(reply[0])

    def list_states(self, prefix: str, *, now: float) -> list[StateRecord]:
        reply = self._run("list_states", prefix, _num(now))
        return [
            StateRecord(_s(key), int(version), _s(value), float(expires) if expires else None)
            for key, version, value, expires in reply
        ]

    def mark_once(self, key: str, *, now: float, expires: float | None) -> bool:
        reply = self._run_once(
            "mark_once",
            key,
            _num(now),
            "" if expires is None else _num(expires),
            _num(STATE_GRACE),
            self._memo_ms,
        )
        return bool(reply[0])

    # -- concurrency slots --------------------------------------------------------------------
    def acquire_slot(
        self, name: str, *, limit: int, holder: str, now: float, lease_until: float
    ) -> bool:
        reply = self._run(
            "acquire_slot",
            name,
            str(limit),
            holder,
            _num(now),
            _num(lease_until),
            _num(STATE_GRACE),
        )
        return bool(reply)

    def release_slot(self, name: str, *, holder: str) -> None:
        self._run("release_slot", name, holder)

    def slots_in_use(self, name: str, *, now: float) -> int:
        return int(self._run("slots_in_use", name, _num(now)))

    # -- idempotency records ------------------------------------------------------------------
    def claim(self, key: str, *, owner: str, now: float, lease_until: float) -> Claim:
        status, result, holder = self._run(
            "claim", key, owner, _num(now), _num(lease_until), _num(STATE_GRACE)
        )
        kind = ClaimStatus(_s(status))
        return Claim(kind, bytes(result) if kind is ClaimStatus.DONE else None, _s(holder))

    def complete(self, key: str, *, owner: str, result: bytes, now: float, expires: float) -> bool:
        reply = self._run_once(
            "complete",
            key,
            owner,
            result,
            _num(now),
            _num(expires),
            _num(STATE_GRACE),
            self._memo_ms,
        )
        return bool(reply[0])

    def abandon(self, key: str, *, owner: str) -> None:
        self._run("abandon", key, owner)

    # -- lifecycle ----------------------------------------------------------------------------
    def currency(self, default: str) -> str:
        return _s(self._run("currency", default))

    def close(self) -> None:
        """Close this ledger's connections; a later operation reconnects."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisLedger({self.url!r})"


def _counter(key: str, row: Sequence[bytes]) -> CounterState:
    settled, held, limit = row[0], row[1], row[2]
    return CounterState(key, int(settled), int(held), int(limit) if limit else None)


def _hold(row: Sequence[bytes], status: str) -> HoldInfo:
    hold_id, created, lease, contract, run, call_id, attempt, estimate, lines = map(_s, row)
    return HoldInfo(
        hold_id=hold_id,
        lines=_lines_from_arg(lines),
        created=float(created),
        lease_until=float(lease),
        status=status,
        contract=contract,
        run=run,
        call_id=call_id,
        attempt=int(attempt),
        estimate=int(estimate),
    )


def _spend_row(fields: Mapping[str, str]) -> SpendRecord:
    return SpendRecord(
        ts=float(fields["t"]),
        hold_id=fields["h"],
        call_id=fields["c"],
        contract=fields["co"],
        run=fields["ru"],
        attempt=int(fields["a"]),
        estimate=int(fields["e"]),
        actual=int(fields["m"]),
        tokens=int(fields["k"]),
        outcome=fields["o"],
        error=fields["r"],
    )


def _with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


_OPTIONS: Final[dict[str, Callable[[str], object]]] = {
    "prefix": str,
    "timeout": positive,
    "fail_open": parse_fail_open,
    "spend_maxlen": positive_int,
    "spend_days": non_negative,
    "cluster": lambda value: value.lower() in {"1", "true", "yes"},
}
_PASSED: Final = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
)


def open_redis(url: str) -> Ledger:
    """``redis://[[user]:password@]host:port/db?prefix=NAME`` (``rediss://`` for TLS).

    Options: ``prefix`` (default ``runaway-guard``), ``timeout`` (seconds, default 5),
    ``spend_maxlen`` (entries, default 1,000,000), ``spend_days`` (default 90; 0 keeps
    every entry up to ``spend_maxlen``), ``cluster=1`` (the URL names a Redis Cluster
    node), ``fail_open`` (see `FailOpenLedger`); and redis-py's ``ssl_*`` options.
    """
    driver_url, options = split_options(url, _OPTIONS, _PASSED)
    fail_open = options.pop("fail_open", None)
    ledger = RedisLedger(driver_url, **options)  # type: ignore[arg-type]
    ledger.url = redact_url(url)
    if fail_open is None:
        return ledger
    return FailOpenLedger(ledger, int(fail_open))  # type: ignore[call-overload]
