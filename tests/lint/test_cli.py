"""`runaway-guard lint`: output formats, exit codes, selection and configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runaway_guard.cli import app
from runaway_guard.lint import RULES

UNBOUNDED = """\
from openai import OpenAI

client = OpenAI(max_retries=0)

# cost contract: unit cost $0.002 per call, max calls per run: 80, max $ per run: $0.16,
# provider cap: OpenAI org usage limit $25/month
while True:
    client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=9)
"""
CLEAN = """\
def add(a, b):
    return a + b
"""
BROKEN = """\
def broken(:
    pass
"""


def lint(*args: str) -> Result:
    return CliRunner().invoke(app, ["lint", *args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project folder, made the current folder, with no configuration."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n", encoding="utf-8")
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_clean_files_exit_zero(project: Path) -> None:
    write(project, "clean.py", CLEAN)
    result = lint("clean.py")
    assert (0, "No findings; 1 file checked.\n") == (result.exit_code, result.output)


def test_findings_exit_one_with_path_line_column_rule_and_message(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    result = lint("loop.py")
    first = result.output.splitlines()[0]
    assert 1 == result.exit_code
    assert first.startswith("loop.py:7:1: RG001 while loop around a paid call")
    assert first.endswith("count the calls and stop at a named limit")


def test_a_folder_is_searched_for_python_files(project: Path) -> None:
    write(project, "pkg/a.py", UNBOUNDED)
    write(project, "pkg/sub/b.py", UNBOUNDED)
    write(project, "pkg/notes.txt", UNBOUNDED)
    result = lint("pkg")
    paths = [line.split(":")[0] for line in result.output.splitlines()[:-1]]
    assert [str(Path("pkg/a.py")), str(Path("pkg/sub/b.py"))] == paths


def test_no_path_lints_the_current_folder(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    result = lint()
    assert 1 == result.exit_code
    assert result.output.startswith("loop.py:7:1: RG001")


def test_a_file_that_does_not_parse_exits_two_and_the_others_are_still_checked(
    project: Path,
) -> None:
    write(project, "a_broken.py", BROKEN)
    write(project, "b_loop.py", UNBOUNDED)
    result = lint(".")
    lines = result.output.splitlines()
    assert 2 == result.exit_code
    assert lines[0].startswith("b_loop.py:7:1: RG001")
    assert lines[1].startswith("a_broken.py:1:12: error: does not parse: ")
    assert "1 file could not be checked." == lines[-1]


def test_undecodable_bytes_are_a_file_error_not_a_crash(project: Path) -> None:
    (project / "latin.py").write_bytes(b"# -*- coding: ascii -*-\nname = '\xff'\n")
    result = lint("latin.py")
    assert 2 == result.exit_code
    assert result.output.startswith("latin.py:1:1: error: cannot be decoded")


def test_null_bytes_are_a_file_error_not_a_crash(project: Path) -> None:
    (project / "nul.py").write_bytes(b"x = 1\x00\n")
    result = lint("nul.py")
    assert 2 == result.exit_code
    assert "error: does not parse" in result.output


def test_a_missing_path_is_a_usage_error(project: Path) -> None:
    result = lint("nowhere.py")
    assert 2 == result.exit_code
    assert "does not exist" in result.output


def test_ignore_drops_a_rule(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    result = lint("loop.py", "--ignore", "RG001")
    assert (0, "No findings; 1 file checked.\n") == (result.exit_code, result.output)


def test_select_keeps_only_the_named_rules_by_id_or_name(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED.replace(", max_tokens=9", ""))
    only_tokens = lint("loop.py", "--select", "no-output-token-bound")
    both = lint("loop.py", "--select", "RG001,RG009")
    assert ["RG009"] == [line.split()[1] for line in only_tokens.output.splitlines()[:-1]]
    assert ["RG001", "RG009"] == [line.split()[1] for line in both.output.splitlines()[:-1]]


def test_an_unknown_rule_is_a_usage_error(project: Path) -> None:
    result = lint(".", "--select", "RG999")
    assert 2 == result.exit_code
    assert "unknown rule 'RG999'" in result.output


def test_json_output_lists_findings_and_errors(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    write(project, "z_broken.py", BROKEN)
    result = lint(".", "--format", "json")
    report = json.loads(result.output)
    assert 2 == result.exit_code
    assert 2 == report["files"]
    assert [("loop.py", 7, 1, "RG001", "unbounded-loop", "lint/RG001.md")] == [
        (item["path"], item["line"], item["column"], item["rule"], item["name"], item["docs"])
        for item in report["findings"]
    ]
    assert ["z_broken.py"] == [error["path"] for error in report["errors"]]


def sarif(project: Path, *args: str) -> dict[str, Any]:
    result = lint(".", "--format", "sarif", *args)
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_sarif_has_the_required_top_level_fields(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    document = sarif(project)
    assert "2.1.0" == document["version"]
    assert document["$schema"].endswith("sarif-2.1.0.json")
    assert 1 == len(document["runs"])


def test_sarif_driver_declares_every_rule_with_id_and_descriptions(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    driver = sarif(project)["runs"][0]["tool"]["driver"]
    assert "runaway-guard" == driver["name"]
    assert list(RULES) == [rule["id"] for rule in driver["rules"]]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"]


def test_sarif_results_have_rule_message_and_physical_location(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    run = sarif(project)["runs"][0]
    result = run["results"][0]
    location = result["locations"][0]["physicalLocation"]
    assert "RG001" == result["ruleId"]
    assert "RG001" == run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"]
    assert result["message"]["text"].startswith("while loop around a paid call")
    assert {"uri": "loop.py", "uriBaseId": "%SRCROOT%"} == location["artifactLocation"]
    assert {"startLine": 7, "startColumn": 1, "endLine": 7, "endColumn": 11} == location["region"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")


def test_sarif_reports_an_unparsable_file_as_a_failed_execution(project: Path) -> None:
    write(project, "broken.py", BROKEN)
    invocation = sarif(project)["runs"][0]["invocations"][0]
    notification = invocation["toolExecutionNotifications"][0]
    assert invocation["executionSuccessful"] is False
    assert "error" == notification["level"]
    assert notification["message"]["text"].startswith("broken.py does not parse")


def test_sarif_for_a_clean_tree_has_no_results_and_succeeds(project: Path) -> None:
    write(project, "clean.py", CLEAN)
    run = sarif(project)["runs"][0]
    assert ([], True) == (run["results"], run["invocations"][0]["executionSuccessful"])


def test_output_option_writes_the_report_to_a_file(project: Path) -> None:
    write(project, "loop.py", UNBOUNDED)
    result = lint("loop.py", "--format", "json", "--output", "report.json")
    written = json.loads((project / "report.json").read_text(encoding="utf-8"))
    assert ("", 1) == (result.output, result.exit_code)
    assert ["RG001"] == [item["rule"] for item in written["findings"]]


def test_pyproject_configuration_is_found_from_the_linted_path(project: Path) -> None:
    write(project, "pyproject.toml", '[tool.runaway-guard.lint]\nignore = ["RG001"]\n')
    write(project, "src/loop.py", UNBOUNDED)
    assert 0 == lint("src").exit_code


def test_isolated_ignores_the_configuration(project: Path) -> None:
    write(project, "pyproject.toml", '[tool.runaway-guard.lint]\nignore = ["RG001"]\n')
    write(project, "loop.py", UNBOUNDED)
    assert 1 == lint("loop.py", "--isolated").exit_code


def test_an_explicit_config_file_is_used(project: Path) -> None:
    write(project, "ci/lint.toml", '[lint]\nselect = ["RG009"]\n')
    write(project, "loop.py", UNBOUNDED)
    result = lint("loop.py", "--config", "ci/lint.toml")
    assert 0 == result.exit_code


def test_select_on_the_command_line_replaces_the_configured_selection(project: Path) -> None:
    write(project, "pyproject.toml", '[tool.runaway-guard.lint]\nselect = ["RG009"]\n')
    write(project, "loop.py", UNBOUNDED)
    assert 1 == lint("loop.py", "--select", "RG001").exit_code


def test_a_bad_configuration_is_a_usage_error_naming_file_and_key(project: Path) -> None:
    write(project, "pyproject.toml", '[tool.runaway-guard.lint]\nselct = ["RG001"]\n')
    write(project, "loop.py", UNBOUNDED)
    result = lint("loop.py")
    assert 2 == result.exit_code
    assert "pyproject.toml: unknown key 'selct'" in result.output


def test_exclude_skips_matching_files(project: Path) -> None:
    write(project, "app/loop.py", UNBOUNDED)
    write(project, "fixtures/loop.py", UNBOUNDED)
    result = lint(".", "--exclude", "fixtures")
    assert ["app"] == sorted({line.split("/")[0] for line in result.output.splitlines()[:-1]})


def test_virtualenv_and_cache_folders_are_skipped_when_walking(project: Path) -> None:
    write(project, ".venv/lib/openai_user.py", UNBOUNDED)
    write(project, "__pycache__/x.py", UNBOUNDED)
    result = lint(".")
    assert (0, "No findings; 0 files checked.\n") == (result.exit_code, result.output)


def test_list_rules_names_every_rule(project: Path) -> None:
    result = lint("--list-rules")
    assert list(RULES) == [line.split()[0] for line in result.output.splitlines()]


def test_an_unwritable_output_is_a_usage_error(project: Path) -> None:
    write(project, "clean.py", CLEAN)
    result = lint("clean.py", "--output", "missing-folder/report.txt")
    assert 2 == result.exit_code
    assert "cannot write the report to missing-folder/report.txt" in result.output
