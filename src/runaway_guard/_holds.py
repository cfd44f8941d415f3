"""Placing one hold: from a contract, a run and an estimate to the ledger's lines.

`HoldPlanner` turns the budgets that touch a call (the guard's, every enclosing run's,
the contract's) into ledger lines, caches them until a calendar window rolls over, and
places the hold. `Hold` is the handle of a placed hold: settle it, release it, or fail
it, exactly once.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from runaway_guard._budget import Budget, Period, Unit, render_units, window_for
from runaway_guard._classify import UPSTREAM_FAILURES, Failure, Kind, classify
from runaway_guard._control import (
    breaker_key,
    claim_probe,
    gate_key,
    is_gate,
    kill_error,
    record_failure,
    successes_key,
    unclaim_probe,
)
from runaway_guard._errors import BudgetExceeded, ContractError, LedgerError
from runaway_guard._events import (
    AnomalyTripped,
    BreakerClosed,
    BreakerOpened,
    CostAboveEstimate,
    Settled,
)
from runaway_guard._money import Money
from runaway_guard._price import Call, Cost
from runaway_guard.ledger import Blocked, HoldLine, HoldRequest, Outcome, Refusal, SettleResult

if TYPE_CHECKING:
    from runaway_guard._guard import Contract, Guard
    from runaway_guard._runs import Run

__all__ = ["Hold", "LineSpec", "Template", "new_id", "place_hold"]

logger = logging.getLogger("runaway_guard")


# -- ids ---------------------------------------------------------------------------------------
# A random per-process prefix and a counter: unique across processes, and ~10x cheaper
# than uuid4 on the hot path. The prefix is redrawn in a forked child.
class _Ids:
    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.reseed)


def new_id() -> str:
    """A process-unique prefix and a counter: unique across processes and hosts."""
    return f"{_ids.prefix}-{next(_ids.counter)}"


# -- hold templates ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineSpec:
    """A ledger line without its amount, and how to explain a refusal on it."""

    key: str
    limit: int | None
    unit: Unit
    expires: float | None
    label: str
    hint: str
    scope: str = ""


class Template:
    """The lines of one (contract, run) pair until `valid_until`, when a window rolls."""

    __slots__ = (
        "_last",
        "blockers",
        "counted",
        "has_tokens",
        "hour_calls_key",
        "lines",
        "valid_until",
    )

    def __init__(
        self,
        lines: tuple[LineSpec, ...],
        valid_until: float,
        has_tokens: bool,
        hour_calls_key: str | None,
        blockers: tuple[str, ...],
        counted: bool,
    ) -> None:
        self.lines = lines
        self.blockers = blockers
        """Kill switches that cover the call, and the breaker's gate when it has one."""
        self.valid_until = valid_until
        self.has_tokens = has_tokens
        self.counted = counted
        """True when a calls or tokens budget with a limit covers the call."""
        self.hour_calls_key = hour_calls_key
        self._last: tuple[int, int | None, tuple[HoldLine, ...]] | None = None

    def hold_lines(self, nanos: int, tokens: int | None) -> tuple[HoldLine, ...]:
        """Ledger lines for an estimate; a flat price reuses the same tuple every call."""
        last = self._last
        if last is not None and last[0] == nanos and last[1] == tokens:
            return last[2]
        amounts = {Unit.MONEY: nanos, Unit.CALLS: 1, Unit.TOKENS: tokens or 0, Unit.SUCCESSES: 0}
        lines = tuple(
            HoldLine(line.key, amounts[line.unit], line.limit, line.unit, line.expires)
            for line in self.lines
        )
        self._last = (nanos, tokens, lines)
        return lines


def _owner_label(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return f"{kind} {name!r}" if name else kind


def _bind(
    budget: Budget,
    scope: str,
    option: str,
    run: Run,
    guard: Guard,
    now: float,
) -> list[LineSpec]:
    """The ledger lines of one budget for a call inside `run`."""
    runs = run.chain if budget.per is Period.RUN else (run,)
    limit = budget.limit_units(guard.currency, guard.exchange_rates)
    if budget.unit is Unit.MONEY:
        kind = "per-run budget" if budget.per is Period.RUN else f"{budget.per} budget"
    else:
        kind = f"{budget.unit}-per-{budget.per} budget"
    lines = []
    for target in runs:
        window = window_for(budget.per, now, guard.tz, target.path)
        where = "" if budget.per is not Period.RUN or len(runs) == 1 else f" (run {target.path!r})"
        label = f"{_owner_label(scope)} {kind}{where}"
        change = f"raise {option}" if option else "raise the limit"
        if window.end is not None:
            hint = f"{change} or wait for {window.describe_end(guard.tz)}"
        elif budget.per is Period.RUN:
            hint = f"{change}; run {target.path!r} has used its allowance"
        else:
            hint = change
        lines.append(
            LineSpec(
                f"{scope}|{budget.unit}|{window.key}",
                limit,
                budget.unit,
                window.end,
                label,
                hint,
                scope,
            )
        )
    return lines


def build_template(contract: Contract, run: Run, now: float) -> Template:
    """Every line a call of `contract` inside `run` touches, in the windows around `now`."""
    guard = contract.guard
    spec = contract.spec
    found: list[LineSpec] = []
    for budget in guard.budgets:
        found += _bind(budget, budget.scope or "global", budget.option, run, guard, now)
    for node in run.chain:
        for budget in node.budgets:
            found += _bind(
                budget, budget.scope or f"run:{node.path}", budget.option, node, guard, now
            )
        if not node.implicit:
            # Track every explicit run's money so `run.spent()` and reports can see it.
            key = f"run:{node.path}|money|run:{node.path}"
            found.append(LineSpec(key, None, Unit.MONEY, None, f"run {node.path!r}", ""))
    contract_scope = f"contract:{spec.name}"
    for budget in spec.budgets():
        found += _bind(budget, budget.scope or contract_scope, budget.option, run, guard, now)
    if spec.breaker is not None:
        # Successes are counted, not reset: a failure that finds the count moved knows
        # its streak was broken, so a success needs no extra write to close the streak.
        found.append(LineSpec(successes_key(spec.name), None, Unit.SUCCESSES, None, "", ""))
    hour_key = None
    if spec.expected_calls_per_hour is not None:
        window = window_for(Period.HOUR, now, guard.tz, run.path)
        hour_key = f"{contract_scope}|calls|{window.key}"
        found.append(LineSpec(hour_key, None, Unit.CALLS, window.end, "", ""))
    # One line per counter: two budgets on one key keep the tighter limit, so the
    # hold is never asked of the same counter twice.
    merged: dict[str, LineSpec] = {}
    for line in found:
        prior = merged.get(line.key)
        if prior is None or (
            line.limit is not None and (prior.limit is None or line.limit < prior.limit)
        ):
            merged[line.key] = line
    ends = [line.expires for line in merged.values() if line.expires is not None]
    blockers = guard.blockers(spec.name, run)
    if spec.breaker is not None:
        blockers = (*blockers, gate_key(spec.name))
    return Template(
        lines=tuple(merged.values()),
        valid_until=min(ends, default=float("inf")),
        has_tokens=any(line.unit is Unit.TOKENS for line in merged.values()),
        counted=any(
            line.limit is not None and line.unit in (Unit.CALLS, Unit.TOKENS)
            for line in merged.values()
        ),
        hour_calls_key=hour_key,
        blockers=blockers,
    )


def template_for(contract: Contract, run: Run, now: float) -> Template:
    cached: Template | None = run.cache.get(contract.spec.name)
    if cached is None or now >= cached.valid_until:
        cached = run.cache[contract.spec.name] = build_template(contract, run, now)
    return cached


# -- placing and ending holds ------------------------------------------------------------------


def place_hold(
    contract: Contract,
    call: Call,
    *,
    run: Run,
    call_id: str,
    hold_id: str,
    estimate: Cost,
    on_end: Callable[[], None] | None = None,
) -> Hold:
    """Reserve `estimate` on every budget the call touches, or raise why not.

    Kill switches and an open circuit breaker refuse inside the reservation itself. A
    breaker past its cooldown makes this call the one half-open probe, if it wins the
    race for it.
    """
    guard = contract.guard
    spec = contract.spec
    now = guard.clock.now()
    money = estimate.money.to(guard.currency, guard.exchange_rates)
    template = template_for(contract, run, now)
    if not money.nanos and not template.counted:
        raise ContractError(
            f"contract {spec.name!r}: this call's estimate is {money} and no calls or tokens "
            "budget covers it, so nothing would bound how many such calls run; set "
            "max_calls_per_run (or max_tokens_per_run for a token price)"
        )
    if template.has_tokens and estimate.tokens is None:
        raise ContractError(
            f"contract {spec.name!r} has a token budget but its price gives no token "
            "estimate; use a token price (LLM contracts) or drop the token budget"
        )
    request = HoldRequest(
        hold_id,
        template.hold_lines(money.nanos, estimate.tokens),
        now,
        now + spec.hold_lease,
        spec.name,
        run.path,
        call_id,
        call.attempt,
        money.nanos,
        template.blockers,
    )
    probing = False
    outcome = guard.ledger.reserve(request)
    if isinstance(outcome, Blocked) and is_gate(outcome.key) and spec.breaker is not None:
        claimed = claim_probe(guard.ledger, spec.name, spec.breaker, now=now)
        probing = True
        gate = gate_key(spec.name)
        request = replace(request, blockers=tuple(b for b in request.blockers if b != gate))
        outcome = guard.ledger.reserve(request)
        if outcome is not None and claimed is not None:
            unclaim_probe(guard.ledger, spec.name, claimed, now=now)
    if isinstance(outcome, Blocked):
        raise kill_error(outcome.key, outcome.value)
    if isinstance(outcome, Refusal):
        raise _budget_error(outcome, template, guard.currency)
    return Hold(contract, call, run, request, money, estimate.tokens, probing, template, on_end)


def _budget_error(refusal: Refusal, template: Template, currency: str) -> BudgetExceeded:
    line = refusal.line
    spec = next(s for s in template.lines if s.key == line.key)
    unit = Unit(line.unit)
    limit = line.limit if line.limit is not None else 0
    return BudgetExceeded(
        budget=spec.label,
        unit=line.unit,
        limit=render_units(unit, limit, currency),
        spent=render_units(unit, refusal.settled, currency),
        held=render_units(unit, refusal.held, currency),
        asked=render_units(unit, line.amount, currency),
        window=line.key.rsplit("|", 1)[-1],
        hint=spec.hint,
        scope=spec.scope,
    )


class Hold:
    """A placed hold: end it exactly once with `settle`, `release` or `fail`.

    Ending it twice is harmless (the ledger ignores the second end), but only the first
    one counts.
    """

    __slots__ = (
        "_on_end",
        "_template",
        "call",
        "charged",
        "contract",
        "ended",
        "estimate",
        "estimate_tokens",
        "probing",
        "request",
        "run",
    )

    def __init__(
        self,
        contract: Contract,
        call: Call,
        run: Run,
        request: HoldRequest,
        estimate: Money,
        tokens: int | None,
        probing: bool,
        template: Template,
        on_end: Callable[[], None] | None,
    ) -> None:
        self.contract = contract
        self.call = call
        self.run = run
        self.request = request
        self.estimate = estimate
        self.estimate_tokens = tokens
        self.probing = probing
        """True when this attempt is the half-open probe of the contract's breaker."""
        self._template = template
        self._on_end = on_end
        self.ended = False
        self.charged: Money | None = None

    @property
    def hold_id(self) -> str:
        return self.request.hold_id

    @property
    def attempt(self) -> int:
        return self.call.attempt

    def renew(self, seconds: float | None = None) -> bool:
        """Extend the lease (long streams); False when the hold already ended or was reaped.

        The hold's concurrency slot, when the contract has one, is extended with it: a
        slot whose lease ran out would let another caller in beside a live call.
        """
        guard = self.contract.guard
        lease = seconds if seconds is not None else self.contract.spec.hold_lease
        now = guard.clock.now()
        renewed = guard.ledger.renew(self.hold_id, lease_until=now + lease)
        if renewed and self.contract.spec.concurrency is not None and not self.ended:
            self.contract.acquire_slot(self.hold_id, lease=lease)
        return renewed

    def settle(self, actual: Cost | None = None) -> Money:
        """Charge the actual cost (None charges the estimate). Returns what was charged."""
        guard = self.contract.guard
        money, tokens = self.estimate, self.estimate_tokens
        if actual is not None:
            try:
                money = actual.money.to(guard.currency, guard.exchange_rates)
            except ContractError:
                # The call happened and was paid; raising now would lose its result.
                logger.warning(
                    "runaway-guard: the actual cost %s of %r cannot be counted in %s (no "
                    "exchange rate); charging the estimate %s instead",
                    actual.money,
                    self.contract.spec.name,
                    guard.currency,
                    self.estimate,
                )
            else:
                tokens = actual.tokens if actual.tokens is not None else self.estimate_tokens
        self._end(money, tokens, Outcome.SETTLED, "", answered=True)
        if money.nanos > self.estimate.nanos:  # both in the ledger currency by now
            guard.emit(
                CostAboveEstimate(
                    guard.clock.now(),
                    self.contract.spec.name,
                    self.run.path,
                    self.estimate.nanos,
                    money.nanos,
                    guard.currency,
                )
            )
        return money

    def release(self, error: str = "") -> None:
        """Drop the hold: the provider surely did not bill this attempt."""
        self._end(Money(0, self.estimate.currency), 0, Outcome.RELEASED, error, answered=True)

    def fail(self, exc: BaseException) -> Failure:
        """Classify a failed attempt, charge it as the contract says, tell the breaker."""
        guard = self.contract.guard
        spec = self.contract.spec
        failure = classify(exc, now=guard.clock.now())
        error = _error_label(exc, failure)
        # A 4xx proves the upstream is up: it closes the breaker like a success does.
        answered = failure.kind in (Kind.CLIENT_ERROR, Kind.CONFLICT)
        if spec.charge.mode(failure.kind) == "release":
            zero = Money(0, self.estimate.currency)
            self._end(zero, 0, Outcome.RELEASED, error, answered=answered)
        else:
            self._end(self.estimate, self.estimate_tokens, Outcome.FAILED, error, answered=answered)
        if failure.kind in UPSTREAM_FAILURES:
            self._upstream_failed()
        return failure

    def _end(
        self, money: Money, tokens: int | None, outcome: Outcome, error: str, *, answered: bool
    ) -> None:
        if self.ended:
            return
        self.ended = True
        self.charged = money
        guard = self.contract.guard
        # Every attempt that was made counts as a call, billed or not: a loop of rejected
        # requests is still a loop, and "max calls" must bound it.
        actual = {"money": money.nanos, "calls": 1, "successes": int(answered)}
        if tokens:
            actual["tokens"] = tokens
        report = guard.has_listeners or self._template.hour_calls_key is not None
        name = self.contract.spec.name
        # Only the half-open probe closes the breaker: its success is the evidence.
        clear = (breaker_key(name), gate_key(name)) if answered and self.probing else ()
        try:
            result = guard.ledger.settle(
                self.hold_id,
                actual,
                now=guard.clock.now(),
                outcome=outcome,
                error=error,
                report=report,
                clear=clear,
            )
        except LedgerError:
            # The call already happened; losing its result would only make the caller
            # pay again. The hold stays in the ledger and is reaped at its estimate.
            logger.warning(
                "runaway-guard could not settle hold %s of %r; it will be reaped at its "
                "estimate %s after its lease",
                self.hold_id,
                self.contract.spec.name,
                self.estimate,
                exc_info=True,
            )
            return
        finally:
            if self._on_end is not None:
                self._on_end()
        if gate_key(name) in result.cleared:
            guard.emit(BreakerClosed(guard.clock.now(), name))
        if report:
            try:
                self._after_settle(result, outcome, money)
            except Exception:  # events and the anomaly trip must never cost a paid result
                logger.warning(
                    "runaway-guard: after settling hold %s of %r", self.hold_id, name, exc_info=True
                )

    def _after_settle(self, result: SettleResult, outcome: Outcome, money: Money) -> None:
        guard = self.contract.guard
        spec = self.contract.spec
        now = guard.clock.now()
        if guard.has_listeners:
            guard.emit(
                Settled(
                    now,
                    spec.name,
                    self.run.path,
                    self.attempt,
                    str(outcome),
                    self.estimate.nanos,
                    money.nanos,
                    guard.currency,
                    result.counters,
                )
            )
        hour_key = self._template.hour_calls_key
        if hour_key is None or spec.expected_calls_per_hour is None:
            return
        calls = next((state.settled for line, state in result.counters if line.key == hour_key), 0)
        ceiling = spec.expected_calls_per_hour * spec.anomaly_factor
        if calls > ceiling:
            reason = (
                f"anomaly trip: {calls} calls this hour > expected {spec.expected_calls_per_hour}"
                f" x factor {spec.anomaly_factor} = {ceiling}"
            )
            if guard.kill(f"contract:{spec.name}", reason, by="anomaly trip"):
                guard.emit(
                    AnomalyTripped(
                        now,
                        spec.name,
                        calls,
                        spec.expected_calls_per_hour,
                        str(spec.anomaly_factor),
                    )
                )

    def _upstream_failed(self) -> None:
        policy = self.contract.spec.breaker
        if policy is None:
            return
        guard = self.contract.guard
        now = guard.clock.now()
        try:
            opened = record_failure(
                guard.ledger, self.contract.spec.name, policy, probing=self.probing, now=now
            )
        except LedgerError:
            logger.warning("runaway-guard could not update the circuit breaker", exc_info=True)
            return
        if opened is not None:
            failures, until = opened
            logger.warning(
                "runaway-guard opened the circuit breaker of %r after %d upstream failures",
                self.contract.spec.name,
                failures,
            )
            guard.emit(BreakerOpened(now, self.contract.spec.name, failures, until))


def _error_label(exc: BaseException, failure: Failure) -> str:
    # Only the type and status go to the ledger: messages can carry request details.
    label = type(exc).__name__
    return f"{label} {failure.status}" if failure.status is not None else label
