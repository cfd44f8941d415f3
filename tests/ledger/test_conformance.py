"""The ledger contract, run unchanged on every backend."""

from __future__ import annotations

import pytest

from runaway_guard.ledger import (
    Blocked,
    ClaimStatus,
    HoldLine,
    HoldRequest,
    Ledger,
    Outcome,
    Refusal,
)
from tests.ledger.conftest import Opener

NOW = 1_800_000_000.0
MONEY = "c|money|day:x"
CALLS = "c|calls|run:r"


def request(
    hold_id: str,
    money: int = 100,
    *,
    limit: int | None = 1000,
    calls_limit: int | None = 10,
    lease: float = 60.0,
    now: float = NOW,
    blockers: tuple[str, ...] = (),
) -> HoldRequest:
    return HoldRequest(
        hold_id=hold_id,
        lines=(
            HoldLine(MONEY, money, limit, "money", now + 86400),
            HoldLine(CALLS, 1, calls_limit, "calls"),
        ),
        now=now,
        lease_until=now + lease,
        contract="c",
        run="r",
        call_id=f"call-{hold_id}",
        attempt=1,
        estimate=money,
        blockers=blockers,
    )


def state(ledger: Ledger, key: str = MONEY) -> tuple[int, int]:
    found = ledger.counters([key]).get(key)
    return (found.settled, found.held) if found else (0, 0)


def test_reserve_places_a_hold_on_every_line(ledger: Ledger) -> None:
    assert ledger.reserve(request("h1")) is None
    assert (0, 100) == state(ledger)
    assert (0, 1) == state(ledger, CALLS)
    assert ["h1"] == [h.hold_id for h in ledger.holds()]


def test_reserve_refuses_past_the_limit_and_places_nothing(ledger: Ledger) -> None:
    assert ledger.reserve(request("h1", 600)) is None
    refusal = ledger.reserve(request("h2", 500))
    assert isinstance(refusal, Refusal)
    assert (MONEY, 0, 600) == (refusal.line.key, refusal.settled, refusal.held)
    assert (0, 600) == state(ledger)
    assert (0, 1) == state(ledger, CALLS)  # all or none: the calls line was not touched


def test_a_hold_that_exactly_fills_the_limit_is_admitted(ledger: Ledger) -> None:
    assert ledger.reserve(request("h1", 1000)) is None
    assert isinstance(ledger.reserve(request("h2", 1)), Refusal)


def test_limit_zero_refuses_everything(ledger: Ledger) -> None:
    assert isinstance(ledger.reserve(request("h1", 1, limit=0)), Refusal)
    assert isinstance(ledger.reserve(request("h2", 0, calls_limit=0)), Refusal)


def test_a_line_without_limit_only_tracks(ledger: Ledger) -> None:
    for n in range(3):
        assert ledger.reserve(request(f"h{n}", 10**12, limit=None)) is None
    assert (0, 3 * 10**12) == state(ledger)


def test_reserve_is_idempotent_by_hold_id(ledger: Ledger) -> None:
    assert ledger.reserve(request("h1")) is None
    assert ledger.reserve(request("h1")) is None
    assert (0, 100) == state(ledger)


def test_settle_moves_held_to_settled_at_the_actual_and_logs_once(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    result = ledger.settle("h1", {"money": 70, "calls": 1}, now=NOW + 1)
    assert "settled" == result.status
    assert (70, 0) == state(ledger)
    assert (1, 0) == state(ledger, CALLS)
    rows = list(ledger.spend())
    assert [("h1", 100, 70, "settled")] == [
        (r.hold_id, r.estimate, r.actual, r.outcome) for r in rows
    ]
    assert {MONEY: (70, 0), CALLS: (1, 0)} == {
        line.key: (after.settled, after.held) for line, after in result.counters
    }


def test_settle_twice_changes_nothing_the_second_time(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    ledger.settle("h1", {"money": 100, "calls": 1}, now=NOW)
    assert "unknown" == ledger.settle("h1", {"money": 100, "calls": 1}, now=NOW).status
    assert (100, 0) == state(ledger)
    assert 1 == len(list(ledger.spend()))


def test_actual_above_estimate_is_recorded(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    ledger.settle("h1", {"money": 150, "calls": 1}, now=NOW)
    assert (150, 0) == state(ledger)


def test_release_charges_nothing(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    ledger.release("h1", now=NOW, error="BadRequestError 400")
    assert (0, 0) == state(ledger)
    (row,) = ledger.spend()
    assert ("released", 0, "BadRequestError 400") == (row.outcome, row.actual, row.error)


def test_failed_outcome_is_logged(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    ledger.settle("h1", {"money": 100, "calls": 1}, now=NOW, outcome=Outcome.FAILED, error="X")
    (row,) = ledger.spend()
    assert ("failed", 100) == (row.outcome, row.actual)


def test_reap_charges_expired_holds_at_their_estimate(ledger: Ledger) -> None:
    ledger.reserve(request("old", 100, lease=10))
    ledger.reserve(request("fresh", 50, lease=1000))
    reaped = ledger.reap(now=NOW + 11)
    assert ["old"] == [h.hold_id for h in reaped]
    assert (100, 50) == state(ledger)
    assert (1, 1) == state(ledger, CALLS)
    assert [] == ledger.reap(now=NOW + 11)
    assert ["reaped"] == [r.outcome for r in ledger.spend()]


def test_a_late_settle_of_a_reaped_hold_corrects_the_difference(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100, lease=10))
    ledger.reap(now=NOW + 11)
    result = ledger.settle("h1", {"money": 30, "calls": 1}, now=NOW + 12)
    assert "corrected" == result.status
    assert (30, 0) == state(ledger)
    assert (1, 0) == state(ledger, CALLS)
    assert [("reaped", 100), ("corrected", -70)] == [(r.outcome, r.actual) for r in ledger.spend()]
    assert [] == ledger.holds()


def test_a_late_release_of_a_reaped_hold_refunds_it(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100, lease=10))
    ledger.reap(now=NOW + 11)
    ledger.release("h1", now=NOW + 12)
    assert (0, 0) == state(ledger)


def test_renew_extends_the_lease(ledger: Ledger) -> None:
    ledger.reserve(request("h1", lease=10))
    assert ledger.renew("h1", lease_until=NOW + 100)
    assert [] == ledger.reap(now=NOW + 50)
    assert not ledger.renew("missing", lease_until=NOW + 100)


def test_blockers_refuse_before_any_line(ledger: Ledger) -> None:
    assert ledger.cas_state("kill:global", expected_version=0, value='{"reason":"x"}', now=NOW)
    outcome = ledger.reserve(request("h1", blockers=("kill:contract:c", "kill:global")))
    assert Blocked("kill:global", '{"reason":"x"}') == outcome
    assert (0, 0) == state(ledger)


def test_an_expired_blocker_no_longer_blocks(ledger: Ledger) -> None:
    ledger.cas_state("kill:global", expected_version=0, value="x", now=NOW, expires=NOW + 5)
    assert ledger.reserve(request("h1", now=NOW + 6, blockers=("kill:global",))) is None


def test_state_compare_and_set(ledger: Ledger) -> None:
    assert ledger.get_state("k", now=NOW) is None
    assert ledger.cas_state("k", expected_version=0, value="a", now=NOW)
    assert not ledger.cas_state("k", expected_version=0, value="b", now=NOW)
    record = ledger.get_state("k", now=NOW)
    assert record is not None
    assert (1, "a") == (record.version, record.value)
    assert ledger.cas_state("k", expected_version=1, value="b", now=NOW)
    assert ["k"] == [s.key for s in ledger.list_states("k", now=NOW)]
    assert ledger.cas_state("k", expected_version=2, value=None, now=NOW)
    assert ledger.get_state("k", now=NOW) is None


def test_mark_once_fires_once_per_expiry(ledger: Ledger) -> None:
    assert ledger.mark_once("alert:50", now=NOW, expires=NOW + 10)
    assert not ledger.mark_once("alert:50", now=NOW + 1, expires=NOW + 10)
    assert ledger.mark_once("alert:50", now=NOW + 11, expires=NOW + 20)


def test_slots_bound_holders_and_reclaim_expired_leases(ledger: Ledger) -> None:
    assert ledger.acquire_slot("c", limit=2, holder="a", now=NOW, lease_until=NOW + 10)
    assert ledger.acquire_slot("c", limit=2, holder="b", now=NOW, lease_until=NOW + 100)
    assert not ledger.acquire_slot("c", limit=2, holder="c", now=NOW, lease_until=NOW + 10)
    assert 2 == ledger.slots_in_use("c", now=NOW)
    ledger.release_slot("c", holder="b")
    assert ledger.acquire_slot("c", limit=2, holder="c", now=NOW, lease_until=NOW + 100)
    # a's lease ends: its slot is reclaimed for d.
    assert ledger.acquire_slot("c", limit=2, holder="d", now=NOW + 11, lease_until=NOW + 100)


def test_claims_run_once_and_replay_the_result(ledger: Ledger) -> None:
    assert ClaimStatus.CLAIMED == ledger.claim("k", owner="a", now=NOW, lease_until=NOW + 10).status
    busy = ledger.claim("k", owner="b", now=NOW, lease_until=NOW + 10)
    assert (ClaimStatus.IN_FLIGHT, "a") == (busy.status, busy.owner)
    assert not ledger.complete("k", owner="b", result=b"x", now=NOW, expires=NOW + 99)
    assert ledger.complete("k", owner="a", result=b'{"ok": 1}', now=NOW, expires=NOW + 99)
    done = ledger.claim("k", owner="c", now=NOW + 1, lease_until=NOW + 10)
    assert (ClaimStatus.DONE, b'{"ok": 1}') == (done.status, done.result)


def test_an_abandoned_or_expired_claim_can_be_taken(ledger: Ledger) -> None:
    ledger.claim("k", owner="a", now=NOW, lease_until=NOW + 10)
    ledger.abandon("k", owner="a")
    assert ClaimStatus.CLAIMED == ledger.claim("k", owner="b", now=NOW, lease_until=NOW + 10).status
    taken = ledger.claim("k", owner="c", now=NOW + 11, lease_until=NOW + 20)
    assert ClaimStatus.CLAIMED == taken.status
    assert not ledger.complete("k", owner="b", result=b"late", now=NOW + 12, expires=NOW + 99)


def test_a_completed_claim_expires(ledger: Ledger) -> None:
    ledger.claim("k", owner="a", now=NOW, lease_until=NOW + 10)
    ledger.complete("k", owner="a", result=b"r", now=NOW, expires=NOW + 5)
    assert (
        ClaimStatus.CLAIMED == ledger.claim("k", owner="b", now=NOW + 6, lease_until=NOW + 9).status
    )


def test_currency_is_recorded_the_first_time(ledger: Ledger) -> None:
    assert "EUR" == ledger.currency("EUR")
    assert "EUR" == ledger.currency("USD")


def test_list_counters_skips_expired_windows(ledger: Ledger) -> None:
    ledger.reserve(request("h1"))
    keys = [c.key for c in ledger.list_counters(now=NOW)]
    assert [CALLS, MONEY] == keys
    assert [CALLS] == [c.key for c in ledger.list_counters(now=NOW + 86401)]
    assert [MONEY] == [c.key for c in ledger.list_counters("c|money")]
    assert 1000 == ledger.list_counters("c|money")[0].limit


def test_spend_filters_by_time_and_contract(ledger: Ledger) -> None:
    for n in range(3):
        ledger.reserve(request(f"h{n}", now=NOW + n))
        ledger.settle(f"h{n}", {"money": 1, "calls": 1}, now=NOW + n)
    assert ["h1"] == [r.hold_id for r in ledger.spend(since=NOW + 1, until=NOW + 2)]
    assert [] == list(ledger.spend(contract="other"))


def test_two_connections_share_one_store(open_ledger: Opener) -> None:
    first, second = open_ledger(), open_ledger()
    first.reserve(request("h1", 600))
    assert isinstance(second.reserve(request("h2", 600)), Refusal)
    second.settle("h1", {"money": 600, "calls": 1}, now=NOW)
    assert (600, 0) == state(first)


@pytest.mark.parametrize("amount", [0, 1, 999, 1000])
def test_the_boundary_is_inclusive(ledger: Ledger, amount: int) -> None:
    ledger.reserve(request("a", 1000 - amount))
    assert ledger.reserve(request("b", amount)) is None


def test_settle_clears_the_named_state_records(ledger: Ledger) -> None:
    ledger.cas_state("gate:breaker:c", expected_version=0, value="open", now=NOW)
    ledger.reserve(request("h1"))
    result = ledger.settle(
        "h1", {"money": 1, "calls": 1}, now=NOW, clear=("breaker:c", "gate:breaker:c")
    )
    assert ("gate:breaker:c",) == result.cleared
    assert ledger.get_state("gate:breaker:c", now=NOW) is None
    assert () == ledger.release("missing", now=NOW, clear=("gate:breaker:c",)).cleared


def test_settle_without_report_still_applies(ledger: Ledger) -> None:
    ledger.reserve(request("h1", 100))
    result = ledger.settle("h1", {"money": 60, "calls": 1}, now=NOW, report=False)
    assert "settled" == result.status
    assert (60, 0) == state(ledger)


def test_a_hold_without_lines_is_placed_and_ended(ledger: Ledger) -> None:
    empty = HoldRequest("h0", (), NOW, NOW + 60, contract="agents:halt", estimate=0)
    assert ledger.reserve(empty) is None
    assert "settled" == ledger.release("h0", now=NOW, error="trail").status
    assert [("released", "trail")] == [(r.outcome, r.error) for r in ledger.spend()]
