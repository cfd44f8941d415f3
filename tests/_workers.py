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


class Unavailable(Exception):
    status_code = 503


def flaky_contract(guard: rg.Guard) -> rg.Contract:
    """The contract both sides of the cross-process breaker test declare."""
    return guard.contract(
        "flaky",
        price="$0.01",
        max_calls_per_run=100,
        breaker=rg.Breaker(failures=3, cooldown=600),
        provider_cap="test: none, loopback only",
    )


def fail_until_breaker_opens(url: str) -> int:
    """Fail the 'flaky' contract three times in this process; return the failures seen."""
    failures = 0
    with rg.Guard(url) as guard:
        flaky = flaky_contract(guard)

        def down() -> None:
            raise Unavailable("503")

        for _ in range(3):
            try:
                flaky.call(down)
            except Unavailable:
                failures += 1
    return failures


def call_until_killed(url: str, log_path: str) -> tuple[int, str]:
    """Make guarded calls (one line per call in `log_path`) until a kill switch stops us."""
    made = 0
    with rg.Guard(url) as guard:
        paid = guard.contract(
            "record-enrich",
            price="$0.002",
            max_calls_per_run=10_000,
            provider_cap="test: none, loopback only",
        )

        def work() -> None:
            nonlocal made
            made += 1
            with open(log_path, "a") as log:
                log.write("call\n")
            time.sleep(0.02)

        with guard.run("worker"):
            for _ in range(10_000):
                try:
                    paid.call(work)
                except rg.KillSwitchEngaged as exc:
                    return made, str(exc)
    return made, "never killed"
