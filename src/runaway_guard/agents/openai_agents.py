"""The agent guard for the OpenAI Agents SDK (``pip install 'runaway-guard[agents]'``).

```python
from agents import Agent, function_tool
from runaway_guard.agents import openai_agents

toolbox.register("whois_lookup", price="€0.11", max_per_run="€0.55")
agent = Agent(name="support", tools=[whois_lookup])   # whois_lookup is a @function_tool

with toolbox.ticket("T-4821", budget="€2.00"):
    result = await openai_agents.run(toolbox, agent, "Webhooks arrive late")
```

`run` wraps `Runner.run`: every function tool goes through the toolbox (price, caps,
loop signature, refusals), the context budget rewrites tool outputs before each model
call (`RunConfig.call_model_input_filter`), the halt vote runs after each batch of tool
results (`Agent.tool_use_behavior`), and the model's replies are recorded for the vote
(`RunHooks.on_llm_end`). The SDK wraps an exception raised inside a tool in its own
`UserError`; `run` re-raises the guard's error itself (`rg.LoopDetected`,
`rg.BudgetExceeded`, `agents.AgentHalted`...). To call `Runner` yourself, use the
pieces: `guard_agent`, `run_config`, `hooks` and `unwrap`.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from runaway_guard._errors import ContractError, RunawayGuardError
from runaway_guard.agents._toolbox import Toolbox

try:
    from agents.run_config import CallModelData, ModelInputData
    from agents.tool_context import ToolContext
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    from agents import (
        Agent,
        FunctionTool,
        FunctionToolResult,
        ModelResponse,
        RunConfig,
        RunContextWrapper,
        RunHooks,
        Runner,
        RunResult,
        Tool,
        ToolsToFinalOutputResult,
        TResponseInputItem,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "runaway_guard.agents.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'runaway-guard[agents]'"
    ) from exc

__all__ = [
    "GuardHooks",
    "guard_agent",
    "guard_tool",
    "halt_vote",
    "hooks",
    "run",
    "run_config",
    "unwrap",
]

Invoke = Callable[[ToolContext[Any], str], Awaitable[Any]]


# -- tools ---------------------------------------------------------------------------------------
class _GuardedInvoke:
    """A `FunctionTool.on_invoke_tool` that goes through the toolbox first."""

    def __init__(self, toolbox: Toolbox, name: str, inner: Invoke) -> None:
        self.toolbox = toolbox
        self._toolbox = toolbox
        self._name = name
        self._inner = inner
        # The SDK marks sync tools on their invoker (it refuses timeouts for them).
        for marker in ("__agents_sync_function_tool__",):
            if getattr(inner, marker, False):
                setattr(self, marker, True)

    async def __call__(self, ctx: ToolContext[Any], input_json: str) -> Any:
        return await self._toolbox.ainvoke(
            self._name, arguments(input_json), lambda: self._inner(ctx, input_json)
        )

    def prepare_arguments(self, input_json: str, tool_name: str) -> Any:
        # Approval policies (needs_approval) read prepared arguments from the invoker.
        prepare = getattr(self._inner, "prepare_arguments", None)
        return prepare(input_json, tool_name) if callable(prepare) else None


def arguments(input_json: str) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict, for prices and loop signatures."""
    try:
        value = json.loads(input_json) if input_json else {}
    except ValueError:
        return {"arguments": input_json}
    return value if isinstance(value, dict) else {"arguments": value}


def guard_tool(toolbox: Toolbox, tool: FunctionTool, **register: Any) -> FunctionTool:
    """A copy of `tool` whose every call goes through `toolbox`.

    Keyword arguments register the tool first (``price=``, ``max_per_run=``, ... as in
    `Toolbox.register`); without them it must be registered under its name already.
    """
    if not isinstance(tool, FunctionTool):
        raise ContractError(
            f"{tool!r} is not a FunctionTool; only function tools run in this process and "
            "can be guarded per call (hosted tools are billed by the provider: cap them there)"
        )
    if register:
        toolbox.register(tool.name, **register)
    else:
        toolbox[tool.name]  # fail closed: an unregistered tool has no price and no cap
    if isinstance(tool.on_invoke_tool, _GuardedInvoke):
        if tool.on_invoke_tool.toolbox is toolbox:
            return tool  # guarded already: a second wrapper would charge every call twice
        raise ContractError(f"tool {tool.name!r} is already guarded by another toolbox")
    guarded = copy.copy(tool)
    guarded.on_invoke_tool = _GuardedInvoke(toolbox, tool.name, tool.on_invoke_tool)
    return guarded


def halt_vote(
    toolbox: Toolbox,
) -> Callable[[RunContextWrapper[Any], list[FunctionToolResult]], Awaitable[Any]]:
    """An `Agent.tool_use_behavior` that counts the halt vote after each batch of results.

    When the model and the classifier agree, the run ends with the model's latest text
    as its final output; the money wall raises `agents.MoneyWallReached`.
    """

    async def decide(
        context: RunContextWrapper[Any], results: list[FunctionToolResult]
    ) -> ToolsToFinalOutputResult:
        ticket = toolbox.current()
        verdict = ticket.vote(raise_on_wall=True)
        if verdict.stop:
            text = ticket.state.model[0]
            return ToolsToFinalOutputResult(
                is_final_output=True, final_output=text or verdict.reason
            )
        return ToolsToFinalOutputResult(is_final_output=False)

    return decide


def guard_agent(toolbox: Toolbox, agent: Agent[Any]) -> Agent[Any]:
    """A clone of `agent` with every tool guarded and, with a halt vote, the vote wired in.

    Agents in `agent.handoffs` are guarded too (the model can hand the ticket to them).
    A `Handoff` object hides its agent: guard that agent before wrapping it in one.
    """
    return _guard_agent(toolbox, agent, {})


def _guard_agent(toolbox: Toolbox, agent: Agent[Any], done: dict[int, Agent[Any]]) -> Agent[Any]:
    if id(agent) in done:
        return done[id(agent)]
    tools: list[Tool] = [guard_tool(toolbox, _function_tool(tool)) for tool in agent.tools]
    changes: dict[str, Any] = {"tools": tools}
    if toolbox.halt is not None and not _votes(agent):
        if agent.tool_use_behavior != "run_llm_again":
            raise ContractError(
                f"agent {agent.name!r} sets tool_use_behavior={agent.tool_use_behavior!r}, but "
                "the toolbox's halt vote needs it; drop one of the two"
            )
        changes["tool_use_behavior"] = halt_vote(toolbox)
    clone = done[id(agent)] = agent.clone(**changes)
    # Handoff targets run the same ticket: their tools must be guarded as well.
    clone.handoffs = [
        _guard_agent(toolbox, target, done) if isinstance(target, Agent) else target
        for target in agent.handoffs
    ]
    return clone


def _votes(agent: Agent[Any]) -> bool:
    return getattr(agent.tool_use_behavior, "runaway_guard_vote", False) is True


def _function_tool(tool: Tool) -> FunctionTool:
    if isinstance(tool, FunctionTool):
        return tool
    raise ContractError(
        f"tool {getattr(tool, 'name', tool)!r} ({type(tool).__name__}) runs at the provider, "
        "where the guard cannot price or refuse each call; remove it from the agent or "
        "cap it on the provider's side"
    )


# -- the context budget --------------------------------------------------------------------------
def run_config(toolbox: Toolbox, base: RunConfig | None = None) -> RunConfig:
    """`base` (or a new `RunConfig`) with the toolbox's context budget before each model call."""
    config = base if base is not None else RunConfig()
    if toolbox.context is None:
        return config
    inner = config.call_model_input_filter

    async def compact(data: CallModelData[Any]) -> ModelInputData:
        if inner is not None:
            value = inner(data)
            data = dataclasses.replace(
                data, model_data=await value if inspect.isawaitable(value) else value
            )
        return await _compact(toolbox, data.model_data)

    return dataclasses.replace(config, call_model_input_filter=compact)


async def _compact(toolbox: Toolbox, model_data: ModelInputData) -> ModelInputData:
    budget = toolbox.context
    assert budget is not None  # run_config installs this filter only with a budget
    items: list[Any] = list(model_data.input)
    results: list[tuple[str, str]] = []
    positions: list[int] = []
    other = budget.estimate(model_data.instructions or "")
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            results.append((str(item.get("call_id")), _text(item.get("output"))))
            positions.append(index)
        else:
            other += budget.estimate(_text(item))
    texts = await toolbox.current().acompact(results, other_tokens=other)
    for index, (_, raw), text in zip(positions, results, texts, strict=True):
        if text != raw:
            items[index] = {**items[index], "output": text}
    return ModelInputData(input=items, instructions=model_data.instructions)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


_run_config = run_config  # `run` takes a parameter of the same name


# -- the model's replies -------------------------------------------------------------------------
class GuardHooks(RunHooks[Any]):
    """Run hooks that record each model reply for the halt vote, then call `inner`'s."""

    def __init__(self, toolbox: Toolbox, inner: RunHooks[Any] | None = None) -> None:
        self.toolbox = toolbox
        self.inner = inner

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        text, called = reply(response)
        self.toolbox.current().model_replied(text, called_tools=called)
        if self.inner is not None:
            await self.inner.on_llm_end(context, agent, response)

    async def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_llm_start(*args, **kwargs)

    async def on_agent_start(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_agent_start(*args, **kwargs)

    async def on_agent_end(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_agent_end(*args, **kwargs)

    async def on_handoff(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_handoff(*args, **kwargs)

    async def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_tool_start(*args, **kwargs)

    async def on_tool_end(self, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await self.inner.on_tool_end(*args, **kwargs)


def hooks(toolbox: Toolbox, inner: RunHooks[Any] | None = None) -> GuardHooks:
    """Run hooks for `Runner.run(..., hooks=...)` that feed the halt vote."""
    return GuardHooks(toolbox, inner)


def reply(response: ModelResponse) -> tuple[str, bool]:
    """A model response's text, and whether it called any tool."""
    texts: list[str] = []
    called = False
    for item in response.output:
        if isinstance(item, ResponseOutputMessage):
            texts.extend(part.text for part in item.content if isinstance(part, ResponseOutputText))
        elif isinstance(item, ResponseFunctionToolCall) or str(getattr(item, "type", "")).endswith(
            "_call"
        ):
            called = True  # a function tool, or a hosted one (web search, file search...)
    return "".join(texts), called


# -- running -------------------------------------------------------------------------------------
def unwrap(exc: BaseException) -> RunawayGuardError | None:
    """The guard's error inside an SDK error (tools' errors arrive as `UserError`), if any."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        if isinstance(node, RunawayGuardError):
            return node
        seen.add(id(node))
        node = node.__cause__
    return None


async def run(
    toolbox: Toolbox,
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    run_config: RunConfig | None = None,
    hooks: RunHooks[Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    """`Runner.run` with the agent guarded; the guard's errors are raised as themselves.

    Run it inside a ticket (``with toolbox.ticket(...)``); extra keyword arguments go to
    `Runner.run` (``max_turns=``, ``context=``...).
    """
    guarded = guard_agent(toolbox, agent)
    config = _run_config(toolbox, run_config)
    try:
        return await Runner.run(
            guarded,
            input,
            run_config=config,
            hooks=GuardHooks(toolbox, hooks),
            **kwargs,
        )
    except Exception as exc:
        found = unwrap(exc)
        if found is None or found is exc:
            raise
        # Keep the guard error's own cause (a refusal's BudgetExceeded), not the SDK wrapper.
        raise found from found.__cause__
