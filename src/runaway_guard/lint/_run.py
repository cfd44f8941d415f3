"""Lint files: read, parse once, walk once, check, apply suppressions."""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runaway_guard.lint._checks import Checker
from runaway_guard.lint._comments import (
    CONTRACT_MARK,
    SUPPRESSION_MARK,
    Comments,
    read_comments,
    suppressions,
)
from runaway_guard.lint._config import LintConfig
from runaway_guard.lint._sdks import module_needles
from runaway_guard.lint._walk import Walker

__all__ = [
    "FileError",
    "FileResult",
    "Finding",
    "Report",
    "check_source",
    "iter_files",
    "lint_file",
    "lint_paths",
]

# Folders never worth linting when met while walking a tree (a path given by name is
# always linted).
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        ".venv-ci",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
        "node_modules",
        "build",
        "dist",
        "site-packages",
    }
)


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One finding: where, which rule, and a message that says the fix.

    Lines and columns are 1-based; columns count characters.
    """

    path: str
    line: int
    column: int
    rule: str
    message: str
    end_line: int = 0
    end_column: int = 0


@dataclass(frozen=True, slots=True, order=True)
class FileError:
    """A file the linter could not check (it does not parse, or cannot be read)."""

    path: str
    line: int
    column: int
    message: str


@dataclass(slots=True)
class Report:
    """The outcome of linting some files.

    Attributes:
        findings: every finding, sorted by file, line and column.
        errors: files that could not be checked.
        files: how many files were read.
        lines: how many lines they had.
        analysed: how many files mention a paid SDK (or a configured name) and so were
            walked; every other file is parsed, and needs nothing more.
    """

    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    analysed: int = 0

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings, 2 a file could not be checked."""
        if self.errors:
            return 2
        return 1 if self.findings else 0


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's outcome: its findings or why it was not checked, and its size."""

    findings: list[Finding]
    error: FileError | None
    lines: int
    analysed: bool


def check_source(
    source: str, path: str = "<string>", config: LintConfig | None = None
) -> list[Finding]:
    """Lint one module's source text.

    Raises:
        SyntaxError: the source does not parse.
        ValueError: the source contains null bytes.
    """
    config = LintConfig() if config is None else config
    tree = ast.parse(source, filename=path)
    return _check_tree(tree, source, path, config, _relevant(source, config))


def _check_tree(
    tree: ast.Module, source: str, path: str, config: LintConfig, relevant: bool
) -> list[Finding]:
    raw: list[tuple[int, int, int, int, str, str]] = []
    cache: list[Comments] = []

    def comments() -> Comments:
        if not cache:
            cache.append(read_comments(source))
        return cache[0]

    if relevant:
        walker = Walker(config)
        walker.run(tree)
        lowered_has_contract = CONTRACT_MARK in source.lower()
        checker = Checker(
            walker,
            config.select,
            comments if lowered_has_contract else lambda: None,
            config.contract_fields,
        )
        raw = checker.run()
    if SUPPRESSION_MARK in source:
        raw = _suppress(raw, comments(), config)
    if not raw:
        return []
    lines = source.splitlines()
    return sorted(
        Finding(
            path,
            line,
            _column(lines, line, column),
            rule,
            message,
            end_line,
            _column(lines, end_line, end_column),
        )
        for line, column, end_line, end_column, rule, message in raw
    )


def _relevant(source: str, config: LintConfig) -> bool:
    """Whether a file can make a paid call at all (most files of a big tree cannot)."""
    if any(needle in source for needle in module_needles()):
        return True
    for name in (*config.paid_calls, *config.paid_clients):
        tail = name.rsplit(".", 1)[-1].strip("*?[]")
        if not tail or tail in source:
            return True
    return False


def _suppress(
    raw: list[tuple[int, int, int, int, str, str]], comments: Comments, config: LintConfig
) -> list[tuple[int, int, int, int, str, str]]:
    found = suppressions(comments)
    silenced: dict[int, set[str]] = {}
    for item in found:
        silenced.setdefault(item.target, set()).update(item.rules)
    whole_file = silenced.get(0, set())
    kept = [
        entry
        for entry in raw
        if entry[4] not in whole_file and entry[4] not in silenced.get(entry[0], ())
    ]
    if "RG011" in config.select:
        for item in found:
            for problem in item.problems:
                column = comments.column.get(item.line, 0)
                kept.append(
                    (item.line, column, item.line, column, "RG011", f"suppression {problem}")
                )
    return kept


def _column(lines: list[str], line: int, offset: int) -> int:
    """A 1-based character column from the AST's UTF-8 byte offset."""
    if 0 < line <= len(lines):
        text = lines[line - 1]
        if not text.isascii():
            return len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1
    return offset + 1


def read_source(data: bytes) -> str:
    """Decode a Python file as the interpreter would (BOM, coding cookie, UTF-8)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)


def lint_file(path: Path, config: LintConfig) -> FileResult:
    """Lint one file: its findings, or why it could not be checked, and its line count."""
    shown = str(path)
    try:
        source = read_source(path.read_bytes())
    except OSError as exc:
        error = FileError(shown, 1, 1, f"cannot be read: {exc.strerror or exc}")
        return FileResult([], error, 0, False)
    except (UnicodeDecodeError, LookupError, SyntaxError) as exc:
        return FileResult([], FileError(shown, 1, 1, f"cannot be decoded: {exc}"), 0, False)
    lines = source.count("\n") + (not source.endswith("\n") and bool(source))
    try:
        tree = ast.parse(source, filename=shown)
    except SyntaxError as exc:
        message = f"does not parse: {exc.msg}; runaway-guard could not check this file"
        error = FileError(shown, exc.lineno or 1, exc.offset or 1, message)
        return FileResult([], error, lines, False)
    except (ValueError, RecursionError, MemoryError) as exc:
        return FileResult([], FileError(shown, 1, 1, f"does not parse: {exc}"), lines, False)
    relevant = _relevant(source, config)
    try:
        findings = _check_tree(tree, source, shown, config, relevant)
    except RecursionError:
        message = "is nested too deeply for the linter to walk; it was not checked"
        return FileResult([], FileError(shown, 1, 1, message), lines, relevant)
    except Exception as exc:  # a bug in the linter: say so for this file, check the others
        message = (
            f"could not be checked: the linter failed ({type(exc).__name__}: {exc}); "
            "please report it with this file"
        )
        return FileResult([], FileError(shown, 1, 1, message), lines, relevant)
    return FileResult(findings, None, lines, relevant)


def iter_files(paths: Iterable[Path], config: LintConfig) -> Iterator[Path]:
    """Python files under `paths`, in a stable order, without excluded ones."""
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            for folder, subfolders, names in os.walk(path):
                subfolders[:] = sorted(
                    name
                    for name in subfolders
                    if name not in SKIPPED_DIRS and not name.endswith(".egg-info")
                )
                found.extend(Path(folder, name) for name in names if name.endswith(".py"))
            for file in sorted(found):
                if not config.excluded(file):
                    yield file
        elif not config.excluded(path):
            yield path


def lint_paths(paths: Iterable[Path], config: LintConfig | None = None) -> Report:
    """Lint every Python file under `paths`; unparsable files are reported, not fatal."""
    config = LintConfig() if config is None else config
    report = Report()
    for file in iter_files(paths, config):
        result = lint_file(file, config)
        report.files += 1
        report.lines += result.lines
        report.analysed += result.analysed
        report.findings.extend(result.findings)
        if result.error is not None:
            report.errors.append(result.error)
    report.findings.sort()
    report.errors.sort()
    return report
