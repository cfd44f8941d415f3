"""The pre-pass: module names, functions, classes and ``self.<name>`` before the walk.

A function may call a helper defined below it, and a method may use ``self.client``
assigned in ``__init__`` further down the file, so these are bound before the one walk.
"""

from __future__ import annotations

import ast

from runaway_guard.lint._calls import CallEffects
from runaway_guard.lint._model import ClassInfo, ClassValue, DefValue, FuncInfo
from runaway_guard.lint._syntax import first_param, is_static, remember, self_attr

__all__ = ["Prescan"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class Prescan(CallEffects):
    """Binds what the walk needs to know before it starts."""

    classes: dict[int, ClassInfo]

    def prescan(self, body: list[ast.stmt]) -> None:
        """Bind imports, assignments, functions and classes at module level."""
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.bind_import(node)
            elif isinstance(node, ast.Assign):
                value = self.value(node.value)
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.bind(target.id, value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                held = None if node.value is None else self.value(node.value)
                self.bind(node.target.id, held or self.annotation(node.annotation))
            elif isinstance(node, _FUNCTIONS):
                func = self.new_func(node, self.module)
                self.bind(func.name, DefValue(func))
            elif isinstance(node, ast.ClassDef):
                self.prescan_class(node)
            elif isinstance(node, ast.If):
                self.prescan(node.body)
                self.prescan(node.orelse)
            elif isinstance(node, (ast.Try, ast.TryStar)):
                self.prescan(node.body)
                for handler in node.handlers:
                    self.prescan(handler.body)
                self.prescan(node.orelse)
                self.prescan(node.finalbody)

    def prescan_class(self, node: ast.ClassDef) -> ClassInfo:
        """Record a class: its methods, and what its attributes are assigned."""
        info = ClassInfo(node.name)
        self.classes[id(node)] = info
        self.bind(node.name, ClassValue(info))
        for item in node.body:
            if isinstance(item, _FUNCTIONS):
                method = self.new_func(item, self.module)
                info.methods[method.name] = method
                first = first_param(item)
                if first is not None and not is_static(item):
                    self._scan_self(item.body, first, info)
            elif isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name):
                        remember(info, target.id, item.value, None)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                remember(info, item.target.id, item.value, item.annotation)
        return info

    def _scan_self(self, body: list[ast.stmt], name: str, info: ClassInfo) -> None:
        for node in body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    attr = self_attr(target, name)
                    if attr is not None:
                        remember(info, attr, node.value, None)
            elif isinstance(node, ast.AnnAssign):
                attr = self_attr(node.target, name)
                if attr is not None:
                    remember(info, attr, node.value, node.annotation)
            elif isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While)):
                self._scan_self(node.body, name, info)
                self._scan_self(node.orelse, name, info)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                self._scan_self(node.body, name, info)
            elif isinstance(node, (ast.Try, ast.TryStar)):
                self._scan_self(node.body, name, info)
                for handler in node.handlers:
                    self._scan_self(handler.body, name, info)
                self._scan_self(node.finalbody, name, info)

    def new_func(self, node: ast.FunctionDef | ast.AsyncFunctionDef, parent: FuncInfo) -> FuncInfo:
        """The record of a function, made once per definition."""
        existing = self.defs.get(id(node))
        if existing is not None:
            return existing
        top = min([node.lineno, *(item.lineno for item in node.decorator_list)])
        nested = parent is not self.module
        func = FuncInfo(node.name, node, parent=parent, top=top)
        func.private = nested or node.name.startswith("_")
        self.defs[id(node)] = func
        self.funcs.append(func)
        return func
