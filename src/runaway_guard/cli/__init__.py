"""The `runaway-guard` command line. Each command lives in its own module."""

from runaway_guard.cli import _control, _demo, _doctor, _lint, _prices, _report, _status
from runaway_guard.cli._app import app, main

__all__ = ["app", "main"]

# Imported for their side effect: each registers its commands on `app`.
del _control, _demo, _doctor, _lint, _prices, _report, _status
