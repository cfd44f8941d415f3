"""Token-priced LLM calls: prices from genai-prices, worst cases from request bodies.

`TokenPrice` is a contract price for OpenAI (Chat Completions, Responses, embeddings)
and Anthropic (Messages) calls. Use it with the guarded HTTP client
(``contract.http_client()``), which sees every request the SDK sends, retries included.

genai-prices is imported on first use (``pip install 'runaway-guard[llm]'``); its
background price updater is never started by the guard.
"""

from runaway_guard.llm._errors import UnboundedInput, UnboundedOutput, UnknownModel
from runaway_guard.llm._fallback import TokenRates
from runaway_guard.llm._price import DEFAULT_IMAGE_TOKENS, Prepared, TokenPrice, prices_for
from runaway_guard.llm._prices import Features, Rates
from runaway_guard.llm._request import Api, RequestShape, api_for_path
from runaway_guard.llm._usage import Observed, UsageMeter, observed_from_json, usage_keys

__all__ = [
    "DEFAULT_IMAGE_TOKENS",
    "Api",
    "Features",
    "Observed",
    "Prepared",
    "Rates",
    "RequestShape",
    "TokenPrice",
    "TokenRates",
    "UnboundedInput",
    "UnboundedOutput",
    "UnknownModel",
    "UsageMeter",
    "api_for_path",
    "observed_from_json",
    "prices_for",
    "usage_keys",
]
