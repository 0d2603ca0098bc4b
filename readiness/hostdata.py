"""Bounded parsing of bytes a host sent: YAML, JSON and text the host controls.

Everything read on an audited host (settings files, dashboards, log lines, the probe's
answer itself) is written by a user who may be hostile. Parsing it on the controller must
not hang, blow the stack or memory, or lose the report:

* YAML goes through the project's strict loader (:mod:`readiness.inventory.strict_yaml`):
  an alias budget against "billion laughs" bombs, no duplicate keys, errors at file:line;
* JSON and YAML are refused past :data:`MAX_DEPTH` levels of nesting (the stdlib parsers
  would raise ``RecursionError``, and every later walk over the data would too);
* text is refused past a size limit before it is parsed;
* strings that came from undecodable bytes (lone surrogates from ``surrogateescape``,
  e.g. a non-UTF-8 file name) are rewritten as ``\\xNN`` escapes, so the report can always
  be printed and saved as UTF-8.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import re
import sys
import threading
from collections import OrderedDict
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_TEXT",
    "MAX_YAML",
    "HostDataError",
    "copy_parsed",
    "json_items",
    "load_json",
    "load_yaml",
    "printable",
    "printable_streams",
    "printable_tree",
]

MAX_DEPTH = 100
MAX_TEXT = 16 * 1024 * 1024
# The strict loader is pure Python (~6 s per MiB on a loaded 2-core machine); the probe
# reads at most 256 KiB of a file, so a bigger YAML text came from a tampered probe.
MAX_YAML = 512 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[,\[{]')


class HostDataError(ValueError):
    """Host data that cannot be parsed within the bounds; the message is one clear line."""


def printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes) as ``\\xNN`` / ``\\uNNNN`` escapes."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's encoding of the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable_streams() -> None:
    """Make stdout/stderr write ``\\uNNNN`` escapes for what their encoding cannot show
    (an ASCII or Latin-1 terminal, ``PYTHONIOENCODING=ascii``), instead of raising in the
    middle of a report and losing it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            with contextlib.suppress(ValueError, OSError, TypeError):
                reconfigure(errors="backslashreplace")


def printable_tree(data: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """Check the nesting depth of parsed data and make every string printable, in place
    where possible; iterative, so no depth can overflow the stack. Raises
    :class:`HostDataError` past ``max_depth`` levels."""
    root = [data]
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise HostDataError(f"nested more than {max_depth} levels deep")
        if isinstance(node, dict):
            for raw_key in list(node):
                value = node[raw_key]
                key = raw_key
                if isinstance(raw_key, str) and _SURROGATE.search(raw_key):
                    del node[raw_key]
                    key = printable(raw_key)
                    node[key] = value
                if isinstance(value, str):
                    node[key] = printable(value)
                elif isinstance(value, dict | list):
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str):
                    node[i] = printable(value)
                elif isinstance(value, dict | list):
                    stack.append((value, depth + 1))
    return root[0]


def _check_size(text: str | bytes, limit: int) -> None:
    if len(text) > limit:
        raise HostDataError(f"{len(text)} bytes is more than the {limit} bytes readiness parses")


def json_items(data: str | bytes, limit: int) -> int:
    """An upper bound of the values in a JSON document, counted without parsing it
    (parsed, every small value costs ~50-100 bytes of Python objects: 8 MiB of ``"ab",``
    became ~150 MB of controller memory).

    Every value but a container's first follows a ``,``. Counting ``,``, ``[`` and ``{``
    is C-fast; only when that exceeds ``limit`` (commas inside strings count too) are the
    tokens outside strings counted one by one, in constant memory, up to the limit.
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    rough = text.count(",") + text.count("[") + text.count("{") + 1
    if rough <= limit:
        return rough
    count = 1
    for token in _JSON_TOKEN.finditer(text):
        if token.group()[:1] != '"':
            count += 1
            if count > limit:
                break  # enough to refuse: bounded CPU
    return count


def load_json(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_size: int = MAX_TEXT,
    max_items: int | None = None,
) -> Any:
    """``json.loads`` within size, depth and (optionally) item-count bounds; strings made
    printable.

    Raises :class:`HostDataError` (a ``ValueError``) for invalid, oversized, too deeply
    nested JSON, or JSON with more than ``max_items`` values.
    """
    _check_size(text, max_size)
    if max_items is not None and len(text) > 2 * max_items:  # shorter cannot hold more
        items = json_items(text, max_items)
        if items > max_items:
            raise HostDataError(f"more than the {max_items} values readiness parses")
    try:
        data = json.loads(text)
    except RecursionError:
        raise HostDataError(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise HostDataError(f"invalid JSON: {exc}") from None
    if isinstance(text, str) and _surrogate_free(text):
        _check_depth(data, max_depth)  # no string to rewrite: only the depth to check
        return data
    return printable_tree(data, max_depth=max_depth)


def _surrogate_free(text: str) -> bool:
    """Whether ``json.loads(text)`` surely holds no lone surrogate: none in the text, and
    no ``\\uD800``-``\\uDFFF`` escape (a conservative test: ``\\ud`` anywhere)."""
    if "\\ud" in text or "\\uD" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")  # strict: fails on a lone surrogate
    except UnicodeEncodeError:
        return False
    return True


def _check_depth(data: Any, max_depth: int) -> None:
    """:func:`printable_tree`'s depth check alone (same levels, same error)."""
    stack = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is dict:
            node = node.values()
        elif kind is not list:
            continue
        if depth > max_depth:
            raise HostDataError(f"nested more than {max_depth} levels deep")
        for value in node:
            if type(value) is dict or type(value) is list:
                push((value, depth + 1))


def load_yaml(text: str, path: str, *, max_depth: int = MAX_DEPTH, max_size: int = MAX_YAML) -> Any:
    """Parse host YAML with the strict loader (alias budget, no duplicate keys).

    Raises :class:`HostDataError` whose message starts with ``path[:line]: invalid YAML:``.
    """
    from .errors import ReadinessError
    from .inventory.source import Where
    from .inventory.strict_yaml import parse_yaml

    try:
        _check_size(text, max_size)
    except HostDataError as exc:
        raise HostDataError(f"{path}: {exc}") from None
    cached = _yaml_cache_get(text, max_depth)
    if cached is not _MISS:
        return cached
    try:
        data = parse_yaml(text, Where(path))
    except RecursionError:
        raise HostDataError(
            f"{path}: invalid YAML: nested more than {max_depth} levels deep"
        ) from None
    except ReadinessError as exc:
        raise HostDataError(_yaml_message(exc, path)) from None
    try:
        data = printable_tree(data, max_depth=max_depth)
    except HostDataError as exc:
        raise HostDataError(f"{path}: invalid YAML: {exc}") from None
    _yaml_cache_put(text, max_depth, data)
    return data


# Parsed YAML per distinct text: a fleet's hosts usually carry the same settings and alert
# rules, and parsing (~0.4-0.7 ms a file here) is most of what the controller spends on
# them. The cache holds what the same text always parses to (never an error, never the
# path: it is only in error messages), and each caller gets its own copy, so no host sees
# another host's data and no caller's change reaches another. Texts with anchors (shared
# subtrees, which a copy would expand) and big texts are parsed every time.
_YAML_CACHE_ENTRIES = 64
_YAML_CACHE_MAX_TEXT = 64 * 1024
_yaml_cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
_yaml_cache_lock = threading.Lock()
_MISS = object()
_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None), datetime.date, datetime.datetime})


class _Uncopyable(Exception):
    pass


def _copy_tree(value: Any, seen: set[int] | None = None) -> Any:
    """A copy of parsed YAML (depth already bounded): containers copied, with their type
    (the strict loader's dicts carry line numbers), scalars shared. With ``seen``, a
    container met twice (a YAML alias) is :class:`_Uncopyable` too."""
    kind: Any = type(value)
    if kind in _IMMUTABLE:
        return value
    if seen is not None:
        if id(value) in seen:
            raise _Uncopyable("shared")
        seen.add(id(value))
    if kind is dict:
        return {k: _copy_tree(v, seen) for k, v in value.items()}
    if kind is list:
        return [_copy_tree(v, seen) for v in value]
    if isinstance(value, dict) and hasattr(value, "__dict__"):
        out = kind.__new__(kind)
        out.__dict__.update({k: _copy_tree(v, seen) for k, v in vars(value).items()})
        dict.update(out, {k: _copy_tree(v, seen) for k, v in value.items()})
        return out
    if kind is tuple:
        return tuple(_copy_tree(v, seen) for v in value)
    if kind is set:
        return set(value)  # members are hashable scalars
    raise _Uncopyable(kind.__name__)


def copy_parsed(value: Any) -> Any:
    """``copy.deepcopy`` of parsed host data, ~5x faster: the same containers with the same
    types and the same (immutable) scalars. Data in which a container appears twice (a
    YAML alias, whose sharing deepcopy keeps) or that holds any other type is copied by
    ``copy.deepcopy`` itself."""
    try:
        return _copy_tree(value, set())
    except (_Uncopyable, RecursionError):
        return copy.deepcopy(value)


def _yaml_cache_get(text: str, max_depth: int) -> Any:
    if len(text) > _YAML_CACHE_MAX_TEXT or "&" in text:
        return _MISS
    with _yaml_cache_lock:
        data = _yaml_cache.get((text, max_depth), _MISS)
        if data is _MISS:
            return _MISS
        _yaml_cache.move_to_end((text, max_depth))
    return _copy_tree(data)


def _yaml_cache_put(text: str, max_depth: int, data: Any) -> None:
    if len(text) > _YAML_CACHE_MAX_TEXT or "&" in text:
        return
    try:
        kept = _copy_tree(data)
    except _Uncopyable:
        return
    with _yaml_cache_lock:
        _yaml_cache[(text, max_depth)] = kept
        while len(_yaml_cache) > _YAML_CACHE_ENTRIES:
            _yaml_cache.popitem(last=False)


def _yaml_message(exc: Exception, path: str) -> str:
    line = getattr(exc, "line", None)
    message = str(getattr(exc, "message", None) or exc)
    where = f"{path}:{line}" if line else path
    return message if message.startswith(where) else f"{where}: {message}"
