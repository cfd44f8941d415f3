"""Functions run in child processes by the multi-process tests (importable by spawn)."""

from __future__ import annotations

import time

import runaway_guard as rg

PRICE = "$0.002"


def spend_until_refused(url: str, worker: int, calls: int, cap: str) -> tuple[int, int, list[str]]:
    """Try `calls` guarded calls against one shared cap; return (made, refused, errors)."""
    made = refused = 0
    errors: list[str] = []
    with rg.Guard(url) as guard:
        paid = guard.contract(
            "shared-enrich",
            price=PRICE,
            max_calls_per_run=10_000,
            budgets=[rg.Budget.money(cap, per="total", scope="fleet")],
            provider_cap="test: none, loopback only",
        )

        def work() -> None:
            nonlocal made
            made += 1

        with guard.run(f"worker-{worker}"):
            for _ in range(calls):
                try:
                    paid.call(work)
                except rg.BudgetExceeded:
                    refused += 1
                except rg.RunawayGuardError as exc:  # reported, so the test can show it
                    errors.append(repr(exc))
    return made, refused, errors


def hold_and_hang(url: str, ready_path: str) -> None:
    """Place a hold, say so, then hang inside the 'paid call' until killed."""
    with rg.Guard(url) as guard:
        paid = guard.contract(
            "crashy",
            price="$0.25",
            max_calls_per_run=10,
            hold_lease=5.0,
            provider_cap="test: none, loopback only",
        )

        def hang() -> None:
            with open(ready_path, "w") as marker:
                marker.write("holding")
            time.sleep(600)

        with guard.run("doomed"):
            paid.call(hang)
