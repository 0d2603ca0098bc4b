"""Strict YAML: no duplicate keys, no recursive aliases or alias bombs, errors at file:line.

Mappings remember the line of each key, so later errors can point at the offending entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from .source import Where

__all__ = ["compose_checked", "key_where", "line_of", "parse_yaml"]

_ALIAS_BUDGET = 100  # YAML alias expansions allowed per file; stops "billion laughs" documents


class _LineDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


def line_of(mapping: Any, key: Any) -> int | None:
    if isinstance(mapping, _LineDict):
        return mapping.key_lines.get(str(key), mapping.line)
    return None


def key_where(mapping: Any, key: str, where: Where) -> Where:
    """The line of ``key`` in a loaded mapping when it is there, else ``where``."""
    if isinstance(mapping, _LineDict) and key in mapping:
        return where.at(line_of(mapping, key))
    return where


class _Refused(Exception):
    """The strict loader refused a document it could parse (aliases out of budget)."""

    def __init__(self, message: str, event: yaml.Event) -> None:
        super().__init__(message)
        self.line = event.start_mark.line + 1 if event.start_mark else None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, recursive aliases and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expansions = 0
        self._anchor_cost: dict[str, int] = {}
        self._open_anchors: set[str] = set()
        self._cost_stack = [0]

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            self._charge_alias(event)
            return yaml.composer.Composer.compose_node(self, parent, index)
        anchor = getattr(event, "anchor", None)
        self._cost_stack.append(0)
        if anchor:
            self._open_anchors.add(anchor)
        try:
            node = yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._open_anchors.discard(anchor or "")
            inner = self._cost_stack.pop()
        if anchor:
            self._anchor_cost[anchor] = inner
        self._cost_stack[-1] += inner
        return node

    def _charge_alias(self, event: yaml.AliasEvent) -> None:
        """Count what expanding this alias costs: itself plus every alias inside its anchor."""
        anchor = event.anchor or ""
        if anchor in self._open_anchors:
            raise _Refused(f"recursive alias *{anchor} is not allowed", event)
        cost = 1 + self._anchor_cost.get(anchor, 0)
        self._expansions += cost
        self._cost_stack[-1] += cost
        if self._expansions > _ALIAS_BUDGET:
            raise _Refused(
                f"too many alias expansions (more than {_ALIAS_BUDGET}); refusing a YAML alias bomb",
                event,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys merged in with << may legitimately be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                continue  # unhashable: SafeLoader reports it
            if first != line:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first defined on line {first})",
                    key_node.start_mark,
                )
        return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)


def _construct_line_dict(loader: _StrictLoader, node: yaml.MappingNode) -> Iterator[_LineDict]:
    data = _LineDict(node.start_mark.line + 1)
    yield data
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        data.key_lines.setdefault(str(key_node.value), key_node.start_mark.line + 1)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_dict)

# Python refuses to turn an int of more than 4300 decimal digits into text (CVE-2020-10735):
# a longer one is a ValueError in the loader, and a long hex one (0xfff…) loads but fails
# every later str(), so one line of a host's settings made every check an internal error.
# No setting needs more than a few dozen digits.
_MAX_INT_CHARS = 1000


def _construct_bounded_int(loader: Any, node: yaml.ScalarNode) -> int:
    if len(node.value) > _MAX_INT_CHARS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"an integer of {len(node.value)} characters is more than the "
            f"{_MAX_INT_CHARS} readiness parses",
            node.start_mark,
        )
    return int(yaml.constructor.SafeConstructor.construct_yaml_int(loader, node))


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)


# libyaml scans and parses (C) while the composer above (Python: the alias budget, the
# duplicate keys, the line dicts) builds the data: ~4x faster on a settings file. Used only
# for plain text (printable ASCII, newlines, no tabs), where libyaml and PyYAML's own
# scanner agree; any error is re-parsed by the pure-Python loader, so a refused document
# gets exactly the same message either way.
_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)
_PLAIN = re.compile(r"[^\x20-\x7e\n]")


if _CParser is not None:

    class _FastStrictLoader(
        _CParser,  # type: ignore[misc]  # libyaml's parser is untyped
        yaml.composer.Composer,
        yaml.constructor.SafeConstructor,
        yaml.resolver.Resolver,
    ):
        """libyaml's events, the strict loader's composer and constructor."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._expansions = 0
            self._anchor_cost: dict[str, int] = {}
            self._open_anchors: set[str] = set()
            self._cost_stack = [0]

        # Composing in Python (not libyaml's C composer, which recurses without a bound).
        get_single_node = yaml.composer.Composer.get_single_node
        compose_document = yaml.composer.Composer.compose_document
        compose_node = _StrictLoader.compose_node
        _charge_alias = _StrictLoader._charge_alias
        construct_mapping = _StrictLoader.construct_mapping

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            return None if node is None else self.construct_document(node)

    _FastStrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_dict)
    _FastStrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)

    class _CStrictLoader(yaml.CSafeLoader):
        """libyaml end to end, the strict constructor (duplicate keys, line dicts): for
        documents without anchors (so without aliases) whose nesting is bounded (see
        :func:`_shallow`: libyaml's C composer recurses without a limit)."""

        construct_mapping = _StrictLoader.construct_mapping

    _CStrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_dict)
    _CStrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)


# Ansible's own tags, for inventories and their vars files only (never for YAML read from
# an audited host). ``!vault`` is an Ansible Vault ciphertext readiness cannot decrypt: it is
# kept as ansible-inventory shows it without a vault password, {"__ansible_vault": text}.
# ``!unsafe`` marks a string Ansible never templates; readiness templates nothing: a string.
VAULT_KEY = "__ansible_vault"


def _construct_vault(loader: Any, node: yaml.Node) -> dict[str, str]:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!vault must be a string (the vault ciphertext)", node.start_mark
        )
    return {VAULT_KEY: str(loader.construct_scalar(node))}


def _construct_unsafe(loader: Any, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return str(loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _with_ansible_tags(base: Any) -> Any:
    ansible: Any = type(f"_Ansible{base.__name__.lstrip('_')}", (base,), {})
    ansible.add_constructor("!vault", _construct_vault)
    ansible.add_constructor("!unsafe", _construct_unsafe)
    return ansible


_AnsibleStrictLoader: Any = _with_ansible_tags(_StrictLoader)
_AnsibleFastLoaders: tuple[Any, Any] | None = (
    (_with_ansible_tags(_CStrictLoader), _with_ansible_tags(_FastStrictLoader))
    if _CParser is not None
    else None
)


_MAX_LINE = 1000
_MAX_BRACKETS = 1000


def _shallow(text: str) -> bool:
    """Whether ``text`` surely nests less than a few thousand levels: a block level takes
    at least one more column on its line (two levels per two columns at most), a flow
    level one bracket. No anchor (``&``) means no alias to expand either."""
    if "&" in text or text.count("[") + text.count("{") > _MAX_BRACKETS:
        return False
    return max(map(len, text.splitlines()), default=0) <= _MAX_LINE


def _fast(text: str, *, ansible: bool = False) -> tuple[bool, Any]:
    """(True, data) when libyaml's path loads ``text`` cleanly, else (False, None)."""
    if _CParser is None or _PLAIN.search(text) is not None:
        return False, None
    c_loader, fast_loader = (
        _AnsibleFastLoaders
        if ansible and _AnsibleFastLoaders
        else (_CStrictLoader, _FastStrictLoader)
    )
    loader = c_loader(text) if _shallow(text) else fast_loader(text)
    try:
        return True, loader.get_single_data()
    except (yaml.YAMLError, _Refused, RecursionError, TypeError, ValueError):
        return False, None
    finally:
        loader.dispose()


def compose_checked(text: str) -> yaml.Node | None:
    """``yaml.compose(text, Loader=SafeLoader)`` for a document :func:`parse_yaml` has already
    accepted (so its depth and aliases are within bounds): libyaml's C composer for plain
    text (~10x faster), the pure-Python one otherwise."""
    plain = getattr(yaml, "CSafeLoader", None) is not None and _PLAIN.search(text) is None
    loader: Any = yaml.CSafeLoader if plain else yaml.SafeLoader
    return yaml.compose(text, Loader=loader)


def parse_yaml(text: str, where: Where, *, ansible: bool = False) -> Any:
    """Strict YAML; ``ansible`` (inventories and their vars files) also reads Ansible's
    ``!vault`` and ``!unsafe`` tags."""
    done, data = _fast(text, ansible=ansible)
    if done:
        return data
    try:
        # PyYAML's Reader checks every character when the loader is built: a DEL or another
        # character YAML forbids raises there, so the construction is inside the try too.
        loader = (_AnsibleStrictLoader if ansible else _StrictLoader)(text)
    except yaml.reader.ReaderError as exc:
        raise where.at(text.count("\n", 0, exc.position) + 1).error(
            f"invalid YAML: character U+{exc.character:04X} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise where.error(f"invalid YAML: {exc}") from None
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise where.at(exc.line).error(f"invalid YAML: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise where.at(line).error(f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise where.error(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
