"""`runaway-guard doctor`: check every contract against the pre-deploy checklist.

The checklist, per contract: the provider-side hard cap is written down; calls per run
are bounded by an integer; retries are bounded by attempts and money; concurrency is
limited; the price is known; there are caps per environment. `doctor` exits 1 and names
the line that failed, so it can gate a deploy.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import click

from runaway_guard._contract import ContractSpec, declare_contract
from runaway_guard._errors import ConfigError, ContractError, RunawayGuardError
from runaway_guard._guard import Guard
from runaway_guard._money import Money
from runaway_guard._policy import Retry
from runaway_guard._price import PerCall, Price
from runaway_guard.cli._app import app
from runaway_guard.cli._common import make_console, operator_options, sqlite_path
from runaway_guard.config import Config, ContractConfig, load_config
from runaway_guard.ledger import ledger_from_url, redact_url

__all__ = ["CHECKLIST", "Finding", "check_contract"]

PROVIDER_CAP: Final = "provider cap written down"
INTEGER_BOUNDS: Final = "integer bounds"
BOUNDED_RETRIES: Final = "bounded retries"
CONCURRENCY: Final = "a concurrency limit"
KNOWN_PRICES: Final = "known prices"
ENVIRONMENTS: Final = "per-environment caps"
CHECKLIST: Final = (
    PROVIDER_CAP,
    INTEGER_BOUNDS,
    BOUNDED_RETRIES,
    CONCURRENCY,
    KNOWN_PRICES,
    ENVIRONMENTS,
)
"""The pre-deploy checklist, one line per item, in the order `doctor` prints them."""

_PROTOCOL_ATTEMPTS: Final = 5
_OPTION_LINES: Final = {
    "provider_cap": PROVIDER_CAP,
    "max_calls_per_run": INTEGER_BOUNDS,
    "max_per_run": INTEGER_BOUNDS,
    "retry": BOUNDED_RETRIES,
    "concurrency": CONCURRENCY,
    "price": KNOWN_PRICES,
}


@dataclass(frozen=True)
class Finding:
    """One checklist line for one contract: ``ok``, ``warn`` or ``FAIL``, and why."""

    line: str
    verdict: str
    detail: str


@dataclass
class Subject:
    """A contract as doctor sees it: from the configuration file, the code, or both."""

    name: str
    source: str
    provider_cap: str | None = None
    price: Price | None = None
    max_calls_per_run: int | None = None
    max_per_run: Money | None = None
    max_tokens_per_run: int | None = None
    retry: Retry | None = None
    concurrency: int | None = None
    environments: tuple[str, ...] = ()
    problems: Mapping[str, str] = field(default_factory=dict)
    spec: ContractSpec | None = None


def from_spec(spec: ContractSpec, source: str) -> Subject:
    return Subject(
        spec.name,
        source,
        provider_cap=spec.provider_cap,
        price=spec.price,
        max_calls_per_run=spec.max_calls_per_run,
        max_per_run=spec.max_per_run,
        max_tokens_per_run=spec.max_tokens_per_run,
        retry=spec.retry,
        concurrency=spec.concurrency,
        environments=spec.environments,
        spec=spec,
    )


def from_config(contract: ContractConfig, config: Config) -> Subject:
    options = contract.options
    subject = Subject(
        contract.name,
        f"{config.where} [{contract.key}]",
        provider_cap=options.get("provider_cap"),
        price=options.get("price"),
        max_calls_per_run=options.get("max_calls_per_run"),
        max_per_run=options.get("max_per_run"),
        max_tokens_per_run=options.get("max_tokens_per_run"),
        retry=options.get("retry"),
        concurrency=options.get("concurrency"),
        environments=tuple(sorted(contract.environments)),
        problems=contract.problems,
    )
    if not contract.problems and subject.price is not None:
        options = contract.declared()
        options.pop("queue_timeout", None)  # a Contract setting, not part of the declaration
        try:
            subject.spec = declare_contract(
                contract.name, **options, environment=config.environment
            )
        except ContractError as exc:
            subject.problems = {"declaration": str(exc)}
    return subject


def check_contract(subject: Subject, environment: str | None) -> list[Finding]:
    """Every checklist line for one contract, then any other problem with it."""
    problems = dict(subject.problems)

    def problem(line: str) -> str | None:
        for option, text in list(problems.items()):
            if _OPTION_LINES.get(option.rsplit(".", 1)[-1]) == line:
                del problems[option]
                return text
        return None

    found = []
    for line, check in (
        (PROVIDER_CAP, _provider_cap),
        (INTEGER_BOUNDS, _integer_bounds),
        (BOUNDED_RETRIES, _bounded_retries),
        (CONCURRENCY, _concurrency),
        (KNOWN_PRICES, _known_prices),
    ):
        text = problem(line)
        found.append(Finding(line, "FAIL", text) if text else check(subject))
    found.append(_environments(subject, environment))
    found += [Finding(f"setting {option}", "FAIL", text) for option, text in problems.items()]
    return found


def _provider_cap(subject: Subject) -> Finding:
    if subject.provider_cap:
        return Finding(PROVIDER_CAP, "ok", subject.provider_cap)
    return Finding(
        PROVIDER_CAP,
        "FAIL",
        "no provider_cap: write where the matching hard cap is set at the provider, e.g. "
        'provider_cap = "OpenAI org usage limit, $25/month" (a cap only in code can be '
        "bypassed by a bug in that code)",
    )


def _calls_bound(subject: Subject) -> int | None:
    if subject.max_calls_per_run is not None:
        return subject.max_calls_per_run
    if isinstance(subject.price, PerCall) and subject.max_per_run is not None:
        unit = subject.price.amount
        if unit.nanos and unit.currency == subject.max_per_run.currency:
            return subject.max_per_run.nanos // unit.nanos
    return None


def _integer_bounds(subject: Subject) -> Finding:
    calls = _calls_bound(subject)
    if calls is not None:
        derived = "" if subject.max_calls_per_run is not None else " (max_per_run / price)"
        return Finding(INTEGER_BOUNDS, "ok", f"at most {calls} calls per run{derived}")
    if subject.max_tokens_per_run is not None:
        # For LLM calls the protocol bounds tokens, not calls: each call holds its tokens.
        return Finding(INTEGER_BOUNDS, "ok", f"at most {subject.max_tokens_per_run} tokens per run")
    if subject.max_per_run is not None:
        return Finding(
            INTEGER_BOUNDS,
            "FAIL",
            f"only a money bound ({subject.max_per_run} per run) and a price that is not flat: "
            "set max_calls_per_run = N, an integer bound on attempts per run",
        )
    return Finding(
        INTEGER_BOUNDS,
        "FAIL",
        "no bound per run: set max_calls_per_run = N (an integer), not just a termination argument",
    )


def _money_bound(subject: Subject) -> Money | None:
    if subject.retry is not None and subject.retry.max_cost is not None:
        return subject.retry.max_cost
    if subject.max_per_run is not None:
        return subject.max_per_run
    calls = _calls_bound(subject)
    if isinstance(subject.price, PerCall) and calls is not None:
        return subject.price.amount * calls
    return None


def _bounded_retries(subject: Subject) -> Finding:
    retry = subject.retry
    if retry is None or retry.attempts == 1:
        return Finding(BOUNDED_RETRIES, "ok", "1 attempt (no retry)")
    bound = _money_bound(subject)
    if bound is None:
        return Finding(
            BOUNDED_RETRIES,
            "FAIL",
            f"{retry.attempts} attempts but no money bound: set retry.max_cost or max_per_run",
        )
    text = f"{retry.attempts} attempts, at most {bound} across them"
    if retry.attempts > _PROTOCOL_ATTEMPTS:
        return Finding(
            BOUNDED_RETRIES,
            "warn",
            f"{text}; more than {_PROTOCOL_ATTEMPTS} attempts: each one may bill, and SDK or "
            "queue retries multiply them",
        )
    return Finding(BOUNDED_RETRIES, "ok", text)


def _concurrency(subject: Subject) -> Finding:
    if subject.concurrency is not None:
        return Finding(CONCURRENCY, "ok", f"at most {subject.concurrency} in flight")
    return Finding(
        CONCURRENCY,
        "FAIL",
        "no concurrency limit: set concurrency = N (and the same limit at the queue)",
    )


def _known_prices(subject: Subject) -> Finding:
    if subject.price is None:
        return Finding(
            KNOWN_PRICES,
            "FAIL",
            f'no price: write price = "$0.002" in [contracts.{subject.name}], or check the code '
            "that declares it with --app module:guard",
        )
    if type(subject.price).__name__ == "TokenPrice":
        return _known_token_prices(subject)
    return Finding(KNOWN_PRICES, "ok", str(subject.price))


def _known_token_prices(subject: Subject) -> Finding:
    """A token price is known when genai-prices knows its model, or it has a fallback."""
    from runaway_guard.llm import TokenPrice, prices_for  # noqa: PLC0415 - optional extra

    price = subject.price
    assert isinstance(price, TokenPrice)
    if price.fallback is not None:
        return Finding(KNOWN_PRICES, "ok", f"{price} (fallback rates for unknown models)")
    if price.model is None:
        return Finding(
            KNOWN_PRICES,
            "warn",
            f"{price}: each request's model is priced from genai-prices; a model it does not "
            "know is refused at call time (give TokenPrice a fallback=rg.TokenRates(...) to "
            "price it instead)",
        )
    if prices_for(price.model, provider=price.provider) is None:
        return Finding(
            KNOWN_PRICES,
            "FAIL",
            f"genai-prices does not know model {price.model!r}: every call would be refused; "
            "fix the model name or give TokenPrice a fallback=rg.TokenRates(...)",
        )
    return Finding(KNOWN_PRICES, "ok", str(price))


def _environments(subject: Subject, environment: str | None) -> Finding:
    envs = subject.environments
    if environment is not None and environment not in envs:
        have = f" (it has caps for {', '.join(envs)})" if envs else ""
        return Finding(
            ENVIRONMENTS,
            "FAIL",
            f"no caps for environment {environment!r}{have}: add "
            f"[env.{environment}.contracts.{subject.name}]",
        )
    if envs:
        return Finding(ENVIRONMENTS, "ok", f"caps for {', '.join(envs)}")
    return Finding(
        ENVIRONMENTS,
        "FAIL",
        f"no per-environment caps: add [env.dev.contracts.{subject.name}] with lower caps, so "
        "a development key pointed at production costs cents, not dollars",
    )


def _load_app(target: str) -> Guard:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise click.BadParameter("write MODULE:ATTRIBUTE, e.g. myapp.billing:guard")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: import the project's code
    try:
        found: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot import {target!r}: {exc}") from None
    if callable(found) and not isinstance(found, Guard):
        found = found()
    if not isinstance(found, Guard):
        raise click.BadParameter(f"{target!r} is {type(found).__name__}, not a runaway_guard.Guard")
    return found


@app.command()
@operator_options
@click.option(
    "--app",
    "app_target",
    metavar="MODULE:ATTR",
    help="Also check the contracts your code declares on this Guard (or a function returning "
    "one), e.g. myapp.billing:guard.",
)
@click.option(
    "--env",
    "environment",
    metavar="NAME",
    help="Require caps for this environment (e.g. dev) on every contract.",
)
def doctor(
    ledger_url: str | None,
    config_path: Path | None,
    app_target: str | None,
    environment: str | None,
) -> None:
    """Check every contract against the pre-deploy checklist; exit 1 if a line fails.

    Per contract: provider cap written down, integer bounds, bounded retries, a
    concurrency limit, known prices, per-environment caps. Contracts come from the
    configuration file and, with --app, from your code. Also checks that the
    configuration loads, the ledger opens and alerts have somewhere to go.
    """
    out = make_console()
    failures: list[str] = []

    def report(subject: str, findings: list[Finding]) -> None:
        out.print(subject)
        width = max(len(f.line) for f in findings)
        for f in findings:
            style = {"ok": "green", "warn": "yellow"}.get(f.verdict, "bold red")
            # One line per finding, never wrapped: CI logs are searched with grep.
            out.print(
                f"  [{style}]{f.verdict:>4}[/{style}]  {f.line:<{width}}  {f.detail}",
                soft_wrap=True,
                markup=True,
            )
            if f.verdict == "FAIL":
                failures.append(f"{subject.split(' (', maxsplit=1)[0]}: {f.line}")

    try:
        config = load_config(config_path, strict=False)
    except ConfigError as exc:
        report("configuration", [Finding("configuration loads", "FAIL", str(exc))])
        _finish(out, failures, 0)
        return
    report("setup", _setup_findings(config, ledger_url))
    subjects: dict[str, Subject] = {
        name: from_config(contract, config) for name, contract in config.contracts.items()
    }
    if app_target is not None:
        try:
            guard = _load_app(app_target)
        except RunawayGuardError as exc:
            report("app", [Finding("contracts declare", "FAIL", str(exc))])
            _finish(out, failures, 0)
            return
        for name, contract in guard.contracts.items():
            subjects[name] = from_spec(contract.spec, f"code ({app_target})")
    if not subjects:
        report(
            "contracts",
            [
                Finding(
                    "contracts to check",
                    "FAIL",
                    "none: declare [contracts.NAME] in the configuration file, or pass "
                    "--app module:guard",
                )
            ],
        )
    for name in sorted(subjects):
        subject = subjects[name]
        out.print()
        report(f"contract {name} ({subject.source})", check_contract(subject, environment))
    _finish(out, failures, len(subjects))


def _setup_findings(config: Config, ledger_url: str | None) -> list[Finding]:
    found = [Finding("configuration loads", "ok", config.where)]
    url = config.ledger_url(explicit=ledger_url)
    shown = redact_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        found.append(Finding("ledger opens", "warn", f"{shown}: no file yet (made at first use)"))
    else:
        try:
            ledger = ledger_from_url(url)
            ledger.close()
            found.append(Finding("ledger opens", "ok", shown))
        except RunawayGuardError as exc:
            found.append(Finding("ledger opens", "FAIL", f"{shown}: {exc}"))
    settings = config.alerts
    if settings is None or not settings.notifiers:
        found.append(
            Finding(
                "alerts go somewhere",
                "warn",
                "no [[alerts.notifiers]]: threshold alerts reach nobody; add one that a person "
                "reads, every day of the week",
            )
        )
    else:
        missing = [
            f"{spec.key} needs ${n}" for spec in settings.notifiers for n in spec.missing_env()
        ]
        kinds = ", ".join(spec.type for spec in settings.notifiers)
        if missing:
            found.append(Finding("alerts go somewhere", "FAIL", "; ".join(missing)))
        else:
            found.append(Finding("alerts go somewhere", "ok", kinds))
    return found


def _finish(out: Any, failures: list[str], checked: int) -> None:
    out.print()
    if failures:
        out.print(f"doctor: {len(failures)} checklist line(s) failed:")
        for failure in failures:
            out.print(f"  - {failure}")
        sys.exit(1)
    out.print(f"doctor: {checked} contract(s) pass the pre-deploy checklist")
