"""Ship each host only the part of the probe a run needs.

Compiling the whole probe costs the host ~7 ms of CPU per run (more than the
interpreter's own start-up) and every byte of it is encrypted and sent. A run
needs a handful of ops, so the controller prunes ``probe.py`` with ``ast``: it
keeps the module-level statements, the functions reachable from ``collect``,
``main`` and the requested ops (following every name a kept function uses),
regenerates ``OPS`` with just those ops, and drops docstrings. The result is
cached per set of ops and must stay Python 3.8 syntax (tests check it).

A follow-up request runs in the namespace the first round's code left in the same host
process (readiness.collect), so it ships only the functions that code did not have: a
*delta* (``pruned_source(ops, loaded)``), the new ``OPS`` table, the imports and the call
of ``main``.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["ops_in", "probe_source", "pruned_source"]

_ROOTS = ("collect", "main", "dumps")
# Fleet workers ask for the same op set at once on first use; functools.cache does not
# serialise that, and CPython's ast is not safe to drive from several threads at a time
# (SystemError "AST constructor recursion depth mismatch", seen in a 200-host bench).
_LOCK = threading.Lock()


@cache
def probe_source() -> bytes:
    """The full probe, as shipped in the package."""
    return resources.files("readiness").joinpath("probe.py").read_bytes()


def ops_in(facts: Mapping[str, Any]) -> frozenset[str]:
    """Every ``op`` named in a request, nested specs included (``repeat`` wraps one)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        kind = type(node)  # exact types first: an ABC isinstance costs ~1 us a value
        if kind is str or kind is int or kind is float or kind is bool or node is None:
            return
        if kind is dict or isinstance(node, Mapping):
            if isinstance(node.get("op"), str):
                found.add(node["op"])
            for value in node.values():
                walk(value)
        elif kind is list or kind is tuple or isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(facts)
    return frozenset(found)


@cache
def _parsed() -> tuple[ast.Module, dict[str, str]]:
    module = ast.parse(probe_source())
    ops: dict[str, str] = {}
    for stmt in module.body:
        if _assigns(stmt, "OPS") and isinstance(stmt.value, ast.Dict):  # type: ignore[attr-defined]
            for key, value in zip(stmt.value.keys, stmt.value.values, strict=True):  # type: ignore[attr-defined]
                if isinstance(key, ast.Constant) and isinstance(value, ast.Name):
                    ops[str(key.value)] = value.id
    return module, ops


def _assigns(stmt: ast.stmt, name: str) -> bool:
    return isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    )


def pruned_source(ops: frozenset[str], loaded: frozenset[str] | None = None) -> bytes:
    """The probe with only what ``ops`` need; unknown ops are left for the probe to refuse.

    ``loaded``: the ops of a module already run in the namespace this code will run in;
    then only the functions it lacks are shipped, with ``OPS`` (for ``ops`` alone, as a
    whole module has), the imports and the call of ``main``: its constants and functions
    are there already (every whole module runs all the module-level statements)."""
    with _LOCK:
        return _pruned(ops, loaded)


@cache
def _pruned(ops: frozenset[str], loaded: frozenset[str] | None) -> bytes:
    # No fix_missing_locations: unparse does not read positions (only compile() would), and
    # walking every node for them cost ~5 ms per op set, start-up of every run included.
    return (ast.unparse(_pruned_tree(ops, loaded)) + "\n").encode()


def _pruned_tree(ops: frozenset[str], loaded: frozenset[str] | None = None) -> ast.Module:
    module, op_functions = _parsed()
    functions = {s.name: s for s in module.body if isinstance(s, ast.FunctionDef)}

    def needed(names: frozenset[str]) -> set[str]:
        wanted = [op_functions[o] for o in sorted(names) if o in op_functions]
        return _reachable([*_ROOTS, *wanted], functions)

    keep = needed(ops)
    if loaded is not None:
        keep -= needed(loaded)
    body: list[ast.stmt] = []
    for stmt in module.body:
        if isinstance(stmt, ast.FunctionDef):
            if stmt.name in keep:
                body.append(_without_docstring(stmt))
        elif _assigns(stmt, "OPS"):
            body.append(_ops_table({o: op_functions[o] for o in sorted(ops) if o in op_functions}))
        elif _is_docstring(stmt):
            continue
        elif loaded is None or isinstance(stmt, (ast.If, ast.Import, ast.ImportFrom)):
            # A delta keeps `if __name__ ...` and the imports: CPython compiles a call on an
            # imported module's attribute differently (and cheaper) when it sees the import.
            body.append(stmt)
        elif _imports_only(stmt):  # `try: import _stat as stat` / `except ImportError: ...`
            body.append(stmt)
    return ast.Module(body=body, type_ignores=[])


def _imports_only(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Try) or stmt.orelse or stmt.finalbody:
        return False
    blocks = [stmt.body, *(h.body for h in stmt.handlers)]
    return all(isinstance(s, (ast.Import, ast.ImportFrom)) for b in blocks for s in b)


def _reachable(roots: Iterable[str], functions: Mapping[str, ast.FunctionDef]) -> set[str]:
    keep: set[str] = set()
    todo = [r for r in roots if r in functions]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Name) and node.id in functions and node.id not in keep:
                todo.append(node.id)
    return keep


def _ops_table(ops: Mapping[str, str]) -> ast.stmt:
    table = ast.Dict(
        keys=[ast.Constant(k) for k in ops], values=[ast.Name(v, ast.Load()) for v in ops.values()]
    )
    return ast.Assign(targets=[ast.Name("OPS", ast.Store())], value=table, lineno=0)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _without_docstring(fn: ast.FunctionDef) -> ast.FunctionDef:
    if len(fn.body) > 1 and _is_docstring(fn.body[0]):
        fn = ast.FunctionDef(**{**fn.__dict__, "body": fn.body[1:]})
    return fn
