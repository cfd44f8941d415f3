"""Notifiers against a real HTTP receiver on 127.0.0.1: bodies, failures, timeouts."""

from __future__ import annotations

import logging
import time

import pytest

import runaway_guard as rg
from runaway_guard.alerts import Alert, AlertKind, DeliveryFailed, Severity
from tests.alerts.receiver import Receiver

ALERT = Alert(
    AlertKind.THRESHOLD,
    Severity.WARNING,
    "contract 'enrich' day budget at 90%: $0.90 of $1.00",
    "window day:2026-11-22",
    1_795_388_400.0,
    "threshold:contract:enrich|money|day:2026-11-22:90",
    {"threshold": "90", "host": "worker-1"},
)


def test_webhook_posts_the_alert_as_json(receiver: Receiver) -> None:
    rg.alerts.Webhook(f"{receiver.url}/hook", headers={"X-Token": "abc"}).send(ALERT)
    (got,) = receiver.wait_for(1)
    assert "/hook" == got.path
    assert "abc" == got.headers["X-Token"]
    assert "application/json" == got.headers["Content-Type"]
    assert {
        "kind": "threshold",
        "severity": "warning",
        "title": ALERT.title,
        "key": ALERT.key,
        "fields": {"threshold": "90", "host": "worker-1"},
        "at": "2026-11-22 23:00:00 UTC",
    } == {k: got.body[k] for k in ("kind", "severity", "title", "key", "fields", "at")}


def test_slack_posts_the_text_with_a_severity_icon(receiver: Receiver) -> None:
    rg.alerts.Slack(f"{receiver.url}/services/T0/B0/secret").send(ALERT)
    (got,) = receiver.wait_for(1)
    assert [
        ":warning: [runaway-guard WARNING] contract 'enrich' day budget at 90%: $0.90 of $1.00"
    ] == got.body["text"].splitlines()[:1]


def test_telegram_sends_a_message_to_the_chat(receiver: Receiver) -> None:
    rg.alerts.Telegram("123:SECRET", chat_id=-1001, api_url=receiver.url).send(ALERT)
    (got,) = receiver.wait_for(1)
    assert "/bot123:SECRET/sendMessage" == got.path
    assert (-1001, ALERT.text()) == (got.body["chat_id"], got.body["text"])


def test_a_server_error_is_retriable(receiver: Receiver) -> None:
    receiver.answers.append((503, {}))
    with pytest.raises(DeliveryFailed) as caught:
        rg.alerts.Webhook(receiver.url).send(ALERT)
    assert (True, "HTTP 503: ok") == (caught.value.retriable, str(caught.value))


def test_a_client_error_is_not_retriable(receiver: Receiver) -> None:
    receiver.answers.append((404, {}))
    with pytest.raises(DeliveryFailed) as caught:
        rg.alerts.Slack(receiver.url).send(ALERT)
    assert caught.value.retriable is False


def test_a_429_reports_its_retry_after(receiver: Receiver) -> None:
    receiver.answers.append((429, {"Retry-After": "7"}))
    with pytest.raises(DeliveryFailed) as caught:
        rg.alerts.Webhook(receiver.url).send(ALERT)
    assert (True, 7.0) == (caught.value.retriable, caught.value.retry_after)


def test_a_hanging_receiver_times_out_within_the_bound(receiver: Receiver) -> None:
    receiver.hang = 30.0
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as caught:
        rg.alerts.Webhook(receiver.url, timeout=0.3).send(ALERT)
    assert time.monotonic() - started < 5.0
    assert caught.value.retriable is True


def test_a_refused_connection_is_retriable_and_names_no_url() -> None:
    with pytest.raises(DeliveryFailed) as caught:
        rg.alerts.Telegram("123:SECRET", chat_id=1, api_url="http://127.0.0.1:9").send(ALERT)
    assert caught.value.retriable is True
    assert "SECRET" not in str(caught.value)


def test_a_notifier_name_never_holds_its_secret() -> None:
    names = [
        rg.alerts.Slack("https://hooks.slack.com/services/T0/B0/SECRET").name,
        rg.alerts.Telegram("123:SECRET", chat_id=42).name,
        rg.alerts.Webhook("https://ops.example.com/hook?token=SECRET").name,
    ]
    assert ["slack", "telegram:42", "webhook:ops.example.com"] == names
    assert "SECRET" not in repr(rg.alerts.Telegram("123:SECRET", chat_id=42))


@pytest.mark.parametrize("url", ["ftp://example.com", "file:///etc/passwd", "example.com"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(rg.ConfigError, match="http:// or https://"):
        rg.alerts.Webhook(url)


def test_the_log_notifier_logs_at_the_alert_severity(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="runaway_guard.alerts"):
        rg.alerts.Log().send(ALERT)
    (record,) = caplog.records
    assert (logging.WARNING, ALERT.text()) == (record.levelno, record.getMessage())


def test_a_callback_receives_the_alert() -> None:
    got: list[Alert] = []
    rg.alerts.Callback(got.append).send(ALERT)
    assert [ALERT] == got


def test_severity_parses_names() -> None:
    assert [Severity.INFO, Severity.CRITICAL] == [
        Severity.parse("info"),
        Severity.parse("CRITICAL"),
    ]
    with pytest.raises(ValueError, match="choose 'info', 'warning' or 'critical'"):
        Severity.parse("loud")
