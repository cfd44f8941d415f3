"""Figures and the table every benchmark prints: the value, and the target beside it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure; `ok` is None when it has no target."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


def render(title: str, figures: list[Figure]) -> str:
    width = max((len(f.name) for f in figures), default=0)
    lines = [title, ""]
    for figure in figures:
        verdict = "" if figure.ok is None else ("  ok" if figure.ok else "  MISSED")
        target = f"  target {figure.target}" if figure.target else ""
        lines.append(
            f"  {figure.name:<{width}}  {figure.value:12,.2f} {figure.unit:<7}{target}{verdict}"
        )
    return "\n".join(lines)
