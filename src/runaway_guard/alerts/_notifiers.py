"""Notifiers: where alerts go. Logging, a JSON webhook, Slack, Telegram, a Python callable.

Every notifier runs on its own worker thread (see `_delivery`), never on the thread of
a paid call. HTTP notifiers use the standard library's `urllib`: one JSON POST per alert
needs no connection pool, and no extra dependency has to be installed, kept secure and
kept compatible for it. Each request has a socket timeout; URLs and tokens are secrets
(a Slack webhook URL is a credential) and never appear in logs or errors.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

from runaway_guard._classify import retry_after_seconds
from runaway_guard._errors import ConfigError
from runaway_guard._version import __version__
from runaway_guard.alerts._alert import Alert, Severity

__all__ = [
    "DEFAULT_TIMEOUT",
    "Callback",
    "DeliveryFailed",
    "Log",
    "Notifier",
    "Slack",
    "Telegram",
    "Webhook",
]

DEFAULT_TIMEOUT: Final = 5.0
"""Seconds an HTTP notifier waits to connect, and then for each read, before giving up."""

_BODY_LIMIT: Final = 65_536


class DeliveryFailed(Exception):
    """A notifier could not deliver an alert.

    Attributes:
        retriable: whether trying again may help (a timeout, a 5xx, a 429); a 4xx means
            the notifier is misconfigured and is not retried.
        retry_after: seconds the receiver asked to wait (a 429's Retry-After), if any.
    """

    def __init__(self, message: str, *, retriable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.retry_after = retry_after


@runtime_checkable
class Notifier(Protocol):
    """Delivers alerts somewhere. Implement `send`; raise `DeliveryFailed` on failure.

    Attributes:
        name: how the notifier is named in logs (never a URL or a token).
        min_severity: alerts below this severity are not sent to it.
    """

    name: str
    min_severity: Severity

    def send(self, alert: Alert) -> None:
        """Deliver one alert, within the notifier's own timeout, or raise."""
        ...


class Log:
    """Log each alert on the ``runaway_guard.alerts`` logger at its severity's level.

    Args:
        logger: the logger name, or a `logging.Logger`.
        min_severity: the least severe alert to log.
    """

    def __init__(
        self,
        logger: str | logging.Logger = "runaway_guard.alerts",
        *,
        min_severity: Severity | str = Severity.INFO,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.min_severity = _severity(min_severity)
        self.name = f"log:{self.logger.name}"

    def send(self, alert: Alert) -> None:
        self.logger.log(int(alert.severity), "%s", alert.text())


class Callback:
    """Call a Python function with each `Alert` (page someone, write a metric).

    The function runs on the notifier's worker thread. Its timeout cannot be enforced
    (a thread cannot be interrupted): a function that hangs stalls only its own queue,
    which then drops alerts with a log line; paid calls are never held up by it.

    Args:
        fn: ``fn(alert)``; an exception counts as a failed delivery and is retried.
        name: how it is named in logs (the function's qualified name by default).
        min_severity: the least severe alert to pass on.
    """

    def __init__(
        self,
        fn: Callable[[Alert], object],
        *,
        name: str | None = None,
        min_severity: Severity | str = Severity.INFO,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"Callback needs a function of one Alert, got {fn!r}")
        self.fn = fn
        self.name = name or f"callable:{getattr(fn, '__qualname__', type(fn).__name__)}"
        self.min_severity = _severity(min_severity)

    def send(self, alert: Alert) -> None:
        self.fn(alert)


class Webhook:
    """POST each alert as JSON (`Alert.to_json`) to a URL.

    Args:
        url: ``https://...`` (``http://`` for a receiver on a private network).
        headers: extra headers, e.g. ``{"Authorization": "Bearer ..."}``.
        timeout: seconds to connect and then for each read.
        name: how it is named in logs (the host by default; the URL may hold a secret).
        min_severity: the least severe alert to send.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        name: str | None = None,
        min_severity: Severity | str = Severity.INFO,
    ) -> None:
        self.url = _check_url(url, "webhook url")
        self.headers = dict(headers or {})
        self.timeout = _timeout(timeout)
        self.name = name or f"webhook:{urlsplit(url).hostname}"
        self.min_severity = _severity(min_severity)

    def body(self, alert: Alert) -> dict[str, Any]:
        return alert.to_json()

    def send(self, alert: Alert) -> None:
        post_json(self.url, self.body(alert), headers=self.headers, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


_ICONS: Final = {Severity.INFO: ":information_source:", Severity.WARNING: ":warning:"}


class Slack(Webhook):
    """Post each alert to a Slack channel through an incoming webhook.

    Args:
        webhook_url: the ``https://hooks.slack.com/services/...`` URL Slack gave you.
            It is a credential: keep it out of source control (the config file can
            read it from an environment variable with ``webhook_url_env``).
        timeout, min_severity: as for `Webhook`.
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        min_severity: Severity | str = Severity.INFO,
    ) -> None:
        super().__init__(
            webhook_url, timeout=timeout, name="slack", min_severity=_severity(min_severity)
        )

    def body(self, alert: Alert) -> dict[str, Any]:
        icon = _ICONS.get(alert.severity, ":rotating_light:")
        return {"text": f"{icon} {alert.text()}"}


class Telegram:
    """Send each alert as a Telegram message from a bot.

    Args:
        token: the bot token from @BotFather (a credential; see ``token_env`` in the
            config file).
        chat_id: the chat, group or channel to write to.
        api_url: the Bot API's base URL (a local Bot API server, or a test receiver).
        timeout, min_severity: as for `Webhook`.
    """

    def __init__(
        self,
        token: str,
        chat_id: str | int,
        *,
        api_url: str = "https://api.telegram.org",
        timeout: float = DEFAULT_TIMEOUT,
        min_severity: Severity | str = Severity.INFO,
    ) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("Telegram needs the bot token @BotFather gave you")
        if isinstance(chat_id, bool) or not isinstance(chat_id, str | int) or chat_id == "":
            raise ConfigError(f"Telegram needs a chat_id (a number or @channel), got {chat_id!r}")
        self.api_url = _check_url(api_url, "Telegram api_url").rstrip("/")
        self._token = token.strip()
        self.chat_id = chat_id
        self.timeout = _timeout(timeout)
        self.name = f"telegram:{chat_id}"
        self.min_severity = _severity(min_severity)

    def send(self, alert: Alert) -> None:
        post_json(
            f"{self.api_url}/bot{self._token}/sendMessage",
            {"chat_id": self.chat_id, "text": alert.text(), "disable_web_page_preview": True},
            headers={},
            timeout=self.timeout,
        )

    def __repr__(self) -> str:
        return f"Telegram(chat_id={self.chat_id!r})"


def post_json(
    url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float
) -> None:
    """POST `payload` as JSON; raise `DeliveryFailed` for anything but a 2xx answer.

    The error names the status or the network failure, never the URL.
    """
    request = urllib.request.Request(  # noqa: S310  # the scheme was checked: http(s) only
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"runaway-guard/{__version__}",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(_BODY_LIMIT)
    except urllib.error.HTTPError as exc:
        status = exc.code
        with exc:
            answer = exc.read(300).decode("utf-8", "replace").strip()
        retriable = status in (408, 425, 429) or status >= 500
        raise DeliveryFailed(
            f"HTTP {status}" + (f": {answer}" if answer else ""),
            retriable=retriable,
            retry_after=retry_after_seconds(exc.headers, time.time()),
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryFailed(f"{type(reason).__name__}: {reason}", retriable=True) from None


def _check_url(url: object, what: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{what} must be an http:// or https:// URL")
    if not urlsplit(url).hostname:
        raise ConfigError(f"{what} has no host")
    return url


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise ConfigError(
            f"notifier timeout must be a number of seconds in (0, 300], got {value!r}"
        )
    return float(value)


def _severity(value: Severity | str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
