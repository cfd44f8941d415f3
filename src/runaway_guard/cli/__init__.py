"""The `runaway-guard` command line. Each command lives in its own module."""

from runaway_guard.cli import _demo
from runaway_guard.cli._app import app, main

__all__ = ["app", "main"]

del _demo  # imported for its side effect: it registers its command on `app`

from runaway_guard.cli import _prices  # noqa: E402 - registers `runaway-guard prices`

del _prices
