"""Property test: settled + held <= limit for every budget, at every step.

Hypothesis drives random sequences of reserve, settle (at or below the estimate),
release, reap and clock moves against each embedded backend, and checks the invariant
and the bookkeeping after every step against a simple model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from runaway_guard.ledger import HoldLine, HoldRequest, Ledger, MemoryLedger, SQLiteLedger

KEYS = ("a|money|day:x", "b|money|run:r", "c|calls|run:r")
LIMITS = {"a|money|day:x": 1000, "b|money|run:r": 600, "c|calls|run:r": 7}


class LedgerMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._folder = tempfile.TemporaryDirectory()
        self.ledger: Ledger = (
            MemoryLedger()
            if self.backend == "memory"
            else SQLiteLedger(Path(self._folder.name) / "l.db")
        )
        self.now = 1_000.0
        self.next_id = 0
        self.live: dict[str, tuple[int, float]] = {}  # hold id -> (estimate, lease end)
        self.charged = 0  # money settled on key a, by the model

    def teardown(self) -> None:
        self.ledger.close()
        self._folder.cleanup()

    @rule(
        amount=st.integers(min_value=0, max_value=400), lease=st.integers(min_value=1, max_value=50)
    )
    def reserve(self, amount: int, lease: int) -> None:
        self.next_id += 1
        hold_id = f"h{self.next_id}"
        lines = (
            HoldLine(KEYS[0], amount, LIMITS[KEYS[0]], "money"),
            HoldLine(KEYS[1], amount, LIMITS[KEYS[1]], "money"),
            HoldLine(KEYS[2], 1, LIMITS[KEYS[2]], "calls"),
        )
        asked = {KEYS[0]: amount, KEYS[1]: amount, KEYS[2]: 1}
        fits = all(sum(self._state(k)) + asked[k] <= LIMITS[k] for k in KEYS)
        outcome = self.ledger.reserve(
            HoldRequest(hold_id, lines, self.now, self.now + lease, estimate=amount)
        )
        assert fits == (outcome is None), (fits, outcome)
        if outcome is None:
            self.live[hold_id] = (amount, self.now + lease)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.live)))
        estimate, _ = self.live.pop(hold_id)
        actual = data.draw(st.integers(min_value=0, max_value=estimate))
        self.ledger.settle(hold_id, {"money": actual, "calls": 1}, now=self.now)
        self.charged += actual

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.live)))
        self.live.pop(hold_id)
        self.ledger.release(hold_id, now=self.now)

    @rule(seconds=st.integers(min_value=0, max_value=30))
    def advance_and_reap(self, seconds: int) -> None:
        self.now += seconds
        reaped = {h.hold_id for h in self.ledger.reap(now=self.now)}
        expected = {h for h, (_, until) in self.live.items() if until < self.now}
        assert expected == reaped
        for hold_id in reaped:
            self.charged += self.live.pop(hold_id)[0]

    def _state(self, key: str) -> tuple[int, int]:
        found = self.ledger.counters([key]).get(key)
        return (found.settled, found.held) if found else (0, 0)

    @invariant()
    def never_overshoots(self) -> None:
        for key in KEYS:
            settled, held = self._state(key)
            assert settled + held <= LIMITS[key], (key, settled, held)
            assert held >= 0

    @invariant()
    def held_is_exactly_the_live_holds(self) -> None:
        settled, held = self._state(KEYS[0])
        assert sum(est for est, _ in self.live.values()) == held
        assert self.charged == settled


class SQLiteLedgerMachine(LedgerMachine):
    backend = "sqlite"


TestMemoryInvariant = LedgerMachine.TestCase
TestMemoryInvariant.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSQLiteInvariant = SQLiteLedgerMachine.TestCase
TestSQLiteInvariant.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
