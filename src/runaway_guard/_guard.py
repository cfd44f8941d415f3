"""The guard: binds contracts and runs to a ledger and a clock.

```python
guard = rg.Guard("sqlite:///ledger.db")
enrich = guard.contract("record-enrich", price="$0.002", max_calls_per_run=80,
                        provider_cap="OpenAI org usage limit, $25/month")

@enrich
def complete(payload): ...

with guard.run("nightly-2026-11-22"):
    complete(p)
```
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

from runaway_guard._bound import Contract
from runaway_guard._budget import Budget, Unit, check_count
from runaway_guard._budget import timezone as zone_named
from runaway_guard._clock import Clock, SystemClock
from runaway_guard._contract import ContractSpec, declare_contract
from runaway_guard._control import (
    clear_kill,
    kill_error,
    kill_key,
    normalise_scope,
    set_kill,
    who,
)
from runaway_guard._errors import ConfigError, ContractError
from runaway_guard._events import (
    Dispatcher,
    Event,
    EventListener,
    HoldReaped,
    KillSwitchCleared,
    KillSwitchSet,
)
from runaway_guard._money import Money, MoneyLike, Rates, format_amount, parse_money
from runaway_guard._runs import Run, RunScope
from runaway_guard.ledger import HoldInfo, Ledger, default_ledger_url, ledger_from_url
from runaway_guard.patterns import Idempotency, KeyFunction
from runaway_guard.patterns._entries import GuardPatterns

__all__ = ["ENV_VAR", "BudgetStatus", "Contract", "Guard", "KillSwitch"]

ENV_VAR = "RUNAWAY_GUARD_ENV"
"""Names the environment (dev, staging, prod, ...) whose caps contracts apply."""

logger = logging.getLogger("runaway_guard")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One counter in its current window, as `Guard.status` reports it."""

    key: str
    scope: str
    unit: str
    window: str
    settled: int
    held: int
    limit: int | None
    currency: str

    @property
    def fill(self) -> float | None:
        """(settled + held) / limit, or None for a counter without a limit."""
        if self.limit is None:
            return None
        if self.limit == 0:
            return 1.0
        return (self.settled + self.held) / self.limit

    def render(self, amount: int) -> str:
        if self.unit == Unit.MONEY:
            return format_amount(amount, self.currency)
        return f"{amount} {self.unit}"


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """An engaged kill switch, as `Guard.kill_switches` lists it."""

    scope: str
    reason: str
    by: str
    at: float


class Guard(GuardPatterns):
    """The entry point: a ledger, a clock, and the contracts and runs bound to them.

    Args:
        ledger: a ledger URL (``"sqlite:///ledger.db"``, ``"memory://"``), a `Ledger`, or
            None for the default (``$RUNAWAY_GUARD_LEDGER``, else a SQLite file in the
            user's state folder).
        clock: where time comes from; `runaway_guard.testing.FakeClock` in tests.
        currency: the currency the ledger counts in. None adopts the ledger's (USD for a
            new ledger); a different explicit value is an error.
        timezone: IANA zone for calendar windows (day budgets reset at local midnight).
        exchange_rates: value of one unit of another currency in the ledger currency,
            e.g. ``{"EUR": "1.08"}``. Without a rate, mixing currencies is an error.
        budgets: guard-wide budgets, e.g. ``[rg.Budget.money("$50", per="day")]``.
        reap_every: seconds between opportunistic reaps of expired holds.
        environment: which caps contracts apply (``"dev"``, ``"staging"``, ``"prod"``):
            a contract's ``environments={"dev": {...}}`` entry replaces its caps when the
            guard runs in that environment. Defaults to ``$RUNAWAY_GUARD_ENV``.
        declared: contract options declared outside the code, by contract name (a config
            file's ``[contracts.NAME]``): they win over the options `contract` is called
            with, so an operator can change a cap without a code change.

    The amplifier patterns (`map`, `poll`, `reconnect`, `job`, `fallback`, `idempotent`)
    are mixed in from `runaway_guard.patterns`.
    """

    def __init__(
        self,
        ledger: str | Ledger | None = None,
        *,
        clock: Clock | None = None,
        currency: str | None = None,
        timezone: str = "UTC",
        exchange_rates: Mapping[str, Decimal | str] | None = None,
        budgets: Sequence[Budget] = (),
        reap_every: float = 60.0,
        environment: str | None = None,
        declared: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._owns_ledger = not isinstance(ledger, Ledger)
        if ledger is None:
            ledger = default_ledger_url()
        self.ledger: Ledger = ledger_from_url(ledger) if isinstance(ledger, str) else ledger
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.tz = zone_named(timezone)
        wanted = currency.upper() if currency else None
        self.currency = self.ledger.currency(wanted or "USD")
        if wanted is not None and wanted != self.currency:
            raise ContractError(
                f"the ledger at {self.ledger.url} counts {self.currency}, but this guard was "
                f"configured with currency={currency!r}; use {self.currency!r} and "
                "exchange_rates, or another ledger"
            )
        self.exchange_rates: Rates = _rates(exchange_rates)
        self.budgets = tuple(_check_budget(b) for b in budgets)
        self.environment = environment or os.environ.get(ENV_VAR) or None
        self.reap_every = reap_every
        self._events = Dispatcher()
        self._run_var: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
            f"runaway_guard_run_{id(self)}", default=None
        )
        self._process_run: Run | None = None
        self._process_pid = 0
        self._process_lock = threading.Lock()
        self._contracts: dict[str, Contract] = {}
        self._last_reap = float("-inf")
        self.declared: dict[str, Mapping[str, Any]] = dict(declared or {})
        self.declared_in = ""
        """Where `declared` came from (a config file's path), named in errors."""
        self._on_close: list[Callable[[], object]] = []

    # -- contracts ---------------------------------------------------------------------------------
    def contract(
        self,
        name: str,
        *,
        price: Any = None,
        provider_cap: str | None = None,
        max_calls_per_run: int | None = None,
        max_per_run: MoneyLike | None = None,
        max_tokens_per_run: int | None = None,
        max_calls_per_hour: int | None = None,
        max_per_hour: MoneyLike | None = None,
        max_calls_per_day: int | None = None,
        max_per_day: MoneyLike | None = None,
        max_tokens_per_day: int | None = None,
        max_per_month: MoneyLike | None = None,
        budgets: Sequence[Budget] = (),
        concurrency: int | None = None,
        queue_timeout: float = 30.0,
        retry: Any = None,
        charge: Any = None,
        breaker: Any = True,
        hold_lease: float = 900.0,
        expected_calls_per_hour: int | None = None,
        anomaly_factor: Decimal | int | str = 3,
        environments: Mapping[str, Mapping[str, Any]] | None = None,
        idempotency: Idempotency | KeyFunction | None = None,
    ) -> Contract:
        """Declare a paid call site and bind it to this guard.

        Options declared for `name` outside the code (`declared`, from a config file)
        win over the ones given here; a contract declared in full there needs only its
        name: ``guard.contract("record-enrich")``.

        Args:
            name: the call site's name; it keys the contract's counters in the ledger.
            price: ``"$0.002"`` per call, a `Price`, or ``f(call) -> amount`` (estimate);
                required here unless declared outside the code.
            provider_cap: required: where the matching hard cap is set at the provider.
            max_calls_per_run: an integer bound on attempts per run.
            max_per_run: money per run; derived as calls x price when omitted.
            max_tokens_per_run, max_calls_per_hour, max_per_hour, max_calls_per_day,
            max_per_day, max_tokens_per_day, max_per_month: more windows.
            budgets: any other `Budget` (a tenant's, a week's).
            concurrency: most calls in flight at once, across every process.
            queue_timeout: seconds to wait for a concurrency slot.
            retry: `Retry` policy (or an int of attempts); one attempt by default.
            charge: `Charge`: what a failed attempt is charged, by failure kind.
            breaker: `Breaker` policy, True for the default, False for none.
            hold_lease: seconds before a silent holder's hold may be reaped.
            expected_calls_per_hour: trips the kill switch past this x anomaly_factor.
            anomaly_factor: how far past the expectation trips it.
            environments: caps per environment, e.g. ``{"dev": {"max_per_day": "$0.50"}}``;
                the guard's `environment` picks one (a dev key pointed at production
                then costs cents, not dollars).
            idempotency: `Idempotency` (or a bare key function of the call's arguments):
                a repeat of a key replays the stored result at $0 instead of paying again.

        Raises:
            ContractError: what is wrong with the declaration, and how to fix it.
        """
        options: dict[str, Any] = {
            "price": price,
            "provider_cap": provider_cap,
            "max_calls_per_run": max_calls_per_run,
            "max_per_run": max_per_run,
            "max_tokens_per_run": max_tokens_per_run,
            "max_calls_per_hour": max_calls_per_hour,
            "max_per_hour": max_per_hour,
            "max_calls_per_day": max_calls_per_day,
            "max_per_day": max_per_day,
            "max_tokens_per_day": max_tokens_per_day,
            "max_per_month": max_per_month,
            "budgets": tuple(budgets),
            "concurrency": concurrency,
            "queue_timeout": queue_timeout,
            "retry": retry,
            "charge": charge,
            "breaker": breaker,
            "hold_lease": hold_lease,
            "expected_calls_per_hour": expected_calls_per_hour,
            "anomaly_factor": anomaly_factor,
            "environments": environments,
        }
        declared = self.declared.get(name)
        if declared is not None:
            unknown = sorted(set(declared) - set(options))
            if unknown:
                raise ContractError(
                    f"declared options of contract {name!r} include {unknown}, which "
                    f"contract() does not take; known: {', '.join(sorted(options))}"
                )
            options = _merge_options(options, declared)
        queue_timeout = options.pop("queue_timeout")
        if options["price"] is None:
            where = f" or in [contracts.{name}] of {self.declared_in}" if self.declared_in else ""
            raise ContractError(
                f"contract {name!r} has no price: pass price='$0.002' (per call), a Price, "
                f"or a function of the call{where}"
            )
        try:
            spec = declare_contract(name, **options, environment=self.environment)
        except ContractError as exc:
            if declared is None or not self.declared_in:
                raise
            raise ConfigError(
                f"{exc} (contract {name!r} merges the code's options with "
                f"[contracts.{name}] in {self.declared_in})"
            ) from exc
        return self.bind(spec, queue_timeout=queue_timeout, idempotency=idempotency)

    def bind(
        self,
        spec: ContractSpec,
        *,
        queue_timeout: float = 30.0,
        idempotency: Idempotency | KeyFunction | None = None,
    ) -> Contract:
        """Bind a declared `ContractSpec`; a conflicting re-declaration is an error."""
        for budget in spec.budgets():
            budget.limit_units(self.currency, self.exchange_rates)  # currency check, early
        existing = self._contracts.get(spec.name)
        policy = Idempotency.of(idempotency)
        if existing is not None:
            if existing.spec == spec and existing.idempotency == policy:
                return existing
            raise ContractError(
                f"contract {spec.name!r} is already declared on this guard with other "
                "settings; give each call site its own name"
            )
        contract = Contract(self, spec, queue_timeout=queue_timeout, idempotency=policy)
        self._contracts[spec.name] = contract
        return contract

    @property
    def contracts(self) -> dict[str, Contract]:
        """Contracts declared on this guard, by name."""
        return dict(self._contracts)

    # -- runs --------------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        *,
        budget: MoneyLike | None = None,
        max_calls: int | None = None,
        budgets: Sequence[Budget] = (),
        parent: Run | None = None,
    ) -> RunScope:
        """Open a run: a cron run, a campaign, a ticket, an agent session.

        Use as ``with guard.run("nightly-2026-11-22", budget="$2.00"):`` (or ``async
        with``). Runs nest; a nested run's spend counts against every enclosing run.
        Reopening a name continues its counters.

        Args:
            name: the run's identity in the ledger (no ``/``: nesting builds paths).
            budget: money cap for everything inside the run.
            max_calls: cap on paid attempts inside the run.
            budgets: other budgets for calls inside the run (a tenant's day budget).
            parent: the run to open this one inside; by default the current explicit run
                (none at top level). Pass ``guard.current_run()`` to nest inside the
                implicit per-process run too.
        """
        declared: list[Budget] = []
        if budget is not None:
            declared.append(
                Budget(parse_money(budget, what="run budget"), Unit.MONEY, option="the run budget")
            )
        if max_calls is not None:
            declared.append(
                Budget(
                    check_count(max_calls, "max_calls"), Unit.CALLS, option="the run's max_calls"
                )
            )
        declared.extend(_check_budget(b) for b in budgets)
        for item in declared:
            item.limit_units(self.currency, self.exchange_rates)
        return RunScope(self, self._run_var, name, tuple(declared), parent)

    def current_run(self) -> Run:
        """The innermost open run, or the guard's implicit run for this process.

        Calls outside any ``guard.run`` belong to one implicit run per process, so
        per-run bounds still hold for a script that never opens a run.
        """
        run = self._run_var.get()
        if run is not None:
            return run
        with self._process_lock:
            # A forked worker is a new process: it gets a run of its own.
            if self._process_run is None or self._process_pid != os.getpid():
                name = f"process:{socket.gethostname()}:{os.getpid()}:{int(self.clock.now())}"
                self._process_run = Run(name, name, None, (), self, implicit=True)
                self._process_pid = os.getpid()
            return self._process_run

    def run_spent(self, run: Run) -> Money:
        """Money settled so far by calls inside `run` (nested runs included)."""
        key = f"run:{run.path}|money|run:{run.path}"
        state = self.ledger.counters([key]).get(key)
        return Money(state.settled if state else 0, self.currency)

    # -- kill switches -----------------------------------------------------------------------------
    def kill(self, scope: str | Contract | Run, reason: str, *, by: str | None = None) -> bool:
        """Engage a kill switch: ``"global"``, ``"contract:NAME"``, ``"run:PATH"``.

        Every process sharing the ledger refuses covered calls at its next attempt,
        until `revive`. Returns False when the switch was engaged already.
        """
        scope = _scope_of(scope)
        if not isinstance(reason, str) or not reason.strip():
            raise ContractError("a kill switch needs a reason: say why, for whoever revives it")
        author = by or who()
        now = self.clock.now()
        changed = set_kill(self.ledger, scope, reason=reason, by=author, now=now)
        if changed:
            logger.warning(
                "runaway-guard kill switch engaged on %s by %s: %s", scope, author, reason
            )
            self.emit(KillSwitchSet(now, scope, reason, author))
        return changed

    def revive(self, scope: str | Contract | Run, *, by: str | None = None) -> bool:
        """Clear a kill switch. Returns False when none was engaged."""
        scope = _scope_of(scope)
        now = self.clock.now()
        changed = clear_kill(self.ledger, scope, now=now)
        if changed:
            self.emit(KillSwitchCleared(now, scope, by or who()))
        return changed

    def kill_switches(self) -> list[KillSwitch]:
        """Every engaged kill switch."""
        found = []
        for record in self.ledger.list_states("kill:", now=self.clock.now()):
            data = json.loads(record.value)
            found.append(
                KillSwitch(record.key.removeprefix("kill:"), data["reason"], data["by"], data["at"])
            )
        return found

    def blockers(self, contract: str, run: Run) -> tuple[str, ...]:
        """The kill switch keys that cover a call of `contract` inside `run`."""
        cached: tuple[str, ...] | None = run.cache.get(("blockers", contract))
        if cached is None:
            keys = [kill_key("global"), kill_key(f"contract:{contract}")]
            keys += [kill_key(f"run:{node.path}") for node in run.chain]
            cached = run.cache[("blockers", contract)] = tuple(keys)
        return cached

    def check_kill(self, contract: str, run: Run) -> None:
        """Raise `KillSwitchEngaged` when a kill switch covers `contract` in `run`."""
        now = self.clock.now()
        for key in self.blockers(contract, run):
            record = self.ledger.get_state(key, now=now)
            if record is not None:
                raise kill_error(key, record.value)

    # -- holds -------------------------------------------------------------------------------------
    def maybe_reap(self) -> None:
        """Reap expired holds if `reap_every` seconds passed since this guard last did."""
        now = self.clock.now()
        if now - self._last_reap >= self.reap_every:
            self._last_reap = now
            self.reap()

    def reap(self) -> list[HoldInfo]:
        """Charge every hold whose lease expired at its estimate; return them."""
        now = self.clock.now()
        reaped = self.ledger.reap(now=now)
        for hold in reaped:
            logger.warning(
                "runaway-guard reaped hold %s of %r (run %r): charged its estimate %s",
                hold.hold_id,
                hold.contract,
                hold.run,
                format_amount(hold.estimate, self.currency),
            )
            self.emit(HoldReaped(now, hold, self.currency))
        return reaped

    def status(self) -> list[BudgetStatus]:
        """Every counter in its current window, with its last known limit."""
        found = []
        for state in self.ledger.list_counters(now=self.clock.now()):
            scope, unit, window = state.key.split("|", 2)
            found.append(
                BudgetStatus(
                    state.key,
                    scope,
                    unit,
                    window,
                    state.settled,
                    state.held,
                    state.limit,
                    self.currency,
                )
            )
        return found

    # -- events ------------------------------------------------------------------------------------
    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener(event)` for every event; returns a function that unsubscribes."""
        return self._events.subscribe(listener)

    @property
    def has_listeners(self) -> bool:
        return bool(self._events.listeners)

    def emit(self, event: Event) -> None:
        self._events.emit(event)

    # -- lifecycle ---------------------------------------------------------------------------------
    def on_close(self, callback: Callable[[], object]) -> None:
        """Call `callback` when the guard closes, before its ledger is (alerts flush here)."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Run the `on_close` callbacks, then close the ledger if this guard opened it."""
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # closing must not stop at the first failure
                logger.exception("runaway-guard: a close callback failed")
        if self._owns_ledger:
            self.ledger.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Guard({self.ledger.url!r}, currency={self.currency!r})"


def _merge_options(code: dict[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """The code's contract options with the declared ones on top (they win).

    Budgets are matched by (unit, window, scope): a declared budget replaces the code's
    budget of the same identity and adds to the others. Environments merge per
    environment and per cap.
    """
    merged = dict(code)
    for option, value in declared.items():
        if option == "budgets":
            mine = {(b.unit, b.per, b.scope): b for b in merged["budgets"]}
            mine.update({(b.unit, b.per, b.scope): b for b in value})
            merged["budgets"] = tuple(mine.values())
        elif option == "environments":
            envs = {env: dict(caps) for env, caps in (merged["environments"] or {}).items()}
            for env, caps in value.items():
                envs.setdefault(env, {}).update(caps)
            merged["environments"] = envs
        else:
            merged[option] = value
    return merged


def _rates(rates: Mapping[str, Decimal | str] | None) -> dict[str, Decimal]:
    parsed: dict[str, Decimal] = {}
    for code, value in (rates or {}).items():
        if isinstance(value, float | bool):
            raise ContractError(
                f"exchange rate for {code} must be a Decimal or a string, not {value!r}"
            )
        try:
            rate = Decimal(value)
        except ArithmeticError:
            raise ContractError(f"exchange rate for {code} is not a number: {value!r}") from None
        if not rate.is_finite() or rate <= 0:
            raise ContractError(
                f"exchange rate for {code} must be a positive number, got {value!r}"
            )
        parsed[code.upper()] = rate
    return parsed


def _check_budget(budget: object) -> Budget:
    if not isinstance(budget, Budget):
        raise ContractError(f"expected rg.Budget, got {budget!r}")
    return budget


def _scope_of(scope: str | Contract | Run) -> str:
    if isinstance(scope, Contract):
        return f"contract:{scope.name}"
    if isinstance(scope, Run):
        return f"run:{scope.path}"
    return normalise_scope(scope)
