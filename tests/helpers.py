"""Small helpers shared by tests."""

from __future__ import annotations

import runaway_guard as rg


def contract(guard: rg.Guard, name: str = "enrich", **options: object) -> rg.Contract:
    """A contract with the provider cap filled in, for tests about other things."""
    options.setdefault("price", "$0.002")
    options.setdefault("provider_cap", "test provider cap, $25/month")
    if "max_calls_per_run" not in options and "max_per_run" not in options:
        options["max_calls_per_run"] = 1000
    return guard.contract(name, **options)  # type: ignore[arg-type]
