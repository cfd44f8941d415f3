"""Alerts: budget thresholds, kill switches, breakers and crashes, told to people once.

```python
import runaway_guard as rg

guard = rg.Guard("memory://")
alerts = rg.Alerts(guard, [rg.alerts.Log(), rg.alerts.Slack("https://hooks.slack.com/...")])
```

Delivery happens on worker threads with bounded queues, timeouts and retries: a slow or
failing notifier never blocks or breaks a paid call. See ``docs/alerts.md``.
"""

from runaway_guard.alerts._alert import Alert, AlertKind, Severity, describe_counter
from runaway_guard.alerts._notifiers import (
    DEFAULT_TIMEOUT,
    Callback,
    DeliveryFailed,
    Log,
    Notifier,
    Slack,
    Telegram,
    Webhook,
)
from runaway_guard.alerts._watch import DEFAULT_THRESHOLDS, Alerts

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TIMEOUT",
    "Alert",
    "AlertKind",
    "Alerts",
    "Callback",
    "DeliveryFailed",
    "Log",
    "Notifier",
    "Severity",
    "Slack",
    "Telegram",
    "Webhook",
    "describe_counter",
]
