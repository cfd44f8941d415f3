"""`runaway-guard lint`: a static audit of paid API call sites.

It reads Python source with the `ast` module (it never imports or runs the code it
checks) and reports paid call sites that can spend without a bound: unbounded loops and
fan-out, retries with no stop or on every error, polling with no deadline, tasks that
reschedule themselves, LLM calls with no output bound, and call sites with no cost
contract. Each rule has a stable id (`RULES`) and a page under ``docs/lint/``.

>>> from runaway_guard.lint import check_source
>>> source = '''
... from openai import OpenAI
... client = OpenAI(max_retries=0)
... while True:
...     client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=100)
... '''
>>> [(finding.line, finding.rule) for finding in check_source(source)]
[(4, 'RG001'), (5, 'RG010')]
"""

from runaway_guard.lint._config import LintConfig, find_config, load_config
from runaway_guard.lint._report import render
from runaway_guard.lint._rules import RULES, Rule, rule_named
from runaway_guard.lint._run import FileError, Finding, Report, check_source, lint_paths

__all__ = [
    "RULES",
    "FileError",
    "Finding",
    "LintConfig",
    "Report",
    "Rule",
    "check_source",
    "find_config",
    "lint_paths",
    "load_config",
    "render",
    "rule_named",
]
