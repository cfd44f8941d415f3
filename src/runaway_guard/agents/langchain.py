"""The agent guard for LangChain tools (``pip install 'runaway-guard[agents]'``).

```python
from langchain_core.tools import tool
from runaway_guard.agents import langchain as rg_langchain

@tool
def whois_lookup(asn: str) -> str:
    "Who owns an AS number."
    ...

whois = rg_langchain.guard_tool(toolbox, whois_lookup, price="€0.11", max_per_run="€0.55")
```

`guard_tool` returns the same tool (same name, schema, description, callbacks and
response format) whose every run, sync or async, goes through the toolbox first: price,
per-ticket caps, loop signature, refusals. A refused call comes back as an ordinary tool
result (a `ToolMessage` when invoked with a tool call) holding the refusal text; the
ticket's own walls raise. `compact` and `vote` bring the context budget and the halt
vote to a message loop of your own (or to any runner that hands you the messages).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from runaway_guard._errors import ContractError
from runaway_guard.agents._refusal import Refusal
from runaway_guard.agents._toolbox import Toolbox
from runaway_guard.agents._vote import Verdict

try:
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.tools import BaseTool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "runaway_guard.agents.langchain needs langchain-core: pip install 'runaway-guard[agents]'"
    ) from exc

__all__ = ["acompact", "compact", "guard_tool", "guard_tools", "vote"]

ToolT = TypeVar("ToolT", bound=BaseTool)

# Set while a guarded run is in progress: LangChain's default `_arun` runs `_run` in a
# worker thread (with this context copied), and that inner `_run` must not pay twice.
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "runaway_guard_langchain_inside", default=False
)


def guard_tool(toolbox: Toolbox, tool: ToolT, **register: Any) -> ToolT:
    """A copy of `tool` whose runs go through `toolbox`.

    Keyword arguments register the tool first (``price=``, ``max_per_run=``, ... as in
    `Toolbox.register`); without them it must be registered under its name already.
    Prices and loop signatures see the arguments the model sends (injected arguments
    such as callbacks and runtime objects are left out).
    """
    if not isinstance(tool, BaseTool):
        raise ContractError(f"{tool!r} is not a LangChain BaseTool")
    if register:
        toolbox.register(tool.name, **register)
    else:
        toolbox[tool.name]  # fail closed: an unregistered tool has no price and no cap
    owner = getattr(type(tool), "runaway_guard_toolbox", None)
    if owner is toolbox:
        return tool  # guarded already: a second wrapper would charge every call twice
    if owner is not None:
        raise ContractError(f"tool {tool.name!r} is already guarded by another toolbox")
    guarded = tool.model_copy()
    # A subclass per tool, overriding only _run/_arun: everything else (schema, parsing,
    # callbacks, ToolMessage building, error handling) stays LangChain's own.
    guarded.__class__ = _guarded_class(type(tool), toolbox, tool.name)  # type: ignore[assignment]
    return guarded


def guard_tools(toolbox: Toolbox, tools: Sequence[BaseTool]) -> list[BaseTool]:
    """`guard_tool` for each tool (each must be registered under its name)."""
    return [guard_tool(toolbox, tool) for tool in tools]


def _guarded_class(cls: type[BaseTool], toolbox: Toolbox, name: str) -> type[BaseTool]:
    plain_run = cls._run
    plain_arun = cls._arun

    @functools.wraps(plain_run)
    def _run(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE.get():
            return plain_run(self, *args, **kwargs)
        token = _INSIDE.set(True)
        try:
            result = toolbox.invoke(
                name, visible(self, args, kwargs), lambda: plain_run(self, *args, **kwargs)
            )
        finally:
            _INSIDE.reset(token)
        return _shaped(self, result)

    @functools.wraps(plain_arun)
    async def _arun(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE.get():
            return await plain_arun(self, *args, **kwargs)
        token = _INSIDE.set(True)
        try:
            result = await toolbox.ainvoke(
                name, visible(self, args, kwargs), lambda: plain_arun(self, *args, **kwargs)
            )
        finally:
            _INSIDE.reset(token)
        return _shaped(self, result)

    namespace = {
        "_run": _run,
        "_arun": _arun,
        "__module__": __name__,
        "__annotations__": {"runaway_guard_toolbox": ClassVar[Toolbox]},
        "runaway_guard_toolbox": toolbox,
    }
    return type(f"Guarded{cls.__name__}", (cls,), namespace)


def _shaped(tool: BaseTool, result: Any) -> Any:
    if isinstance(result, Refusal) and tool.response_format == "content_and_artifact":
        return result, None
    return result


def visible(tool: BaseTool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a tool run that the model chose, by name."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        names = set(schema.get("properties", {}))
    else:
        names = set(getattr(schema, "model_fields", {}))
    found = {key: value for key, value in kwargs.items() if key in names}
    if args:
        found["input"] = args[0] if len(args) == 1 else list(args)
    return found


# -- the context budget and the halt vote ---------------------------------------------------------
def compact(toolbox: Toolbox, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """`messages` with tool results summarised as the toolbox's context budget says.

    Raises:
        agents.ContextBudgetExceeded: still over the token cap after summarising.
    """
    results, other = _split(toolbox, messages)
    texts = toolbox.current().compact(results, other_tokens=other)
    return _rebuilt(messages, texts)


async def acompact(toolbox: Toolbox, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """`compact` for async code and async summarisers."""
    results, other = _split(toolbox, messages)
    texts = await toolbox.current().acompact(results, other_tokens=other)
    return _rebuilt(messages, texts)


def _split(toolbox: Toolbox, messages: Sequence[BaseMessage]) -> tuple[list[tuple[str, str]], int]:
    estimate = toolbox.context.estimate if toolbox.context is not None else None
    results: list[tuple[str, str]] = []
    other = 0
    for message in messages:
        if isinstance(message, ToolMessage):
            results.append((message.tool_call_id, message.text))
        elif estimate is not None:
            other += estimate(message.text) + sum(
                estimate(str(call.get("args", ""))) for call in getattr(message, "tool_calls", [])
            )
    return results, other


def _rebuilt(messages: Sequence[BaseMessage], texts: list[str]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    shown = iter(texts)
    for message in messages:
        if isinstance(message, ToolMessage):
            text = next(shown)
            out.append(
                message if text == message.text else message.model_copy(update={"content": text})
            )
        else:
            out.append(message)
    return out


def vote(toolbox: Toolbox, message: AIMessage, *, raise_on_wall: bool = True) -> Verdict:
    """Record the model's reply and count the halt vote for the current ticket.

    The model says done when it called no tool (or its text passes the vote's
    `model_done` predicate). The money wall raises `agents.MoneyWallReached` unless
    `raise_on_wall` is False.
    """
    ticket = toolbox.current()
    ticket.model_replied(message.text, called_tools=bool(message.tool_calls))
    return ticket.vote(raise_on_wall=raise_on_wall)
