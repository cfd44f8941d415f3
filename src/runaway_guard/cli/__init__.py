"""The `runaway-guard` command line. Each command lives in its own module."""

from runaway_guard.cli import _demo, _lint
from runaway_guard.cli._app import app, main

__all__ = ["app", "main"]

del _demo, _lint  # imported for their side effect: each registers its command on `app`
