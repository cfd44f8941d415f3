"""What one walk over a module records: values of names, functions, paid sites, regions.

The walk resolves names to these values as it goes; the checks run afterwards, once
every function in the module is known (a loop may call a helper defined below it).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from runaway_guard.lint._sdks import Sdk

__all__ = [
    "ChunkValue",
    "ClassInfo",
    "ClassValue",
    "ClientValue",
    "ConditionValue",
    "ContractValue",
    "DefValue",
    "ExecutorValue",
    "FanOut",
    "FuncInfo",
    "GuardValue",
    "Handler",
    "InstanceValue",
    "LoopRecord",
    "OpenLoop",
    "PaidListValue",
    "QualValue",
    "Region",
    "RetryLayer",
    "RetryValue",
    "SemaphoreValue",
    "SessionValue",
    "Site",
    "TaskGroupValue",
    "TaskInfo",
    "TimeValue",
    "Value",
]


# -- values a name can have ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QualValue:
    """A name imported from somewhere: its dotted path (``openai.OpenAI``)."""

    name: str


@dataclass(frozen=True, slots=True)
class ClientValue:
    """A paid SDK client (or an object it returned), and the attributes read so far.

    Attributes:
        sdk: the SDK, or None for a client the configuration names (`paid_clients`).
        path: attributes read from the client (``("chat", "completions")``).
        retries: the client's own retries; None when unknown.
        line: where the client was built (0 when it came from an annotation).
        guarded: built with a guarded HTTP client, so every call through it is guarded.
        label: how findings name it (``client``, ``self.client``).
        response: it is what a paid call returned (a response, a stream, a prediction):
            calls on it go through the SDK but buy nothing more.
    """

    sdk: Sdk | None
    path: tuple[str, ...] = ()
    retries: int | None = None
    line: int = 0
    guarded: bool = False
    label: str = "client"
    response: bool = False


@dataclass(frozen=True, slots=True)
class SessionValue:
    """A boto3 session: its ``client("bedrock-runtime")`` is a paid client."""


@dataclass(frozen=True, slots=True)
class GuardValue:
    """A runaway-guard `Guard`."""


@dataclass(frozen=True, slots=True)
class ContractValue:
    """A runaway-guard contract; `retry` when it retries on its own."""

    retry: bool = False
    line: int = 0


@dataclass(frozen=True, slots=True)
class SemaphoreValue:
    """A concurrency limiter (asyncio.Semaphore, anyio.CapacityLimiter, ...)."""


@dataclass(frozen=True, slots=True)
class ExecutorValue:
    """A thread or process pool; `bounded` when its worker count is given."""

    bounded: bool


@dataclass(frozen=True, slots=True)
class TaskGroupValue:
    """An asyncio TaskGroup, an anyio task group or a trio nursery."""


@dataclass(frozen=True, slots=True)
class TimeValue:
    """A number read from a clock: a deadline, or a start time."""


@dataclass(frozen=True, slots=True)
class ChunkValue:
    """A bounded slice of a list (a chunk, a batch, ``items[:MAX]``)."""


@dataclass(frozen=True, slots=True)
class RetryValue:
    """A retry policy: a tenacity/backoff/stamina decorator or a tenacity `Retrying`.

    Attributes:
        kind: ``tenacity``, ``backoff`` or ``stamina``.
        line: where it is declared.
        column: its column there.
        stop: it stops after a number of attempts or an amount of time.
        every_exception: it retries every exception (4xx included).
        fix_stop: what to add to give it a stop.
        implicit: it retries every exception because no condition is given.
    """

    kind: str
    line: int
    column: int
    stop: bool
    every_exception: bool
    fix_stop: str
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class ConditionValue:
    """A tenacity retry condition; `every` when it retries every exception."""

    every: bool


@dataclass(eq=False, slots=True)
class PaidListValue:
    """Coroutines or tasks collected in a list (a comprehension, appends in a loop).

    Attributes:
        region: what each item runs.
        bounded: the items come from a bounded iterable.
        limited: each item takes a limiter.
        started: the items are tasks already running (the fan-out was where they started).
    """

    region: Region
    bounded: bool
    limited: bool
    started: bool = False


@dataclass(frozen=True, slots=True)
class DefValue:
    """A function defined in this module."""

    func: FuncInfo


@dataclass(frozen=True, slots=True)
class ClassValue:
    """A class defined in this module."""

    cls: ClassInfo


@dataclass(frozen=True, slots=True)
class InstanceValue:
    """An instance of a class defined in this module."""

    cls: ClassInfo


Value = (
    QualValue
    | ClientValue
    | SessionValue
    | GuardValue
    | ContractValue
    | SemaphoreValue
    | ExecutorValue
    | TaskGroupValue
    | TimeValue
    | ChunkValue
    | RetryValue
    | ConditionValue
    | PaidListValue
    | DefValue
    | ClassValue
    | InstanceValue
)


# -- what the walk records -------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class Site:
    """One paid call (or a paid function handed to something that calls it).

    Attributes:
        node: the call, or the expression naming the paid function.
        label: how findings name it (``openai chat.completions.create``).
        func: the function it is written in.
        anchors: first lines of its statement and of the definitions around it,
            innermost first: where a `# cost contract:` comment may stand.
        guarded: guarded where it stands (``contract.call(lambda: ...)``, a guarded
            client, a function holding a contract).
        client: the client it goes through, if any.
        limited: inside ``async with semaphore``.
        output_bound: False for an LLM call with no output-token bound.
    """

    node: ast.expr
    label: str
    func: FuncInfo
    anchors: tuple[int, ...]
    guarded: bool
    client: ClientValue | None
    limited: bool
    output_bound: bool = True


@dataclass(eq=False, slots=True)
class Region:
    """The paid sites and local calls inside a stretch of code."""

    sites: list[Site] = field(default_factory=list)
    calls: list[FuncInfo] = field(default_factory=list)
    sdk_label: str = ""  # the first call through a paid SDK that costs nothing (a poll)
    sleeps: bool = False

    def absorb(self, other: Region) -> None:
        """Add what `other` (a nested stretch) contains."""
        self.sites.extend(other.sites)
        self.calls.extend(other.calls)
        self.sdk_label = self.sdk_label or other.sdk_label
        self.sleeps = self.sleeps or other.sleeps


@dataclass(eq=False, slots=True)
class Handler:
    """An ``except`` clause of a ``try`` whose body may make paid calls.

    Attributes:
        node: the handler.
        body: what the ``try`` body contains.
        catches_all: bare ``except``, ``Exception`` or ``BaseException``.
        swallows: never raises, returns or breaks.
        loops_again: does not end by leaving the loop.
        classified: re-raises depending on the exception, or an earlier clause of the
            same ``try`` lets specific errors out.
        attempt_exits: the ``try`` (or its ``else``) leaves the loop when the work succeeds.
        attempt_end: the last line of the ``try`` statement.
        attempt_sets: names the ``try`` body assigns (a ``done = True`` flag).
        retries: set when the loop closes: failing here runs the same work again.
    """

    node: ast.ExceptHandler
    body: Region
    catches_all: bool
    swallows: bool
    loops_again: bool
    classified: bool
    attempt_exits: bool = False
    attempt_end: int = 0
    attempt_sets: frozenset[str] = frozenset()
    retries: bool = False


@dataclass(eq=False, slots=True)
class LoopRecord:
    """One ``while`` loop, or a ``for`` loop that may retry or never end.

    Attributes:
        node: the loop.
        region: what the loop body contains.
        bounded: a counter is compared with a limit (in the test or an exiting ``if``).
        deadline: a clock is compared with a deadline, or a timeout surrounds the loop.
        infinite_for: a ``for`` over ``itertools.count()`` or ``iter(f, sentinel)``.
        retry_shape: a ``while``, or a ``for`` over ``range``/``count``/``Retrying``: a loop
            that can run the same work again (its handlers say whether it does).
        handlers: ``except`` clauses directly inside the loop.
        retry: the tenacity/stamina policy a ``for attempt in Retrying(...)`` uses.
    """

    node: ast.While | ast.For | ast.AsyncFor
    region: Region
    bounded: bool = False
    deadline: bool = False
    infinite_for: bool = False
    retry_shape: bool = False
    handlers: list[Handler] = field(default_factory=list)
    retry: RetryValue | None = None


@dataclass(eq=False, slots=True)
class FanOut:
    """A place where many paid calls may start at once.

    Attributes:
        node: the gather, ``map``, ``submit`` or ``create_task`` call.
        kind: ``gather``, ``executor`` or ``task``.
        region: what each fanned-out item runs.
        bounded: items come in chunks, a slice or a fixed range.
        limited: a limiter is taken per item, or the pool's size is given.
    """

    node: ast.Call
    kind: str
    region: Region
    bounded: bool
    limited: bool


@dataclass(eq=False, slots=True)
class RetryLayer:
    """Something that repeats paid calls on failure: a decorator, a loop, a task."""

    description: str
    line: int
    region: Region
    policy: RetryValue | None = None


@dataclass(eq=False, slots=True)
class TaskInfo:
    """A queued task (Celery, Dramatiq, Inngest) and how it may run again.

    Attributes:
        kind: ``celery``, ``dramatiq`` or ``inngest``.
        decorator: the decorator that makes it a task.
        options: the decorator's keywords that matter (values as AST nodes).
        self_name: the bound task's first parameter (Celery ``bind=True``).
        retries: ``self.retry(...)`` calls, and whether each states max_retries.
        requeues: calls that enqueue the task again, and whether a depth check guards them.
    """

    kind: str
    decorator: ast.expr
    options: dict[str, ast.expr]
    self_name: str | None = None
    retries: list[tuple[ast.Call, bool]] = field(default_factory=list)
    requeues: list[tuple[ast.Call, bool]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class FuncInfo:
    """A function (or the module body) and what the checks need to know about it.

    Attributes:
        name: its name (``<module>`` for the module body).
        node: its definition, or None for the module body.
        region: what its body contains (nested definitions excluded).
        parent: the function it is defined in.
        top: its first line, decorators included.
        private: its name starts with an underscore, or it is nested in another.
        guarded: decorated with, wrapped by or handed to a runaway-guard contract, or it
            places a hold itself.
        callers: regions that call it, and whether each call is guarded where it stands.
        retries: retry decorators on it.
        contract_retry: decorated with a contract that retries on its own.
        limited: takes a limiter (``async with semaphore``) somewhere in its body.
        task: set when it is a queued task.
    """

    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | None
    region: Region = field(default_factory=Region)
    parent: FuncInfo | None = None
    top: int = 0
    private: bool = False
    guarded: bool = False
    callers: list[tuple[FuncInfo, bool]] = field(default_factory=list)
    retries: list[RetryValue] = field(default_factory=list)
    contract_retry: int = 0
    limited: bool = False
    task: TaskInfo | None = None


@dataclass(eq=False, slots=True)
class ClassInfo:
    """A class: its methods and what ``self.<name>`` holds."""

    name: str
    methods: dict[str, FuncInfo] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # Value, None or Pending


@dataclass(eq=False, slots=True)
class OpenLoop:
    """A loop being walked: its counters, the names its exits test, how it leaves."""

    record: LoopRecord
    handler_depth: int
    counters: set[str] = field(default_factory=set)
    tested: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    ordered: set[str] = field(default_factory=set)
    exits: list[int] = field(default_factory=list)  # lines of break/return outside handlers

    def settle_handlers(self) -> None:
        """Mark the handlers whose failure runs the same work again (a retry)."""
        for handler in self.record.handlers:
            handler.retries = handler.loops_again and (
                handler.attempt_exits
                or any(line > handler.attempt_end for line in self.exits)
                or bool(self.tested & handler.attempt_sets)
            )

    @property
    def bounded(self) -> bool:
        """A counter it steps is tested, or a value it moves is compared with a limit."""
        return bool(self.counters & self.tested) or bool(self.assigned & self.ordered)
