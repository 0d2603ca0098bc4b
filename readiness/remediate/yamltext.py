"""Add missing keys to a YAML document *as text*, so comments and layout survive.

Re-dumping a parsed document would drop every comment and reorder keys. Instead
the missing subtree is rendered as a small block and inserted right after the last
line of the deepest existing parent mapping, at that mapping's indentation. The
result is parsed again and must hold exactly the requested value, or the edit is
refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["YamlEditError", "insert_missing"]


class YamlEditError(ValueError):
    """The document cannot be extended safely (flow style, not a mapping, ...)."""


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None


def _block(key: str, value: Any, indent: int) -> list[str]:
    text = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False)
    pad = " " * indent
    return [pad + line for line in text.splitlines()]


def _insert_line(lines: list[str], mapping: yaml.MappingNode) -> int:
    """Index of the line after the mapping's last value (trailing blank lines excluded)."""
    last = mapping.value[-1][1]
    end = last.end_mark
    at = int(end.line) if end.column == 0 else int(end.line) + 1
    at = min(at, len(lines))
    while at > 0 and not lines[at - 1].strip():
        at -= 1
    return at


def insert_missing(text: str, dotted: str, value: Any) -> str:
    """``text`` with ``dotted`` (``a.b.c``) set to ``value``; only absent keys are added."""
    parts = dotted.split(".")
    root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    lines = text.splitlines()
    node: yaml.Node | None = root
    depth = 0
    while node is not None and depth < len(parts):
        nxt = _child(node, parts[depth])
        if nxt is None:
            break
        node, depth = nxt, depth + 1
    if depth == len(parts):
        return text  # already present: nothing to add
    rest: Any = value
    for key in reversed(parts[depth + 1 :]):
        rest = {key: rest}
    if node is None:
        new_lines = [*lines, *_block(parts[0], rest, 0)]
    elif not isinstance(node, yaml.MappingNode) or node.flow_style:
        where = ".".join(parts[:depth]) or "the document"
        raise YamlEditError(f"{where} is not a block mapping; add {dotted} by hand")
    elif not node.value:
        raise YamlEditError(f"{'.'.join(parts[:depth])} is an empty mapping; add {dotted} by hand")
    else:
        indent = int(node.value[0][0].start_mark.column)
        at = _insert_line(lines, node) if depth else len(lines)
        if not depth:
            while at > 0 and not lines[at - 1].strip():
                at -= 1
        new_lines = [*lines[:at], *_block(parts[depth], rest, indent), *lines[at:]]
    new = "\n".join(new_lines) + "\n"
    _verify(new, parts, value)
    return new


def _verify(new: str, parts: list[str], value: Any) -> None:
    try:
        data = yaml.safe_load(new)
    except yaml.YAMLError as exc:
        raise YamlEditError(f"the edited settings would not parse: {exc}") from None
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            raise YamlEditError(f"the edited settings do not contain {'.'.join(parts)}")
        node = node[part]
    if node != value:
        raise YamlEditError(f"the edited settings hold {node!r} for {'.'.join(parts)}")
