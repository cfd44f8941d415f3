"""`runaway-guard prices MODEL`: the unit prices a token-priced contract will use."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from runaway_guard.cli._app import app
from runaway_guard.llm import prices_for


@app.command()
@click.argument("model")
@click.option("--provider", help="genai-prices provider id (openai, anthropic, azure...).")
@click.option(
    "--at",
    "when",
    help="Price date, ISO 8601 (default: now). Prices change on dated boundaries.",
)
def prices(model: str, provider: str | None, when: str | None) -> None:
    """Show the token prices the guard uses for MODEL, from genai-prices' bundled data."""
    try:
        at = datetime.fromisoformat(when) if when else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"{when!r} is not an ISO 8601 date", param_hint="--at") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    rates = prices_for(model, provider=provider, at=at)
    if rates is None:
        where = f" for provider {provider!r}" if provider else ""
        raise click.ClickException(
            f"genai-prices has no price for {model!r}{where}. A contract calling it is "
            "refused unless it sets TokenPrice(fallback=rg.TokenRates(input=..., output=...))."
        )
    click.echo(f"{model}: model {rates.model!r} of provider {rates.provider!r} ({rates.source})")
    rows = rates.lines()
    width = max(len(label) for label, _ in rows)
    for label, price in rows:
        click.echo(f"  {label:<{width}}  {price}")
    if rates.context_window is not None:
        click.echo(f"  context window: {rates.context_window:,} tokens")
    click.echo(
        "Estimates hold the dearest rate that could apply to each input and output token "
        "(cache writes only when a request asks for caching); settlements use genai-prices' "
        "arithmetic on the usage the response reports."
    )
