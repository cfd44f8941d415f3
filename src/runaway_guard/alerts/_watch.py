"""`Alerts`: watch a guard's events and tell people, once, off the hot path.

Thresholds are checked on the thread of the paid call, from the counters the settle
already read back: a dictionary lookup and an integer comparison per budget. Only a
crossing does more, and all it does is queue an item. The dispatcher thread then claims
the crossing in the ledger (`Ledger.mark_once`, keyed by counter, window and threshold,
expiring when the window ends), so exactly one process of a fleet sends each alert.
"""

from __future__ import annotations

import atexit
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from runaway_guard._budget import Period, Unit, render_units, window_for
from runaway_guard._errors import BudgetExceeded, ConfigError, RunawayGuardError
from runaway_guard._events import (
    BreakerOpened,
    CallRefused,
    CostAboveEstimate,
    Event,
    HoldReaped,
    KillSwitchCleared,
    KillSwitchSet,
    RetriesGaveUp,
    Settled,
)
from runaway_guard._money import format_amount
from runaway_guard.alerts._alert import Alert, AlertKind, Severity, describe_counter, host_name
from runaway_guard.alerts._delivery import Delivery
from runaway_guard.alerts._notifiers import Notifier
from runaway_guard.ledger import CounterState, HoldLine

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["DEFAULT_THRESHOLDS", "Alerts", "check_selector", "check_thresholds"]

logger = logging.getLogger("runaway_guard.alerts")

DEFAULT_THRESHOLDS: Final = (50, 90, 100)
"""Percentages of a budget's limit that raise an alert, once per window each."""

RUN_MARK_TTL: Final = 30 * 86_400.0
"""Seconds a run window's alert marks are kept (runs have no calendar end)."""

_CACHE_LIMIT: Final = 10_000

_Quiet = BreakerOpened | CostAboveEstimate | HoldReaped | RetriesGaveUp
"""Events alerted at most once per contract and kind every `quiet` seconds."""

_PERIODS: Final = frozenset(p.value for p in Period)
_UNITS: Final = frozenset(u.value for u in Unit)


@dataclass(frozen=True, slots=True)
class _Crossing:
    """A budget's settled amount reached `percent` of its limit (queued, then claimed)."""

    key: str
    unit: str
    settled: int
    held: int
    limit: int
    expires: float | None
    percent: int
    at: float
    contract: str
    run: str


class Alerts:
    """Turn a guard's events into alerts and deliver them to notifiers.

    ```python
    alerts = rg.Alerts(guard, [rg.alerts.Slack(url), rg.alerts.Log()])
    ```

    Alerts are raised when a budget's settled amount reaches each threshold (once per
    budget, window and threshold across every process sharing the ledger); when a call
    is refused because a budget is full (once per budget and window); when a kill switch
    is engaged or cleared; and when a circuit breaker opens, a call costs more than its
    estimate, a hold is reaped, or a call gives up retrying (at most once per contract
    and kind every `quiet` seconds, fleet-wide).

    Args:
        guard: the guard to watch; closing it flushes and stops the alerts first.
        notifiers: where alerts go (`rg.alerts.Log`, `Webhook`, `Slack`, `Telegram`,
            `Callback`, or any `rg.alerts.Notifier`).
        thresholds: percentages of a budget's limit, by default 50, 90 and 100.
        budget_thresholds: thresholds for some budgets, by selector: ``"contract:NAME"``
            (every budget of that scope), ``"contract:NAME|money"``,
            ``"contract:NAME|money|day"``, or with ``*`` for any scope: ``"*|money|day"``,
            ``"*|*|run"`` (every per-run budget). The most specific selector wins; an
            empty list silences the budgets it selects.
        quiet: seconds between two alerts of the same kind about the same contract.
        attempts: deliveries tried per alert and notifier, the first included.
        backoff: seconds before the second delivery attempt (doubling, capped at 30 s).
        queue_size: alerts each queue holds; more are dropped with a log line.
        drain_timeout: seconds `close` (and interpreter exit) waits for queued alerts.
    """

    def __init__(
        self,
        guard: Guard,
        notifiers: Sequence[Notifier],
        *,
        thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
        budget_thresholds: Mapping[str, Iterable[int]] | None = None,
        quiet: float = 3600.0,
        attempts: int = 3,
        backoff: float = 1.0,
        queue_size: int = 1000,
        drain_timeout: float = 5.0,
    ) -> None:
        for notifier in notifiers:
            if not isinstance(notifier, Notifier):
                raise ConfigError(
                    f"{notifier!r} is not a notifier: it needs `name`, `min_severity` and "
                    "`send(alert)` (see rg.alerts.Notifier)"
                )
        self.guard = guard
        self.notifiers = tuple(notifiers)
        self.thresholds = check_thresholds(thresholds, "thresholds")
        self.budget_thresholds = {
            check_selector(selector): check_thresholds(values, f"thresholds of {selector!r}")
            for selector, values in (budget_thresholds or {}).items()
        }
        self.quiet = _positive(quiet, "quiet", allow_zero=True)
        self.drain_timeout = _positive(drain_timeout, "drain_timeout", allow_zero=True)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ConfigError(f"alert delivery attempts must be an integer 1..10, got {attempts!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"alert queue_size must be a positive integer, got {queue_size!r}")
        self.delivery: Delivery[_Crossing | Event] = Delivery(
            self.notifiers,
            self._prepare,
            attempts=attempts,
            backoff=_positive(backoff, "backoff", allow_zero=True),
            queue_size=queue_size,
        )
        self._host = host_name()
        # Per-process memory of what was already queued, so a budget past a threshold
        # costs one comparison per settle instead of a ledger round trip.
        self._seen: dict[str, list[Any]] = {}
        self._refused: set[tuple[str, str]] = set()
        self._recent: dict[tuple[str, str], float] = {}
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            CallRefused: self._on_refused,
            KillSwitchSet: self.delivery.submit,
            KillSwitchCleared: self.delivery.submit,
            BreakerOpened: self._quietly,
            CostAboveEstimate: self._quietly,
            HoldReaped: self._quietly,
            RetriesGaveUp: self._quietly,
        }
        self._closed = False
        self._unsubscribe = guard.subscribe(self._on_event)
        guard.on_close(self.close)
        atexit.register(self.close)

    # -- the hot path: runs on the thread of the paid call ----------------------------------
    def _on_event(self, event: Event) -> None:
        if type(event) is Settled:
            seen = self._seen
            for line, state in event.counters:
                limit = line.limit
                if limit is None:
                    continue  # a counter that only tracks
                entry = seen.get(line.key)
                if entry is None:
                    entry = self._entry(line.key, limit)
                # Below the next threshold's amount, under the same limit: nothing to do.
                # This line is all a settle costs once its budgets are known.
                if state.settled < entry[0] and limit == entry[1]:
                    continue
                self._crossed(event, line, state, entry, limit)
            return
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _entry(self, key: str, limit: int) -> list[Any]:
        """``[trigger, limit, next index, thresholds]`` for a counter seen the first time."""
        if len(self._seen) >= _CACHE_LIMIT:
            self._seen.clear()  # the ledger's marks still deduplicate
        thresholds = self.thresholds_for(key)
        entry: list[Any] = [_trigger(thresholds, 0, limit), limit, 0, thresholds]
        self._seen[key] = entry
        return entry

    def _crossed(
        self, event: Settled, line: HoldLine, state: CounterState, entry: list[Any], limit: int
    ) -> None:
        _, _, index, thresholds = entry
        # settled * 100 >= percent * limit, in integers: no rounding at the boundary.
        while (
            limit > 0
            and index < len(thresholds)
            and state.settled * 100 >= thresholds[index] * limit
        ):
            self.delivery.submit(
                _Crossing(
                    line.key,
                    line.unit,
                    state.settled,
                    state.held,
                    limit,
                    line.expires,
                    thresholds[index],
                    event.at,
                    event.contract,
                    event.run,
                )
            )
            index += 1
        entry[0] = _trigger(thresholds, index, limit)
        entry[1] = limit
        entry[2] = index

    def _on_refused(self, event: CallRefused) -> None:
        error = event.error
        if not isinstance(error, BudgetExceeded):
            return  # kill switches and breakers have their own alerts
        seen = (error.budget, error.window)
        if seen in self._refused:
            return
        if len(self._refused) >= _CACHE_LIMIT:
            self._refused.clear()
        self._refused.add(seen)
        self.delivery.submit(event)

    def _quietly(self, event: _Quiet) -> None:
        subject = (type(event).__name__, _contract_of(event))
        last = self._recent.get(subject)
        if last is not None and event.at - last < self.quiet:
            return
        if len(self._recent) >= _CACHE_LIMIT:
            self._recent.clear()
        self._recent[subject] = event.at
        self.delivery.submit(event)

    # -- thresholds ------------------------------------------------------------------------
    def thresholds_for(self, key: str) -> tuple[int, ...]:
        """The thresholds that apply to the counter `key` (``scope|unit|window``)."""
        scope, _, rest = key.partition("|")
        unit, _, window = rest.partition("|")
        period = window.split(":", 1)[0]
        for selector in (
            f"{scope}|{unit}|{period}",
            f"{scope}|{unit}",
            scope,
            f"*|{unit}|{period}",
            f"*|*|{period}",
            f"*|{unit}",
        ):
            found = self.budget_thresholds.get(selector)
            if found is not None:
                return found
        return self.thresholds

    # -- the dispatcher thread: build the alert and claim it in the ledger -----------------
    def _prepare(self, item: _Crossing | Event) -> Alert | None:
        alert, marked, expires = self._build(item)
        if not marked:
            return alert  # a one-off event: only the process it happened in sees it
        guard = self.guard
        try:
            first = guard.ledger.mark_once(
                f"alert:{alert.key}", now=guard.clock.now(), expires=expires
            )
        except RunawayGuardError:
            # Better twice than never: without the ledger, the alert cannot be deduplicated.
            logger.warning(
                "runaway-guard could not deduplicate alert %r in the ledger; sending it",
                alert.title,
                exc_info=True,
            )
            return alert
        return alert if first else None

    def _build(self, item: _Crossing | Event) -> tuple[Alert, bool, float | None]:
        """The alert for `item`, whether to claim it in the ledger, and until when."""
        if isinstance(item, _Crossing):
            expires = item.expires if item.expires is not None else _run_expiry(item)
            return self._crossing(item), True, expires
        if isinstance(item, CallRefused):
            error = item.error
            assert isinstance(error, BudgetExceeded)
            return (
                self._alert(
                    AlertKind.EXHAUSTED,
                    Severity.CRITICAL,
                    f"{error.budget} is full: calls are being refused",
                    f"{error.spent} spent + {error.held} held + {error.asked} asked > "
                    f"{error.limit} limit in {error.window} (contract {item.contract!r}, run "
                    f"{item.run!r}); {error.hint}",
                    item.at,
                    f"exhausted:{error.budget}:{error.window}",
                    {"budget": error.budget, "window": error.window, "contract": item.contract},
                ),
                True,
                self._window_expiry(error.window, item.at),
            )
        if isinstance(item, KillSwitchSet):
            return (
                self._alert(
                    AlertKind.KILL_SWITCH,
                    Severity.CRITICAL,
                    f"kill switch engaged on {item.scope}",
                    f"engaged by {item.by}: {item.reason}. Every process sharing the ledger "
                    f"refuses covered calls until `runaway-guard revive {item.scope}`.",
                    item.at,
                    f"kill:{item.scope}:{item.at}",
                    {"scope": item.scope, "reason": item.reason, "by": item.by},
                ),
                False,
                None,
            )
        if isinstance(item, KillSwitchCleared):
            return (
                self._alert(
                    AlertKind.REVIVED,
                    Severity.INFO,
                    f"kill switch on {item.scope} cleared",
                    f"revived by {item.by}; covered calls are admitted again.",
                    item.at,
                    f"revived:{item.scope}:{item.at}",
                    {"scope": item.scope, "by": item.by},
                ),
                False,
                None,
            )
        expires = item.at + self.quiet
        if isinstance(item, BreakerOpened):
            return (
                self._alert(
                    AlertKind.BREAKER_OPENED,
                    Severity.WARNING,
                    f"circuit breaker of contract {item.contract!r} opened after "
                    f"{item.failures} upstream failures",
                    f"calls are refused until {self._local(item.until)}, then one probe goes "
                    "through; check the upstream's status.",
                    item.at,
                    f"breaker:{item.contract}",
                    {"contract": item.contract, "failures": str(item.failures)},
                ),
                True,
                expires,
            )
        if isinstance(item, CostAboveEstimate):
            actual = format_amount(item.actual, item.currency)
            estimate = format_amount(item.estimate, item.currency)
            return (
                self._alert(
                    AlertKind.COST_ABOVE_ESTIMATE,
                    Severity.WARNING,
                    f"contract {item.contract!r} cost {actual}, above its worst-case estimate "
                    f"{estimate}",
                    "the actual cost was recorded, so budgets can pass their limits by the "
                    "difference; fix the contract's price or its estimate.",
                    item.at,
                    f"above-estimate:{item.contract}",
                    {"contract": item.contract, "run": item.run, "actual": actual},
                ),
                True,
                expires,
            )
        if isinstance(item, HoldReaped):
            hold = item.hold
            charged = format_amount(hold.estimate, item.currency)
            return (
                self._alert(
                    AlertKind.HOLD_REAPED,
                    Severity.WARNING,
                    f"a hold of contract {hold.contract!r} was reaped: charged its estimate "
                    f"{charged}",
                    f"its holder in run {hold.run!r} stopped before settling (a crash or a "
                    f"kill?); the lease ended {self._local(hold.lease_until)}. The call may "
                    "have been billed, so its estimate was charged.",
                    item.at,
                    f"reaped:{hold.contract}",
                    {"contract": hold.contract, "run": hold.run, "charged": charged},
                ),
                True,
                expires,
            )
        if isinstance(item, RetriesGaveUp):
            return (
                self._alert(
                    AlertKind.RETRIES_EXHAUSTED,
                    Severity.WARNING,
                    f"contract {item.contract!r} gave up after {item.attempts} attempt(s): "
                    f"its {item.reason} bound ran out",
                    "the upstream keeps failing; the guard stopped retrying instead of looping.",
                    item.at,
                    f"gave-up:{item.contract}",
                    {"contract": item.contract, "attempts": str(item.attempts)},
                ),
                True,
                expires,
            )
        raise AssertionError(f"no alert for {item!r}")  # pragma: no cover

    def _crossing(self, item: _Crossing) -> Alert:
        currency = self.guard.currency
        unit = Unit(item.unit)
        spent = render_units(unit, item.settled, currency)
        limit = render_units(unit, item.limit, currency)
        window = item.key.rsplit("|", 1)[-1]
        ends = f", ends {self._local(item.expires)}" if item.expires is not None else ""
        if item.percent >= 100:
            severity = Severity.CRITICAL
            advice = "calls that do not fit are refused until the window ends."
        else:
            severity = Severity.WARNING if item.percent >= 75 else Severity.INFO
            scope = item.key.split("|", 1)[0]
            if not scope.startswith(("contract:", "run:")):
                scope = "global"
            advice = (
                "see `runaway-guard report --by hour`; stop it with "
                f'`runaway-guard kill {scope} --reason "..."`.'
            )
        held = (
            f" (+ {render_units(unit, item.held, currency)} held by calls in flight)"
            if item.held
            else ""
        )
        return self._alert(
            AlertKind.THRESHOLD,
            severity,
            f"{describe_counter(item.key)} at {item.percent}%: {spent} of {limit}",
            f"window {window}{ends}; {spent} settled{held}; last call: contract "
            f"{item.contract!r}, run {item.run!r}. {advice}",
            item.at,
            f"threshold:{item.key}:{item.percent}",
            {
                "budget": item.key,
                "window": window,
                "threshold": str(item.percent),
                "spent": spent,
                "limit": limit,
                "contract": item.contract,
                "run": item.run,
            },
        )

    def _alert(
        self,
        kind: AlertKind,
        severity: Severity,
        title: str,
        detail: str,
        at: float,
        key: str,
        fields: dict[str, str],
    ) -> Alert:
        fields["host"] = self._host
        if self.guard.environment:
            fields["environment"] = self.guard.environment
        return Alert(kind, severity, title, detail, at, key, fields)

    def _local(self, when: float) -> str:
        local = datetime.fromtimestamp(when, tz=self.guard.tz)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    def _window_expiry(self, window: str, at: float) -> float | None:
        kind = window.split(":", 1)[0]
        if kind == "run":
            return at + RUN_MARK_TTL
        if kind not in _PERIODS or kind == "total":
            return None
        return window_for(Period(kind), at, self.guard.tz, "").end

    # -- lifecycle ---------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every alert raised so far was delivered or given up on.

        Waits up to `timeout` seconds (`drain_timeout` by default); returns False when
        that ran out first, for example because a notifier hangs.
        """
        return self.delivery.flush(self.drain_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop watching, deliver what is queued (up to `drain_timeout`), stop the workers.

        Returns True when every queued alert was handled. Called by `Guard.close` and at
        interpreter exit; calling it again does nothing.
        """
        if self._closed:
            return True
        self._closed = True
        self._unsubscribe()
        atexit.unregister(self.close)
        return self.delivery.close(self.drain_timeout if timeout is None else timeout)

    def __enter__(self) -> Alerts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(n.name for n in self.notifiers)
        return f"Alerts([{names}], thresholds={list(self.thresholds)})"


def check_thresholds(values: Iterable[int], what: str) -> tuple[int, ...]:
    """Whole percentages from 1 to 100, sorted and deduplicated."""
    found = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise ConfigError(
                f"{what}: {value!r} is not a whole percentage from 1 to 100 (write 50 for 50%)"
            )
        found.append(value)
    return tuple(sorted(set(found)))


def check_selector(selector: str) -> str:
    """``scope``, ``scope|unit`` or ``scope|unit|period``, with a known unit and period.

    ``*`` stands for any scope (``*|money|day``), and then for any unit too
    (``*|*|run``: every per-run budget).
    """
    parts = selector.split("|") if isinstance(selector, str) else []
    if not parts or not parts[0] or len(parts) > 3 or parts == ["*"]:
        raise ConfigError(
            f"budget selector {selector!r}: write 'SCOPE', 'SCOPE|UNIT' or 'SCOPE|UNIT|PERIOD', "
            "e.g. 'contract:record-enrich|money|day' or '*|*|run'"
        )
    if len(parts) > 1 and parts[1] == "*" and (parts[0] != "*" or len(parts) < 3):
        raise ConfigError(
            f"budget selector {selector!r}: a '*' unit needs a '*' scope and a period, "
            "as in '*|*|run'"
        )
    if len(parts) > 1 and parts[1] != "*" and parts[1] not in _UNITS:
        raise ConfigError(
            f"budget selector {selector!r}: unknown unit {parts[1]!r}; choose one of "
            f"{', '.join(sorted(_UNITS))}"
        )
    if len(parts) > 2 and parts[2] not in _PERIODS:
        raise ConfigError(
            f"budget selector {selector!r}: unknown period {parts[2]!r}; choose one of "
            f"{', '.join(sorted(_PERIODS))}"
        )
    return selector


def _trigger(thresholds: tuple[int, ...], index: int, limit: int) -> float:
    """The smallest settled amount that reaches ``thresholds[index]`` of `limit`."""
    if index >= len(thresholds) or limit <= 0:
        return math.inf  # all crossed, or a zero budget that admits nothing
    return -(-thresholds[index] * limit // 100)


def _contract_of(event: _Quiet) -> str:
    return event.hold.contract if isinstance(event, HoldReaped) else event.contract


def _run_expiry(item: _Crossing) -> float | None:
    window = item.key.rsplit("|", 1)[-1]
    return item.at + RUN_MARK_TTL if window.startswith("run:") else None


def _positive(value: object, what: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return float(value)
