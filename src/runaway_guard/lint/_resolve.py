"""Resolve expressions to what they hold: an SDK client, a contract, a semaphore, ...

Resolution is local to one module and follows imports, aliases and plain assignments
(``client = OpenAI()``, ``from openai import OpenAI as O``, ``self.client = ...``). It has
no side effects: the walker decides what a call *does*; this module says what it *is*.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import replace

from runaway_guard.lint._config import LintConfig
from runaway_guard.lint._model import (
    ChunkValue,
    ClassInfo,
    ClassValue,
    ClientValue,
    ConditionValue,
    ContractValue,
    DefValue,
    ExecutorValue,
    GuardValue,
    InstanceValue,
    QualValue,
    RetryValue,
    SemaphoreValue,
    SessionValue,
    TaskGroupValue,
    TimeValue,
    Value,
)
from runaway_guard.lint._sdks import BEDROCK, BEDROCK_SERVICES, Sdk, sdk_for

__all__ = [
    "Pending",
    "Resolver",
    "catches_everything",
    "dotted",
    "is_none",
    "keyword",
    "limiter_named",
]

SEMAPHORES = frozenset(
    {
        "asyncio.Semaphore",
        "asyncio.BoundedSemaphore",
        "threading.Semaphore",
        "threading.BoundedSemaphore",
        "multiprocessing.Semaphore",
        "multiprocessing.BoundedSemaphore",
        "anyio.Semaphore",
        "anyio.CapacityLimiter",
        "trio.Semaphore",
        "trio.CapacityLimiter",
        "aiolimiter.AsyncLimiter",
    }
)
EXECUTORS = {
    "concurrent.futures.ThreadPoolExecutor": "max_workers",
    "concurrent.futures.ProcessPoolExecutor": "max_workers",
    "concurrent.futures.thread.ThreadPoolExecutor": "max_workers",
    "concurrent.futures.process.ProcessPoolExecutor": "max_workers",
    "multiprocessing.Pool": "processes",
    "multiprocessing.pool.Pool": "processes",
    "multiprocessing.pool.ThreadPool": "processes",
    "multiprocessing.dummy.Pool": "processes",
}
TASK_GROUPS = frozenset({"asyncio.TaskGroup", "anyio.create_task_group", "trio.open_nursery"})
TIME_FUNCS = frozenset(
    {
        "time.time",
        "time.monotonic",
        "time.perf_counter",
        "time.time_ns",
        "time.monotonic_ns",
        "time.perf_counter_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "anyio.current_time",
        "trio.current_time",
    }
)
TIME_METHODS = frozenset({"monotonic", "perf_counter", "now", "utcnow", "time", "current_time"})
CHUNKERS = frozenset(
    {
        "itertools.batched",
        "itertools.islice",
        "more_itertools.chunked",
        "more_itertools.batched",
        "more_itertools.ichunked",
        "more_itertools.sliced",
        "more_itertools.chunked_even",
        "toolz.partition_all",
        "cytoolz.partition_all",
    }
)
CHUNK_NAMES = frozenset({"batched", "chunked", "chunks", "batches", "islice", "partition_all"})
_LIMITER_NAME = re.compile(r"(^|_)sem(aphore)?s?($|_)|semaphore|limiter|throttle", re.IGNORECASE)
_EVERYTHING = frozenset(
    {"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"}
)


class Pending:
    """A ``self.<name>`` assignment not resolved yet (resolved on first use).

    The value wins; the annotation (``client: OpenAI``) is the fallback.
    """

    __slots__ = ("annotation", "expr")

    def __init__(self, expr: ast.expr | None, annotation: ast.expr | None) -> None:
        self.expr = expr
        self.annotation = annotation


def dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    if type(node) is not ast.Name:
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def is_none(node: ast.expr | None) -> bool:
    """Whether `node` is the literal ``None``."""
    return type(node) is ast.Constant and node.value is None


def catches_everything(node: ast.expr | None) -> bool:
    """Whether an exception spec (``except X``, ``on=X``) names Exception or BaseException."""
    if node is None:
        return True
    if type(node) is ast.Tuple:
        return any(catches_everything(item) for item in node.elts)
    return dotted(node) in _EVERYTHING


def limiter_named(node: ast.expr) -> bool:
    """Whether a name reads like a concurrency limiter (``sem``, ``self._limiter``)."""
    text = dotted(node)
    return text is not None and _LIMITER_NAME.search(text.rsplit(".", 1)[-1]) is not None


class Resolver:
    """Scopes of one module, and what an expression resolves to in them."""

    def __init__(self, config: LintConfig) -> None:
        self.config = config
        self.module_scope: dict[str, Value | None] = {}
        self.scopes: list[dict[str, Value | None]] = [self.module_scope]
        self.cls: ClassInfo | None = None
        self.self_name: str | None = None
        self.values: dict[int, Value | None] = {}
        self._limiters = SEMAPHORES | set(config.limiters)
        self._chunkers = CHUNKERS | set(config.chunkers)

    # -- names -------------------------------------------------------------------------------------
    def lookup(self, name: str) -> Value | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def defined(self, name: str) -> bool:
        """Whether `name` is bound in any scope (so it is not a builtin)."""
        return any(name in scope for scope in self.scopes)

    def bind(self, name: str, value: Value | None) -> None:
        if type(value) is ClientValue and not value.path:
            value = replace(value, label=name)
        self.scopes[-1][name] = value

    def qual(self, name: str) -> Value:
        """An imported name, as configured contracts see it."""
        if self.config.contracts and any(
            fnmatch.fnmatchcase(name, pattern) for pattern in self.config.contracts
        ):
            return ContractValue()
        return QualValue(name)

    def bind_import(self, node: ast.Import | ast.ImportFrom) -> None:
        """Bind the names an import statement defines to what they import."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    self.bind(alias.asname, self.qual(alias.name))
                else:
                    head = alias.name.split(".", 1)[0]
                    self.bind(head, QualValue(head))
            return
        if node.level or node.module is None:
            for alias in node.names:
                self.bind(alias.asname or alias.name, None)
            return
        for alias in node.names:
            if alias.name != "*":
                self.bind(alias.asname or alias.name, self.qual(f"{node.module}.{alias.name}"))

    def self_attribute(self, name: str, cls: ClassInfo | None = None) -> Value | None:
        """What ``self.<name>`` holds in a method of `cls` (the class being walked)."""
        cls = self.cls if cls is None else cls
        if cls is None:
            return None
        if name in cls.attributes:
            held = cls.attributes[name]
            if isinstance(held, Pending):
                resolved = self._resolve_pending(held)
                if isinstance(resolved, ClientValue) and not resolved.path:
                    resolved = replace(resolved, label=f"self.{name}")
                cls.attributes[name] = resolved
                return resolved
            found: Value | None = held
            return found
        method = cls.methods.get(name)
        return None if method is None else DefValue(method)

    def _resolve_pending(self, pending: Pending) -> Value | None:
        saved = self.scopes, self.self_name
        self.scopes, self.self_name = [self.module_scope], None
        cls, self.cls = self.cls, None
        try:
            found = None if pending.expr is None else self.value(pending.expr)
            if found is None:
                found = self.annotation(pending.annotation)
            return found
        finally:
            self.scopes, self.self_name = saved
            self.cls = cls

    def annotation(self, node: ast.expr | None) -> Value | None:
        """A client for an annotation naming a client class (``client: OpenAI | None``)."""
        if node is None:
            return None
        if type(node) is ast.BinOp:
            return self.annotation(node.left) or self.annotation(node.right)
        if type(node) is ast.Subscript:
            return self.annotation(node.slice)
        if type(node) is ast.Tuple:
            for item in node.elts:
                found = self.annotation(item)
                if found is not None:
                    return found
            return None
        value = self.value(node)
        if type(value) is QualValue:
            client = self.construct(value.name, None)
            if client is not None:
                return replace(client, retries=None, line=0)
        return None

    # -- expressions -------------------------------------------------------------------------------
    def value(self, node: ast.expr) -> Value | None:
        """What `node` holds, or None when nothing the linter cares about."""
        if type(node) is ast.Name:
            return self.lookup(node.id)
        if type(node) is ast.Attribute:
            return self._attribute(node)
        if type(node) is ast.Call:
            key = id(node)
            if key in self.values:
                return self.values[key]
            result = self.call_value(node)
            self.values[key] = result
            return result
        if isinstance(node, (ast.Await, ast.NamedExpr, ast.Starred)):
            return self.value(node.value)
        if isinstance(node, ast.BoolOp):
            for item in node.values:
                found = self.value(item)
                if found is not None:
                    return found
            return None
        if isinstance(node, ast.IfExp):
            return self.value(node.body) or self.value(node.orelse)
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice) and node.slice.upper is not None:
                return ChunkValue()
            return None
        if isinstance(node, ast.BinOp) and self.reads_clock(node):
            return TimeValue()
        return None

    def _attribute(self, node: ast.Attribute) -> Value | None:
        base_node = node.value
        if type(base_node) is ast.Name and base_node.id == self.self_name:
            return self.self_attribute(node.attr)
        base = self.value(base_node)
        if isinstance(base, QualValue):
            return self.qual(f"{base.name}.{node.attr}")
        if isinstance(base, ClientValue):
            return replace(base, path=(*base.path, node.attr))
        if isinstance(base, (InstanceValue, ClassValue)):
            return self.self_attribute(node.attr, base.cls)
        return None

    def reads_clock(self, node: ast.expr) -> bool:
        """Whether `node` reads a clock or a deadline taken from one."""
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                func = child.func
                if isinstance(func, ast.Attribute) and func.attr in TIME_METHODS:
                    return True
                value = self.value(func)
                if isinstance(value, QualValue) and value.name in TIME_FUNCS:
                    return True
            elif isinstance(child, ast.Name) and isinstance(self.lookup(child.id), TimeValue):
                return True
        return False

    def call_value(self, node: ast.Call) -> Value | None:
        """What a call returns, when it is something the linter tracks."""
        func = node.func
        if type(func) is ast.Attribute:
            base = self.value(func.value)
            attr = func.attr
            if isinstance(base, ClientValue):
                return self._client_result(base, attr, node)
            if isinstance(base, SessionValue) and attr == "client":
                return self._bedrock(node)
            if isinstance(base, ContractValue) and attr in ("call", "acall"):
                return None
            if attr == "contract" or (isinstance(base, GuardValue) and attr == "bind"):
                return ContractValue(retry=keyword(node, "retry") is not None, line=node.lineno)
        callee = self.value(func)
        if type(callee) is ClassValue:
            return InstanceValue(callee.cls)
        if type(callee) is not QualValue:
            return None
        return self.qual_call(callee.name, node)

    def qual_call(self, name: str, node: ast.Call) -> Value | None:
        """What calling the imported `name` returns."""
        client = self.construct(name, node)
        if client is not None:
            return client
        if name in self._limiters:
            return SemaphoreValue()
        workers = EXECUTORS.get(name)
        if workers is not None:
            given = node.args[0] if node.args else keyword(node, workers)
            return ExecutorValue(given is not None and not is_none(given))
        if name in TASK_GROUPS:
            return TaskGroupValue()
        if name in TIME_FUNCS:
            return TimeValue()
        if name in self._chunkers:
            return ChunkValue()
        if name in ("boto3.Session", "boto3.session.Session", "aioboto3.Session"):
            return SessionValue()
        if name in ("boto3.client", "aioboto3.client"):
            return self._bedrock(node)
        if name == "runaway_guard.Guard":
            return GuardValue()
        if name in ("runaway_guard.Contract",):
            return ContractValue(retry=False, line=node.lineno)
        retry = self.retry_policy(name, node)
        if retry is not None:
            return retry
        if name == "tenacity.retry_if_exception_type":
            spec = node.args[0] if node.args else keyword(node, "exception_types")
            return ConditionValue(catches_everything(spec))
        if name == "tenacity.retry_any":
            return ConditionValue(any(self._retries_everything(item) for item in node.args))
        found = sdk_for(name)
        if found is not None:
            return ClientValue(found[0], (), None, node.lineno)
        return None

    def construct(self, name: str, node: ast.Call | None) -> ClientValue | None:
        """The client a constructor call builds (`node` None: the class itself)."""
        if name in self.config.paid_clients:
            return ClientValue(None, (), None, 0 if node is None else node.lineno)
        found = sdk_for(name)
        if found is None:
            return None
        sdk, path = found
        if not path or path[-1] not in sdk.clients:
            return None
        if node is None:
            return ClientValue(sdk)
        return ClientValue(
            sdk,
            (),
            _retries(sdk, node, sdk.retries),
            node.lineno,
            guarded=self._guarded_http(node),
        )

    def _guarded_http(self, node: ast.Call) -> bool:
        given = keyword(node, "http_client")
        if type(given) is not ast.Call:
            return False
        func = given.func
        name = func.attr if type(func) is ast.Attribute else dotted(func)
        return name in self.config.guarded_factories

    def _bedrock(self, node: ast.Call) -> ClientValue | None:
        service = node.args[0] if node.args else keyword(node, "service_name")
        if type(service) is ast.Constant and service.value in BEDROCK_SERVICES:
            return ClientValue(BEDROCK, (), _retries(BEDROCK, node, BEDROCK.retries), node.lineno)
        return None

    def _client_result(self, client: ClientValue, attr: str, node: ast.Call) -> Value | None:
        path = (*client.path, attr)
        sdk = client.sdk
        if sdk is None:
            return None
        if sdk.is_paid(path):
            return replace(client, path=(), retries=None, response=True)
        retries = client.retries
        if attr in ("with_options", "copy"):
            retries = _retries(sdk, node, retries)
        return replace(client, path=(), retries=retries)

    def retry_policy(self, name: str, node: ast.Call | None) -> RetryValue | None:
        """The retry policy a tenacity/backoff/stamina call declares (`node` None: bare)."""
        line = 0 if node is None else node.lineno
        column = 0 if node is None else node.col_offset
        if name in ("tenacity.retry", "tenacity.Retrying", "tenacity.AsyncRetrying"):
            fix = "stop=stop_after_attempt(N)"
            if node is None:
                return RetryValue("tenacity", line, column, False, True, fix, implicit=True)
            stop = keyword(node, "stop")
            stops = stop is not None and not self._is(stop, "tenacity.stop_never")
            condition = keyword(node, "retry")
            if condition is None:
                return RetryValue("tenacity", line, column, stops, True, fix, implicit=True)
            every = self._retries_everything(condition)
            return RetryValue("tenacity", line, column, stops, every, fix)
        if node is None:
            return None
        if name in ("backoff.on_exception", "backoff.on_predicate"):
            stops = any(
                keyword(node, key) is not None and not is_none(keyword(node, key))
                for key in ("max_tries", "max_time")
            )
            every = False
            if name == "backoff.on_exception":
                spec = node.args[1] if len(node.args) > 1 else keyword(node, "exception")
                every = catches_everything(spec) and keyword(node, "giveup") is None
            return RetryValue("backoff", line, column, stops, every, "max_tries=N")
        if name in ("stamina.retry", "stamina.retry_context"):
            attempts, timeout = keyword(node, "attempts"), keyword(node, "timeout")
            stops = not (is_none(attempts) and is_none(timeout))
            every = catches_everything(keyword(node, "on"))
            return RetryValue("stamina", line, column, stops, every, "attempts=N")
        return None

    def _is(self, node: ast.expr, name: str) -> bool:
        value = self.value(node)
        return type(value) is QualValue and value.name == name

    def _retries_everything(self, node: ast.expr) -> bool:
        if type(node) is ast.BinOp:
            return self._retries_everything(node.left) or self._retries_everything(node.right)
        held = self.value(node)
        if type(held) is ConditionValue:
            return held.every
        return type(held) is QualValue and held.name == "tenacity.retry_always"

    # -- iteration ---------------------------------------------------------------------------------
    def bounded_iterable(self, node: ast.expr) -> bool:
        """Whether iterating `node` yields a fixed, small number of items."""
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Constant)):
            return True
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Slice) and node.slice.upper is not None
        if isinstance(node, ast.Name):
            return isinstance(self.lookup(node.id), ChunkValue)
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        args = node.args
        if type(func) is ast.Name and not self.defined(func.id):
            if func.id == "range":
                return not any(
                    type(sub) is ast.Call and dotted(sub.func) == "len"
                    for arg in args
                    for sub in ast.walk(arg)
                )
            if func.id in ("enumerate", "reversed", "sorted", "list", "tuple") and args:
                return self.bounded_iterable(args[0])
            if func.id == "zip":
                return any(self.bounded_iterable(arg) for arg in args)
        if type(func) is ast.Name and func.id in CHUNK_NAMES:
            return True
        value = self.value(func)
        return type(value) is QualValue and value.name in self._chunkers

    def endless_iterable(self, node: ast.expr) -> bool:
        """Whether `node` never runs out: ``itertools.count()``, ``iter(f, sentinel)``."""
        if type(node) is not ast.Call:
            return False
        func = node.func
        if type(func) is ast.Name and func.id == "iter" and not self.defined("iter"):
            return len(node.args) == 2
        value = self.value(func)
        return type(value) is QualValue and value.name in ("itertools.count", "itertools.cycle")

    def limiting(self, node: ast.expr) -> bool:
        """Whether `node` is a concurrency limiter (by what it holds, or by its name)."""
        return type(self.value(node)) is SemaphoreValue or limiter_named(node)


def keyword(node: ast.Call, name: str) -> ast.expr | None:
    """The value of keyword argument `name` in a call, or None."""
    for item in node.keywords:
        if item.arg == name:
            return item.value
    return None


def _retries(sdk: Sdk, node: ast.Call, default: int | None) -> int | None:
    """The retries a constructor (or ``with_options``) call leaves the client with."""
    for item in node.keywords:
        if item.arg is None or item.arg in sdk.retry_config_kwargs:
            return None  # **options, or a retry configuration the linter cannot read
        if item.arg == sdk.retries_kwarg:
            given = item.value
            if type(given) is ast.Constant and type(given.value) is int:
                return given.value
            return None
    return default
