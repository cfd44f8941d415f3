"""Routes: which requests a guarded client pays for, and at what price.

A route is ``"[METHOD ]host/path"`` or ``"[METHOD ]/path"``, with ``*`` wildcards:
``"POST fal.run/fal-ai/flux/*"``, ``"GET api.example.com/v1/lookup"``, ``"/v1/status"``.
Its price is an amount per call (``"$0.05"``), any `Price`, or None for a request that
costs nothing and takes no hold. The first route that matches wins; a request no route
matches is priced by the contract's own price.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from runaway_guard._errors import ContractError
from runaway_guard._price import Price, as_price

__all__ = ["LLM_FREE_ROUTES", "Route", "match", "parse_routes"]

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Route:
    """One declared route and its price (None: free, no hold)."""

    text: str
    method: str | None
    host: str | None
    path: str
    price: Price | None

    def matches(self, method: str, host: str, netloc: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.host is not None and not (
            fnmatch.fnmatchcase(host, self.host) or fnmatch.fnmatchcase(netloc, self.host)
        ):
            return False
        return fnmatch.fnmatchcase(path, self.path)


def _parse(text: str, price: Price | None) -> Route:
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"a route must be text like 'POST api.example.com/v1/*', got {text!r}")
    method: str | None = None
    rest = text.strip()
    first, _, remainder = rest.partition(" ")
    if remainder and first.upper() in _METHODS:
        method, rest = first.upper(), remainder.strip()
    if "://" in rest:
        raise ContractError(f"route {text!r}: write the host and path without a scheme")
    if rest.startswith("/"):
        return Route(text, method, None, rest, price)
    host, slash, path = rest.partition("/")
    if not host or not slash:
        raise ContractError(
            f"route {text!r}: write 'host/path' or '/path' (with * wildcards), "
            "e.g. 'POST fal.run/fal-ai/*'"
        )
    return Route(text, method, host.lower(), "/" + path, price)


def parse_routes(routes: Mapping[str, object] | None) -> tuple[Route, ...]:
    """Validate a ``{route: price}`` mapping, in its order."""
    parsed = []
    for text, value in (routes or {}).items():
        price = None if value is None else as_price(value)
        parsed.append(_parse(text, price))
    return tuple(parsed)


def match(
    routes: tuple[Route, ...], method: str, host: str, netloc: str, path: str
) -> Route | None:
    """The first route that matches the request, or None."""
    for route in routes:
        if route.matches(method, host, netloc, path):
            return route
    return None


LLM_FREE_ROUTES: Final = parse_routes(
    {
        "GET /*": None,
        "HEAD /*": None,
        "OPTIONS /*": None,
        "DELETE /*": None,
        "POST /*/count_tokens": None,
        "POST /*/input_tokens": None,
        "POST /*/moderations": None,
        "POST /*/cancel": None,
        "POST /*/files": None,
        "POST /*/uploads": None,
        "POST /*/uploads/*": None,
        "POST /*/conversations": None,
    }
)
"""Requests an LLM API does not bill per request: reads, deletes, token counting,
moderation, cancellation, file uploads and new conversations. They pass a token-priced
client without a hold."""
