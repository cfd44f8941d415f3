"""How fast `runaway-guard lint` reads a large real tree, on one core.

Run: ``python -m benchmarks.lint`` (``--quick`` for one round; ``PATH...`` for other trees).

Lints the installed ``openai``, ``anthropic`` and ``langchain_core`` packages (whichever
are installed: ``pip install openai anthropic langchain-core``), found without importing
them, with the default configuration, in this process pinned to one CPU. Prints the
files and lines, the wall-clock lines per second (median and best of the rounds, every
round reading, parsing and checking every file), the CPU time, and how much of it goes
to ``ast.parse`` alone, and the rate when every file is walked (the linter skips the walk
for files that mention no paid SDK), with the target beside each.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._report import Figure
from runaway_guard.lint import LintConfig, Report, lint_paths
from runaway_guard.lint._run import _check_tree as check_tree
from runaway_guard.lint._run import iter_files, read_source

PACKAGES = ("openai", "anthropic", "langchain_core")
TARGET_LINES_PER_SECOND = 20_000


@dataclass(frozen=True)
class Round:
    wall: float
    cpu: float
    report: Report


def package_roots(names: tuple[str, ...]) -> list[Path]:
    """The folders of the installed packages, located without importing them."""
    roots = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.append(Path(next(iter(spec.submodule_search_locations))))
    return roots


def pin_to_one_core() -> str:
    """Keep this process on one CPU, so the figure is a one-core figure."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here); single process, single thread"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU {core}; single process, single thread"


def one_round(roots: list[Path], config: LintConfig) -> Round:
    wall, cpu = time.perf_counter(), time.process_time()
    report = lint_paths(roots, config)
    return Round(time.perf_counter() - wall, time.process_time() - cpu, report)


def parse_only_seconds(sources: list[str]) -> float:
    """CPU seconds ast.parse alone needs for the same files (the floor for any checker)."""
    start = time.process_time()
    for source in sources:
        try:
            ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            continue
    return time.process_time() - start


def walk_everything_seconds(sources: list[str], config: LintConfig) -> float:
    """CPU seconds to parse and walk every file, as if each one called a paid SDK.

    The linter skips the walk for files that mention no paid SDK; this is the cost
    without that shortcut, the worst case for a tree full of paid calls.
    """
    start = time.process_time()
    for number, source in enumerate(sources):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            continue
        check_tree(tree, source, f"file{number}.py", config, True)
    return time.process_time() - start


def _run(roots: list[Path], quick: bool) -> tuple[list[tuple[str, str]], list[Figure]]:
    """Lint `roots` on one core; the rows to print and the figures with targets."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned = pin_to_one_core()
    try:
        config = LintConfig()
        one_round(roots, config)  # warm the file cache: rounds measure the linter, not the disk
        rounds = [one_round(roots, config) for _ in range(1 if quick else 5)]
        report = rounds[0].report
        rates = [report.lines / item.wall for item in rounds]
        cpu = statistics.median(item.cpu for item in rounds)
        sources = [read_source(path.read_bytes()) for path in iter_files(roots, config)]
        parse = parse_only_seconds(sources)
        everything = report.lines / walk_everything_seconds(sources, config)
    finally:
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
    median = statistics.median(rates)
    walls = ", ".join(f"{item.wall:.2f}" for item in rounds)
    rows = [
        ("trees", ", ".join(str(root) for root in roots)),
        ("cpu", pinned),
        ("files", f"{report.files:,}, of which {report.analysed:,} mention a paid SDK (walked)"),
        ("lines", f"{report.lines:,}"),
        ("findings", f"{len(report.findings):,}; files not checked: {len(report.errors)}"),
        ("rounds", f"{len(rounds)}; wall seconds {walls}"),
        ("lines per second", f"{median:,.0f} median, {max(rates):,.0f} best" + _target(median)),
        ("cpu seconds", f"{cpu:.2f} per round, of which ast.parse alone {parse:.2f}"),
        ("every file walked", f"{everything:,.0f} lines per cpu second" + _target(everything)),
    ]
    target = f">= {TARGET_LINES_PER_SECOND:,} lines/s"
    figures = [
        Figure(
            f"lines per second, {report.lines:,} lines",
            median,
            "lines/s",
            target,
            median >= TARGET_LINES_PER_SECOND,
        ),
        Figure(
            "lines per cpu second, every file walked",
            everything,
            "lines/s",
            target,
            everything >= TARGET_LINES_PER_SECOND,
        ),
    ]
    return rows, figures


def measure(quick: bool) -> list[Figure]:
    """The figures with targets, for `python -m benchmarks`."""
    roots = package_roots(PACKAGES)
    if not roots:
        return [
            Figure(
                "lint throughput: none of openai, anthropic, langchain_core installed",
                0.0,
                "lines/s",
                f">= {TARGET_LINES_PER_SECOND:,}",
                False,
            )
        ]
    return _run(roots, quick)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round instead of five")
    parser.add_argument("paths", nargs="*", type=Path, help="trees to lint instead")
    args = parser.parse_args()
    roots = args.paths or package_roots(PACKAGES)
    if not roots:
        names = ", ".join(PACKAGES)
        print(f"none of {names} is installed: pip install openai anthropic langchain-core")
        sys.exit(1)
    rows, _ = _run(roots, args.quick)
    print("runaway-guard lint throughput (one core)")
    for name, value in rows:
        print(f"  {name:<18} {value}")


def _target(rate: float) -> str:
    verdict = "ok" if rate >= TARGET_LINES_PER_SECOND else "MISSED"
    return f"  target >= {TARGET_LINES_PER_SECOND:,}  {verdict}"


if __name__ == "__main__":
    main()
