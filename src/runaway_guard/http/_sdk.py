"""Guard errors the official SDKs pass through untouched.

The SDKs wrap what a transport raises. Anthropic's turns any exception that is not its
own into an ``APIConnectionError`` and retries it, so a budget refusal would be retried
(after a real sleep) as if the network had failed, and reach the caller disguised. An
error that is *also* an instance of the SDK's base error class passes through both SDKs
as it is, unretried. So before a guard error leaves the transport, it is re-raised as an
instance of a class that derives from both its own class and the base error of every
loaded SDK: callers still catch it as `rg.BudgetExceeded` (or `rg.GuardRefused`), with
its attributes, message and cause.

SDKs are never imported here: only those the program already loaded are considered.
"""

from __future__ import annotations

import sys
from typing import Any, Final, TypeVar, cast

from runaway_guard._errors import RunawayGuardError, _rebuild

__all__ = ["for_sdks"]

E = TypeVar("E", bound=RunawayGuardError)

_SDK_BASES: Final = (("openai", "OpenAIError"), ("anthropic", "AnthropicError"))


def _loaded_bases() -> tuple[type[Exception], ...]:
    bases = []
    for module_name, class_name in _SDK_BASES:
        module = sys.modules.get(module_name)
        base = getattr(module, class_name, None) if module is not None else None
        if isinstance(base, type) and issubclass(base, Exception):
            bases.append(base)
    return tuple(bases)


_classes: dict[tuple[type, tuple[type, ...]], type[Any]] = {}


def _mixed(cls: type[RunawayGuardError], bases: tuple[type[Exception], ...]) -> type[Any]:
    found = _classes.get((cls, bases))
    if found is not None:
        return found

    def reduce(self: Exception) -> tuple[Any, ...]:
        # Pickles as the plain guard error: the mixed class exists in this process only.
        return (_rebuild, (cls, self.__dict__, self.args))

    mixed = type(cls.__name__, (cls, *bases), {"__reduce__": reduce})
    mixed.__module__ = cls.__module__
    mixed.__qualname__ = cls.__qualname__
    _classes[(cls, bases)] = mixed
    return mixed


def for_sdks(exc: E) -> E:
    """`exc`, as an instance the loaded SDKs will re-raise without wrapping or retrying."""
    bases = tuple(base for base in _loaded_bases() if not isinstance(exc, base))
    if not bases:
        return exc
    mixed = _mixed(type(exc), bases)
    clone = cast(E, BaseException.__new__(mixed))
    clone.__dict__.update(exc.__dict__)
    clone.args = exc.args
    clone.__cause__ = exc.__cause__
    clone.__suppress_context__ = exc.__suppress_context__
    clone.__traceback__ = exc.__traceback__
    return clone
