"""`runaway-guard lint`: audit paid API call sites in Python source, without running it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from runaway_guard._errors import ConfigError
from runaway_guard.cli._app import app
from runaway_guard.lint import RULES, find_config, lint_paths, load_config, render
from runaway_guard.lint._report import FORMATS


@app.command()
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATH]..."
)
@click.option(
    "--select",
    multiple=True,
    metavar="RULES",
    help="Report only these rules (ids or names, comma-separated; replaces the config's).",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="RULES",
    help="Do not report these rules (ids or names, comma-separated).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (path:line:col: RULE message), json, or sarif (SARIF 2.1.0).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A pyproject.toml or runaway-guard.toml (default: the nearest one with a lint table).",
)
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Skip paths matching GLOB (relative to the configuration's folder); repeatable.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
def lint(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str,
    config_path: Path | None,
    isolated: bool,
    exclude: tuple[str, ...],
    output: Path | None,
    list_rules: bool,
) -> None:
    """Audit paid API call sites in PATHs (default: the current folder).

    Reads the source with Python's ast module; never imports or runs it. Exits 0 when
    clean, 1 when there are findings, 2 on a usage error or a file that does not parse
    (that file is reported and the others are still checked). Silence one finding with
    a reason: `# runaway-guard: ignore[RG003] <why>`.
    """
    if list_rules:
        for rule in RULES.values():
            click.echo(f"{rule.id}  {rule.name:<28} {rule.summary}")
        return
    targets = paths or (Path("."),)
    try:
        found = None if isolated else config_path or find_config(targets[0])
        config = load_config(found)
        config = config.with_rules(select or None, ignore)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if exclude:
        config = replace(config, exclude=(*config.exclude, *exclude))
    report = lint_paths(targets, config)
    text = render(report, output_format)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.UsageError(f"cannot write the report to {output}: {exc.strerror}") from exc
    raise SystemExit(report.exit_code)
