"""Finding and reading the configuration file; errors name the file, the key and the fix."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.config import find_config, load_config
from tests.config.conftest import write

FULL = """
ledger = "sqlite:///ledger.db"
timezone = "Europe/Amsterdam"
currency = "EUR"
environment = "prod"
reap_every = 30

[exchange_rates]
USD = "0.92"

[[budgets]]
money = "€50"
per = "day"

[contracts.record-enrich]
price = "€0.002"
provider_cap = "OpenAI org usage limit, $25/month"
max_calls_per_run = 80
max_per_day = "€1.00"
concurrency = 3
retry = { attempts = 3, max_cost = "€0.01", backoff = 0.5 }
breaker = { failures = 4, cooldown = 30 }
budgets = [{ money = "€5", per = "week", scope = "tenant:acme" }]

[env.dev]
ledger = "sqlite:///dev.db"

[env.dev.contracts.record-enrich]
max_per_day = "€0.10"
concurrency = 1

[alerts]
thresholds = [50, 90]
quiet = 600

[alerts.budgets]
"contract:record-enrich|money|day" = [25, 50, 75, 100]

[[alerts.notifiers]]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"
min_severity = "warning"
"""


def test_a_runaway_guard_toml_is_found_from_a_subfolder(scratch: Path) -> None:
    path = write(scratch, 'ledger = "memory://"')
    deeper = scratch / "src" / "app"
    deeper.mkdir(parents=True)
    assert path.resolve() == find_config(deeper)


def test_a_pyproject_with_a_tool_table_is_found(scratch: Path) -> None:
    write(scratch, '[tool.runaway-guard]\ntimezone = "Asia/Tokyo"\n', "pyproject.toml")
    assert "Asia/Tokyo" == load_config().timezone


def test_a_pyproject_without_the_table_is_passed_over(scratch: Path) -> None:
    write(scratch, 'timezone = "Asia/Tokyo"')
    inner = scratch / "pkg"
    inner.mkdir()
    write(inner, '[project]\nname = "pkg"\n', "pyproject.toml")
    assert (scratch / "runaway-guard.toml").resolve() == find_config(inner)


def test_runaway_guard_config_names_the_file(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (scratch / "etc").mkdir()
    path = write(scratch / "etc", 'currency = "GBP"', "guard.toml")
    monkeypatch.setenv("RUNAWAY_GUARD_CONFIG", str(path))
    assert "GBP" == load_config().currency


def test_a_missing_named_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_CONFIG", "/nowhere/runaway-guard.toml")
    with pytest.raises(rg.ConfigError, match=r"RUNAWAY_GUARD_CONFIG names /nowhere"):
        load_config()


def test_no_file_gives_the_defaults() -> None:
    config = load_config()
    assert (None, None, "UTC", {}) == (config.path, config.ledger, config.timezone, {})


def test_every_setting_is_read(scratch: Path) -> None:
    config = load_config(write(scratch, FULL))
    assert ("sqlite:///ledger.db", "Europe/Amsterdam", "EUR", "prod") == (
        config.ledger,
        config.timezone,
        config.currency,
        config.environment,
    )
    assert {"USD": Decimal("0.92")} == config.exchange_rates
    assert (rg.Budget.money("€50", per="day"),) == config.budgets
    enrich = config.contracts["record-enrich"]
    assert rg.Retry(3, max_cost="€0.01", backoff=0.5) == enrich.options["retry"]
    assert rg.Breaker(failures=4, cooldown=30) == enrich.options["breaker"]
    assert {"dev": {"max_per_day": rg.parse_money("€0.10"), "concurrency": 1}} == dict(
        enrich.environments
    )
    assert config.alerts is not None
    assert ((50, 90), 600.0) == (config.alerts.thresholds, config.alerts.quiet)
    assert {"contract:record-enrich|money|day": (25, 50, 75, 100)} == dict(
        config.alerts.budget_thresholds
    )
    assert ["slack"] == [n.type for n in config.alerts.notifiers]


def test_the_environment_picks_its_own_ledger(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_ENV", "dev")
    config = load_config(write(scratch, FULL))
    assert ("dev", "sqlite:///dev.db") == (config.environment, config.ledger)
    assert "env.dev.ledger" == config.sources["ledger"]


def test_environment_variables_win_over_the_file(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", "memory://")
    monkeypatch.setenv("RUNAWAY_GUARD_TIMEZONE", "UTC")
    monkeypatch.setenv("RUNAWAY_GUARD_CURRENCY", "usd")
    monkeypatch.setenv("RUNAWAY_GUARD_ENV", "dev")
    config = load_config(write(scratch, FULL))
    assert ("memory://", "UTC", "USD", "dev") == (
        config.ledger,
        config.timezone,
        config.currency,
        config.environment,
    )
    assert "$RUNAWAY_GUARD_LEDGER" == config.sources["ledger"]


def test_an_explicit_ledger_wins_over_everything(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_LEDGER", "memory://")
    config = load_config(write(scratch, FULL))
    assert "sqlite:///x.db" == config.ledger_url(explicit="sqlite:///x.db")


def error_for(scratch: Path, text: str) -> str:
    with pytest.raises(rg.ConfigError) as caught:
        load_config(write(scratch, text))
    return str(caught.value)


def test_a_float_amount_names_the_file_key_and_fix(scratch: Path) -> None:
    message = error_for(scratch, '[contracts.a]\nmax_per_day = 1.5\nprovider_cap = "x"\n')
    assert message.startswith(f"{scratch / 'runaway-guard.toml'}: contracts.a.max_per_day: ")
    assert 'write "$1.5"' in message


def test_an_unknown_key_suggests_the_close_one(scratch: Path) -> None:
    message = error_for(scratch, "[contracts.a]\nmax_call_per_run = 5\n")
    assert "contracts.a.max_call_per_run: unknown setting; did you mean 'max_calls_per_run'?" in (
        message
    )


def test_a_bad_time_zone_names_the_key(scratch: Path) -> None:
    assert "timezone: unknown time zone 'Mars/Olympus'" in error_for(
        scratch, 'timezone = "Mars/Olympus"'
    )


def test_a_retry_without_attempts_is_unbounded(scratch: Path) -> None:
    message = error_for(scratch, "[contracts.a]\nretry = { backoff = 1 }\n")
    assert "contracts.a.retry: has no attempts: a retry without an attempt cap is unbounded" in (
        message
    )


def test_an_environment_may_set_only_caps(scratch: Path) -> None:
    message = error_for(scratch, '[env.dev.contracts.a]\nprice = "$1"\n')
    assert "env.dev.contracts.a.price: an environment may set only caps" in message


def test_a_non_integer_bound_is_refused(scratch: Path) -> None:
    message = error_for(scratch, '[contracts.a]\nmax_calls_per_run = "80"\n')
    assert "contracts.a.max_calls_per_run: must be a whole number (an integer bound)" in message


def test_a_budget_needs_one_unit_and_a_window(scratch: Path) -> None:
    message = error_for(scratch, '[[budgets]]\nmoney = "$5"\n')
    assert "budgets[0]: needs per = one of" in message


def test_a_notifier_needs_its_secret_from_somewhere(scratch: Path) -> None:
    message = error_for(scratch, '[[alerts.notifiers]]\ntype = "telegram"\nchat_id = 1\n')
    assert "alerts.notifiers[0]: a telegram notifier needs exactly one of token or token_env" in (
        message
    )


def test_an_unknown_notifier_type_is_named(scratch: Path) -> None:
    message = error_for(scratch, '[[alerts.notifiers]]\ntype = "pager"\n')
    assert "alerts.notifiers[0].type: choose one of 'log', 'webhook'" in message


def test_a_bad_threshold_names_the_key(scratch: Path) -> None:
    message = error_for(scratch, "[alerts]\nthresholds = [50, 150]\n")
    assert "alerts.thresholds: the thresholds: 150 is not a whole percentage" in message


def test_invalid_toml_names_the_file(scratch: Path) -> None:
    assert "runaway-guard.toml: not valid TOML" in error_for(scratch, "ledger = ")


def test_keys_in_pyproject_are_named_with_their_table(scratch: Path) -> None:
    write(scratch, "[tool.runaway-guard]\nreap_every = -1\n", "pyproject.toml")
    with pytest.raises(rg.ConfigError, match=r"pyproject.toml: tool.runaway-guard.reap_every: "):
        load_config()


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNAWAY_GUARD_TIMEZONE", "Nowhere/Special")
    with pytest.raises(rg.ConfigError, match=r"^\$RUNAWAY_GUARD_TIMEZONE: unknown time zone"):
        load_config()


def test_a_lenient_load_reports_problems_per_setting(scratch: Path) -> None:
    path = write(scratch, "[contracts.a]\nretry = {}\nmax_calls_per_run = 5\n")
    contract = load_config(path, strict=False).contracts["a"]
    assert ["retry"] == list(contract.problems)
    assert {"max_calls_per_run": 5} == dict(contract.options)
