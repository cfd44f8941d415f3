"""The linter's configuration: `[tool.runaway-guard.lint]` in pyproject.toml.

```toml
[tool.runaway-guard.lint]
select = ["ALL"]                       # rule ids or names; ALL is the default
ignore = ["RG009"]
paid-calls = ["acme.whois.lookup"]     # functions that are paid calls
paid-clients = ["acme.whois.Client"]   # every method call on these instances is paid
contracts = ["acme.billing.*"]         # runaway-guard contracts declared elsewhere
exclude = ["tests/fixtures"]

[tool.runaway-guard.lint.RG003]
limiters = ["acme.limits.Limiter"]
```

A ``runaway-guard.toml`` with a ``[lint]`` table works the same way, and so does any
file given with ``--config``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runaway_guard._errors import ConfigError
from runaway_guard.lint._rules import RULES, rule_named

__all__ = ["CONTRACT_FIELDS", "LintConfig", "find_config", "load_config", "parse_rules"]

CONTRACT_FIELDS = ("unit-cost", "max-calls", "max-per-run", "provider-cap")

# Per-rule options: rule id -> option name -> LintConfig attribute
_RULE_OPTIONS: dict[str, dict[str, str]] = {
    "RG003": {"limiters": "limiters", "chunkers": "chunkers"},
    "RG007": {"sleeps": "sleeps"},
    "RG008": {"task-decorators": "task_decorators"},
    "RG009": {"bound-kwargs": "bound_kwargs"},
    "RG010": {"fields": "contract_fields", "guarded-factories": "guarded_factories"},
}
_TOP_KEYS = {
    "select": "select",
    "ignore": "ignore",
    "paid-calls": "paid_calls",
    "paid-clients": "paid_clients",
    "contracts": "contracts",
    "exclude": "exclude",
}


@dataclass(frozen=True, slots=True)
class LintConfig:
    """What to check and what the code base calls its paid APIs.

    Attributes:
        select: ids of the rules to report.
        paid_calls: dotted names (globs allowed) of functions that are paid calls.
        paid_clients: dotted names of classes whose instances' method calls are paid.
        contracts: dotted names (globs allowed) of runaway-guard contracts declared in
            other modules, so decorating with them guards a call site.
        exclude: path globs, relative to `root`, never linted.
        limiters: extra concurrency limiters for RG003 (names or dotted names).
        chunkers: extra chunking functions for RG003.
        sleeps: extra sleep functions that mark a loop as polling (RG007).
        task_decorators: extra decorators that make a function a queued task (RG008).
        bound_kwargs: extra keywords that bound an LLM call's output (RG009).
        contract_fields: what a `# cost contract:` comment must state (RG010).
        guarded_factories: methods whose result, passed as ``http_client=``, guards a
            client (``guard.http_client(contract)``).
        root: the folder `exclude` is relative to.
        source: the file this configuration came from, if any.
    """

    select: frozenset[str] = frozenset(RULES)
    paid_calls: tuple[str, ...] = ()
    paid_clients: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    limiters: tuple[str, ...] = ()
    chunkers: tuple[str, ...] = ()
    sleeps: tuple[str, ...] = ()
    task_decorators: tuple[str, ...] = ()
    bound_kwargs: tuple[str, ...] = ()
    contract_fields: tuple[str, ...] = CONTRACT_FIELDS
    guarded_factories: tuple[str, ...] = ("http_client", "async_http_client")
    root: Path = field(default_factory=Path.cwd)
    source: Path | None = None

    def with_rules(self, select: Iterable[str] | None, ignore: Iterable[str]) -> LintConfig:
        """This configuration with `select` replacing and `ignore` narrowing its rules."""
        chosen = self.select if select is None else parse_rules(select, "--select")
        return replace(self, select=chosen - parse_rules(ignore, "--ignore"))

    def excluded(self, path: Path) -> bool:
        """Whether `path` matches one of the `exclude` globs."""
        if not self.exclude:
            return False
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            relative = path.as_posix()
        parts = relative.split("/")
        for given in self.exclude:
            pattern = given.rstrip("/")
            if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern + "/*"):
                return True
            if "/" not in pattern and any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
        return False


def parse_rules(values: Iterable[str], where: str) -> frozenset[str]:
    """Rule ids from ids, names, comma-separated lists and ``ALL``."""
    chosen: set[str] = set()
    for value in values:
        for part in str(value).split(","):
            item = part.strip()
            if not item:
                continue
            if item.upper() == "ALL":
                chosen.update(RULES)
                continue
            rule = rule_named(item)
            if rule is None:
                known = ", ".join(RULES)
                raise ConfigError(f"{where}: unknown rule {item!r}; known rules are {known}")
            chosen.add(rule.id)
    return frozenset(chosen)


def find_config(start: Path) -> Path | None:
    """The nearest runaway-guard.toml or pyproject.toml with a lint table, from `start` up."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        own = candidate / "runaway-guard.toml"
        if own.is_file() and "lint" in _read(own):
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _lint_table(pyproject, _read(pyproject)) is not None:
            return pyproject
    return None


def load_config(path: Path | None) -> LintConfig:
    """The configuration in `path` (a pyproject.toml or runaway-guard.toml), or the default.

    Raises:
        ConfigError: the file cannot be read, or a key or value is wrong; the message
            names the file, the key and what is accepted.
    """
    if path is None:
        return LintConfig()
    document = _read(path)
    table = _lint_table(path, document)
    config = LintConfig(root=path.resolve().parent, source=path)
    if table is None:
        return config
    return _apply(config, table, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: is not valid TOML ({exc})") from exc


def _lint_table(path: Path, document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``[tool.runaway-guard.lint]``, or ``[lint]`` in a file that is not a pyproject.toml."""
    table = document.get("tool", {}).get("runaway-guard", {}).get("lint")
    where = "[tool.runaway-guard.lint]"
    if table is None and path.name != "pyproject.toml":
        table = document.get("lint")
        where = "[lint]"
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: {where} must be a table")
    return table


def _apply(config: LintConfig, table: Mapping[str, Any], path: Path) -> LintConfig:
    changes: dict[str, Any] = {}
    select: frozenset[str] = config.select
    ignore: frozenset[str] = frozenset()
    for key, value in table.items():
        if key in RULES or (isinstance(value, Mapping) and rule_named(key) is not None):
            changes.update(_rule_options(key, value, path))
            continue
        attribute = _TOP_KEYS.get(key)
        if attribute is None:
            known = ", ".join([*_TOP_KEYS, "RG0NN (a table of rule options)"])
            raise ConfigError(f"{path}: unknown key {key!r} in the lint table; known: {known}")
        strings = _strings(value, path, key)
        if attribute == "select":
            select = parse_rules(strings, f"{path}: select")
        elif attribute == "ignore":
            ignore = parse_rules(strings, f"{path}: ignore")
        else:
            changes[attribute] = strings
    return replace(config, select=select - ignore, **changes)


def _rule_options(key: str, value: object, path: Path) -> dict[str, Any]:
    rule = rule_named(key)
    assert rule is not None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: {key} must be a table of options")
    accepted = _RULE_OPTIONS.get(rule.id, {})
    changes: dict[str, Any] = {}
    for option, option_value in value.items():
        attribute = accepted.get(option)
        if attribute is None:
            known = ", ".join(accepted) or "none"
            raise ConfigError(f"{path}: {rule.id} has no option {option!r}; its options: {known}")
        strings = _strings(option_value, path, f"{rule.id}.{option}")
        if attribute == "contract_fields":
            unknown = sorted(set(strings) - set(CONTRACT_FIELDS))
            if unknown:
                raise ConfigError(
                    f"{path}: {rule.id}.fields: unknown field(s) {', '.join(unknown)}; "
                    f"choose from {', '.join(CONTRACT_FIELDS)}"
                )
        changes[attribute] = strings
    return changes


def _strings(value: object, path: Path, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: {key} must be a list of strings, not {value!r}")
    return tuple(value)
