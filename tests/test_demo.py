"""The demo's numbers come from real runs against the fake metered API.

Each scenario runs once per module (a few seconds of real time each); the tests read
what it measured.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import runaway_guard as rg
from runaway_guard.alerts import AlertKind
from runaway_guard.cli import app
from runaway_guard.demo import (
    SCENARIOS,
    AgentResult,
    CampaignResult,
    NightResult,
    run_agent,
    run_campaign,
    run_overnight,
)

pytestmark = pytest.mark.slow

RUN = "nightly-2026-11-22"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> NightResult:
    return run_overnight(tmp_path_factory.mktemp("overnight"))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> CampaignResult:
    return run_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentResult:
    return run_agent(tmp_path_factory.mktemp("agent"))


def at(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%H:%M")


# -- overnight --------------------------------------------------------------------------------


def test_the_overnight_replay(night: NightResult) -> None:
    naive, guarded = night.naive, night.guarded
    assert 4_200 <= naive.requests <= 4_400
    assert rg.parse_money("$0.002") * naive.requests == naive.billed
    assert 100 == guarded.requests
    assert rg.parse_money("$0.20") == guarded.billed == guarded.ledger_spent
    assert ["breaker", "retries", "budget"] == [kind for _, kind, _ in guarded.stops]
    assert sum(guarded.by_hour.values()) == guarded.requests


def test_the_overnight_alerts_cross_each_threshold_of_the_run_budgets_once(
    night: NightResult,
) -> None:
    crossed = [
        (alert.fields["budget"], alert.fields["threshold"])
        for alert in night.guarded.alerts
        if alert.kind is AlertKind.THRESHOLD
    ]
    expected = [
        (f"contract:record-enrich|{unit}|run:{RUN}", percent)
        for percent in ("50", "90", "100")
        for unit in ("calls", "money")
    ]
    assert sorted(expected) == sorted(crossed)


def test_the_overnight_alerts_say_once_that_the_budget_is_full(night: NightResult) -> None:
    full = [alert for alert in night.guarded.alerts if alert.kind is AlertKind.EXHAUSTED]
    budget_stop = next(when for when, kind, _ in night.guarded.stops if kind == "budget")
    assert 1 == len(full)
    assert budget_stop == full[0].at
    assert "contract 'record-enrich' calls-per-run budget is full" in full[0].title


def test_the_overnight_breaker_alert_fires_with_the_first_breaker_stop_then_hourly_at_most(
    night: NightResult,
) -> None:
    opened = [a.at for a in night.guarded.alerts if a.kind is AlertKind.BREAKER_OPENED]
    assert night.guarded.stops[0][1] == "breaker"
    assert night.guarded.stops[0][0] == opened[0]
    assert all(later - earlier >= 3600 for earlier, later in itertools.pairwise(opened))


def test_the_overnight_alerts_are_kept_in_the_order_they_fired(night: NightResult) -> None:
    times = [alert.at for alert in night.guarded.alerts]
    assert sorted(times) == times
    assert night.start <= times[0]
    assert times[-1] <= night.end


# -- campaign ---------------------------------------------------------------------------------


def test_the_naive_campaign_pays_for_every_doubled_list(campaign: CampaignResult) -> None:
    naive = campaign.naive
    assert [40, 80, 160, 320, 40] == [attempt.prompts for attempt in naive.attempts]
    assert [40, 80, 160, 320, 40] == [attempt.requests for attempt in naive.attempts]
    assert 640 == naive.requests
    assert rg.parse_money("$32.00") == naive.billed


def test_the_naive_campaign_is_retried_until_the_queue_gives_up(campaign: CampaignResult) -> None:
    outcomes = [(at(a.at), a.outcome) for a in campaign.naive.attempts]
    assert [
        ("22:00", "save failed; retry in 1 min"),
        ("22:01", "save failed; retry in 10 min"),
        ("22:11", "save failed; retry in 1 h"),
        ("23:11", "save failed; queue gives up"),
        ("07:00", "done"),
    ] == outcomes


def test_the_guarded_campaign_refuses_the_doubled_list_whole(campaign: CampaignResult) -> None:
    guarded = campaign.guarded
    assert [40, 80, 40] == [attempt.prompts for attempt in guarded.attempts]
    assert [40, 0, 0] == [attempt.requests for attempt in guarded.attempts]
    assert "TooManyItems: not retried" == guarded.attempts[1].outcome
    assert guarded.stop is not None
    assert guarded.stop[1].startswith("fan-out of 80 items > max_items=50: rejected whole")


def test_the_replayed_guarded_campaign_pays_nothing_twice(campaign: CampaignResult) -> None:
    guarded = campaign.guarded
    assert [0, 0, 40] == [attempt.replayed for attempt in guarded.attempts]
    assert 40 == guarded.requests
    assert rg.parse_money("$2.00") == guarded.billed == guarded.ledger_spent
    assert "40 calls of 50 calls" == guarded.cap_used


def test_both_campaigns_save_every_image(campaign: CampaignResult) -> None:
    assert (40, 40) == (campaign.naive.images_saved, campaign.guarded.images_saved)


# -- agent ------------------------------------------------------------------------------------


def test_the_naive_agent_runs_until_a_person_stops_it(agent: AgentResult) -> None:
    naive = agent.naive
    assert "a person stopped it" == naive.ended_by
    assert "17:32" == at(naive.ended_at)
    assert 4 * naive.traceroutes == naive.lookups
    assert naive.lookups > 3_000
    assert rg.parse_money("€0.11") * naive.lookups == naive.billed
    assert [] == naive.refusals


def test_the_guarded_agent_pays_for_five_lookups(agent: AgentResult) -> None:
    guarded = agent.guarded
    assert (3, 5) == (guarded.traceroutes, guarded.lookups)
    assert rg.parse_money("€0.55") == guarded.billed == guarded.ledger_spent


def test_the_model_reads_a_refusal_instead_of_the_sixth_lookup(agent: AgentResult) -> None:
    assert [
        "Refused: tool 'whois_lookup' is over its per-ticket money cap of €0.55 (5 calls at "
        "€0.11 already made; this call would cost €0.11). The call was not made. Choose "
        "another plan or hand off to a human."
    ] == agent.guarded.refusals


def test_the_loop_rule_halts_the_guarded_ticket_at_the_fourth_traceroute(
    agent: AgentResult,
) -> None:
    guarded = agent.guarded
    outcomes = [(call.tool, call.outcome) for call in guarded.calls]
    assert [
        ("traceroute", "ok"),
        *[("whois_lookup", "ok")] * 4,
        ("traceroute", "ok"),
        ("whois_lookup", "ok"),
        ("whois_lookup", "refused: per-ticket money cap"),
        ("traceroute", "ok"),
        ("traceroute", "halted: LoopDetected"),
    ] == outcomes
    assert guarded.halt is not None
    assert 'traceroute{"host":"172.20.42.0/24","started":"<time>"}' == guarded.halt.signature
    assert "the loop rule halted the ticket" == guarded.ended_by


# -- the command ------------------------------------------------------------------------------


def demo(*arguments: str) -> str:
    outcome = CliRunner().invoke(app, ["demo", *arguments], terminal_width=120)
    assert 0 == outcome.exit_code, outcome.output
    return outcome.output


def test_the_demo_command_prints_both_nights() -> None:
    output = demo()
    assert "with runaway-guard" in output
    assert "$0.20" in output
    assert "circuit breaker opened after 5 consecutive upstream failures" in output
    assert "The alerts that fired" in output
    assert "calls-per-run budget at 90%" in output


def test_the_campaign_scenario_prints_both_campaigns() -> None:
    output = demo("--scenario", "campaign")
    assert "$32.00" in output
    assert "$2.00" in output
    assert "fan-out of 80 items > max_items=50" in output


def test_the_agent_scenario_prints_the_refusal_and_the_halt() -> None:
    output = demo("--scenario", "agent")
    assert "Refused: tool 'whois_lookup' is over its per-ticket money cap" in output
    assert "LoopDetected: tool 'traceroute' was called 4 times" in output


def test_an_unknown_scenario_is_a_usage_error() -> None:
    outcome = CliRunner().invoke(app, ["demo", "--scenario", "weekend"])
    assert 2 == outcome.exit_code
    assert "Invalid value for '--scenario'" in outcome.output
    assert "'weekend' is not one of 'overnight', 'campaign', 'agent'" in outcome.output


def test_every_scenario_is_offered_by_the_command() -> None:
    assert ["overnight", "campaign", "agent"] == list(SCENARIOS)
