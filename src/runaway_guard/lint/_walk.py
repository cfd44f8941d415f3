"""One walk over a module: statements, scopes, loops, handlers and what each call does.

A short pre-pass binds module-level names, functions, classes and their ``self.<name>``
attributes (so a function may call a helper defined below it); then one recursive walk
records paid call sites, loops, fan-outs and retry layers. `_checks` turns the records
into findings.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from runaway_guard.lint._config import LintConfig
from runaway_guard.lint._model import (
    ChunkValue,
    ClassInfo,
    ClassValue,
    ClientValue,
    ContractValue,
    DefValue,
    FuncInfo,
    Handler,
    LoopRecord,
    OpenLoop,
    QualValue,
    Region,
    RetryValue,
    SemaphoreValue,
    TaskInfo,
    Value,
)
from runaway_guard.lint._prescan import Prescan
from runaway_guard.lint._resolve import catches_everything, dotted
from runaway_guard.lint._syntax import (
    Comprehension,
    always_leaves,
    compared_with_a_limit,
    exit_kinds,
    first_param,
    is_range,
    is_static,
    leaves_anywhere,
    leaves_on_success,
    names_assigned,
    names_read,
    params,
    reraises_on,
)

__all__ = ["Walker"]

TIMEOUTS = frozenset(
    {
        "asyncio.timeout",
        "asyncio.timeout_at",
        "anyio.fail_after",
        "anyio.move_on_after",
        "trio.fail_after",
        "trio.move_on_after",
        "async_timeout.timeout",
    }
)
_QUIET = (ast.Pass, ast.Continue, ast.Global, ast.Nonlocal, ast.Delete)
_COMPOUND = frozenset(
    {
        ast.If,
        ast.For,
        ast.AsyncFor,
        ast.While,
        ast.With,
        ast.AsyncWith,
        ast.Try,
        ast.TryStar,
        ast.Match,
    }
)


class Walker(Prescan):
    """Walks one module and records what the checks need."""

    def __init__(self, config: LintConfig) -> None:
        super().__init__(config)
        self.classes: dict[int, ClassInfo] = {}
        self.class_scopes: set[int] = set()
        self.class_body: ClassInfo | None = None

    def run(self, tree: ast.Module) -> None:
        """Pre-bind module names, then walk the module once."""
        self.prescan(tree.body)
        self.block(tree.body)

    # -- statements --------------------------------------------------------------------------------
    def block(self, body: list[ast.stmt]) -> None:
        for node in body:
            self.stmt(node)

    def stmt(self, node: ast.stmt) -> None:
        self.stmt_line = node.lineno
        handler = _STATEMENTS.get(type(node))
        if type(node) in _COMPOUND:
            # A cost contract written above a loop or a `with` block covers the calls in it.
            saved = self.anchors
            self.anchors = (node.lineno, *saved)
            if handler is not None:
                handler(self, node)
            self.anchors = saved
        elif handler is not None:
            handler(self, node)
        elif not isinstance(node, _QUIET):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.stmt):
                    self.stmt(child)

    def _expr_stmt(self, node: ast.Expr) -> None:
        self.expr(node.value)

    def _return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.expr(node.value)
        self._leave(loop_only=False)

    def _raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            self.expr(node.exc)

    def _break(self, node: ast.Break) -> None:
        self._leave(loop_only=True)

    def _assert(self, node: ast.Assert) -> None:
        self.expr(node.test)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.bind_import(node)

    def _ann_assign(self, node: ast.AnnAssign) -> None:
        held = None
        if node.value is not None:
            self.expr(node.value)
            held = self.value(node.value)
        self.assign(node.target, held or self.annotation(node.annotation), node.value)

    def _match(self, node: ast.Match) -> None:
        self.expr(node.subject)
        for case in node.cases:
            if case.guard is not None:
                self.expr(case.guard)
            self.block(case.body)

    def _assign_stmt(self, node: ast.Assign) -> None:
        targets = node.targets
        if (
            isinstance(node.value, (ast.ListComp, ast.GeneratorExp, ast.SetComp))
            and len(targets) == 1
            and isinstance(targets[0], ast.Name)
        ):
            self.collect(targets[0].id, node.value)
            return
        self.expr(node.value)
        held = self.value(node.value)
        for target in node.targets:
            self.assign(target, held, node.value)

    def assign(self, target: ast.expr, held: Value | None, source: ast.expr | None) -> None:
        """Bind `target` to `held` (the value of `source`)."""
        if isinstance(target, ast.Name):
            name = target.id
            if self.open_loops:
                self._moved(name, source)
            self.bind(name, held)
        elif isinstance(target, ast.Attribute):
            if self.open_loops:
                self._moved(dotted(target), source)
            base = target.value
            if (
                held is not None
                and self.cls is not None
                and isinstance(base, ast.Name)
                and base.id == self.self_name
            ):
                if isinstance(held, ClientValue) and not held.path:
                    held = replace(held, label=f"self.{target.attr}")
                self.cls.attributes[target.attr] = held
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = target.elts
            if isinstance(source, (ast.Tuple, ast.List)) and len(source.elts) == len(items):
                for item, part in zip(items, source.elts, strict=True):
                    self.assign(item, self.value(part), part)
            else:
                for item in items:
                    self.assign(item, None, None)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, None, None)

    def _aug_assign(self, node: ast.AugAssign) -> None:
        self.expr(node.value)
        if self.open_loops and type(node.op) in (ast.Add, ast.Sub):
            name = dotted(node.target)
            if name is not None:
                self._count(name)

    def _count(self, name: str) -> None:
        for loop in self.open_loops:
            loop.counters.add(name)

    def _moved(self, name: str | None, source: ast.expr | None) -> None:
        """Note an assignment in a loop: ``n = n + 1`` steps a counter; any other moves it."""
        if name is None:
            return
        if (
            isinstance(source, ast.BinOp)
            and isinstance(source.op, (ast.Add, ast.Sub))
            and name in (dotted(source.left), dotted(source.right))
        ):
            self._count(name)
        for loop in self.open_loops:
            loop.assigned.add(name)

    def _leave(self, *, loop_only: bool) -> None:
        """Note a ``break`` (innermost loop) or a ``return`` (every loop) outside handlers."""
        loops = self.open_loops[-1:] if loop_only else self.open_loops
        for loop in loops:
            if loop.handler_depth == self.handlers:
                loop.exits.append(self.stmt_line)

    def _if(self, node: ast.If) -> None:
        self.expr(node.test)
        if self.open_loops:
            kinds = exit_kinds(node.body) | exit_kinds(node.orelse)
            if kinds:
                names = names_read(node.test)
                ordered = compared_with_a_limit(node.test)
                clock = self.reads_clock(node.test)
                loops = self.open_loops if kinds - {"break"} else self.open_loops[-1:]
                for loop in loops:
                    loop.tested |= names
                    loop.ordered |= ordered
                    if clock:
                        loop.record.deadline = True
        compares = any(type(child) is ast.Compare for child in ast.walk(node.test))
        self.depth_checks += compares
        self.block(node.body)
        self.block(node.orelse)
        self.depth_checks -= compares

    def _open(self, record: LoopRecord, bounded_items: bool) -> OpenLoop:
        self.loops.append(record)
        self.push(record.region)
        loop = OpenLoop(record, self.handlers)
        self.open_loops.append(loop)
        self.iterations.append(bounded_items)
        if self.timeouts:
            record.deadline = True
        return loop

    def _close(self) -> OpenLoop:
        self.iterations.pop()
        self.pop()
        return self.open_loops.pop()

    def _while(self, node: ast.While) -> None:
        record = LoopRecord(node, Region())
        loop = self._open(record, True)
        test = node.test
        if not (type(test) is ast.Constant and test.value):
            loop.tested |= names_read(test)
            loop.ordered |= compared_with_a_limit(test)
            if self.reads_clock(test):
                record.deadline = True
        self.expr(test)
        self.block(node.body)
        self._close()
        record.bounded = loop.bounded
        record.retry_shape = True
        loop.settle_handlers()
        self.block(node.orelse)

    def _for(self, node: ast.For | ast.AsyncFor) -> None:
        self.expr(node.iter)
        items = self.value(node.iter)
        endless = self.endless_iterable(node.iter)
        record = LoopRecord(
            node,
            Region(),
            bounded=not endless,
            infinite_for=endless,
            retry=items if type(items) is RetryValue else None,
        )
        self.assign(node.target, ChunkValue() if type(items) is ChunkValue else None, None)
        loop = self._open(record, self.bounded_iterable(node.iter))
        if endless and type(node.target) is ast.Name:
            loop.counters.add(node.target.id)
        self.block(node.body)
        self._close()
        if endless:
            record.bounded = loop.bounded
        record.retry_shape = endless or record.retry is not None or is_range(node.iter, self)
        loop.settle_handlers()
        self.block(node.orelse)

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        limited = timeouts = 0
        for item in node.items:
            context = item.context_expr
            self.expr(context)
            held = self.value(context)
            if type(held) is SemaphoreValue or self.limiting(context):
                limited += 1
                self.func.limited = True
            elif type(context) is ast.Call:
                callee = self.value(context.func)
                if type(callee) is QualValue and callee.name in TIMEOUTS:
                    timeouts += 1
            if item.optional_vars is not None:
                self.assign(item.optional_vars, held, None)
        self.limited += limited
        self.timeouts += timeouts
        self.block(node.body)
        self.limited -= limited
        self.timeouts -= timeouts

    def _try(self, node: ast.Try | ast.TryStar) -> None:
        body = self.push()
        self.block(node.body)
        self.pop()
        specific_exit = False
        attempt_exits = leaves_on_success([*node.body, *node.orelse])
        attempt_sets = names_assigned(node.body)
        for handler in node.handlers:
            self.push()
            self.handlers += 1
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name is not None:
                self.bind(handler.name, None)
            self.block(handler.body)
            self.handlers -= 1
            self.pop()
            catches_all = catches_everything(handler.type)
            ends = always_leaves(handler.body)
            if self.open_loops:
                self.open_loops[-1].record.handlers.append(
                    Handler(
                        handler,
                        body,
                        catches_all,
                        swallows=not leaves_anywhere(handler.body),
                        loops_again=not ends,
                        classified=specific_exit or reraises_on(handler),
                        attempt_exits=attempt_exits,
                        attempt_end=node.end_lineno or node.lineno,
                        attempt_sets=attempt_sets,
                    )
                )
            if not catches_all and ends:
                specific_exit = True
        self.block(node.orelse)
        self.block(node.finalbody)

    # -- definitions -------------------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        func = self.new_func(node, self.func)
        for decorator in node.decorator_list:
            self.expr(decorator)
            self.decorate(func, decorator)
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.expr(default)
        self.bind(node.name, DefValue(func))
        method_of = self.class_body
        saved = self.enter(func)
        scope: dict[str, Value | None] = {}
        for arg in params(node.args):
            scope[arg.arg] = None if arg.annotation is None else self.annotation(arg.annotation)
        self.scopes = [s for s in self.scopes if id(s) not in self.class_scopes]
        self.scopes.append(scope)
        self.class_body = None
        first = first_param(node)
        if method_of is not None:
            self.cls = method_of
            self.self_name = None if is_static(node) else first
        task = func.task
        if task is not None and task.kind == "celery":
            bound = task.options.get("bind")
            if type(bound) is ast.Constant and bound.value is True:
                task.self_name = first
        self.anchors = (func.top, *self.anchors)
        self.block(node.body)
        self.leave(saved)
        self.class_body = method_of

    def decorate(self, func: FuncInfo, decorator: ast.expr) -> None:
        """Note what a decorator makes of `func`: guarded, retried, a queued task."""
        held = self.value(decorator)
        if isinstance(held, QualValue) and not isinstance(decorator, ast.Call):
            held = self.retry_policy(held.name, None) or held
        if isinstance(held, ContractValue):
            func.guarded = True
            if held.retry:
                func.contract_retry = held.line or decorator.lineno
            return
        if isinstance(held, RetryValue):
            if held.line == 0:
                held = replace(held, line=decorator.lineno, column=decorator.col_offset)
            func.retries.append(held)
            return
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        options: dict[str, ast.expr] = {}
        if isinstance(decorator, ast.Call):
            options = {item.arg: item.value for item in decorator.keywords if item.arg}
        name = self.value(target)
        qual = name.name if isinstance(name, QualValue) else None
        attr = target.attr if isinstance(target, ast.Attribute) else None
        configured = self.config.task_decorators
        if (
            qual in ("celery.shared_task", "celery.task")
            or (
                isinstance(target, ast.Attribute)
                and target.attr == "task"
                and not isinstance(self.value(target.value), ClientValue)
            )
            or (configured and (qual in configured or dotted(target) in configured))
        ):
            func.task = TaskInfo("celery", decorator, options)
        elif qual == "dramatiq.actor":
            func.task = TaskInfo("dramatiq", decorator, options)
        elif attr == "create_function":
            func.task = TaskInfo("inngest", decorator, options)

    def _class(self, node: ast.ClassDef) -> None:
        info = self.classes.get(id(node)) or self.prescan_class(node)
        for decorator in node.decorator_list:
            self.expr(decorator)
        for base in node.bases:
            self.expr(base)
        self.bind(node.name, ClassValue(info))
        scope: dict[str, Value | None] = {}
        self.class_scopes.add(id(scope))
        self.scopes.append(scope)
        saved_body, saved_anchors = self.class_body, self.anchors
        self.class_body = info
        top = min([node.lineno, *(item.lineno for item in node.decorator_list)])
        self.anchors = (top, *self.anchors)
        self.block(node.body)
        self.class_body, self.anchors = saved_body, saved_anchors
        self.scopes.pop()

    # -- expressions -------------------------------------------------------------------------------
    def comprehension(self, node: Comprehension) -> bool:
        """Walk a comprehension; True when every ``for`` in it is over a bounded iterable."""
        bounded = all(self.bounded_iterable(item.iter) for item in node.generators)
        self.scopes.append({})
        for item in node.generators:
            self.expr(item.iter)
            chunk = isinstance(self.value(item.iter), ChunkValue)
            self.assign(item.target, ChunkValue() if chunk else None, None)
            for condition in item.ifs:
                self.expr(condition)
        self.iterations.append(bounded)
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            self.expr(node.value)
        else:
            self.expr(node.elt)
        self.iterations.pop()
        self.scopes.pop()
        return bounded

    def expr(self, node: ast.expr) -> None:
        handler = _EXPRESSIONS.get(type(node))
        if handler is not None:
            handler(self, node)
        elif not isinstance(node, (ast.Name, ast.Constant)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def _attribute_expr(self, node: ast.Attribute) -> None:
        self.reference_if_paid(node)
        base = node.value
        while isinstance(base, ast.Attribute):
            base = base.value
        if not isinstance(base, ast.Name):
            self.expr(base)

    def _bin_op(self, node: ast.BinOp) -> None:
        # Long `a + b + c + ...` chains nest deeply on the left: walk them without recursion.
        left: ast.expr = node
        while isinstance(left, ast.BinOp):
            self.expr(left.right)
            left = left.left
        self.expr(left)

    def _inner(self, node: ast.Await | ast.Starred | ast.FormattedValue | ast.UnaryOp) -> None:
        self.expr(node.operand if isinstance(node, ast.UnaryOp) else node.value)

    def _all(self, node: ast.BoolOp | ast.JoinedStr | ast.Tuple | ast.List | ast.Set) -> None:
        for item in node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else node.values:
            self.expr(item)

    def _compare(self, node: ast.Compare) -> None:
        self.expr(node.left)
        for item in node.comparators:
            self.expr(item)

    def _dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if key is not None:
                self.expr(key)
        for item in node.values:
            self.expr(item)

    def _lambda(self, node: ast.Lambda) -> None:
        self.scopes.append(dict.fromkeys((arg.arg for arg in params(node.args)), None))
        self.expr(node.body)
        self.scopes.pop()

    def _named(self, node: ast.NamedExpr) -> None:
        self.expr(node.value)
        self.assign(node.target, self.value(node.value), node.value)

    def _skip(self, node: ast.expr) -> None:
        pass


def _comprehension(walker: Walker, node: Comprehension) -> None:
    walker.comprehension(node)


_STATEMENTS: dict[type[ast.stmt], Callable[[Walker, Any], None]] = {
    ast.Expr: Walker._expr_stmt,
    ast.Assign: Walker._assign_stmt,
    ast.Return: Walker._return,
    ast.FunctionDef: Walker._function,
    ast.AsyncFunctionDef: Walker._function,
    ast.AugAssign: Walker._aug_assign,
    ast.AnnAssign: Walker._ann_assign,
    ast.Raise: Walker._raise,
    ast.Break: Walker._break,
    ast.ClassDef: Walker._class,
    ast.Import: Walker._import,
    ast.ImportFrom: Walker._import,
    ast.Assert: Walker._assert,
    ast.If: Walker._if,
    ast.For: Walker._for,
    ast.AsyncFor: Walker._for,
    ast.While: Walker._while,
    ast.With: Walker._with,
    ast.AsyncWith: Walker._with,
    ast.Try: Walker._try,
    ast.TryStar: Walker._try,
    ast.Match: Walker._match,
}
_EXPRESSIONS: dict[type[ast.expr], Callable[[Walker, Any], None]] = {
    ast.Call: Walker.call,
    ast.Name: Walker._skip,
    ast.Constant: Walker._skip,
    ast.Attribute: Walker._attribute_expr,
    ast.BinOp: Walker._bin_op,
    ast.Await: Walker._inner,
    ast.Starred: Walker._inner,
    ast.FormattedValue: Walker._inner,
    ast.UnaryOp: Walker._inner,
    ast.BoolOp: Walker._all,
    ast.JoinedStr: Walker._all,
    ast.Tuple: Walker._all,
    ast.List: Walker._all,
    ast.Set: Walker._all,
    ast.Compare: Walker._compare,
    ast.Dict: Walker._dict,
    ast.ListComp: _comprehension,
    ast.SetComp: _comprehension,
    ast.GeneratorExp: _comprehension,
    ast.DictComp: _comprehension,
    ast.Lambda: Walker._lambda,
    ast.NamedExpr: Walker._named,
}
