"""The command group; each command lives in its own module and registers itself here."""

from __future__ import annotations

import click

from runaway_guard._version import __version__

__all__ = ["app", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runaway-guard")
def app() -> None:
    """runaway-guard: cost contracts, atomic budget holds and bounded retries for paid APIs."""


def main() -> None:
    """Console entry point."""
    app()
