"""Run every benchmark and print one table of figures with their targets.

Usage: ``python -m benchmarks [--quick] [NAME ...]`` where NAME picks benchmarks by
module name (all by default).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from benchmarks._report import Figure, render

BENCHMARKS = ("overhead", "transport", "ledgers", "alerts", "lint")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, rougher figures")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    figures: list[Figure] = []
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.monotonic()
        found = module.measure(args.quick)
        figures.extend(Figure(f"[{name}] {f.name}", f.value, f.unit, f.target, f.ok) for f in found)
        print(f"{name}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    print(render("runaway-guard benchmarks", figures))
    missed = [f.name for f in figures if f.ok is False]
    if missed:
        print(f"\n{len(missed)} target(s) missed on this run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
