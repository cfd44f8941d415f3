"""Small questions about syntax the walk asks: does this block leave the loop, ...?"""

from __future__ import annotations

import ast

from runaway_guard.lint._model import ClassInfo
from runaway_guard.lint._resolve import Pending, Resolver, dotted

__all__ = [
    "Comprehension",
    "always_leaves",
    "compared_with_a_limit",
    "exit_kinds",
    "first_param",
    "is_range",
    "is_static",
    "leaves_anywhere",
    "leaves_on_success",
    "names_assigned",
    "names_read",
    "params",
    "remember",
    "reraises_on",
    "self_attr",
]

Comprehension = ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_LEAVES = (ast.Break, ast.Return, ast.Raise)


def remember(info: ClassInfo, name: str, value: ast.expr | None, note: ast.expr | None) -> None:
    """Note what ``self.<name>`` (or a class attribute) is assigned, for later resolution."""
    held = info.attributes.get(name)
    if isinstance(held, Pending):
        if held.expr is None or is_none_literal(held.expr):
            held.expr = value
        if held.annotation is None:
            held.annotation = note
        return
    info.attributes[name] = Pending(value, note)


def is_none_literal(node: ast.expr) -> bool:
    return type(node) is ast.Constant and node.value is None


def self_attr(node: ast.expr, name: str) -> str | None:
    """The attribute in ``<name>.<attribute>`` (``self.client``), or None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == name else None
    return None


def params(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg is not None:
        found.append(args.vararg)
    if args.kwarg is not None:
        found.append(args.kwarg)
    return found


def first_param(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def is_static(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(dotted(item) == "staticmethod" for item in node.decorator_list)


def names_read(node: ast.expr) -> set[str]:
    """Names and dotted attribute chains read in an expression."""
    found: set[str] = set()
    for child in ast.walk(node):
        if type(child) is ast.Name:
            found.add(child.id)
        elif type(child) is ast.Attribute:
            text = dotted(child)
            if text is not None:
                found.add(text)
    return found


def compared_with_a_limit(node: ast.expr) -> set[str]:
    """Names on either side of an ordering comparison (``i < len(items)``, ``spent >= cap``)."""
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Compare) and any(
            isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in child.ops
        ):
            for operand in (child.left, *child.comparators):
                name = dotted(operand)
                if name is not None:
                    found.add(name)
    return found


def exit_kinds(body: list[ast.stmt]) -> set[str]:
    """How a block may leave a loop: ``break``, ``return``, ``raise`` (nested ifs included)."""
    kinds: set[str] = set()
    for node in body:
        if isinstance(node, ast.Break):
            kinds.add("break")
        elif isinstance(node, ast.Return):
            kinds.add("return")
        elif isinstance(node, ast.Raise):
            kinds.add("raise")
        elif isinstance(node, ast.If):
            kinds |= exit_kinds(node.body) | exit_kinds(node.orelse)
    return kinds


def always_leaves(body: list[ast.stmt]) -> bool:
    """Whether a block always leaves the loop (ends with break, return or raise)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, _LEAVES):
        return True
    if type(last) is ast.If:
        return always_leaves(last.body) and always_leaves(last.orelse)
    return False


def leaves_anywhere(body: list[ast.stmt]) -> bool:
    """Whether a block can leave the loop at all (a break, return or raise anywhere)."""
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, _LEAVES):
            return True
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(node))
    return False


def leaves_on_success(body: list[ast.stmt]) -> bool:
    """Whether a block (a ``try`` body) leaves the loop with ``break`` or ``return``."""
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Break, ast.Return)):
            return True
        if isinstance(
            node, (*_FUNCTIONS, ast.ClassDef, ast.Lambda, ast.For, ast.AsyncFor, ast.While)
        ):
            continue  # a break there leaves another loop; a return there another function
        pending.extend(ast.iter_child_nodes(node))
    return False


def names_assigned(body: list[ast.stmt]) -> frozenset[str]:
    """Names (and dotted attributes) a block assigns: a ``done = True`` flag, say."""
    found: set[str] = set()
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            name = dotted(target)
            if name is not None:
                found.add(name)
    return frozenset(found)


def reraises_on(handler: ast.ExceptHandler) -> bool:
    """Whether a handler lets some errors out depending on the exception it caught."""
    if handler.name is None:
        return False
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if (
            type(node) is ast.If
            and handler.name in names_read(node.test)
            and (leaves_anywhere(node.body) or leaves_anywhere(node.orelse))
        ):
            return True
    return False


def is_range(node: ast.expr, resolver: Resolver) -> bool:
    return (
        type(node) is ast.Call
        and type(node.func) is ast.Name
        and node.func.id == "range"
        and not resolver.defined("range")
    )
