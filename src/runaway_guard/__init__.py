"""runaway-guard: stop code from spending money it was never meant to spend.

Declare a cost contract per paid call site; the guard places an atomic hold for the
worst-case cost on every budget the call touches *before* the call, and refuses it when
any budget would be passed.

>>> import runaway_guard as rg
>>> guard = rg.Guard("memory://")
>>> lookup = guard.contract("whois", price="$0.11", max_calls_per_run=5,
...                         provider_cap="WHOIS vendor dashboard, $20/month")
>>> lookup.spec.max_per_run
Money('$0.55')
"""

import logging as _logging

from runaway_guard import agents, alerts, config, ledger, llm, patterns, testing
from runaway_guard._budget import Budget, Period, Unit
from runaway_guard._classify import Failure, Kind, classify
from runaway_guard._clock import Clock, SystemClock
from runaway_guard._contract import ContractSpec, declare_contract
from runaway_guard._errors import (
    AttemptRecord,
    BudgetExceeded,
    CircuitOpen,
    ConcurrencyLimitReached,
    ConfigError,
    ContractError,
    DuplicateInFlight,
    FallbackExhausted,
    FanOutFailed,
    GuardRefused,
    JobOverlap,
    KillSwitchEngaged,
    LedgerError,
    LedgerUnavailable,
    LoopDetected,
    NonRetriableError,
    PollTimedOut,
    ReconnectsExhausted,
    RetriesExhausted,
    RunawayGuardError,
    TooManyItems,
)
from runaway_guard._events import (
    AnomalyTripped,
    BreakerClosed,
    BreakerOpened,
    CallRefused,
    CostAboveEstimate,
    Event,
    EventListener,
    HoldReaped,
    KillSwitchCleared,
    KillSwitchSet,
    RetriesGaveUp,
    RetryScheduled,
    Settled,
)
from runaway_guard._guard import BudgetStatus, Contract, Guard, KillSwitch
from runaway_guard._holds import Hold
from runaway_guard._money import Money, parse_money
from runaway_guard._policy import Breaker, Charge, Retry
from runaway_guard._price import Call, Cost, Dynamic, PerCall, Price
from runaway_guard._runs import Run
from runaway_guard._version import __version__
from runaway_guard.alerts import Alerts
from runaway_guard.config import Config, load_config
from runaway_guard.ledger import Ledger, ledger_from_url, register_ledger
from runaway_guard.llm import TokenPrice, TokenRates, UnboundedInput, UnboundedOutput, UnknownModel
from runaway_guard.patterns import (
    Codec,
    Fallback,
    Idempotency,
    Job,
    JobRun,
    JSONCodec,
    Singleflight,
)

__all__ = [
    "Alerts",
    "AnomalyTripped",
    "AttemptRecord",
    "Breaker",
    "BreakerClosed",
    "BreakerOpened",
    "Budget",
    "BudgetExceeded",
    "BudgetStatus",
    "Call",
    "CallRefused",
    "Charge",
    "CircuitOpen",
    "Clock",
    "Codec",
    "ConcurrencyLimitReached",
    "Config",
    "ConfigError",
    "Contract",
    "ContractError",
    "ContractSpec",
    "Cost",
    "CostAboveEstimate",
    "DuplicateInFlight",
    "Dynamic",
    "Event",
    "EventListener",
    "Failure",
    "Fallback",
    "FallbackExhausted",
    "FanOutFailed",
    "Guard",
    "GuardRefused",
    "Hold",
    "HoldReaped",
    "Idempotency",
    "JSONCodec",
    "Job",
    "JobOverlap",
    "JobRun",
    "KillSwitch",
    "KillSwitchCleared",
    "KillSwitchEngaged",
    "KillSwitchSet",
    "Kind",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "LoopDetected",
    "Money",
    "NonRetriableError",
    "PerCall",
    "Period",
    "PollTimedOut",
    "Price",
    "ReconnectsExhausted",
    "RetriesExhausted",
    "RetriesGaveUp",
    "Retry",
    "RetryScheduled",
    "Run",
    "RunawayGuardError",
    "Settled",
    "Singleflight",
    "SystemClock",
    "TokenPrice",
    "TokenRates",
    "TooManyItems",
    "UnboundedInput",
    "UnboundedOutput",
    "Unit",
    "UnknownModel",
    "__version__",
    "agents",
    "alerts",
    "classify",
    "config",
    "declare_contract",
    "ledger",
    "ledger_from_url",
    "llm",
    "load_config",
    "parse_money",
    "patterns",
    "register_ledger",
    "testing",
]

# A library logs; the application decides where the lines go.
_logging.getLogger("runaway_guard").addHandler(_logging.NullHandler())
