"""`[tool.runaway-guard.lint]`: selection, paid names, per-rule options and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import runaway_guard as rg
from runaway_guard.lint import LintConfig, check_source, find_config, load_config


def config_from(tmp_path: Path, body: str) -> LintConfig:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.runaway-guard.lint]\n{body}\n", encoding="utf-8")
    return load_config(path)


def rules(source: str, config: LintConfig | None = None) -> list[tuple[int, str]]:
    return [(finding.line, finding.rule) for finding in check_source(source, "x.py", config)]


WHOIS = """\
import acme.whois as whois

def lookup_all(domains):
    while True:
        whois.lookup(domains.pop())
"""


def test_no_file_means_every_rule_and_no_extra_names() -> None:
    config = load_config(None)
    assert (frozenset(f"RG{n:03d}" for n in range(1, 12)), ()) == (
        config.select,
        config.paid_calls,
    )


def test_select_and_ignore_combine(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'select = ["RG001", "RG002", "RG010"]\nignore = ["RG010"]')
    assert frozenset({"RG001", "RG002"}) == config.select


def test_rules_may_be_named_instead_of_numbered(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'select = ["unbounded-loop"]')
    assert frozenset({"RG001"}) == config.select


def test_configured_paid_calls_are_paid_call_sites(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'paid-calls = ["acme.whois.lookup"]')
    assert [(4, "RG001"), (5, "RG010")] == rules(WHOIS, config)


def test_paid_call_patterns_may_use_globs(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'paid-calls = ["acme.whois.*"]')
    assert [(4, "RG001"), (5, "RG010")] == rules(WHOIS, config)


def test_without_configuration_an_unknown_vendor_is_not_paid() -> None:
    assert [] == rules(WHOIS)


def test_configured_paid_clients_make_every_method_call_paid(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'paid-clients = ["acme.Geocoder"]')
    source = "from acme import Geocoder\ngeo = Geocoder()\ngeo.locate('x')\n"
    assert [(3, "RG010")] == rules(source, config)


def test_configured_contracts_guard_a_decorated_function(tmp_path: Path) -> None:
    source = (
        "from billing import enrich\nfrom openai import OpenAI\nclient = OpenAI()\n"
        "@enrich\ndef f(m):\n"
        "    return client.chat.completions.create(model='m', messages=m, max_tokens=9)\n"
    )
    config = config_from(tmp_path, 'contracts = ["billing.*"]')
    assert ([(6, "RG010")], []) == (rules(source), rules(source, config))


def test_extra_limiters_bound_a_fan_out(tmp_path: Path) -> None:
    source = """\
import asyncio
import fal_client
from acme.limits import Gate

gate = Gate(3)

async def one(p):
    async with gate:
        return await fal_client.run_async("m", arguments={"prompt": p})

async def many(prompts):
    return await asyncio.gather(*[one(p) for p in prompts])
"""
    config = config_from(
        tmp_path,
        'ignore = ["RG010"]\n[tool.runaway-guard.lint.RG003]\nlimiters = ["acme.limits.Gate"]',
    )
    assert ([(12, "RG003")], []) == (
        rules(source, config_from(tmp_path, 'ignore = ["RG010"]')),
        rules(source, config),
    )


def test_extra_chunkers_bound_a_fan_out(tmp_path: Path) -> None:
    source = """\
import asyncio
import fal_client
from acme.batches import slices

async def many(prompts):
    for batch in slices(prompts, 10):
        await asyncio.gather(*[fal_client.run_async("m", arguments=p) for p in batch])
"""
    plain = config_from(tmp_path, 'ignore = ["RG010"]')
    config = config_from(
        tmp_path,
        'ignore = ["RG010"]\n[tool.runaway-guard.lint.RG003]\nchunkers = ["acme.batches.slices"]',
    )
    assert ([(7, "RG003")], []) == (rules(source, plain), rules(source, config))


def test_extra_sleeps_make_a_loop_a_poll(tmp_path: Path) -> None:
    source = """\
import replicate
from acme.clock import pause

def wait(version):
    prediction = replicate.predictions.get(version)
    while prediction.status != "succeeded":
        pause(5)
        prediction.reload()
"""
    config = config_from(tmp_path, '[tool.runaway-guard.lint.RG007]\nsleeps = ["acme.clock.pause"]')
    assert ([], [(6, "RG007")]) == (rules(source), rules(source, config))


def test_extra_task_decorators_make_a_queued_task(tmp_path: Path) -> None:
    source = """\
from acme.queue import job
from openai import OpenAI
client = OpenAI(max_retries=0)

@job
def digest(day):
    client.chat.completions.create(model="m", messages=[], max_tokens=9)
    digest.delay(day + 1)
"""
    config = config_from(
        tmp_path,
        'ignore = ["RG010"]\n[tool.runaway-guard.lint.RG008]\ntask-decorators = ["acme.queue.job"]',
    )
    assert [(8, "RG008")] == rules(source, config)


def test_extra_bound_keywords_satisfy_the_output_bound(tmp_path: Path) -> None:
    source = (
        "import litellm\nlitellm.completion(model='ollama/llama3', messages=[], num_predict=200)\n"
    )
    config = config_from(
        tmp_path,
        'select = ["RG009"]\n[tool.runaway-guard.lint.RG009]\nbound-kwargs = ["num_predict"]',
    )
    assert ([(2, "RG009")], []) == (
        rules(source, config_from(tmp_path, 'select = ["RG009"]')),
        rules(source, config),
    )


def test_contract_fields_can_be_narrowed(tmp_path: Path) -> None:
    source = (
        "import fal_client\n# cost contract: $0.05/image, provider cap: Fal $50/day\n"
        "fal_client.run('m', arguments={})\n"
    )
    config = config_from(
        tmp_path, '[tool.runaway-guard.lint.RG010]\nfields = ["unit-cost", "provider-cap"]'
    )
    assert ([(3, "RG010")], []) == (rules(source), rules(source, config))


def test_guarded_factories_name_the_guarded_http_client_helper(tmp_path: Path) -> None:
    source = (
        "from openai import OpenAI\nimport guarding\n"
        "client = OpenAI(max_retries=0, http_client=guarding.metered(contract))\n"
        "client.embeddings.create(model='m', input='x')\n"
    )
    config = config_from(
        tmp_path, '[tool.runaway-guard.lint.RG010]\nguarded-factories = ["metered"]'
    )
    assert ([(4, "RG010")], []) == (rules(source), rules(source, config))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('selct = ["RG001"]', "unknown key 'selct' in the lint table"),
        ('select = ["RG042"]', "unknown rule 'RG042'"),
        ("select = 3", "select must be a list of strings, not 3"),
        ('[tool.runaway-guard.lint.RG001]\nlimiters = ["x"]', "RG001 has no option 'limiters'"),
        ('[tool.runaway-guard.lint.RG010]\nfields = ["price"]', "unknown field(s) price"),
        ("[tool.runaway-guard.lint.RG003]\nlimiters = [1]", "RG003.limiters must be a list"),
    ],
)
def test_configuration_errors_name_the_file_and_the_key(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(rg.ConfigError) as caught:
        config_from(tmp_path, body)
    assert str(tmp_path / "pyproject.toml") in str(caught.value)
    assert message in str(caught.value)


def test_invalid_toml_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.runaway-guard.lint\n", encoding="utf-8")
    with pytest.raises(rg.ConfigError, match="is not valid TOML"):
        load_config(path)


def test_find_config_walks_up_to_the_nearest_file_with_a_lint_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.runaway-guard.lint]\n", encoding="utf-8")
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname='x'\n", encoding="utf-8")
    assert tmp_path / "pyproject.toml" == find_config(inner)


def test_a_runaway_guard_toml_with_a_lint_table_is_found_first(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.runaway-guard.lint]\n", encoding="utf-8")
    (tmp_path / "runaway-guard.toml").write_text("[lint]\nignore = ['RG009']\n", encoding="utf-8")
    found = find_config(tmp_path)
    assert tmp_path / "runaway-guard.toml" == found
    assert "RG009" not in load_config(found).select


def test_exclude_globs_are_relative_to_the_configuration(tmp_path: Path) -> None:
    config = config_from(tmp_path, 'exclude = ["tests/fixtures", "*_pb2.py"]')
    assert (True, True, False) == (
        config.excluded(tmp_path / "tests" / "fixtures" / "a.py"),
        config.excluded(tmp_path / "src" / "api_pb2.py"),
        config.excluded(tmp_path / "src" / "api.py"),
    )
