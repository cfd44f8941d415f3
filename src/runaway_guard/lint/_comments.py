"""Comments the linter reads: suppressions and `# cost contract:` blocks.

Comments are not in the AST, so they are read with `tokenize`, and only from files whose
text mentions a marker at all: most files never pay for it.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from runaway_guard.lint._rules import rule_named

__all__ = [
    "CONTRACT_MARK",
    "SUPPRESSION_MARK",
    "Comments",
    "Suppression",
    "contract_fields",
    "contract_text",
    "read_comments",
    "suppressions",
]

SUPPRESSION_MARK = "runaway-guard:"
CONTRACT_MARK = "cost contract"

_SUPPRESSION = re.compile(
    r"runaway-guard:\s*(?P<kind>ignore-file|ignore)\b\s*(?:\[(?P<rules>[^\]]*)\])?(?P<reason>.*)",
    re.IGNORECASE,
)
_MONEY = (
    r"(?:[$€£¥]\s?\d[\d,_]*(?:\.\d+)?"
    r"|\d[\d,_]*(?:\.\d+)?\s?(?:usd|eur|gbp|dollars?|euros?|cents?|¢))"
)
_PERIOD = r"(?:run|day|daily|month|week|hour|year)\b"
_FIELDS: dict[str, re.Pattern[str]] = {
    "unit-cost": re.compile(
        rf"(?:unit[\s_-]*(?:cost|price)|price|per[\s_-]*call|@)[^\n;]*?{_MONEY}"
        rf"|{_MONEY}\s*(?:/|per\s+|an?\s+|each\b)\s*(?!{_PERIOD})[a-z]"
    ),
    "max-calls": re.compile(
        r"max[\s_-]*(?:calls|requests|images|tokens|attempts|items|steps|polls|runs)\b"
        r"[^\n;]*?\d"
        r"|\d[\d,_]*\s*(?:calls|requests|images|tokens|attempts|steps|polls)\b"
    ),
    "max-per-run": re.compile(
        rf"max[\s_-]*(?:[$€£]|money|cost|spend|usd|eur|dollars?)?[\s_-]*(?:per|/|a)[\s_-]*run"
        rf"[^\n;]*?{_MONEY}"
        rf"|{_MONEY}\s*(?:/\s*|per\s+|an?\s+|each\s+)run\b"
    ),
    "provider-cap": re.compile(
        r"\b(?:cap|spend[\s_-]*limit|usage[\s_-]*limit|budget)\b\s*[:=(]?\s*[^\s]"
    ),
}


@dataclass(frozen=True, slots=True)
class Comments:
    """The real comments of one file.

    Attributes:
        text: comment text (after the ``#``) by line number.
        own_line: line numbers whose only content is a comment.
        column: where each comment starts (a 0-based offset).
    """

    text: dict[int, str]
    own_line: frozenset[int]
    column: dict[int, int]

    def block_above(self, line: int) -> list[int]:
        """Line numbers of the run of comment-only lines that ends just above `line`."""
        lines: list[int] = []
        current = line - 1
        while current in self.own_line:
            lines.append(current)
            current -= 1
        lines.reverse()
        return lines


@dataclass(frozen=True, slots=True)
class Suppression:
    """One ``# runaway-guard: ignore[...] reason`` comment.

    Attributes:
        line: the line the comment is on.
        target: the line it silences (its own line, or the next code line when the
            comment stands alone); 0 for a whole-file suppression.
        rules: ids it silences.
        problems: what is wrong with it (no reason, no rule, an unknown rule).
    """

    line: int
    target: int
    rules: frozenset[str]
    problems: tuple[str, ...]


def read_comments(source: str) -> Comments:
    """Every comment in `source`, found with `tokenize` so that strings never count."""
    text: dict[int, str] = {}
    columns: dict[int, int] = {}
    own: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                row, column = token.start
                text[row] = token.string[1:]
                columns[row] = column
                if not token.line[:column].strip():
                    own.add(row)
    except (tokenize.TokenError, SyntaxError):
        pass  # the file parsed with ast already; whatever was read so far is right
    return Comments(text, frozenset(own), columns)


def suppressions(comments: Comments) -> list[Suppression]:
    """The suppression comments, with the line each one silences."""
    found: list[Suppression] = []
    for line, text in comments.text.items():
        match = _SUPPRESSION.search(text)
        if match is None or not text.lstrip().lower().startswith(SUPPRESSION_MARK):
            continue
        problems: list[str] = []
        rules: set[str] = set()
        listed = match.group("rules")
        if listed is None:
            problems.append("names no rule: list the rules it silences, as ignore[RG003]")
        else:
            for item in filter(None, (part.strip() for part in listed.split(","))):
                rule = rule_named(item)
                if rule is None:
                    problems.append(f"names an unknown rule {item!r}")
                else:
                    rules.add(rule.id)
            if not rules and not problems:
                problems.append("names no rule: list the rules it silences, as ignore[RG003]")
        if not match.group("reason").strip(" \t-:—"):
            problems.append("has no reason: say why after the bracket")
        if match.group("kind").lower() == "ignore-file":
            target = 0
        elif line in comments.own_line:
            target = line + 1
            while target in comments.own_line:
                target += 1
        else:
            target = line
        found.append(Suppression(line, target, frozenset(rules), tuple(problems)))
    return found


def contract_text(comments: Comments, anchors: Iterable[int]) -> tuple[int, str] | None:
    """The nearest `# cost contract:` comment for a statement, and its line.

    `anchors` are the first lines of the statement and of each definition around it,
    innermost first; a contract is the comment block just above one of them, or a
    comment on the anchor line itself.
    """
    for anchor in anchors:
        trailing = comments.text.get(anchor)
        if trailing is not None and CONTRACT_MARK in trailing.lower():
            return anchor, trailing
        block = comments.block_above(anchor)
        for index, line in enumerate(block):
            if CONTRACT_MARK in comments.text[line].lower():
                body = "\n".join(comments.text[other] for other in block[index:])
                return line, body
    return None


def contract_fields(text: str, required: Iterable[str]) -> list[str]:
    """The required fields a cost-contract comment does not state."""
    lowered = text.lower()
    start = lowered.find(CONTRACT_MARK)
    lowered = lowered[start + len(CONTRACT_MARK) :] if start >= 0 else lowered
    return [name for name in required if not _FIELDS[name].search(lowered)]
