"""A guard built from the configuration: contracts by name, file caps over code defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.config import load_config
from runaway_guard.testing import FakeClock
from tests.alerts.receiver import Receiver
from tests.config.conftest import write

ENRICH = """
ledger = "memory://"

[contracts.record-enrich]
price = "$0.002"
provider_cap = "OpenAI org usage limit, $25/month"
max_calls_per_run = 80
max_per_day = "$1.00"

[env.dev.contracts.record-enrich]
max_per_day = "$0.10"
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2026-11-22T12:00:00+00:00")


def test_a_contract_declared_in_the_file_needs_only_its_name(
    scratch: Path, clock: FakeClock
) -> None:
    with load_config(write(scratch, ENRICH)).guard(clock=clock) as guard:
        spec = guard.contract("record-enrich").spec
    assert (rg.parse_money("$0.002"), 80, rg.parse_money("$1.00")) == (
        spec.unit_price,
        spec.max_calls_per_run,
        spec.max_per_day,
    )


def test_caps_in_the_file_win_over_the_code(scratch: Path, clock: FakeClock) -> None:
    with load_config(write(scratch, ENRICH)).guard(clock=clock) as guard:
        spec = guard.contract(
            "record-enrich", price="$0.002", max_calls_per_run=500, max_per_month="$20"
        ).spec
    assert (80, rg.parse_money("$20")) == (spec.max_calls_per_run, spec.max_per_month)


def test_the_environment_applies_its_caps_from_the_file(
    scratch: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_ENV", "dev")
    with load_config(write(scratch, ENRICH)).guard(clock=clock) as guard:
        spec = guard.contract("record-enrich").spec
    assert ("dev", rg.parse_money("$0.10")) == (spec.environment, spec.max_per_day)


def test_file_environment_caps_win_over_code_environment_caps(
    scratch: Path, clock: FakeClock
) -> None:
    config = load_config(write(scratch, ENRICH))
    with config.guard(clock=clock, environment="dev") as guard:
        spec = guard.contract(
            "record-enrich",
            environments={"dev": {"max_per_day": "$0.50", "max_calls_per_run": 5}},
        ).spec
    assert (rg.parse_money("$0.10"), 5) == (spec.max_per_day, spec.max_calls_per_run)


def test_a_file_budget_replaces_the_code_budget_of_the_same_window_and_scope(
    scratch: Path, clock: FakeClock
) -> None:
    text = ENRICH.replace(
        'max_per_day = "$1.00"',
        'max_per_day = "$1.00"\nbudgets = [{ money = "$3", per = "week", scope = "tenant:a" }]',
    )
    with load_config(write(scratch, text)).guard(clock=clock) as guard:
        spec = guard.contract(
            "record-enrich",
            budgets=[
                rg.Budget.money("$9", per="week", scope="tenant:a"),
                rg.Budget.calls(100, per="hour"),
            ],
        ).spec
    assert [
        rg.Budget.calls(100, per="hour"),
        rg.Budget.money("$3", per="week", scope="tenant:a"),
    ] == sorted(spec.extra_budgets, key=lambda b: str(b.unit))


def test_the_file_caps_are_enforced(scratch: Path, clock: FakeClock) -> None:
    text = ENRICH.replace("max_calls_per_run = 80", "max_calls_per_run = 2")
    with load_config(write(scratch, text)).guard(clock=clock) as guard:
        paid = guard.contract("record-enrich", max_calls_per_run=1000)
        paid.call(lambda: None)
        paid.call(lambda: None)
        with pytest.raises(rg.BudgetExceeded, match="calls-per-run budget: 2 calls spent"):
            paid.call(lambda: None)


def test_a_contract_without_a_price_anywhere_says_where_to_write_one(scratch: Path) -> None:
    path = write(scratch, '[contracts.lookup]\nprovider_cap = "x"\nmax_calls_per_run = 5\n')
    with (
        load_config(path).guard(ledger="memory://") as guard,
        pytest.raises(rg.ContractError, match=r"has no price: .* or in \[contracts.lookup\]"),
    ):
        guard.contract("lookup")


def test_a_merged_declaration_error_names_the_file(scratch: Path) -> None:
    path = write(scratch, '[contracts.lookup]\nprice = "$0.11"\nmax_calls_per_run = 5\n')
    with (
        load_config(path).guard(ledger="memory://") as guard,
        pytest.raises(rg.ConfigError, match=r"needs provider_cap.*runaway-guard.toml"),
    ):
        guard.contract("lookup")


def test_guard_settings_come_from_the_file(scratch: Path) -> None:
    text = 'timezone = "Asia/Tokyo"\n[[budgets]]\ncalls = 10\nper = "hour"\n'
    with load_config(write(scratch, text)).guard(ledger="memory://") as guard:
        assert ("Asia/Tokyo", (rg.Budget.calls(10, per="hour"),)) == (
            str(guard.tz),
            guard.budgets,
        )


def test_a_currency_the_ledger_does_not_count_names_the_file(scratch: Path) -> None:
    ledger = scratch / "ledger.db"
    rg.Guard(f"sqlite:///{ledger}").close()  # a USD ledger
    path = write(scratch, f'ledger = "sqlite:///{ledger}"\ncurrency = "EUR"\n')
    with pytest.raises(rg.ConfigError, match=r"runaway-guard.toml: the ledger .* counts USD"):
        load_config(path).guard()


def test_the_file_notifiers_are_attached(
    scratch: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver().start()
    try:
        monkeypatch.setenv("OPS_HOOK", f"{receiver.url}/hook")
        text = ENRICH + '\n[[alerts.notifiers]]\ntype = "webhook"\nurl_env = "OPS_HOOK"\n'
        with load_config(write(scratch, text)).guard(clock=clock) as guard:
            guard.kill("global", "drill")
        (got,) = receiver.wait_for(1)
        assert ("/hook", "kill_switch") == (got.path, got.body["kind"])
    finally:
        receiver.stop()


def test_a_notifier_secret_missing_from_the_environment_is_named(scratch: Path) -> None:
    text = ENRICH + '\n[[alerts.notifiers]]\ntype = "slack"\nwebhook_url_env = "NO_SUCH_VAR"\n'
    with pytest.raises(rg.ConfigError, match=r"webhook_url_env: names the environment variable"):
        load_config(write(scratch, text)).guard()


def test_guards_without_a_file_ignore_declared_options() -> None:
    with (
        rg.Guard("memory://") as guard,
        pytest.raises(rg.ContractError, match="has no price: pass price="),
    ):
        guard.contract("lookup", provider_cap="x", max_calls_per_run=5)


def test_close_callbacks_run_before_the_ledger_closes_even_after_a_failure(
    scratch: Path,
) -> None:
    guard = rg.Guard(f"sqlite:///{scratch / 'ledger.db'}")
    seen: list[object] = []

    def broken() -> None:
        raise RuntimeError("flush failed")

    guard.on_close(broken)
    guard.on_close(lambda: seen.append(guard.ledger.list_counters()))  # the ledger still works
    guard.close()
    assert [[]] == seen


def test_a_callable_notifier_is_imported_from_its_target(
    scratch: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    (scratch / "config_pager.py").write_text(
        "sent = []\n\ndef page(alert):\n    sent.append(alert)\n"
    )
    monkeypatch.syspath_prepend(str(scratch))
    text = ENRICH + '\n[[alerts.notifiers]]\ntype = "callable"\ntarget = "config_pager:page"\n'
    with load_config(write(scratch, text)).guard(clock=clock) as guard:
        guard.kill("contract:record-enrich", "drill")
    import config_pager  # type: ignore[import-not-found]

    assert ["kill switch engaged on contract:record-enrich"] == [a.title for a in config_pager.sent]


def test_a_callable_target_that_does_not_import_is_named(scratch: Path) -> None:
    text = ENRICH + '\n[[alerts.notifiers]]\ntype = "callable"\ntarget = "no_such_mod:page"\n'
    with pytest.raises(rg.ConfigError, match=r"alerts.notifiers\[0\].target: cannot import"):
        load_config(write(scratch, text)).guard()
