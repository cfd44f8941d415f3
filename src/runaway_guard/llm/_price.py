"""`TokenPrice`: LLM calls priced per token, from genai-prices' bundled data.

Before a call it holds the worst case the request allows (an input-token bound from the
body, times the dearest input rate that could apply, plus the output bound times the
dearest output rate); after it, it charges what genai-prices computes for the usage the
response reported. Unknown models and unbounded output are refused, never priced at $0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runaway_guard._budget import check_count
from runaway_guard._errors import ContractError
from runaway_guard._money import Money
from runaway_guard._price import Call, Cost
from runaway_guard.llm._errors import UnboundedInput, UnboundedOutput, UnknownModel
from runaway_guard.llm._fallback import FallbackRates, TokenRates
from runaway_guard.llm._prices import Rates, resolve
from runaway_guard.llm._request import Api, RequestShape, measure
from runaway_guard.llm._tokens import Counter, tiktoken_counter
from runaway_guard.llm._usage import Observed, observed_from_json

__all__ = ["Prepared", "TokenPrice", "prices_for"]

_billed: dict[tuple[object, ...], Rates] = {}
"""The rates of a billed model (a dated snapshot, a service tier), by the rates asked for."""

DEFAULT_IMAGE_TOKENS = 16_384
"""Tokens held per image: a generous bound (an image's tokens depend on its pixels and
the detail setting, which the guard does not decode). Lower it if you bound image sizes."""


@dataclass(slots=True)
class Prepared:
    """A request's worst case, priced: what the guard holds before sending it.

    (Built on every request: a plain slotted dataclass, several times cheaper than a
    frozen one.)
    """

    api: Api
    model: str
    shape: RequestShape
    rates: Rates
    cost: Cost
    inject: dict[str, int]
    """Fields the guard adds to the body: the default output bound, when it applied."""
    url: str | None
    when: datetime
    """When the request was made: it selects the prices in force (UTC)."""


@dataclass(frozen=True)
class TokenPrice:
    """Price LLM calls per token with genai-prices (OpenAI and Anthropic APIs).

    ```python
    chat = guard.contract("support-bot", price=rg.TokenPrice(), max_per_run="$2.00",
                          provider_cap="OpenAI org usage limit, $50/month")
    client = OpenAI(http_client=chat.http_client())
    ```

    Args:
        provider: the genai-prices provider id (``"openai"``, ``"anthropic"``,
            ``"azure"``...). None: the one whose API URL matches the request, else the
            API's maker, else any provider that knows the model.
        model: price every request as this model (Azure deployments, proxies that rename
            models). None: the model the request names.
        fallback: `TokenRates` for a model genai-prices does not know. Without it, such a
            request is refused with `UnknownModel`.
        default_max_output_tokens: the output bound for a request that sets none. The
            HTTP transport also writes it into the request (``max_completion_tokens``,
            ``max_output_tokens`` or ``max_tokens``), so the provider enforces it. Without
            it, such a request is refused with `UnboundedOutput`.
        max_input_tokens: the input bound when part of the input cannot be measured (a
            file by id, ``previous_response_id``). None: the model's context window.
        image_tokens: tokens held per image, whatever its size.
        file_tokens: tokens held per file or PDF document. None: such input counts as
            unmeasured (see `max_input_tokens`).
        tokenizer: ``"auto"`` counts OpenAI models' text with tiktoken when it is
            installed and its encoding is cached locally (it is never downloaded);
            ``"bytes"`` always uses the byte bound; or your own ``f(text) -> tokens``,
            which must never count fewer tokens than the provider bills.
    """

    provider: str | None = None
    model: str | None = None
    fallback: TokenRates | None = None
    default_max_output_tokens: int | None = None
    max_input_tokens: int | None = None
    image_tokens: int = DEFAULT_IMAGE_TOKENS
    file_tokens: int | None = None
    tokenizer: str | Counter = "auto"

    def __post_init__(self) -> None:
        for option in ("default_max_output_tokens", "max_input_tokens", "file_tokens"):
            value = getattr(self, option)
            if value is not None:
                check_count(value, f"TokenPrice {option}")
        check_count(self.image_tokens, "TokenPrice image_tokens")
        if self.fallback is not None and not isinstance(self.fallback, TokenRates):
            raise ContractError(
                f"TokenPrice fallback must be rg.TokenRates(input=..., output=...), "
                f"got {self.fallback!r}"
            )
        if not callable(self.tokenizer) and self.tokenizer not in ("auto", "bytes"):
            raise ContractError(
                f"TokenPrice tokenizer must be 'auto', 'bytes' or a function of the text, "
                f"got {self.tokenizer!r}"
            )
        for option in ("provider", "model"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ContractError(f"TokenPrice {option} must be a non-empty string or None")

    def __str__(self) -> str:
        parts = ["token prices from genai-prices"]
        if self.provider is not None:
            parts.append(f"provider {self.provider}")
        if self.model is not None:
            parts.append(f"as model {self.model}")
        if self.fallback is not None:
            parts.append(f"fallback {self.fallback}")
        if self.default_max_output_tokens is not None:
            parts.append(f"default max output {self.default_max_output_tokens} tokens")
        return ", ".join(parts)

    # -- the HTTP layer ------------------------------------------------------------------------
    def counter(self, api: Api, model: str) -> Counter | None:
        """The token counter that tightens the input bound of `model`, if any."""
        if callable(self.tokenizer):
            return self.tokenizer
        if self.tokenizer == "bytes" or api.maker != "openai":
            return None  # tiktoken knows OpenAI's tokenizers only
        return tiktoken_counter(model)

    def rates(
        self,
        model: str,
        *,
        api: Api,
        contract: str,
        url: str | None = None,
        context: Mapping[str, str] | None = None,
        when: datetime | None = None,
    ) -> Rates:
        """The prices of `model`, or `UnknownModel` when neither genai-prices nor the
        fallback has them."""
        found = resolve(
            model,
            provider=self.provider,
            api_url=url,
            default_provider=api.maker,
            context=context,
            when=datetime.now(UTC) if when is None else when.astimezone(UTC),
        )
        if found is not None:
            return found
        if self.fallback is not None:
            return FallbackRates(self.fallback, model, self.provider or api.maker)
        raise UnknownModel(contract=contract, model=model, provider=self.provider or api.maker)

    def prepare(
        self,
        api: Api,
        body: Mapping[str, Any],
        *,
        contract: str,
        raw: bytes | None = None,
        url: str | None = None,
        when: datetime | None = None,
    ) -> Prepared:
        """Price a request's worst case, or refuse it (`UnknownModel`, `UnboundedOutput`,
        `UnboundedInput`)."""
        named = body.get("model")
        model = self.model or (named if isinstance(named, str) and named else None)
        if model is None:
            raise UnknownModel(contract=contract, model="", provider=self.provider or api.maker)
        when = datetime.now(UTC) if when is None else when.astimezone(UTC)
        shape = measure(
            api,
            body,
            raw,
            counter=self.counter(api, model),
            image_tokens=self.image_tokens,
            file_tokens=self.file_tokens,
        )
        rates = self.rates(
            model, api=api, contract=contract, url=url, context=shape.context, when=when
        )
        if shape.server_tool is not None:
            raise UnboundedInput(
                f"the request uses the server-side tool {shape.server_tool!r}: its results "
                "are billed as input and its fees are not in the request, so the guard cannot "
                "bound the call's cost before it is made; remove the tool, or price the call "
                "yourself with a contract whose price is rg.Dynamic",
                contract=contract,
            )
        inject: dict[str, int] = {}
        output = shape.output_tokens
        if output is None:
            default = self._default_output(api, contract)
            inject[api.output_field or ""] = default
            output = default * shape.choices
        if shape.unbounded_search:
            raise UnboundedOutput(
                "the request offers the web_search tool without max_uses, and every search "
                "is billed; set max_uses on the tool",
                contract=contract,
                field="max_uses",
            )
        input_tokens = shape.input_tokens
        if shape.unmeasured is not None:
            ceiling = self.max_input_tokens
            if ceiling is None:
                ceiling = rates.context_window
            if ceiling is None:
                raise UnboundedInput(
                    f"the input includes {shape.unmeasured}, which cannot be measured before "
                    f"the call, and model {model!r} has no known context window; set "
                    "TokenPrice(max_input_tokens=N)",
                    contract=contract,
                )
            input_tokens = max(input_tokens, ceiling)
        input_tokens *= shape.rounds
        worst = rates.worst_case(input_tokens, output, shape.features, shape.searches)
        cost = Cost(Money.from_decimal(worst), input_tokens + output)
        return Prepared(api, model, shape, rates, cost, inject, url, when)

    def _default_output(self, api: Api, contract: str) -> int:
        field = api.output_field or "max_tokens"
        if self.default_max_output_tokens is None:
            raise UnboundedOutput(
                f"the request sets no {field}, so its output (and cost) has no bound; set "
                f"{field} in the request, or TokenPrice(default_max_output_tokens=N) on the "
                "contract",
                contract=contract,
                field=field,
            )
        return self.default_max_output_tokens

    def cost_of(self, prepared: Prepared, observed: Observed) -> Cost:
        """What genai-prices charges for the usage a response reported.

        Raises:
            ValueError: the usage is inconsistent (parts larger than their total).
        """
        rates = prepared.rates
        model = observed.model or prepared.model
        if model != prepared.model or observed.context:
            # The response names the model (and tier) that was billed.
            context = {**prepared.shape.context, **observed.context}
            key = (id(rates), model, tuple(sorted(context.items())), prepared.when.toordinal())
            billed = _billed.get(key, rates)
            if key not in _billed:
                found = resolve(
                    model,
                    provider=self.provider,
                    api_url=prepared.url,
                    default_provider=prepared.api.maker,
                    context=context,
                    when=prepared.when,
                )
                if len(_billed) >= 1024:
                    _billed.clear()
                billed = _billed[key] = found or rates
            rates = billed
        return Cost(Money.from_decimal(rates.cost(observed.usage)), observed.tokens)

    # -- the Price protocol: contract.call(client.chat.completions.create, **request) ----------
    def estimate(self, call: Call) -> Cost:
        """The worst case of a call whose keyword arguments are the request body."""
        body = _request_body(call.kwargs, call.contract)
        api = self._api_of(body, call.contract)
        prepared = self.prepare(api, body, contract=call.contract)
        if prepared.inject:
            field = next(iter(prepared.inject))
            # contract.call passes the request on as written: a default bound would be
            # held for but never sent, and the provider could write far past it.
            raise UnboundedOutput(
                f"the request sets no {field}; contract.call cannot add "
                "default_max_output_tokens to it, so set it in the request, or use "
                "contract.http_client(), which writes the default into the request",
                contract=call.contract,
                field=field,
            )
        return prepared.cost

    def actual(self, call: Call, result: object) -> Cost | None:
        """The cost of an SDK result's usage; None (charge the estimate) without one."""
        api = self._api_of(_request_body(call.kwargs, call.contract), call.contract)
        observed = observed_from_json(api, _as_data(result))
        if observed is None:
            return None
        named = call.kwargs.get("model")
        model = observed.model or self.model or (named if isinstance(named, str) else "")
        rates = self.rates(model, api=api, contract=call.contract, context=observed.context)
        return Cost(Money.from_decimal(rates.cost(observed.usage)), observed.tokens)

    def _api_of(self, kwargs: Mapping[str, Any], contract: str) -> Api:
        model = str(self.model or kwargs.get("model") or "").lower()
        provider = (self.provider or "").lower()
        if "messages" in kwargs or "system" in kwargs:
            claude = provider == "anthropic" or (not provider and "claude" in model)
            return Api.MESSAGES if claude or "system" in kwargs else Api.CHAT
        if "input" in kwargs:
            return Api.EMBEDDINGS if "embedding" in model else Api.RESPONSES
        raise ContractError(
            f"contract {contract!r}: TokenPrice cannot tell which LLM API this call is "
            "(it expects the request as keyword arguments: messages=... or input=...); "
            "guard the SDK with contract.http_client() instead, which sees each request"
        )


# Keyword arguments of the SDKs' create() methods that configure the client, not the body.
_SDK_OPTIONS = frozenset({"timeout", "extra_headers", "extra_query", "extra_body", "stream_cls"})


def _request_body(kwargs: Mapping[str, Any], contract: str) -> dict[str, Any]:
    """The request body of an SDK call's keyword arguments, checked to be JSON."""
    body = {key: value for key, value in kwargs.items() if key not in _SDK_OPTIONS}
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        raise ContractError(
            f"contract {contract!r}: TokenPrice measures the request from its keyword "
            f"arguments, and one of them is not JSON ({exc}); pass plain data, or guard the "
            "SDK with contract.http_client(), which measures the request as sent"
        ) from None
    return body


def _as_data(result: object) -> object:
    dump: Callable[[], object] | None = getattr(result, "model_dump", None)
    if callable(dump):
        return dump()
    return result


def prices_for(
    model: str, *, provider: str | None = None, at: datetime | None = None
) -> Rates | None:
    """The prices the guard uses for `model` (None when genai-prices does not know it).

    Without `provider`, OpenAI is tried first, then Anthropic, then any provider whose
    models match the name.
    """
    when = datetime.now(UTC) if at is None else at.astimezone(UTC)
    if provider is not None:
        return resolve(
            model, provider=provider, api_url=None, default_provider=None, context=None, when=when
        )
    for maker in ("openai", "anthropic", None):
        found = resolve(
            model, provider=maker, api_url=None, default_provider=None, context=None, when=when
        )
        if found is not None:
            return found
    return None
