"""How the analyser reads code: never importing it, one parse, resolution across a module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from runaway_guard.lint import Finding, LintConfig, _run, check_source, lint_paths

ROOT = Path(__file__).resolve().parents[2]


def rules(source: str) -> list[tuple[int, str]]:
    return [(finding.line, finding.rule) for finding in check_source(source, "x.py")]


def test_the_project_itself_has_no_findings() -> None:
    report = lint_paths([ROOT / "src"])
    assert ([], [], True) == (report.findings, report.errors, report.files > 30)


def test_linting_never_imports_or_runs_the_code(tmp_path: Path) -> None:
    module = tmp_path / "explodes_on_import.py"
    module.write_text(
        "import module_that_does_not_exist\nraise SystemExit('imported!')\n"
        "from openai import OpenAI\nOpenAI().embeddings.create(model='m', input='x')\n",
        encoding="utf-8",
    )
    report = lint_paths([module])
    assert [(4, "RG010")] == [(item.line, item.rule) for item in report.findings]
    assert "explodes_on_import" not in sys.modules


def test_check_source_raises_syntax_error_for_code_that_does_not_parse() -> None:
    with pytest.raises(SyntaxError):
        check_source("def broken(:\n    pass\n")


def test_a_file_without_paid_calls_has_no_findings_even_with_loops() -> None:
    assert [] == rules("while True:\n    print('hello')\n")


def test_columns_count_characters_not_bytes() -> None:
    source = (
        "from openai import OpenAI\nc = OpenAI()\n"
        "ünïcödé = c.embeddings.create(model='m', input='x')\n"
    )
    assert [11] == [finding.column for finding in check_source(source)]


def test_long_expression_chains_do_not_overflow_the_walk() -> None:
    chain = " + ".join(["value"] * 950)  # about as deep as ast.parse itself accepts
    source = f"from openai import OpenAI\nvalue = 1\ntotal = {chain}\n"
    assert [] == rules(source)


def test_code_too_deep_for_the_parser_is_a_file_error(tmp_path: Path) -> None:
    module = tmp_path / "deep.py"
    module.write_text("total = " + " + ".join(["1"] * 5000) + "\n", encoding="utf-8")
    report = lint_paths([module])
    assert (2, 1) == (report.exit_code, len(report.errors))
    assert report.errors[0].message.startswith("does not parse")


def test_a_helper_defined_below_its_caller_is_still_followed() -> None:
    source = """\
from openai import OpenAI

def run(queue):
    while queue:
        ask(queue.pop())

def ask(text):
    # cost contract: unit cost $0.002 per call, max calls per run: 80, max $ per run: $0.16,
    # provider cap: OpenAI org usage limit $25/month
    return client.embeddings.create(model="m", input=text)

client = OpenAI(max_retries=0)
"""
    assert [(4, "RG001")] == rules(source)


def test_a_rebound_name_stops_being_a_client() -> None:
    source = (
        "from openai import OpenAI\nclient = OpenAI()\nclient = object()\n"
        "client.images.generate()\n"
    )
    assert [] == rules(source)


def test_a_method_reached_through_an_instance_is_followed() -> None:
    source = """\
from openai import OpenAI

class Bot:
    def __init__(self):
        self.client = OpenAI(max_retries=0)

    # cost contract: unit cost $0.002 per call, max calls per run: 80, max $ per run: $0.16,
    # provider cap: OpenAI org usage limit $25/month
    def ask(self, text):
        return self.client.embeddings.create(model="m", input=text)

bot = Bot()
while True:
    bot.ask("again")
"""
    assert [(13, "RG001")] == rules(source)


def test_recursion_between_helpers_terminates() -> None:
    source = """\
from openai import OpenAI
client = OpenAI()

def ping(n):
    return pong(n)

def pong(n):
    client.embeddings.create(model="m", input=str(n))
    return ping(n)
"""
    assert [(8, "RG010")] == rules(source)


def test_a_private_helper_called_only_from_guarded_code_is_guarded() -> None:
    source = """\
import runaway_guard as rg
from openai import OpenAI

guard = rg.Guard("memory://")
enrich = guard.contract("enrich", price="$0.002", max_calls_per_run=9, provider_cap="cap")
client = OpenAI()

def _raw(text):
    return client.embeddings.create(model="m", input=text)

@enrich
def embed(text):
    return _raw(text)

def embed_unguarded(text):
    return _raw(text)
"""
    assert [(9, "RG010")] == rules(source)


def test_a_paid_method_handed_to_a_thread_is_a_call_site() -> None:
    source = (
        "import asyncio\nfrom openai import OpenAI\nc = OpenAI()\n"
        "asyncio.to_thread(c.images.generate, prompt='x')\n"
    )
    assert [(4, "RG010")] == rules(source)


def test_a_module_level_loop_is_checked() -> None:
    source = "import replicate\nwhile True:\n    replicate.run('m', input={})\n"
    assert [(2, "RG001"), (3, "RG010")] == rules(source)


def test_a_linter_failure_on_one_file_is_reported_and_the_others_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("import openai\n", encoding="utf-8")
    second.write_text("x = 1\n", encoding="utf-8")
    real = _run._check_tree

    def failing(
        tree: ast.Module, source: str, path: str, config: LintConfig, relevant: bool
    ) -> list[Finding]:
        if path.endswith("a.py"):
            raise KeyError("boom")
        return real(tree, source, path, config, relevant)

    monkeypatch.setattr(_run, "_check_tree", failing)
    report = lint_paths([tmp_path])
    assert (2, 2, [str(first)]) == (report.exit_code, report.files, [e.path for e in report.errors])
    assert "the linter failed (KeyError: 'boom'); please report it" in report.errors[0].message


def test_every_public_name_is_importable() -> None:
    from runaway_guard import lint

    assert [] == [name for name in lint.__all__ if not hasattr(lint, name)]
