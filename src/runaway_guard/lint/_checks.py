"""Turn what the walk recorded into findings, once the whole module is known."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from runaway_guard.lint._comments import Comments, contract_fields, contract_text
from runaway_guard.lint._model import (
    FanOut,
    FuncInfo,
    Handler,
    LoopRecord,
    Region,
    RetryValue,
    Site,
    TaskInfo,
)
from runaway_guard.lint._resolve import is_none
from runaway_guard.lint._sdks import Sdk, normalise
from runaway_guard.lint._walk import Walker

__all__ = ["Checker", "Raw"]

# (line, column offset, end line, end column offset, rule id, message)
Raw = tuple[int, int, int, int, str, str]
Located = ast.expr | ast.stmt | ast.excepthandler

_FIELD_NAMES = {
    "unit-cost": "unit cost",
    "max-calls": "max calls",
    "max-per-run": "max $ per run",
    "provider-cap": "provider cap",
}


@dataclass(eq=False, slots=True)
class _Summary:
    sites: list[Site] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    sdk: str = ""
    sleeps: bool = False

    def add(self, sites: Iterable[Site]) -> None:
        for site in sites:
            if id(site) not in self.seen:
                self.seen.add(id(site))
                self.sites.append(site)


class Checker:
    """The rules, applied to one walked module."""

    def __init__(
        self,
        walker: Walker,
        select: frozenset[str],
        comments: Callable[[], Comments | None],
        fields: tuple[str, ...],
    ) -> None:
        self.walker = walker
        self.select = select
        self._comments = comments
        self.fields = fields
        self.found: dict[tuple[str, int, int], Raw] = {}
        self._summaries: dict[int, _Summary] = {}
        self._guarded: dict[int, bool] = {}
        self._multiplied: set[int] = set()

    def run(self) -> list[Raw]:
        """Every finding of the selected rules."""
        for loop in self.walker.loops:
            self._loop(loop)
        for fan in self.walker.fans:
            self._fan(fan)
        for func in self.walker.funcs:
            if func.retries or func.contract_retry or func.task is not None:
                self._retried_function(func)
        if self.walker.module.task is not None:
            self._retried_function(self.walker.module)
        for layer in self.walker.layers:
            sites = self._region(layer.region).sites
            if layer.policy is not None and sites:
                self._policy(layer.policy, layer.policy.line, layer.policy.column)
            for site in sites:
                self._multiply(site, layer.description, layer.line)
        for site in self.walker.sites:
            self._site(site)
        return sorted(self.found.values())

    # -- bookkeeping -------------------------------------------------------------------------------
    def _add(self, node: Located, rule: str, message: str, end: Located | None = None) -> None:
        if rule not in self.select:
            return
        line, column = node.lineno, node.col_offset
        last = node if end is None else end
        end_line = last.end_lineno or line
        end_column = last.end_col_offset or column
        self.found.setdefault(
            (rule, line, column), (line, column, end_line, end_column, rule, message)
        )

    def _summary(self, func: FuncInfo) -> _Summary:
        key = id(func)
        summary = self._summaries.get(key)
        if summary is not None:
            return summary
        summary = _Summary(sdk=func.region.sdk_label, sleeps=func.region.sleeps)
        summary.add(func.region.sites)
        self._summaries[key] = summary  # a recursive call sees what is known so far
        self._follow(summary, func.region.calls)
        return summary

    def _region(self, region: Region) -> _Summary:
        summary = _Summary(sdk=region.sdk_label, sleeps=region.sleeps)
        summary.add(region.sites)
        self._follow(summary, region.calls)
        return summary

    def _follow(self, summary: _Summary, callees: list[FuncInfo]) -> None:
        """Add what the functions a stretch of code calls do, transitively."""
        for callee in callees:
            inner = self._summary(callee)
            summary.add(inner.sites)
            summary.sdk = summary.sdk or inner.sdk
            summary.sleeps = summary.sleeps or inner.sleeps

    def guarded(self, func: FuncInfo) -> bool:
        """Whether every call of `func` runs under a contract."""
        key = id(func)
        known = self._guarded.get(key)
        if known is not None:
            return known
        self._guarded[key] = False  # a cycle of calls guards nothing by itself
        result = func.guarded or (
            func.private
            and bool(func.callers)
            and all(lexical or self.guarded(caller) for caller, lexical in func.callers)
        )
        self._guarded[key] = result
        return result

    # -- loops -------------------------------------------------------------------------------------
    def _loop(self, loop: LoopRecord) -> None:
        is_while = type(loop.node) is ast.While
        if not (is_while or loop.infinite_for or loop.retry_shape or loop.retry is not None):
            return
        summary = self._region(loop.region)
        sites = summary.sites
        header = loop.node.test if isinstance(loop.node, ast.While) else loop.node.iter
        if (is_while or loop.infinite_for) and not loop.bounded:
            polls = summary.sleeps and (bool(sites) or bool(summary.sdk))
            if polls and not loop.deadline:
                polled = sites[0].label if sites else summary.sdk
                self._add(loop.node, "RG007", _poll_message(polled), header)
                self._swallowed(loop)
            elif sites and not polls:
                self._add(loop.node, "RG001", _unbounded_message(loop, sites[0]), header)
                self._swallowed(loop)
        if loop.retry_shape:
            for handler in loop.handlers:
                if not handler.retries:
                    continue
                body = self._region(handler.body).sites
                if not body:
                    continue
                if handler.catches_all and not handler.classified:
                    self._add(
                        handler.node, "RG005", _every_exception_message(handler), _head(handler)
                    )
                for site in body:
                    self._multiply(site, "retry loop", loop.node.lineno)
        if loop.retry is not None and sites:
            self._policy(loop.retry, loop.retry.line, loop.retry.column)
            for site in sites:
                self._multiply(site, f"{loop.retry.kind} retrying loop", loop.node.lineno)

    def _swallowed(self, loop: LoopRecord) -> None:
        for handler in loop.handlers:
            if not handler.swallows:
                continue
            body = self._region(handler.body)
            if body.sites or body.sdk:
                caught = _caught(handler)
                self._add(
                    handler.node,
                    "RG002",
                    f"{caught} swallows the error and loops again around a paid call, with no "
                    "bound: re-raise, or count the failures and stop at a named limit",
                    _head(handler),
                )

    # -- fan-out -----------------------------------------------------------------------------------
    def _fan(self, fan: FanOut) -> None:
        if fan.bounded or fan.limited:
            return
        sites = self._region(fan.region).sites
        if not sites or all(site.limited for site in sites):
            return
        if any(func.limited for func in fan.region.calls):
            return
        label = sites[0].label
        if fan.kind == "gather":
            message = (
                f"gathers paid calls ({label}) over items of unknown number with no concurrency "
                "limit: take an asyncio.Semaphore(MAX_CONCURRENCY) in each task, or gather in "
                "chunks of N"
            )
        elif fan.kind == "executor":
            message = (
                f"hands paid calls ({label}) to a pool with no max_workers: give the pool "
                "max_workers=N, or submit in chunks of N"
            )
        else:
            message = (
                f"starts a task per item for paid calls ({label}) with no concurrency limit: "
                "take an asyncio.Semaphore(MAX_CONCURRENCY) in each task, or start them in "
                "chunks of N"
            )
        self._add(fan.node, "RG003", message, fan.node.func)

    # -- retries -----------------------------------------------------------------------------------
    def _retried_function(self, func: FuncInfo) -> None:
        sites = self._summary(func).sites
        if not sites:
            return
        for policy in func.retries:
            self._policy(policy, policy.line, policy.column)
            for site in sites:
                self._multiply(site, f"{policy.kind} retry decorator", policy.line)
        if func.contract_retry:
            for site in sites:
                self._multiply(site, "runaway-guard contract with retry=", func.contract_retry)
        if func.task is not None:
            self._task(func, func.task, sites)

    def _policy(self, policy: RetryValue, line: int, column: int) -> None:
        anchor = ast.Constant(value=None, lineno=line, col_offset=column)
        anchor.end_lineno, anchor.end_col_offset = line, column
        if not policy.stop:
            self._add(
                anchor,
                "RG004",
                f"{policy.kind} retry around a paid call has no stop: add {policy.fix_stop} "
                "(a named limit)",
            )
        if policy.every_exception:
            default = " (no retry= condition: tenacity's default)" if policy.implicit else ""
            self._add(
                anchor,
                "RG005",
                f"{policy.kind} retry retries every exception{default}, 4xx included, into a "
                "paid API: retry only transient errors (429, 5xx, timeouts)",
            )

    def _multiply(self, site: Site, description: str, line: int) -> None:
        client = site.client
        if client is None or not client.retries or id(site) in self._multiplied:
            return
        self._multiplied.add(id(site))
        built = f" (built at line {client.line})" if client.line else ""
        retries = client.retries
        self._add(
            site.node,
            "RG006",
            f"{client.label}{built} retries {retries} times on its own inside the {description} "
            f"at line {line}: every outer attempt can bill {retries + 1} times; "
            f"{_retry_fix(client.sdk)}, or drop the outer retry",
            site.node,
        )

    def _task(self, func: FuncInfo, task: TaskInfo, sites: list[Site]) -> None:
        options = task.options
        name = func.name
        if task.kind == "celery":
            limit = options.get("max_retries")
            stated = limit is not None and not is_none(limit)
            kwargs = options.get("retry_kwargs")
            if type(kwargs) is ast.Dict:
                stated = stated or any(
                    type(key) is ast.Constant and key.value == "max_retries" for key in kwargs.keys
                )
            forever = limit is not None and is_none(limit)
            why = "max_retries=None retries forever" if forever else "Celery's default is 3"
            if "autoretry_for" in options and not stated:
                self._add(
                    task.decorator,
                    "RG008",
                    f"task {name!r} retries itself (autoretry_for) with no stated bound ({why}): "
                    "set max_retries=N on the task",
                )
            for call, call_stated in task.retries:
                if not (call_stated or stated):
                    self._add(
                        call,
                        "RG008",
                        f"task {name!r} reschedules itself with self.retry() and no stated "
                        f"bound ({why}): set max_retries=N on the task or in the call",
                    )
            if "autoretry_for" in options or task.retries:
                for site in sites:
                    self._multiply(site, "Celery task retry", task.decorator.lineno)
        elif task.kind in ("dramatiq", "inngest"):
            key, default = ("max_retries", 20) if task.kind == "dramatiq" else ("retries", 4)
            given = options.get(key)
            if given is None or is_none(given):
                self._add(
                    task.decorator,
                    "RG008",
                    f"{task.kind.capitalize()} reruns {name!r} on failure, {default} times by "
                    f"default: state {key}=N (attempts = 1 + {key})",
                )
            if not (type(given) is ast.Constant and given.value == 0):
                for site in sites:
                    self._multiply(site, f"{task.kind} retry", task.decorator.lineno)
        for call, bounded in task.requeues:
            if not bounded:
                self._add(
                    call,
                    "RG008",
                    f"{name!r} enqueues itself again with no bound: pass a depth and stop at a "
                    "named MAX_DEPTH, or count its runs in the ledger",
                )

    # -- call sites --------------------------------------------------------------------------------
    def _site(self, site: Site) -> None:
        node = site.node
        if not site.output_bound and type(node) is ast.Call:
            client = site.client
            sdk = None if client is None else client.sdk
            self._add(
                node,
                "RG009",
                f"{site.label} has no output-token bound: {_bound_fix(sdk, client)}",
                node.func,
            )
        if "RG010" not in self.select or site.guarded or self.guarded(site.func):
            return
        comments = self._comments()
        found = None if comments is None else contract_text(comments, site.anchors)
        end = node.func if type(node) is ast.Call else node
        if found is None:
            self._add(
                node,
                "RG010",
                f"paid call {site.label} has no cost contract: guard it with a runaway-guard "
                "contract, or write a `# cost contract:` comment above it stating unit cost, "
                "max calls, max $ per run and the provider cap",
                end,
            )
            return
        line, text = found
        missing = contract_fields(text, self.fields)
        if missing:
            names = ", ".join(_FIELD_NAMES[name] for name in missing)
            self._add(
                node,
                "RG010",
                f"the cost contract at line {line} for {site.label} does not state the "
                f"{names}: a contract states unit cost, max calls, max $ per run and the "
                "provider cap",
                end,
            )


def _head(handler: Handler) -> Located:
    return handler.node.type if handler.node.type is not None else handler.node


def _caught(handler: Handler) -> str:
    kind = handler.node.type
    if kind is None:
        return "bare `except:`"
    text = ast.unparse(kind)
    return f"`except {text}`" if len(text) <= 40 else "this `except`"


def _unbounded_message(loop: LoopRecord, site: Site) -> str:
    kind = "while loop" if type(loop.node) is ast.While else "for loop over an endless iterator"
    return (
        f"{kind} around a paid call ({site.label}, line {site.node.lineno}) has no integer "
        "bound: loop `for attempt in range(MAX_CALLS)`, or count the calls and stop at a "
        "named limit"
    )


def _poll_message(polled: str) -> str:
    return (
        f"polling loop ({polled}) has no deadline: stop at a deadline (time.monotonic() >= "
        "deadline) or loop `for _ in range(MAX_POLLS)`"
    )


def _every_exception_message(handler: Handler) -> str:
    return (
        f"retry loop catches {_caught(handler)} and tries the paid call again, 4xx included: "
        "catch only transient errors (429, 5xx, timeouts), or re-raise the others"
    )


def _retry_fix(sdk: Sdk | None) -> str:
    if sdk is None:
        return "turn its retries off"
    if sdk.retries_kwarg is not None:
        return f"build it with {sdk.retries_kwarg}=0"
    if sdk.bound == "bedrock":
        return 'build it with config=Config(retries={"max_attempts": 1})'
    if sdk.bound == "genai":
        return "build it with http_options=HttpOptions(retry_options=HttpRetryOptions(attempts=1))"
    return 'pass request_options={"max_retries": 0}'


def _bound_fix(sdk: Sdk | None, client: object) -> str:
    if sdk is not None and sdk.bound == "genai":
        return "pass config=GenerateContentConfig(max_output_tokens=N) with a named limit"
    if sdk is not None and sdk.bound == "bedrock":
        return 'pass inferenceConfig={"maxTokens": N} with a named limit'
    path = getattr(client, "path", ())
    if "responses" in normalise(path):
        return "pass max_output_tokens=N with a named limit"
    return "pass max_tokens=N with a named limit"
