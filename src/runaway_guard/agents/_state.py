"""Per-ticket state: the call history, refusals, recent results and context summaries.

A ticket is a run (`guard.run(...)`), so its state lives on the `Run` object, created on
first use. A call inside a nested run (a sub-agent) is recorded in the state of its own
run *and of every enclosing run*, the same way its spend counts against every parent: a
ticket sees all the calls made on its behalf. The state is in memory, per process; the
money and call caps, which must hold across processes, stay in the ledger.

Every method takes the state's lock for a few dictionary operations and never awaits,
so the same state is safe to share between threads and asyncio tasks.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from runaway_guard._errors import LedgerError
from runaway_guard._holds import new_id
from runaway_guard.agents._signature import MAX_WINDOW, LoopRule, Signature
from runaway_guard.ledger import HoldLine, HoldRequest, Outcome

if TYPE_CHECKING:
    from runaway_guard._guard import Guard
    from runaway_guard._runs import Run

__all__ = ["CallRecord", "TicketState", "chain_states", "log_halt", "state_of"]

logger = logging.getLogger("runaway_guard")

MAX_RESULTS: Final = 100
"""Recent tool results a ticket keeps for the halt vote's classifier."""

_RESULT_CHARS: Final = 4000
_LOG_CHARS: Final = 4000
_KEY: Final = ("runaway_guard.agents", "ticket")
_CREATE: Final = threading.Lock()

HALT_RECORD: Final = "agents:halt"
"""The name under which halts are written to the spend log (its `contract` column)."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One tool call as a ticket's history keeps it."""

    number: int
    at: float
    signature: Signature

    def render(self, guard: Guard) -> str:
        when = datetime.fromtimestamp(self.at, tz=guard.tz).strftime("%H:%M:%S")
        return f"#{self.number} {when} {self.signature.text}"


class TicketState:
    """What the agent guard remembers about one run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._lock = threading.Lock()
        self._calls: deque[CallRecord] = deque(maxlen=MAX_WINDOW)
        self._count = 0
        self._refusals = 0
        self._results: deque[str] = deque(maxlen=MAX_RESULTS)
        self._summaries: dict[str, str] = {}
        self._model_done = False
        self._model_text = ""
        self._wall: str | None = None

    # -- calls and loops ---------------------------------------------------------------------
    def record_call(self, signature: Signature, at: float, rule: LoopRule | None) -> int:
        """Append a call; return how often its signature now occurs in the rule's window."""
        with self._lock:
            self._count += 1
            self._calls.append(CallRecord(self._count, at, signature))
            if rule is None:
                return 1
            recent = list(self._calls)[-rule.window :]
            return sum(1 for record in recent if record.signature == signature)

    def trail(self, last: int) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)[-last:] if last else []

    @property
    def calls(self) -> int:
        """Tool calls recorded in this ticket (refused ones included)."""
        with self._lock:
            return self._count

    # -- refusals ----------------------------------------------------------------------------
    def add_refusal(self) -> int:
        with self._lock:
            self._refusals += 1
            return self._refusals

    @property
    def refusals(self) -> int:
        with self._lock:
            return self._refusals

    # -- results, for the halt vote ----------------------------------------------------------
    def record_result(self, text: str) -> None:
        with self._lock:
            self._results.append(text[:_RESULT_CHARS])

    def results(self, last: int) -> list[str]:
        with self._lock:
            return list(self._results)[-last:] if last else []

    def model_said(self, text: str, done: bool) -> None:
        with self._lock:
            self._model_text = text
            self._model_done = done

    @property
    def model(self) -> tuple[str, bool]:
        """The model's latest text and whether it claimed to be done."""
        with self._lock:
            return self._model_text, self._model_done

    def hit_wall(self, why: str) -> None:
        with self._lock:
            if self._wall is None:
                self._wall = why

    @property
    def wall(self) -> str | None:
        """Why a money wall refused a call in this ticket, if one did."""
        with self._lock:
            return self._wall

    # -- context summaries -------------------------------------------------------------------
    def replacements(self) -> dict[str, str]:
        with self._lock:
            return dict(self._summaries)

    def remember(self, replaced: dict[str, str]) -> None:
        with self._lock:
            for key, text in replaced.items():
                self._summaries.setdefault(key, text)


def state_of(run: Run) -> TicketState:
    """The agent state of `run`, created on first use."""
    state: TicketState | None = run.cache.get(_KEY)
    if state is None:
        with _CREATE:
            state = run.cache.get(_KEY)
            if state is None:
                state = run.cache[_KEY] = TicketState(run)
    return state


def chain_states(run: Run) -> tuple[TicketState, ...]:
    """States of `run` and every enclosing run, innermost first."""
    return tuple(state_of(node) for node in reversed(run.chain))


def log_halt(guard: Guard, run: Run, detail: str) -> None:
    """Write a halt and its trail to the spend log, as a released hold that cost nothing.

    The ledger has no free-form log operation, so a halt is one hold on a tracking
    counter (``agents:halt|calls|run:PATH``, no limit, so it never refuses) ended at once
    with the trail in its `error` column. Nothing is spent and no budget is touched;
    `guard.status()` shows how many halts each ticket had.
    """
    now = guard.clock.now()
    hold_id = new_id()
    key = f"{HALT_RECORD}|calls|run:{run.path}"
    request = HoldRequest(
        hold_id,
        (HoldLine(key, 1, None, "calls"),),
        now,
        now + 60.0,
        HALT_RECORD,
        run.path,
        hold_id,
        1,
        0,
        (),
    )
    try:
        guard.ledger.reserve(request)
        guard.ledger.settle(
            hold_id,
            {"calls": 1},
            now=now,
            outcome=Outcome.RELEASED,
            error=detail[:_LOG_CHARS],
            report=False,
        )
    except LedgerError:
        # The halt itself must still happen: losing its log line is the lesser harm.
        logger.warning("runaway-guard could not log a halt of run %r", run.path, exc_info=True)
