"""Render a lint report as text, JSON, or SARIF 2.1.0 for code-scanning tools."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from runaway_guard._version import __version__
from runaway_guard.lint._rules import RULES
from runaway_guard.lint._run import Report

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(report: Report, output_format: str = "text") -> str:
    """The report in `output_format`: ``text``, ``json`` or ``sarif``."""
    if output_format == "text":
        return _text(report)
    if output_format == "json":
        return json.dumps(_json(report), indent=2) + "\n"
    if output_format == "sarif":
        return json.dumps(_sarif(report), indent=2) + "\n"
    raise ValueError(f"unknown format {output_format!r}; choose one of {', '.join(FORMATS)}")


def _text(report: Report) -> str:
    lines = [
        f"{item.path}:{item.line}:{item.column}: {item.rule} {item.message}"
        for item in report.findings
    ]
    lines.extend(
        f"{error.path}:{error.line}:{error.column}: error: {error.message}"
        for error in report.errors
    )
    checked = f"{report.files} file{'s' if report.files != 1 else ''} checked"
    if report.findings:
        count = len(report.findings)
        files = len({item.path for item in report.findings})
        rules = Counter(item.rule for item in report.findings)
        per_rule = ", ".join(f"{rule}: {rules[rule]}" for rule in sorted(rules))
        lines.append(
            f"Found {count} finding{'s' if count != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''} ({per_rule}); {checked}."
        )
    else:
        lines.append(f"No findings; {checked}.")
    if report.errors:
        count = len(report.errors)
        lines.append(f"{count} file{'s' if count != 1 else ''} could not be checked.")
    return "\n".join(lines) + "\n"


def _json(report: Report) -> dict[str, Any]:
    return {
        "version": __version__,
        "files": report.files,
        "findings": [
            {
                "path": item.path,
                "line": item.line,
                "column": item.column,
                "end_line": item.end_line,
                "end_column": item.end_column,
                "rule": item.rule,
                "name": RULES[item.rule].name,
                "message": item.message,
                "docs": RULES[item.rule].docs,
            }
            for item in report.findings
        ],
        "errors": [
            {
                "path": error.path,
                "line": error.line,
                "column": error.column,
                "message": error.message,
            }
            for error in report.errors
        ],
    }


def _uri(path: str) -> str:
    pure = PurePath(path)
    if pure.is_absolute():
        try:
            pure = Path(path).relative_to(Path.cwd())
        except ValueError:
            return Path(path).as_uri()
    return quote(pure.as_posix())


def _sarif(report: Report) -> dict[str, Any]:
    rules = list(RULES.values())
    index = {rule.id: number for number, rule in enumerate(rules)}
    results = []
    for item in report.findings:
        region = {"startLine": item.line, "startColumn": item.column}
        if item.end_line:
            region["endLine"] = item.end_line
            region["endColumn"] = max(item.end_column, 1)
        results.append(
            {
                "ruleId": item.rule,
                "ruleIndex": index[item.rule],
                "level": "error",
                "message": {"text": item.message},
                "locations": [_location(item.path, region)],
            }
        )
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{error.path} {error.message}"},
            "locations": [
                _location(error.path, {"startLine": error.line, "startColumn": error.column})
            ],
        }
        for error in report.errors
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "runaway-guard",
                        "version": __version__,
                        "rules": [
                            {
                                "id": rule.id,
                                "name": rule.name,
                                "shortDescription": {"text": rule.summary},
                                "fullDescription": {"text": f"{rule.summary}. Fix: {rule.fix}."},
                                "help": {"text": f"{rule.fix}. See docs/{rule.docs}."},
                                "defaultConfiguration": {"level": "error"},
                            }
                            for rule in rules
                        ],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _location(path: str, region: dict[str, int]) -> dict[str, Any]:
    uri = _uri(path)
    artifact: dict[str, str] = {"uri": uri}
    if not uri.startswith("file:"):
        artifact["uriBaseId"] = "%SRCROOT%"
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}
