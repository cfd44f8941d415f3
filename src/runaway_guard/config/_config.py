"""The configuration file: ``runaway-guard.toml``, or ``[tool.runaway-guard]`` in pyproject.

Found by walking up from the working directory (or named by ``$RUNAWAY_GUARD_CONFIG``),
read with the standard library's `tomllib`, checked in full when it is read, and turned
into a `Guard` whose contracts take their caps from the file.

Precedence, highest first: an explicit argument (``--ledger``, ``config.guard(ledger=)``),
then the environment variables in `ENV_VARS`, then ``[env.NAME]`` for the guard's
environment, then the file's top level, then the library's defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from runaway_guard._budget import Budget
from runaway_guard._errors import ConfigError, ContractError
from runaway_guard._guard import Guard
from runaway_guard.config._alerts import AlertSettings, parse_alerts
from runaway_guard.config._values import (
    CAP_OPTIONS,
    CONTRACT_OPTIONS,
    Place,
    check_keys,
    decimal,
    name,
    need_table,
    parse_budget,
    parse_contract_option,
    seconds,
    text,
    zone,
)
from runaway_guard.ledger import LEDGER_ENV, default_ledger_url

if TYPE_CHECKING:
    from runaway_guard._clock import Clock
    from runaway_guard.alerts import Alerts

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "ENV_VARS",
    "Config",
    "ContractConfig",
    "find_config",
    "load_config",
]

CONFIG_NAME: Final = "runaway-guard.toml"
CONFIG_ENV: Final = "RUNAWAY_GUARD_CONFIG"
ENV_VARS: Final[Mapping[str, str]] = {
    "ledger": LEDGER_ENV,
    "environment": "RUNAWAY_GUARD_ENV",
    "timezone": "RUNAWAY_GUARD_TIMEZONE",
    "currency": "RUNAWAY_GUARD_CURRENCY",
}
"""Settings an environment variable overrides, and the variable's name."""

_TOP: Final = (
    "ledger",
    "timezone",
    "currency",
    "environment",
    "exchange_rates",
    "budgets",
    "contracts",
    "env",
    "alerts",
    "reap_every",
)
_ENV_KEYS: Final = ("ledger", "budgets", "contracts")
_MAX_DEPTH: Final = 64


@dataclass(frozen=True)
class ContractConfig:
    """One contract as the file declares it: ``[contracts.NAME]`` and its environments.

    Attributes:
        options: the settings, as the objects `Guard.contract` takes.
        environments: caps per environment, from ``[env.ENV.contracts.NAME]``.
        problems: settings that failed their check, with the error (only when the file
            was read with ``strict=False``, as ``doctor`` does).
        key: where the contract is declared, e.g. ``contracts.record-enrich``.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    environments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)
    key: str = ""

    def declared(self) -> dict[str, Any]:
        """The options for `Guard(declared=...)`: settings, plus environments if any."""
        found = dict(self.options)
        if self.environments:
            found["environments"] = {env: dict(caps) for env, caps in self.environments.items()}
        return found


@dataclass(frozen=True)
class Config:
    """A configuration: what the file says, with environment variables applied.

    Build one with `load_config`; `guard()` turns it into a `Guard`.

    Attributes:
        path: the file it was read from; None when no file was found (defaults only).
        environment: the environment whose caps apply (``dev``, ``prod``), if any.
        timezone, currency, exchange_rates, budgets, reap_every: as for `Guard`.
        contracts: contracts declared in the file, by name.
        alerts: the ``[alerts]`` table; None when the file has none.
        sources: where each top-level setting came from (a key of the file, or an
            environment variable), for ``doctor`` and error messages.
    """

    path: Path | None = None
    ledger: str | None = None
    """The file's ledger URL for `environment` (``$RUNAWAY_GUARD_LEDGER`` applied)."""
    environment: str | None = None
    timezone: str = "UTC"
    currency: str | None = None
    exchange_rates: Mapping[str, Decimal] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    reap_every: float = 60.0
    contracts: Mapping[str, ContractConfig] = field(default_factory=dict)
    alerts: AlertSettings | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    env_ledgers: Mapping[str, str] = field(default_factory=dict, repr=False)
    env_budgets: Mapping[str, tuple[Budget, ...]] = field(default_factory=dict, repr=False)
    file_ledger: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """The file's path, or a phrase saying there is none."""
        return str(self.path) if self.path is not None else "(no configuration file)"

    def ledger_url(self, environment: str | None = None, explicit: str | None = None) -> str:
        """The ledger to use: explicit, ``$RUNAWAY_GUARD_LEDGER``, the file, or the default."""
        if explicit:
            return explicit
        from_env = os.environ.get(LEDGER_ENV)
        if from_env:
            return from_env
        env = environment or self.environment
        if env is not None and env in self.env_ledgers:
            return self.env_ledgers[env]
        return self.file_ledger or default_ledger_url()

    def budgets_for(self, environment: str | None) -> tuple[Budget, ...]:
        """Guard-wide budgets: ``[[env.NAME.budgets]]`` replaces the top-level list."""
        if environment is not None and environment in self.env_budgets:
            return self.env_budgets[environment]
        return self.budgets

    def declared(self) -> dict[str, dict[str, Any]]:
        """Every file contract's options, for `Guard(declared=...)`."""
        return {name: contract.declared() for name, contract in self.contracts.items()}

    def guard(
        self,
        *,
        ledger: str | None = None,
        environment: str | None = None,
        clock: Clock | None = None,
        alerts: bool = True,
    ) -> Guard:
        """A `Guard` built from this configuration.

        Contracts named in the file take their settings from it:
        ``guard.contract("record-enrich")`` needs nothing more, and a cap written in the
        file wins over the same option passed in code.

        Args:
            ledger: a ledger URL that wins over every other source.
            environment: the environment whose caps apply (default: `environment`).
            clock: the guard's clock (`runaway_guard.testing.FakeClock` in tests).
            alerts: attach the file's alerts when it configures notifiers.
        """

        env = environment or self.environment
        try:
            guard = Guard(
                self.ledger_url(env, ledger),
                clock=clock,
                currency=self.currency,
                timezone=self.timezone,
                exchange_rates=self.exchange_rates,
                budgets=self.budgets_for(env),
                reap_every=self.reap_every,
                environment=env,
                declared=self.declared(),
            )
        except ConfigError:
            raise
        except ContractError as exc:
            raise ConfigError(f"{self.where}: {exc}") from exc
        guard.declared_in = self.where
        if alerts:
            try:
                self.attach_alerts(guard)
            except BaseException:
                guard.close()
                raise
        return guard

    def attach_alerts(self, guard: Guard) -> Alerts | None:
        """Watch `guard` with the file's notifiers; None when the file configures none."""
        if self.alerts is None or not self.alerts.notifiers:
            return None
        return self.alerts.attach(guard)


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to use, or None.

    ``$RUNAWAY_GUARD_CONFIG`` when set (it must exist); otherwise the nearest
    ``runaway-guard.toml``, or ``pyproject.toml`` with a ``[tool.runaway-guard]`` table,
    in `start` (the working directory by default) or a folder above it.
    """
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(
                f"${CONFIG_ENV} names {named}, which is not a file; fix the path or unset it"
            )
        return path
    folder = Path(start if start is not None else Path.cwd()).resolve()
    for candidate in [folder, *folder.parents][:_MAX_DEPTH]:
        own = candidate / CONFIG_NAME
        if own.is_file():
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    strict: bool = True,
    start: str | os.PathLike[str] | None = None,
) -> Config:
    """Read the configuration file and apply the environment variables in `ENV_VARS`.

    Args:
        path: the file; a ``pyproject.toml`` is read from its ``[tool.runaway-guard]``.
            None finds one with `find_config` (no file at all gives the defaults).
        strict: raise on a contract setting that fails its check. With False (what
            ``doctor`` uses) such settings are reported in `ContractConfig.problems`.
        start: where `find_config` starts looking.

    Raises:
        ConfigError: naming the file, the key, what is wrong and how to fix it.
    """
    found = Path(path) if path is not None else find_config(start)
    if found is None:
        return _apply_env(Config(), {}, Place("(no configuration file)"))
    data, place = _read(found)
    return _apply_env(_parse(found, data, place, strict=strict), data, place)


def _read(path: Path) -> tuple[Mapping[str, Any], Place]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        table = document.get("tool", {}).get("runaway-guard")
        if table is None:
            raise ConfigError(
                f"{path}: has no [tool.runaway-guard] table; add one, or name a "
                f"{CONFIG_NAME} instead"
            )
        return need_table(table, "tool.runaway-guard", Place(str(path))), Place(
            str(path), "tool.runaway-guard"
        )
    return document, Place(str(path))


def _has_tool_table(path: Path) -> bool:
    try:
        content = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "runaway-guard" not in content:
        return False  # cheap test first: most pyproject files say nothing about us
    try:
        return "runaway-guard" in tomllib.loads(content).get("tool", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _parse(path: Path, data: Mapping[str, Any], place: Place, *, strict: bool) -> Config:
    check_keys(data, _TOP, place.prefix, place)
    options: dict[str, Any] = {"path": path}
    if "ledger" in data:
        options["file_ledger"] = _ledger(data["ledger"], place.key("ledger"), place)
    if "timezone" in data:
        options["timezone"] = zone(data["timezone"], place.key("timezone"), place)
    if "currency" in data:
        options["currency"] = _currency(data["currency"], place.key("currency"), place)
    if "environment" in data:
        options["environment"] = name(data["environment"], place.key("environment"), place)
    if "reap_every" in data:
        options["reap_every"] = seconds(data["reap_every"], place.key("reap_every"), place)
    if "exchange_rates" in data:
        key = place.key("exchange_rates")
        rates = need_table(data["exchange_rates"], key, place)
        options["exchange_rates"] = {
            _currency(code, f"{key}.{code}", place): decimal(value, f"{key}.{code}", place)
            for code, value in rates.items()
        }
    if "budgets" in data:
        options["budgets"] = _budgets(data["budgets"], ("budgets",), place)
    contracts: dict[str, dict[str, Any]] = {}
    problems: dict[str, dict[str, str]] = {}
    if "contracts" in data:
        for contract, table in need_table(data["contracts"], place.key("contracts"), place).items():
            key = place.key("contracts", contract)
            name(contract, key, place)
            values = need_table(table, key, place)
            check_keys(values, CONTRACT_OPTIONS, key, place)
            contracts[contract], problems[contract] = _options(values, key, place, strict)
    environments: dict[str, dict[str, dict[str, Any]]] = {}
    env_ledgers: dict[str, str] = {}
    env_budgets: dict[str, tuple[Budget, ...]] = {}
    for env, table in need_table(data.get("env", {}), place.key("env"), place).items():
        key = place.key("env", env)
        name(env, key, place)
        section = need_table(table, key, place)
        check_keys(section, _ENV_KEYS, key, place)
        if "ledger" in section:
            env_ledgers[env] = _ledger(section["ledger"], f"{key}.ledger", place)
        if "budgets" in section:
            env_budgets[env] = _budgets(section["budgets"], ("env", env, "budgets"), place)
        env_contracts = need_table(section.get("contracts", {}), f"{key}.contracts", place)
        for contract, caps in env_contracts.items():
            where = place.key("env", env, "contracts", contract)
            values = need_table(caps, where, place)
            if set(values) - CAP_OPTIONS:
                extra = sorted(set(values) - CAP_OPTIONS)
                raise place.error(
                    f"{where}.{extra[0]}",
                    f"an environment may set only caps ({', '.join(sorted(CAP_OPTIONS))}); "
                    f"set {extra[0]} in [contracts.{contract}] instead",
                )
            parsed, failed = _options(values, where, place, strict)
            environments.setdefault(contract, {})[env] = parsed
            problems.setdefault(contract, {}).update(
                {f"env.{env}.{k}": v for k, v in failed.items()}
            )
    options["contracts"] = {
        contract: ContractConfig(
            contract,
            contracts.get(contract, {}),
            environments.get(contract, {}),
            problems.get(contract, {}),
            place.key("contracts", contract),
        )
        for contract in sorted({*contracts, *environments})
    }
    options["env_ledgers"] = env_ledgers
    options["env_budgets"] = env_budgets
    if "alerts" in data:
        options["alerts"] = parse_alerts(data["alerts"], place)
    sources = {setting: place.key(setting) for setting in _TOP if setting in data}
    return Config(**options, sources=sources)


def _apply_env(config: Config, data: Mapping[str, Any], place: Place) -> Config:
    changes: dict[str, Any] = {}
    sources = dict(config.sources)
    for setting, variable in ENV_VARS.items():
        value = os.environ.get(variable)
        if not value:
            continue
        where = Place(f"${variable}")
        if setting == "environment":
            changes["environment"] = name(value, "", where)
        elif setting == "timezone":
            changes["timezone"] = zone(value, "", where)
        elif setting == "currency":
            changes["currency"] = _currency(value, "", where)
        sources[setting] = f"${variable}"
    config = replace(config, **changes)
    ledger = os.environ.get(LEDGER_ENV) or None
    env = config.environment
    if ledger is None and env is not None and env in config.env_ledgers:
        ledger = config.env_ledgers[env]
        sources["ledger"] = place.key("env", env, "ledger")
    elif ledger is None:
        ledger = config.file_ledger
    return replace(config, ledger=ledger, sources=sources)


def _options(
    values: Mapping[str, Any], key: str, place: Place, strict: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    parsed: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for option, value in values.items():
        try:
            parsed[option] = parse_contract_option(option, value, f"{key}.{option}", place)
        except ConfigError as exc:
            if strict:
                raise
            failed[option] = str(exc)
    return parsed, failed


def _budgets(value: object, parts: tuple[str, ...], place: Place) -> tuple[Budget, ...]:
    key = place.key(*parts)
    if not isinstance(value, list):
        raise place.error(key, 'write one [[budgets]] table per budget: money = "$50", per = "day"')
    return tuple(parse_budget(item, f"{key}[{n}]", place) for n, item in enumerate(value))


def _ledger(value: object, key: str, place: Place) -> str:
    url = text(value, key, place)
    if "://" not in url:
        raise place.error(key, f"{url!r} has no scheme; write 'sqlite:///ledger.db' or similar")
    return url


def _currency(value: object, key: str, place: Place) -> str:
    code = text(value, key, place).upper()
    if len(code) != 3 or not code.isalpha():
        raise place.error(key, f"{value!r} is not an ISO 4217 code; write 'USD' or 'EUR'")
    return code
