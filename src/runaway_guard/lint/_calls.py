"""What each call does, as the walk meets it: a paid site, a fan-out, a guarded call, ...

The walker's state (the function, region and loops being walked) lives here too, since
every effect of a call is recorded against it.
"""

from __future__ import annotations

import ast
import fnmatch
from typing import Any

from runaway_guard.lint._config import LintConfig
from runaway_guard.lint._model import (
    ClientValue,
    ContractValue,
    DefValue,
    ExecutorValue,
    FanOut,
    FuncInfo,
    LoopRecord,
    OpenLoop,
    PaidListValue,
    QualValue,
    Region,
    RetryLayer,
    RetryValue,
    SemaphoreValue,
    Site,
    TaskGroupValue,
    TaskInfo,
    Value,
)
from runaway_guard.lint._resolve import Resolver, dotted, is_none, keyword, limiter_named
from runaway_guard.lint._sdks import TOKEN_KWARGS, Sdk, normalise, sdk_for
from runaway_guard.lint._syntax import Comprehension

__all__ = ["CallEffects", "site_label"]

SLEEPS = frozenset(
    {"time.sleep", "asyncio.sleep", "anyio.sleep", "trio.sleep", "gevent.sleep", "eventlet.sleep"}
)
GATHERS = frozenset({"asyncio.gather", "asyncio.wait", "asyncio.as_completed"})
TASK_CREATORS = frozenset({"asyncio.create_task", "asyncio.ensure_future"})
REFERENCE_CALLS = frozenset(
    {
        "functools.partial",
        "asyncio.to_thread",
        "anyio.to_thread.run_sync",
        "trio.to_thread.run_sync",
        "starlette.concurrency.run_in_threadpool",
    }
)
# What walking a function body changes, and `leave` puts back.
_FRAME = (
    "func",
    "region",
    "stack",
    "open_loops",
    "iterations",
    "guarded",
    "limited",
    "timeouts",
    "handlers",
    "depth_checks",
    "anchors",
    "scopes",
    "cls",
    "self_name",
)
REQUEUES = frozenset({"delay", "apply_async", "send", "send_with_options", "s", "si", "signature"})
ENQUEUES = frozenset({"enqueue", "enqueue_in", "enqueue_at", "enqueue_call"})


def site_label(sdk: Sdk | None, path: tuple[str, ...], client: str = "") -> str:
    """How findings name a paid call (``openai chat.completions.create``)."""
    if sdk is None:
        return ".".join((client, *path)) if client else ".".join(path)
    return f"{sdk.name} {'.'.join(normalise(path))}"


class CallEffects(Resolver):
    """The walker's state, and the effects of calls on it."""

    def __init__(self, config: LintConfig) -> None:
        super().__init__(config)
        self.module = FuncInfo("<module>", None)
        self.func = self.module
        self.region = self.module.region
        self.stack: list[Region] = []
        self.open_loops: list[OpenLoop] = []  # innermost last
        self.iterations: list[bool] = []  # innermost for/comprehension: over bounded items?
        self.guarded = 0
        self.limited = 0
        self.timeouts = 0
        self.handlers = 0
        self.depth_checks = 0
        self.anchors: tuple[int, ...] = ()
        self.stmt_line = 0
        self.funcs: list[FuncInfo] = []
        self.defs: dict[int, FuncInfo] = {}
        self.loops: list[LoopRecord] = []
        self.fans: list[FanOut] = []
        self.layers: list[RetryLayer] = []
        self.sites: list[Site] = []
        self._sleeps = SLEEPS | set(config.sleeps)
        self._bound_kwargs = TOKEN_KWARGS | set(config.bound_kwargs)

    # -- walker hooks ------------------------------------------------------------------------------
    def expr(self, node: ast.expr) -> None:
        raise NotImplementedError

    def comprehension(self, node: Comprehension) -> bool:
        raise NotImplementedError

    def configured_paid(self, node: ast.Call, callee: Value | None) -> bool:
        """Whether the configuration names this call as paid (``paid-calls``)."""
        names = [dotted(node.func)]
        if isinstance(callee, QualValue):
            names.append(callee.name)
        return any(
            fnmatch.fnmatchcase(name, pattern)
            for name in names
            if name is not None
            for pattern in self.config.paid_calls
        )

    # -- state -------------------------------------------------------------------------------------
    def push(self, region: Region | None = None) -> Region:
        """Start recording into a nested region."""
        self.stack.append(self.region)
        self.region = Region() if region is None else region
        return self.region

    def pop(self) -> Region:
        """Stop recording into the innermost region; its parent absorbs what it saw."""
        region = self.region
        self.region = self.stack.pop()
        self.region.absorb(region)
        return region

    def enter(self, func: FuncInfo) -> tuple[Any, ...]:
        """Start walking `func`'s body; returns what `leave` restores."""
        saved = tuple(getattr(self, name) for name in _FRAME)
        self.func, self.region, self.stack = func, func.region, []
        self.open_loops, self.iterations = [], []
        self.guarded = self.limited = self.timeouts = self.handlers = self.depth_checks = 0
        self.scopes = list(self.scopes)
        return saved

    def leave(self, saved: tuple[Any, ...]) -> None:
        """Go back to walking the code around the function `enter` entered."""
        for name, value in zip(_FRAME, saved, strict=True):
            setattr(self, name, value)

    # -- records -----------------------------------------------------------------------------------
    def site(
        self,
        node: ast.expr,
        label: str,
        client: ClientValue | None,
        output_bound: bool = True,
    ) -> None:
        guarded = self.guarded > 0 or (client is not None and client.guarded)
        site = Site(
            node,
            label,
            self.func,
            (self.stmt_line, *self.anchors),
            guarded,
            client,
            self.limited > 0,
            output_bound,
        )
        self.region.sites.append(site)
        self.sites.append(site)

    def _sdk_call(self, label: str) -> None:
        """A call through a paid SDK that costs nothing by itself (a status poll)."""
        if not self.region.sdk_label:
            self.region.sdk_label = label

    def call_edge(self, func: FuncInfo) -> None:
        self.region.calls.append(func)
        func.callers.append((self.func, self.guarded > 0))

    # -- calls -------------------------------------------------------------------------------------
    def call(self, node: ast.Call) -> None:
        """Walk a call: record what it does, then walk its arguments."""
        func = node.func
        if type(func) is ast.Attribute:
            # The chain's own prefixes (``client.chat``) are not references to call.
            base = func.value
            while type(base) is ast.Attribute:
                base = base.value
            if type(base) is not ast.Name:
                self.expr(base)
        elif type(func) is not ast.Name:
            self.expr(func)
        callee = self.value(func)
        done = False
        if isinstance(callee, ClientValue):
            self._client_call(node, callee)
        elif isinstance(callee, QualValue):
            done = self._qual_effects(node, callee.name)
        elif isinstance(callee, DefValue):
            self.call_edge(callee.func)
        elif isinstance(callee, ContractValue) and node.args:
            wrapped = self.value(node.args[0])
            if isinstance(wrapped, DefValue):
                wrapped.func.guarded = True
        elif isinstance(callee, RetryValue) and node.args:
            done = self._retried_call(node, callee)
        if not done and isinstance(func, ast.Attribute):
            done = self._method_effects(node, func)
        if (
            self.config.paid_calls
            and not isinstance(callee, ClientValue)
            and self.configured_paid(node, callee)
        ):
            self.site(node, dotted(func) or "paid call", None)
        if self.func.node is not None and type(func) is ast.Attribute:
            self._requeue_effects(node, func)
        if not done:
            for arg in node.args:
                self.expr(arg)
            for item in node.keywords:
                self.expr(item.value)

    def _client_call(self, node: ast.Call, client: ClientValue) -> None:
        sdk, path = client.sdk, client.path
        paid = not client.response and (bool(path) if sdk is None else sdk.is_paid(path))
        if not paid:
            self._sdk_call(site_label(sdk, path, client.label))
            return
        if (
            sdk is not None
            and "request_options" in sdk.retry_config_kwargs
            and keyword(node, "request_options") is not None
        ):
            # per-request retry options the linter cannot read
            client = ClientValue(sdk, path, None, client.line, client.guarded, client.label)
        bound = True
        if sdk is not None and sdk.is_llm(path):
            bound = self.output_bound(sdk, node)
        self.site(node, site_label(sdk, path, client.label), client, bound)

    def _qual_effects(self, node: ast.Call, name: str) -> bool:
        if name in self._sleeps:
            loop = self.open_loops[-1] if self.open_loops else None
            if loop is None or loop.handler_depth == self.handlers:
                self.region.sleeps = True
            return False
        found = sdk_for(name)
        if found is not None:
            sdk, path = found
            if path and path[-1] in sdk.clients:
                return False
            if sdk.module_client and sdk.is_paid(path):
                client = ClientValue(sdk, path, sdk.retries, 0, False, sdk.module)
                bound = self.output_bound(sdk, node) if sdk.is_llm(path) else True
                self.site(node, site_label(sdk, path), client, bound)
            else:
                self._sdk_call(site_label(sdk, path))
            return False
        if name in GATHERS:
            self._gather(node, name)
            return True
        if name in TASK_CREATORS and node.args:
            return self._task_fan(node, "task", limited=False, reference=False)
        if name in REFERENCE_CALLS and node.args:
            self.reference(node.args[0])
            self._rest(node, 1)
            return True
        return False

    def _method_effects(self, node: ast.Call, func: ast.Attribute) -> bool:
        attr = func.attr
        base = self.value(func.value)
        kind = type(base)
        args = node.args
        if isinstance(base, ContractValue):
            if attr in ("call", "acall") and args:
                self._guarded_call(node, base)
                return True
            if attr in ("hold", "ahold"):
                self.func.guarded = True
            return False
        if isinstance(base, ExecutorValue) and args:
            if attr == "map":
                return self._executor_map(node, base.bounded)
            if attr == "submit":
                return self._task_fan(node, "executor", base.bounded, reference=True)
            return False
        if (
            attr == "create_task" or (kind is TaskGroupValue and attr in ("start_soon", "start"))
        ) and args:
            return self._task_fan(node, "task", limited=False, reference=attr != "create_task")
        if attr == "run_in_executor" and len(args) >= 2:
            self.expr(args[0])
            self.reference(args[1])
            self._rest(node, 2)
            return True
        if attr == "append" and args and type(func.value) is ast.Name and self._fanning():
            return self._append(node, func.value.id, base)
        if attr == "acquire" and (kind is SemaphoreValue or limiter_named(func.value)):
            self.func.limited = True
        return False

    def _rest(self, node: ast.Call, skip: int) -> None:
        for arg in node.args[skip:]:
            self.expr(arg)
        for item in node.keywords:
            self.expr(item.value)

    def reference(self, node: ast.expr) -> None:
        """A function handed to something that will call it: a paid site, or a call edge."""
        held = self.value(node)
        if type(held) is DefValue:
            self.call_edge(held.func)
        elif type(node) is not ast.Attribute or not self.reference_if_paid(node, held, True):
            self.expr(node)

    def reference_if_paid(
        self, node: ast.Attribute, held: Value | None = None, handed: bool = False
    ) -> bool:
        """A paid method named without being called (``client.images.generate``).

        Handing a paid function to anything (an executor, a retry helper, a workflow
        step) is how it gets called, so the reference is the call site. A configured
        client's attributes count only when `handed` to something that calls them.
        """
        held = self.value(node) if held is None else held
        if isinstance(held, ClientValue) and not held.response:
            sdk, path = held.sdk, held.path
            if (handed and bool(path)) if sdk is None else sdk.is_paid(path):
                self.site(node, site_label(sdk, path, held.label), held)
                return True
        elif isinstance(held, QualValue):
            found = sdk_for(held.name)
            if found is not None and found[0].module_client and found[0].is_paid(found[1]):
                sdk = found[0]
                client = ClientValue(sdk, found[1], sdk.retries, 0, False, sdk.module)
                self.site(node, site_label(sdk, found[1]), client)
                return True
        return False

    def _guarded_call(self, node: ast.Call, contract: ContractValue) -> None:
        self.guarded += 1
        region = self.push()
        first = node.args[0]
        held = self.value(first)
        if type(held) is DefValue:
            held.func.guarded = True
            self.call_edge(held.func)
        else:
            self.reference(first)
        self.pop()
        self.guarded -= 1
        self._rest(node, 1)
        if contract.retry:
            line = contract.line or node.lineno
            self.layers.append(RetryLayer("runaway-guard contract with retry=", line, region))

    def _retried_call(self, node: ast.Call, policy: RetryValue) -> bool:
        """``Retrying(...)(fn, ...)``: the retrying object calls `fn` until it gives up."""
        region = self.push()
        self.reference(node.args[0])
        self.pop()
        self._rest(node, 1)
        self.layers.append(RetryLayer(f"{policy.kind} Retrying", policy.line, region, policy))
        return True

    # -- fan-out -----------------------------------------------------------------------------------
    def _fanning(self) -> bool:
        """Whether the innermost iteration is over items of unknown number."""
        return bool(self.iterations) and not self.iterations[-1]

    def _gather(self, node: ast.Call, name: str) -> None:
        if name == "asyncio.gather":
            spread = [arg.value for arg in node.args if type(arg) is ast.Starred]
            rest = [arg for arg in node.args if type(arg) is not ast.Starred]
        else:
            spread, rest = node.args[:1], node.args[1:]
        for iterable in spread:
            self._fan_iterable(node, iterable)
        for arg in rest:
            self.expr(arg)
        for item in node.keywords:
            self.expr(item.value)

    def _fan_iterable(self, node: ast.Call, iterable: ast.expr) -> None:
        if isinstance(iterable, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            region = self.push()
            bounded = self.comprehension(iterable)
            self.pop()
            limited = self._limiting_args(iterable.elt)
            self.fans.append(FanOut(node, "gather", region, bounded, limited))
        elif (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "map"
            and len(iterable.args) >= 2
        ):
            region = self.push()
            self.reference(iterable.args[0])
            self.pop()
            items = iterable.args[1:]
            for arg in items:
                self.expr(arg)
            bounded = any(self.bounded_iterable(arg) for arg in items)
            self.fans.append(FanOut(node, "gather", region, bounded, False))
        elif isinstance(iterable, ast.Name):
            held = self.lookup(iterable.id)
            if isinstance(held, PaidListValue) and not held.started:
                self.fans.append(FanOut(node, "gather", held.region, held.bounded, held.limited))
        else:
            self.expr(iterable)

    def _limiting_args(self, element: ast.expr) -> bool:
        while type(element) is ast.Await:
            element = element.value
        if type(element) is not ast.Call:
            return False
        values = [*element.args, *(item.value for item in element.keywords)]
        return any(self.limiting(value) for value in values)

    def _executor_map(self, node: ast.Call, bounded_pool: bool) -> bool:
        region = self.push()
        self.reference(node.args[0])
        self.pop()
        items = node.args[1:]
        self._rest(node, 1)
        bounded = any(self.bounded_iterable(arg) for arg in items)
        self.fans.append(FanOut(node, "executor", region, bounded, bounded_pool))
        return True

    def _task_fan(self, node: ast.Call, kind: str, limited: bool, *, reference: bool) -> bool:
        fanning = self._fanning()
        region = self.push()
        first = node.args[0]
        if reference:
            self.reference(first)
        else:
            self.expr(first)
        self.pop()
        self._rest(node, 1)
        if fanning:
            limited = (
                limited
                or self._limiting_args(first)
                or any(self.limiting(arg) for arg in node.args[1:])
            )
            self.fans.append(FanOut(node, kind, region, False, limited))
        return True

    def _append(self, node: ast.Call, name: str, held: Value | None) -> bool:
        item = node.args[0]
        started = type(item) is ast.Call and self._starts_task(item)
        region = self.push()
        self.expr(item)
        self.pop()
        if isinstance(held, PaidListValue):
            held.region.absorb(region)
            held.started = held.started or started
        else:
            self.bind(name, PaidListValue(region, False, self._limiting_args(item), started))
        return True

    def collect(self, name: str, node: ast.ListComp | ast.GeneratorExp | ast.SetComp) -> None:
        """``tasks = [paid(x) for x in items]``: a list a later gather fans out."""
        region = self.push()
        bounded = self.comprehension(node)
        self.pop()
        started = isinstance(node.elt, ast.Call) and self._starts_task(node.elt)
        self.bind(name, PaidListValue(region, bounded, self._limiting_args(node.elt), started))

    def _starts_task(self, node: ast.Call) -> bool:
        func = node.func
        if type(func) is ast.Attribute and func.attr in ("create_task", "submit"):
            return True
        callee = self.value(func)
        return type(callee) is QualValue and callee.name in TASK_CREATORS

    # -- queued tasks ------------------------------------------------------------------------------
    def _requeue_effects(self, node: ast.Call, func: ast.Attribute) -> None:
        """A task that retries itself or puts itself back on the queue."""
        current = self.func
        task = current.task
        base = func.value
        if type(base) is ast.Name:
            if task is not None and task.self_name == base.id and func.attr == "retry":
                stated = keyword(node, "max_retries")
                task.retries.append((node, stated is not None and not is_none(stated)))
                return
            if func.attr in REQUEUES and base.id in (current.name, getattr(task, "self_name", 0)):
                self._requeue(node)
                return
        if func.attr in ("delay", "apply_async") and type(base) is ast.Call:
            inner = base.func
            if (
                type(inner) is ast.Attribute
                and inner.attr in ("s", "si", "signature")
                and dotted(inner.value) == current.name
            ):
                self._requeue(node)
                return
        if func.attr in ENQUEUES:
            target = node.args[0] if node.args else keyword(node, "func")
            if target is not None and dotted(target) == current.name:
                self._requeue(node)

    def _requeue(self, node: ast.Call) -> None:
        current = self.func
        if current.task is None:
            current.task = TaskInfo("queue", node, {})
        current.task.requeues.append((node, self.depth_checks > 0))

    # -- output bounds -----------------------------------------------------------------------------
    def output_bound(self, sdk: Sdk, node: ast.Call) -> bool:
        """Whether an LLM call bounds its output tokens (True when it cannot be told)."""
        given: dict[str, ast.expr] = {}
        for item in node.keywords:
            if item.arg is None:
                return True  # **options may carry the bound
            given[item.arg] = item.value
        if sdk.bound == "kwargs":
            return any(name in given and not is_none(given[name]) for name in self._bound_kwargs)
        if sdk.bound == "genai":
            config = given.get("config", given.get("generation_config"))
            return config is not None and _states(config, "max_output_tokens")
        config = given.get("inferenceConfig")
        return config is not None and _states(config, "maxTokens")


def _states(config: ast.expr, key: str) -> bool:
    """Whether a config dict or constructor call sets `key` (True when it cannot be told)."""
    if type(config) is ast.Dict:
        if any(item is None for item in config.keys):
            return True
        return any(
            type(item) is ast.Constant and item.value == key and not is_none(value)
            for item, value in zip(config.keys, config.values, strict=True)
        )
    if type(config) is ast.Call:
        if any(item.arg is None for item in config.keywords):
            return True
        return any(item.arg == key and not is_none(item.value) for item in config.keywords)
    return True
