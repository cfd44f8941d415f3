"""Policies a contract declares: retries, what a failed attempt is charged, the breaker.

Pure data and arithmetic: the guard's flow reads them, nothing here does I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

from runaway_guard._budget import check_count
from runaway_guard._classify import Kind
from runaway_guard._errors import ContractError
from runaway_guard._money import Money, MoneyLike, parse_money

__all__ = ["Breaker", "Charge", "ChargeMode", "Retry", "RetryPredicate"]

RetryPredicate = Callable[[BaseException], "bool | None"]
"""``retry_if(exc)``: True retries, False stops, None leaves it to the classification."""

ChargeMode = Literal["release", "estimate"]


def _seconds(value: object, what: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{what} must be a number of seconds, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise ContractError(
            f"{what} must be a finite, non-negative number of seconds, got {value!r}"
        )
    return number


@dataclass(frozen=True)
class Retry:
    """How a contract retries a failed attempt. Every attempt places its own hold.

    Args:
        attempts: the most attempts of one call, first included (an integer, required).
        max_cost: the most all attempts of one call may cost together; the next attempt
            is not made when its estimate would pass it. Defaults to the contract's
            ``max_per_run``.
        max_elapsed: seconds after the first attempt when no new attempt starts.
        backoff: the first back-off delay in seconds (doubles per attempt).
        backoff_cap: the longest back-off delay in seconds.
        jitter: ``"full"`` (sleep a random time up to the delay, the default) or ``"none"``.
        retry_after_cap: the longest wait a 429's Retry-After may ask for. When the server
            asks for longer, the guard gives up at once instead of sleeping for hours.
        retry_if: ``f(exc) -> bool | None`` to override the classification.
        seed: seed the jitter for reproducible tests.
    """

    attempts: int
    max_cost: Money | None = None
    max_elapsed: float | None = None
    backoff: float = 0.5
    backoff_cap: float = 30.0
    jitter: Literal["full", "none"] = "full"
    retry_after_cap: float = 60.0
    retry_if: RetryPredicate | None = None
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        attempts: int,
        *,
        max_cost: MoneyLike | None = None,
        max_elapsed: float | None = None,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        jitter: Literal["full", "none"] = "full",
        retry_after_cap: float = 60.0,
        retry_if: RetryPredicate | None = None,
        seed: int | None = None,
    ) -> None:
        check_count(attempts, "Retry attempts")
        if attempts < 1:
            raise ContractError(
                "Retry attempts must be at least 1 (the first attempt counts); "
                "to refuse every call use a budget of 0"
            )
        if jitter not in ("full", "none"):
            raise ContractError(f"Retry jitter must be 'full' or 'none', got {jitter!r}")
        set_ = object.__setattr__
        set_(self, "attempts", attempts)
        set_(
            self,
            "max_cost",
            None if max_cost is None else parse_money(max_cost, what="Retry max_cost"),
        )
        set_(self, "max_elapsed", _seconds(max_elapsed, "Retry max_elapsed", allow_none=True))
        set_(self, "backoff", _seconds(backoff, "Retry backoff"))
        set_(self, "backoff_cap", _seconds(backoff_cap, "Retry backoff_cap"))
        set_(self, "jitter", jitter)
        set_(self, "retry_after_cap", _seconds(retry_after_cap, "Retry retry_after_cap"))
        set_(self, "retry_if", retry_if)
        set_(self, "seed", seed)
        set_(self, "_rng", random.Random(seed))

    def delay(self, attempt: int) -> float:
        """The back-off before attempt `attempt + 1`, after attempt `attempt` failed.

        Exponential (``backoff * 2**(attempt-1)``), capped at `backoff_cap`, with full
        jitter: a uniform draw between 0 and that bound.
        """
        bound = min(self.backoff_cap, self.backoff * 2.0 ** (attempt - 1))
        return bound if self.jitter == "none" else self._rng.uniform(0.0, bound)

    def describe(self) -> str:
        if self.attempts == 1:
            return "1 attempt (no retry)"
        parts = [f"{self.attempts} attempts"]
        if self.max_cost is not None:
            parts.append(f"at most {self.max_cost} across attempts")
        if self.max_elapsed is not None:
            parts.append(f"within {self.max_elapsed:g}s")
        parts.append(f"backoff {self.backoff:g}s..{self.backoff_cap:g}s ({self.jitter} jitter)")
        parts.append(f"Retry-After capped at {self.retry_after_cap:g}s")
        return ", ".join(parts)


NO_RETRY = Retry(1)


@dataclass(frozen=True)
class Charge:
    """What a failed attempt costs, by failure kind.

    ``"release"`` drops the hold: the provider surely did not bill. ``"estimate"`` settles
    at the worst-case estimate: the call may have been billed. The defaults release only
    what a provider rejected before doing any work.
    """

    client_error: ChargeMode = "release"
    conflict: ChargeMode = "release"
    rate_limited: ChargeMode = "release"
    connect_failed: ChargeMode = "release"
    server_error: ChargeMode = "estimate"
    timeout: ChargeMode = "estimate"
    connection: ChargeMode = "estimate"
    non_retriable: ChargeMode = "estimate"
    refused: ChargeMode = "estimate"
    interrupted: ChargeMode = "estimate"
    other: ChargeMode = "estimate"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value not in ("release", "estimate"):
                raise ContractError(f"Charge {item.name}={value!r}: choose 'release' or 'estimate'")

    def mode(self, kind: Kind) -> ChargeMode:
        mode: ChargeMode = getattr(self, kind.value)
        return mode


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker shared by every process on the ledger.

    Opens after `failures` consecutive upstream failures (5xx, timeouts, connection
    errors, 429s), refuses calls for `cooldown` seconds, then lets one probe through:
    its success closes the breaker, its failure opens it again.
    """

    failures: int = 5
    cooldown: float = 60.0
    probe_timeout: float = 300.0
    """Seconds a probe may take before another caller may probe instead."""

    def __post_init__(self) -> None:
        check_count(self.failures, "Breaker failures")
        if self.failures < 1:
            raise ContractError("Breaker failures must be at least 1")
        object.__setattr__(self, "cooldown", _seconds(self.cooldown, "Breaker cooldown"))
        object.__setattr__(
            self, "probe_timeout", _seconds(self.probe_timeout, "Breaker probe_timeout")
        )
