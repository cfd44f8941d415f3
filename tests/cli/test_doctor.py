"""`runaway-guard doctor`: exit 1 and name the checklist line that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run

GOOD = """
[contracts.record-enrich]
price = "$0.002"
provider_cap = "OpenAI org usage limit, $25/month"
max_calls_per_run = 80
concurrency = 3
retry = { attempts = 3, max_cost = "$0.01" }

[env.dev.contracts.record-enrich]
max_calls_per_run = 5

[[alerts.notifiers]]
type = "log"
"""


def doctor(folder: Path, text: str, *args: str) -> tuple[int, str]:
    (folder / "runaway-guard.toml").write_text(text)
    result = run("doctor", "--ledger", "memory://", *args)
    return result.exit_code, result.stdout


def finding(output: str, *parts: str) -> str:
    """The one checklist finding (``ok``, ``warn`` or ``FAIL`` first) holding `parts`."""
    (found,) = [
        line
        for line in output.splitlines()
        if line.split()[:1] in (["ok"], ["warn"], ["FAIL"]) and all(p in line for p in parts)
    ]
    return found


def verdicts(output: str) -> dict[str, str]:
    """checklist line -> ok / warn / FAIL, for the one contract in the output."""
    lines = {
        "provider cap written down",
        "integer bounds",
        "bounded retries",
        "a concurrency limit",
        "known prices",
        "per-environment caps",
    }
    return {line: finding(output, f" {line} ").split()[0] for line in lines}


def test_a_contract_that_meets_the_checklist_passes(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD)
    assert 0 == code, output
    assert {"ok"} == set(verdicts(output).values())
    assert "doctor: 1 contract(s) pass the pre-deploy checklist" in output
    assert "at most 80 calls per run" in finding(output, "integer bounds")
    assert "3 attempts, at most $0.01 across them" in finding(output, "bounded retries")


def test_a_missing_provider_cap_fails_its_line(scratch: Path) -> None:
    code, output = doctor(
        scratch, GOOD.replace('provider_cap = "OpenAI org usage limit, $25/month"', "")
    )
    assert 1 == code
    assert "FAIL" == verdicts(output)["provider cap written down"]
    assert "  - contract record-enrich: provider cap written down" in output


def test_an_unbounded_retry_fails_its_line(scratch: Path) -> None:
    text = GOOD.replace('retry = { attempts = 3, max_cost = "$0.01" }', "retry = { backoff = 1 }")
    code, output = doctor(scratch, text)
    assert 1 == code
    assert "FAIL" == verdicts(output)["bounded retries"]
    assert "retry without an attempt cap is unbounded" in finding(output, "bounded retries")
    assert "  - contract record-enrich: bounded retries" in output


def test_many_attempts_warn_without_failing(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD.replace("attempts = 3", "attempts = 8"))
    assert 0 == code
    assert "warn" == verdicts(output)["bounded retries"]


def test_no_concurrency_limit_fails(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD.replace("concurrency = 3", ""))
    assert 1 == code
    assert "FAIL" == verdicts(output)["a concurrency limit"]


def test_no_integer_bound_fails(scratch: Path) -> None:
    text = GOOD.replace("max_calls_per_run = 80", "").replace("max_calls_per_run = 5", "")
    code, output = doctor(scratch, text.replace("[env.dev.contracts.record-enrich]", ""))
    assert 1 == code
    assert "FAIL" == verdicts(output)["integer bounds"]


def test_a_money_bound_with_a_flat_price_counts_as_an_integer_bound(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD.replace("max_calls_per_run = 80", 'max_per_run = "$0.16"'))
    assert 0 == code, output
    assert "at most 80 calls per run (max_per_run / price)" in finding(output, "integer bounds")


def test_a_contract_without_a_price_fails_known_prices(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD.replace('price = "$0.002"', ""))
    assert 1 == code
    assert "FAIL" == verdicts(output)["known prices"]


def test_no_environment_caps_fail(scratch: Path) -> None:
    code, output = doctor(
        scratch, GOOD.replace("[env.dev.contracts.record-enrich]\nmax_calls_per_run = 5", "")
    )
    assert 1 == code
    assert "FAIL" == verdicts(output)["per-environment caps"]


def test_env_requires_caps_for_that_environment(scratch: Path) -> None:
    code, output = doctor(scratch, GOOD, "--env", "prod")
    assert 1 == code
    assert "no caps for environment 'prod' (it has caps for dev)" in finding(
        output, "per-environment caps"
    )


def test_an_alert_secret_missing_from_the_environment_fails(scratch: Path) -> None:
    text = GOOD.replace('type = "log"', 'type = "slack"\nwebhook_url_env = "NO_SUCH_HOOK"')
    code, output = doctor(scratch, text)
    assert 1 == code
    assert "needs $NO_SUCH_HOOK" in finding(output, "alerts go somewhere")


def test_a_configuration_error_fails_with_the_key(scratch: Path) -> None:
    code, output = doctor(scratch, "timezone = 'Mars/Base'\n")
    assert 1 == code
    assert "timezone: unknown time zone 'Mars/Base'" in finding(output, "configuration loads")


def test_nothing_to_check_fails(scratch: Path) -> None:
    code, output = doctor(scratch, 'ledger = "memory://"\n')
    assert 1 == code
    assert "FAIL" in finding(output, "contracts to check")


def test_app_checks_the_contracts_the_code_declares(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (scratch / "doctor_app_one.py").write_text(
        "import runaway_guard as rg\n"
        "guard = rg.Guard('memory://')\n"
        "guard.contract('images', price='$0.05', max_calls_per_run=50, concurrency=3,\n"
        "               provider_cap='Fal spend limit, $50/day',\n"
        "               environments={'dev': {'max_calls_per_run': 2}})\n"
        "guard.contract('lookup', price='$0.11', max_calls_per_run=5,\n"
        "               provider_cap='WHOIS vendor, $20/month', retry=3)\n"
    )
    monkeypatch.syspath_prepend(str(scratch))
    code, output = doctor(scratch, 'ledger = "memory://"\n', "--app", "doctor_app_one:guard")
    assert 1 == code
    assert "  - contract lookup: a concurrency limit" in output
    assert "  - contract lookup: per-environment caps" in output
    assert "contract images" not in output.split("checklist line(s) failed:")[1]
    assert "3 attempts, at most $0.55 across them" in finding(output, "bounded retries", "0.55")


def test_app_that_is_not_a_guard_is_refused(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (scratch / "doctor_app_two.py").write_text("guard = 42\n")
    monkeypatch.syspath_prepend(str(scratch))
    (scratch / "runaway-guard.toml").write_text(GOOD)
    result = run("doctor", "--ledger", "memory://", "--app", "doctor_app_two:guard")
    assert 2 == result.exit_code
    assert "is int, not a runaway_guard.Guard" in result.stderr


def test_a_token_price_for_a_model_genai_prices_does_not_know_fails(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (scratch / "doctor_app_llm.py").write_text(
        "import runaway_guard as rg\n"
        "guard = rg.Guard('memory://')\n"
        "for name, model in (('known', 'gpt-4o-mini'), ('typo', 'gpt-4o-mnii')):\n"
        "    guard.contract(name, price=rg.TokenPrice(model=model, provider='openai'),\n"
        "                   max_per_run='$1', max_calls_per_run=20, concurrency=2,\n"
        "                   provider_cap='OpenAI org usage limit, $25/month',\n"
        "                   environments={'dev': {'max_per_run': '$0.10'}})\n"
        "guard.contract('any-model', price=rg.TokenPrice(), max_per_run='$1',\n"
        "               max_calls_per_run=20, concurrency=2,\n"
        "               provider_cap='OpenAI org usage limit, $25/month',\n"
        "               environments={'dev': {'max_per_run': '$0.10'}})\n"
    )
    monkeypatch.syspath_prepend(str(scratch))
    code, output = doctor(scratch, 'ledger = "memory://"\n', "--app", "doctor_app_llm:guard")
    assert 1 == code
    assert "FAIL" == finding(output, "known prices", "gpt-4o-mnii").split()[0]
    assert "warn" == finding(output, "known prices", "each request's model").split()[0]
    failed = output.split("checklist line(s) failed:")[1]
    assert "contract typo: known prices" in failed
    assert "contract known" not in failed


def test_a_token_bound_counts_as_an_integer_bound(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For LLM calls the protocol bounds tokens per run rather than calls."""
    (scratch / "doctor_app_tokens.py").write_text(
        "import runaway_guard as rg\n"
        "guard = rg.Guard('memory://')\n"
        "guard.contract('chat', price=rg.TokenPrice(model='gpt-4o-mini', provider='openai'),\n"
        "               max_per_run='$2', max_tokens_per_run=200_000, concurrency=2,\n"
        "               provider_cap='OpenAI org usage limit, $50/month',\n"
        "               environments={'dev': {'max_per_run': '$0.10'}})\n"
    )
    monkeypatch.syspath_prepend(str(scratch))
    code, output = doctor(scratch, 'ledger = "memory://"\n', "--app", "doctor_app_tokens:guard")
    assert 0 == code, output
    assert "at most 200000 tokens per run" in finding(output, "integer bounds")
