"""The ``[alerts]`` table: thresholds, delivery settings and notifiers.

Notifiers are validated when the file is read but built only when alerts are attached
to a guard, so a command that never sends an alert (``status``, ``report``) does not
need the webhook secrets in its environment. Secrets come from environment variables
(``webhook_url_env = "SLACK_WEBHOOK_URL"``) rather than from the file.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from runaway_guard._errors import ConfigError
from runaway_guard.alerts import (
    DEFAULT_THRESHOLDS,
    DEFAULT_TIMEOUT,
    Alerts,
    Callback,
    Log,
    Notifier,
    Severity,
    Slack,
    Telegram,
    Webhook,
)
from runaway_guard.alerts._watch import check_selector, check_thresholds
from runaway_guard.config._values import Place, check_keys, count, need_table, seconds, text

if TYPE_CHECKING:
    from runaway_guard._guard import Guard

__all__ = ["AlertSettings", "NotifierSpec", "parse_alerts"]

_COMMON: Final = ("type", "min_severity", "name")
_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "log": ("logger",),
    "webhook": ("url", "url_env", "headers", "headers_env", "timeout"),
    "slack": ("webhook_url", "webhook_url_env", "timeout"),
    "telegram": ("token", "token_env", "chat_id", "api_url", "timeout"),
    "callable": ("target",),
}
_SECRETS: Final = {"webhook": "url", "slack": "webhook_url", "telegram": "token"}


@dataclass(frozen=True)
class NotifierSpec:
    """One ``[[alerts.notifiers]]`` entry, checked, not yet built."""

    type: str
    options: Mapping[str, Any]
    key: str
    place: Place

    def missing_env(self) -> list[str]:
        """Environment variables this notifier reads that are not set."""
        names = [self.options[k] for k in self.options if k.endswith("_env") and k != "headers_env"]
        names += list(dict(self.options.get("headers_env", {})).values())
        return [n for n in names if not os.environ.get(n)]

    def build(self) -> Notifier:
        """The notifier, with its secrets read from the environment now."""
        options = self.options
        severity = options.get("min_severity", "info")
        try:
            if self.type == "log":
                return Log(options.get("logger", "runaway_guard.alerts"), min_severity=severity)
            if self.type == "callable":
                return Callback(self._target(), name=options.get("name"), min_severity=severity)
            timeout = options.get("timeout", DEFAULT_TIMEOUT)
            if self.type == "webhook":
                headers = dict(options.get("headers", {}))
                for header, variable in dict(options.get("headers_env", {})).items():
                    headers[header] = self._env(variable, f"headers_env.{header}")
                return Webhook(
                    self._secret("url"),
                    headers=headers,
                    timeout=timeout,
                    name=options.get("name"),
                    min_severity=severity,
                )
            if self.type == "slack":
                return Slack(self._secret("webhook_url"), timeout=timeout, min_severity=severity)
            return Telegram(
                self._secret("token"),
                options["chat_id"],
                api_url=options.get("api_url", "https://api.telegram.org"),
                timeout=timeout,
                min_severity=severity,
            )
        except ConfigError as exc:
            if str(exc).startswith(f"{self.place.file}: "):
                raise
            raise self.place.error(self.key, str(exc)) from None

    def _secret(self, option: str) -> str:
        if option in self.options:
            return str(self.options[option])
        return self._env(self.options[f"{option}_env"], f"{option}_env")

    def _env(self, variable: str, option: str) -> str:
        value = os.environ.get(variable)
        if not value:
            raise self.place.error(
                f"{self.key}.{option}",
                f"names the environment variable {variable}, which is not set; "
                f"export {variable}=... where the guard runs",
            )
        return value

    def _target(self) -> Any:
        target = str(self.options["target"])
        module_name, _, attr = target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise self.place.error(
                f"{self.key}.target",
                f"cannot import {target!r} ({exc}); write 'package.module:function'",
            ) from None
        return found


@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` table, checked."""

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    budget_thresholds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    quiet: float = 3600.0
    attempts: int = 3
    backoff: float = 1.0
    queue_size: int = 1000
    drain_timeout: float = 5.0
    notifiers: tuple[NotifierSpec, ...] = ()

    def attach(self, guard: Guard) -> Alerts:
        """Build the notifiers and watch `guard` (`Guard.close` stops the alerts)."""
        return Alerts(
            guard,
            [spec.build() for spec in self.notifiers],
            thresholds=self.thresholds,
            budget_thresholds=self.budget_thresholds,
            quiet=self.quiet,
            attempts=self.attempts,
            backoff=self.backoff,
            queue_size=self.queue_size,
            drain_timeout=self.drain_timeout,
        )


def parse_alerts(value: object, place: Place) -> AlertSettings:
    key = place.key("alerts")
    table = need_table(value, key, place)
    check_keys(
        table,
        (
            "thresholds",
            "budgets",
            "quiet",
            "attempts",
            "backoff",
            "queue_size",
            "drain_timeout",
            "notifiers",
        ),
        key,
        place,
    )
    options: dict[str, Any] = {}
    if "thresholds" in table:
        options["thresholds"] = _thresholds(table["thresholds"], f"{key}.thresholds", place)
    if "budgets" in table:
        found = {}
        for selector, values in need_table(table["budgets"], f"{key}.budgets", place).items():
            where = place.key("alerts", "budgets", selector)
            try:
                check_selector(selector)
            except ConfigError as exc:
                raise place.error(where, str(exc)) from None
            found[selector] = _thresholds(values, where, place)
        options["budget_thresholds"] = found
    for option in ("quiet", "backoff", "drain_timeout"):
        if option in table:
            options[option] = seconds(table[option], f"{key}.{option}", place)
    if "attempts" in table:
        options["attempts"] = count(table["attempts"], f"{key}.attempts", place, minimum=1)
        if options["attempts"] > 10:
            raise place.error(f"{key}.attempts", "at most 10 delivery attempts per alert")
    if "queue_size" in table:
        options["queue_size"] = count(table["queue_size"], f"{key}.queue_size", place, minimum=1)
    if "notifiers" in table:
        items = table["notifiers"]
        if not isinstance(items, list):
            raise place.error(
                f"{key}.notifiers", "write one [[alerts.notifiers]] table per notifier"
            )
        options["notifiers"] = tuple(
            _notifier(item, f"{key}.notifiers[{n}]", place) for n, item in enumerate(items)
        )
    return AlertSettings(**options)


def _notifier(value: object, key: str, place: Place) -> NotifierSpec:
    table = dict(need_table(value, key, place))
    kind = table.get("type")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise place.error(
            f"{key}.type", f"choose one of {', '.join(repr(k) for k in _KEYS)}, got {kind!r}"
        )
    check_keys(table, (*_COMMON, *_KEYS[kind]), key, place)
    if "min_severity" in table:
        try:
            Severity.parse(table["min_severity"])
        except ValueError as exc:
            raise place.error(f"{key}.min_severity", str(exc)) from None
    if "name" in table:
        text(table["name"], f"{key}.name", place)
    secret = _SECRETS.get(kind)
    if secret is not None:
        given = [option for option in (secret, f"{secret}_env") if option in table]
        if len(given) != 1:
            raise place.error(
                key,
                f"a {kind} notifier needs exactly one of {secret} or {secret}_env (the name of "
                f"an environment variable holding it, to keep the secret out of this file)",
            )
        text(table[given[0]], f"{key}.{given[0]}", place)
    if "timeout" in table:
        timeout = seconds(table["timeout"], f"{key}.timeout", place)
        if not 0 < timeout <= 300:
            raise place.error(f"{key}.timeout", "must be more than 0 and at most 300 seconds")
    for option in ("headers", "headers_env"):
        if option in table:
            for header, item in need_table(table[option], f"{key}.{option}", place).items():
                text(item, f"{key}.{option}.{header}", place)
    if kind == "telegram":
        chat = table.get("chat_id")
        if isinstance(chat, bool) or not isinstance(chat, int | str) or chat == "":
            raise place.error(f"{key}.chat_id", "a Telegram notifier needs chat_id (a number)")
    if kind == "callable":
        target = text(table.get("target"), f"{key}.target", place)
        if ":" not in target:
            raise place.error(f"{key}.target", "write 'package.module:function'")
    if kind in ("webhook", "slack", "telegram"):
        url_option = {"webhook": "url", "slack": "webhook_url", "telegram": "api_url"}[kind]
        url = table.get(url_option)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            raise place.error(f"{key}.{url_option}", "must be an http:// or https:// URL")
    table.pop("type")
    return NotifierSpec(kind, table, key, place)


def _thresholds(value: object, key: str, place: Place) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise place.error(key, "must be a list of percentages, e.g. [50, 90, 100]")
    try:
        return check_thresholds(value, "the thresholds")
    except ConfigError as exc:
        raise place.error(key, str(exc)) from None
