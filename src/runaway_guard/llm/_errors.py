"""Why a token-priced request is refused before it is sent.

```
ContractError
├── UnknownModel        genai-prices has no price for the model, and no fallback is set
├── UnboundedOutput     the request sets no output bound, and no default is set
└── UnboundedInput      part of the input cannot be measured, and no bound is set
```

Each is a `ContractError`: the code (or the contract) must change, so retrying is useless.
"""

from __future__ import annotations

from runaway_guard._errors import ContractError

__all__ = ["UnboundedInput", "UnboundedOutput", "UnknownModel"]


class UnknownModel(ContractError):
    """No price is known for the model: it is refused rather than priced at $0.

    Attributes:
        model: the model the request named.
        provider: the provider whose prices were searched.
    """

    def __init__(self, *, contract: str, model: str, provider: str) -> None:
        self.contract = contract
        self.model = model
        self.provider = provider
        if not model:
            message = (
                "the request names no model, so it cannot be priced; set "
                "TokenPrice(model=...) to the model it runs (an Azure deployment, a proxy)"
            )
        else:
            message = (
                f"genai-prices has no price for model {model!r} (provider {provider!r}); set "
                "TokenPrice(fallback=rg.TokenRates(input='$3.00', output='$15.00')) with the "
                "model's real prices per million tokens, or TokenPrice(provider=...) if the "
                f"provider was guessed wrong (see `runaway-guard prices {model}`)"
            )
        super().__init__(f"contract {contract!r}: {message}")


class UnboundedOutput(ContractError):
    """The request could produce any number of output tokens (or paid tool uses).

    Attributes:
        field: the request field that would bound it (``max_tokens``, ...).
    """

    def __init__(self, message: str, *, contract: str, field: str) -> None:
        self.contract = contract
        self.field = field
        super().__init__(f"contract {contract!r}: {message}")


class UnboundedInput(ContractError):
    """Part of the input (a file by id, a stored conversation) cannot be measured."""

    def __init__(self, message: str, *, contract: str) -> None:
        self.contract = contract
        super().__init__(f"contract {contract!r}: {message}")
