"""What "ready" means for the audited application: the profile.

Layers merge in this order, later wins (each kept separately, merged by a pure
function, as invoke's ``Config.merge`` does):

1. built-in defaults (core keys below + every check's declared defaults)
2. the profile file given with ``--profile`` (YAML)
3. inventory variables under ``readiness`` (all < parent group < child group < host)
4. programmatic overrides (``readiness.validate(profile_overrides=...)``)

Dicts merge recursively; lists and scalars are replaced. Replacing a dict by a
non-dict (or the reverse) is refused: it is almost always a typo.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import math
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ProfileError
from .redact import redact_url_password

__all__ = [
    "CORE_DEFAULTS",
    "NULL_DEFAULT_TYPES",
    "Profile",
    "deep_merge",
    "load_profile_file",
    "merge_layers",
    "validate_layer",
]

# Defaults for a Mahavishnu-style orchestration platform. Checks add their own keys
# (see ``readiness.registry.register(defaults=...)``); docs/profiles.md lists them all.
CORE_DEFAULTS: dict[str, Any] = {
    "app_name": "mahavishnu",
    "app_root": "/opt/mahavishnu",
    "settings_file": "settings/mahavishnu.yaml",
    "env_file": ".env",
    "env_prefix": "MAHAVISHNU_",
    "env_nested_delimiter": "__",
    "pidfile": None,
    "process_match": None,
    "backup_dir": "backups",
    "docs_dir": "docs",
    "required_env": ["MAHAVISHNU_REPOS_PATH"],
    # Variables whose values are secrets regardless of name (fnmatch patterns, upper-cased).
    # *AUTH* is deliberately narrowed to *_AUTH and *AUTHORIZATION*: AUTHOR, AUTH_ENABLED or
    # OAUTH_PROVIDER are not secrets (and masking them hides what a check judged).
    "secret_env": [
        "*SECRET*",
        "*PASSWORD*",
        "*TOKEN*",
        "*CONNECTION_STRING*",
        "*DSN*",
        "*_KEY",
        "*_PASS",
        "*_PWD",
        "*_AUTH",
        "*AUTHORIZATION*",
    ],
    # remediate: how many .readiness-bak.* copies of each rewritten file it keeps (old secrets).
    "remediate_keep_backups": 5,
    "thresholds": {},
    # Quality gates judged by the production suites (readiness.suites, docs/suites.md):
    # min_pass_rate in percent of hosts x checks of the category; null disables a gate.
    "quality_gates": {
        "configuration": {"category": "configuration", "min_pass_rate": 100, "critical": True},
        "integration": {"category": "integration", "min_pass_rate": 90, "critical": True},
        "performance": {"category": "performance", "min_pass_rate": 100, "critical": False},
        "security": {"category": "security", "min_pass_rate": 100, "critical": True},
    },
}


class Profile(Mapping[str, Any]):
    """An immutable, merged profile with dotted lookups and host-side path resolution."""

    def __init__(self, data: Mapping[str, Any], *, _owned: bool = False) -> None:
        # ``_owned``: ``data`` was just built for this profile (merge_layers): no second copy.
        self._data = dict(data) if _owned else _copy(dict(data))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """``Mapping.get``, without its ``__getitem__`` and ``KeyError`` round (the checks
        read ~80 keys per host)."""
        return self._data.get(key, default)

    def get_path(self, dotted: str, default: Any = None) -> Any:
        """``profile.get_path("thresholds.backup_max_age_hours")``."""
        node: Any = self._data
        for part in dotted.split("."):
            if not (type(node) is dict or isinstance(node, Mapping)) or part not in node:
                return default
            node = node[part]
        return node

    def threshold(self, name: str) -> Any:
        value = self.get_path(f"thresholds.{name}")
        if value is None:
            raise ProfileError(f"profile has no threshold {name!r}")
        return value

    @property
    def app_root(self) -> str:
        return posixpath.normpath(str(self._data.get("app_root") or "/"))

    def resolve(self, path: str | None) -> str | None:
        """A host-side path: relative paths are under ``app_root`` (POSIX, never the controller's)."""
        if path is None or path == "":
            return None
        path = str(path)
        if path.startswith("~") or posixpath.isabs(path):
            return path
        root = str(self._data.get("app_root") or "/")
        if len(root) + len(path) > _CACHED_PATH_MAX_CHARS:
            return _under(root, path)
        return _under_cached(root, path)

    def path_of(self, key: str) -> str | None:
        value = self.get_path(key)
        return self.resolve(value) if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        copied: dict[str, Any] = _copy(self._data)
        return copied


def _under(root: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.normpath(root), path))


# The checks resolve the same ~25 profile paths under each host's app root: each pair once.
_CACHED_PATH_MAX_CHARS = 4096
_under_cached = functools.lru_cache(maxsize=4096)(_under)


def _copy(value: Any) -> Any:
    """``copy.deepcopy`` for profile data, ~5x faster on its plain dicts, lists and scalars
    (a fleet builds one profile per host); any other type goes through ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def deep_merge(
    base: Mapping[str, Any], override: Mapping[str, Any], where: str = ""
) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; dicts recursively, the rest replaced."""
    out: dict[str, Any] = _copy(dict(base))
    for key, value in override.items():
        here = f"{where}.{key}" if where else str(key)
        old = out.get(key)
        if here in JSON_BODIES:
            out[key] = _copy(value)  # a request body is sent as the last layer wrote it
        elif isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value, here)
        elif isinstance(old, Mapping) and value is not None and old:
            shown = redact_url_password(repr(value))
            raise ProfileError(f"profile key {here!r} is a mapping; cannot replace it with {shown}")
        else:
            out[key] = _copy(value)
    return out


def merge_layers(
    defaults: Mapping[str, Any],
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    whole: bool = True,
) -> Profile:
    """Merge named layers over ``defaults``; every layer is validated against them first.
    ``whole``: these are all the layers of a profile, so the quality gates they make up
    are judged too (False: one layer checked alone, which may tune a gate another defines)."""
    merged = dict(defaults)
    for name, layer in layers:
        validate_layer(name, layer, defaults)
        try:
            merged = deep_merge(merged, layer)
        except ProfileError as exc:
            raise ProfileError(f"{name}: {exc}") from None
    if whole and layers:
        _judge_gate_names(defaults, layers, merged)
        _judge_bounds(layers, merged)
    return Profile(merged, _owned=bool(layers))


_GATES = "quality_gates"


def _judge_gate_names(
    defaults: Mapping[str, Any],
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    merged: Mapping[str, Any],
) -> None:
    """Refuse a gate no layer gave a category and whose name is none (`securty:`, a typo of
    `security`), and a null that disables no gate: the suites refused the first only later
    (readiness.gates), and nothing refused the second, which left the meant gate on."""
    final = merged.get(_GATES)
    if not isinstance(final, Mapping):
        return
    from .registry import CATEGORIES

    given = defaults.get(_GATES)
    built_in: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    for gate, spec in final.items():
        if isinstance(spec, Mapping) and spec.get("category", gate) in CATEGORIES:
            continue
        if spec is None and (
            gate in built_in or any(_gate_spec(layer, gate) for _, layer in layers)
        ):
            continue
        if spec is not None and not isinstance(spec, Mapping):
            continue  # a wrong type: refused by validate_layer already
        known = [str(g) for g in built_in]
        hint = difflib.get_close_matches(str(gate), [*known, *CATEGORIES], n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        if spec is None:
            why = f"disables no gate: there is no gate {gate!r}{suggestion}"
        else:
            why = (
                f"is no built-in gate and names no category{suggestion}: a new gate needs "
                f"category: one of {', '.join(CATEGORIES)}"
            )
        raise ProfileError(f"{_gate_where(layers, gate)}: profile key '{_GATES}.{gate}' {why}")


# (low, high) pairs of the merged profile: a low above its high made every value out of
# range (retry attempts 5..3: any app NOT_READY), or a rule each host reported as broken.
# "MAP.*" pairs are those of each entry of MAP.
BOUNDS: tuple[tuple[str, str, str], ...] = (
    ("thresholds", "retry_min_attempts", "retry_max_attempts"),
    ("resource_ranges.*", "min", "max"),
)


def _judge_bounds(
    layers: Sequence[tuple[str, Mapping[str, Any]]], merged: Mapping[str, Any]
) -> None:
    """Refuse a lower bound above its upper one, naming the last layer that wrote either."""
    for parent, low, high in BOUNDS:
        root = parent.removesuffix(".*")
        node: Any = merged
        for part in root.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            continue
        nodes = node.items() if parent.endswith(".*") else [("", node)]
        for entry, spec in nodes:
            if not isinstance(spec, Mapping):
                continue
            lo: Any = spec.get(low)
            hi: Any = spec.get(high)
            if not (_finite(lo) and _finite(hi)) or lo <= hi:
                continue
            path = ".".join(p for p in (root, str(entry)) if p)
            where = _bound_where(layers, path, (low, high))
            raise ProfileError(
                f"{where}: profile key '{path}.{low}' ({lo!r}) must not be above "
                f"'{path}.{high}' ({hi!r})"
            )


def _bound_where(
    layers: Sequence[tuple[str, Mapping[str, Any]]], path: str, keys: tuple[str, str]
) -> str:
    for name, layer in reversed(layers):
        node: Any = layer
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            for key in keys:
                if key in node:
                    return _where(name, getattr(layer, "source", None), node, key)
    return "profile"


def _gate_spec(layer: Mapping[str, Any], gate: str) -> Any:
    gates = layer.get(_GATES)
    return gates.get(gate) if isinstance(gates, Mapping) else None


def _gate_where(layers: Sequence[tuple[str, Mapping[str, Any]]], gate: str) -> str:
    """``file:line`` (or the layer's name) of the last layer that wrote the gate."""
    for name, layer in reversed(layers):
        gates = layer.get(_GATES)
        if isinstance(gates, Mapping) and gate in gates:
            return _where(name, getattr(layer, "source", None), gates, gate)
    return "profile"


def _where(name: str, source: str | None, node: Mapping[str, Any], key: Any) -> str:
    """``file:line`` of ``key`` in ``node`` when the layer came from a file, else its name."""
    from .inventory.strict_yaml import line_of

    line = line_of(node, key)
    return f"{source}:{line}" if source and line else name


# Mappings whose keys the user names (a new quality gate, adapter, runbook, setting, range):
# a new entry is checked against the shape of the first built-in entry.
OPEN_MAPS = frozenset({"quality_gates", "adapters", "runbooks", "setting_types", "resource_ranges"})
# Optional keys an entry of an open mapping takes beyond those of the built-in entries (a
# quality gate's ``description``: readiness.gates.GATE_KEYS), with a value of their type.
OPEN_MAP_EXTRAS: dict[str, dict[str, Any]] = {"quality_gates": {"description": ""}}
# Mappings whose entries each have their own keys (one adapter's probe differs from the next):
# not merged with the first entry's shape, each entry checked against SHAPES["MAP.*"].
FREE_MAPS = frozenset({"adapter_health"})
# Request bodies sent as JSON as written: a value there may be any JSON value.
JSON_BODIES = frozenset({"workflow_state.start_json", "observability_logging.marker_json"})
# true/false settings that also take a word (repository_access: "warn" reports DEGRADED).
BOOL_WORDS: dict[str, tuple[str, ...]] = {
    "repository_forbid_detached": ("warn",),
    "repository_forbid_dirty": ("warn",),
}


def validate_layer(name: str, layer: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Refuse unknown keys at any depth and values of the wrong type, naming the dotted key
    and, for files, ``file:line`` (the built-in defaults are the schema; ``null`` is allowed)."""
    source = getattr(layer, "source", None)
    _walk(name, source, layer, schema, "")


def _walk(
    name: str, source: str | None, node: Mapping[str, Any], schema: Mapping[str, Any], path: str
) -> None:
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else str(key)
        where = _where(name, source, node, key)
        if key in schema:
            expected = schema[key]
        elif path in OPEN_MAPS:
            expected = next(iter(schema.values()), None)
        else:
            hint = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ProfileError(f"{where}: unknown profile key {dotted!r}{suggestion}")
        declared = NULL_DEFAULT_TYPES.get(dotted) if expected is None else None
        if declared and value is not None and not _fits_declared(value, declared):
            got = _type_word(value)
            raise ProfileError(f"{where}: profile key {dotted!r} must be {declared}, got {got}")
        # a JSON body is the app's own document: neither its types nor its numbers are ours
        wanted = (
            None
            if path in JSON_BODIES or dotted in JSON_BODIES
            else _wrong_type(value, expected, dotted)
            or _out_of_range(value, dotted)
            or _bad_gate_value(value, path, str(key))
            or _bad_word(value, dotted, path)
            or _bad_regex(value, dotted)
        )
        if wanted:
            # the value may hold a DSN or URL with its password: quoted through the masks
            shown = redact_url_password(repr(value))
            raise ProfileError(f"{where}: profile key {dotted!r} must be {wanted}, got {shown}")
        if value is not None and dotted not in JSON_BODIES:
            _members((name, source), node, key, dotted, expected)
        if dotted in JSON_BODIES or not isinstance(value, Mapping):
            continue  # a JSON body is the app's document: its keys are not ours either
        if isinstance(expected, Mapping) and not expected:
            _header_values(name, source, value, dotted)  # an empty default: the keys are free
        elif isinstance(expected, Mapping) and dotted not in FREE_MAPS:
            if path in OPEN_MAP_EXTRAS:
                expected = {**expected, **OPEN_MAP_EXTRAS[path]}
            _walk(name, source, value, expected, dotted)


def _header_values(name: str, source: str | None, node: Mapping[str, Any], path: str) -> None:
    """A map whose default is empty (HTTP headers: ``workflow_state.headers``): any name, and a
    value that is sent as text (a string or a number)."""
    for key, value in node.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            continue
        raise ProfileError(
            f"{_where(name, source, node, key)}: profile key '{path}.{key}' must be a string, "
            f"got {_type_word(value)}"
        )


# Keys whose built-in default is null carry no type in that default: their type is declared
# here (dotted key -> kind). tests/test_profile.py fails for a null default missing from it.
_STRING = "a string"
_ARGV = "an argv list of strings (or one program as a string)"
_MAPPING = "a mapping"
NULL_DEFAULT_TYPES: dict[str, str] = {
    "pidfile": _STRING,
    "process_match": _STRING,
    "database_dsn": _STRING,
    "migration_command": _ARGV,
    "backup_command": _STRING,
    "backup_schedule": _STRING,
    "backup_cron_user": _STRING,
    "prometheus_instance": _STRING,
    "systemd_unit": _STRING,
    "tls_ca_file": _STRING,
    "service_user": _STRING,
    "smoke_workflow": _MAPPING,
    "db_benchmark": _MAPPING,
    "workflow_benchmark": _MAPPING,
    "repository_benchmark": _MAPPING,
    "backup_roundtrip.command": _ARGV,
    "backup_roundtrip.dump_file": _STRING,
    "backup_roundtrip.controller_dump_file": _STRING,
    "backup_roundtrip.admin_dsn": _STRING,
    "backup_roundtrip.pg_bin_dir": _STRING,
    "alert_delivery.alertmanager_url": _STRING,
    "alert_delivery.webhook_url": _STRING,
    "alert_delivery.receiver_query_url": _STRING,
    "graceful_shutdown_drill.canary": _STRING,
    "graceful_shutdown_drill.restart": _MAPPING,
    "workflow_state.start_url": _STRING,
    "workflow_state.start_command": _ARGV,
    "workflow_state.status_url": _STRING,
    "observability_logging.marker_command": _ARGV,
    "observability_logging.marker_url": _STRING,
    "rbac.token_env": _STRING,
    "rbac.token_app_env": _STRING,
}


def _fits_declared(value: Any, kind: str) -> bool:
    if kind == _MAPPING:
        return isinstance(value, Mapping)
    if isinstance(value, str):
        return True
    if kind != _ARGV or not isinstance(value, (list, tuple)):
        return False
    # argv items become arguments: a number is fine, a nested list, mapping or null is not.
    return all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value)


def _type_word(value: Any) -> str:
    """What a value is, never what it holds: a wrong-typed DSN or token must not be echoed."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


# The members of lists and of mappings whose default holds no example (an empty list, a
# null): each key's kind, checked when the layer is loaded, before any host is contacted. A
# check read `requests: 0.5` as 0 runs, dropped a misspelt key or an `expect_status: 200`
# (not a list) silently, and raised inside the check on `expect_status: ok`.
# (what the value must be, in words; the test of it)
Kind = tuple[str, Any]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(least: int) -> Kind:
    return (
        f"a whole number {least} or more",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= least,
    )


def _text_map(v: Any) -> bool:
    return isinstance(v, Mapping) and all(
        isinstance(x, str | int | float) and not isinstance(x, bool) for x in v.values()
    )


_TEXT: Kind = (_STRING, lambda v: isinstance(v, str))
_ABOVE_0: Kind = ("a finite number above 0", lambda v: _finite(v) and v > 0)
# An error rate is a fraction below 1: `max_error_rate: 1` (meant as 1 %) passed an endpoint
# whose every request failed, and 5 (5 %) took 500 % (docs/profiles.md).
_RATE: Kind = ("a fraction from 0 to below 1 (0.01 is 1 %)", lambda v: _finite(v) and 0 <= v < 1)
_STATUS: Kind = (
    "an HTTP status code (100 to 599)",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599,
)
_STATUSES: Kind = (
    "a list of HTTP status codes (100 to 599)",
    lambda v: isinstance(v, list) and bool(v) and all(_STATUS[1](x) for x in v),
)
_STATUS_OR_LIST: Kind = (
    "an HTTP status code (100 to 599) or a list of them",
    lambda v: _STATUS[1](v) or _STATUSES[1](v),
)
_STRINGS: Kind = (
    "a list of strings",
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
)
_TEXT_MAP: Kind = ("a mapping of names to strings or numbers", _text_map)
_ARGV_KIND: Kind = (_ARGV, lambda v: _fits_declared(v, _ARGV))
_JSON: Kind = ("any JSON value", lambda v: True)
_LIST: Kind = ("a list", lambda v: isinstance(v, list))


def _compiles(v: Any) -> bool:
    import re

    try:
        re.compile(v)
    except (re.error, TypeError, ValueError, RecursionError):
        return False
    return isinstance(v, str)


_REGEX: Kind = ("a valid regular expression", _compiles)
_REQUIRED = "<required>"  # a shape's key naming the keys an entry must have

_HTTP_REQUEST: dict[str, Any] = {"method": _TEXT, "url": _TEXT, "json": _JSON, _REQUIRED: ("url",)}
# dotted key -> shape; "KEY[]" is each entry of the list KEY.
SHAPES: dict[str, dict[str, Any]] = {
    "conditional_env[]": {"when": _TEXT, "require": _STRINGS, _REQUIRED: ("when", "require")},
    "http_benchmarks[]": {
        "name": _TEXT,
        "url": _TEXT,
        "method": _TEXT,
        "headers": _TEXT_MAP,
        "json": _JSON,
        "body": _TEXT,
        "requests": _count(1),
        "concurrency": _count(1),
        "time_cap_s": _ABOVE_0,
        "timeout_s": _ABOVE_0,
        "p95_ms": _ABOVE_0,
        "p99_ms": _ABOVE_0,
        "max_error_rate": _RATE,
        "expect_status": _STATUS_OR_LIST,
        "ca_bundle": _TEXT,
        _REQUIRED: ("url",),
    },
    "rbac.forbidden[]": _HTTP_REQUEST,
    "rbac.allowed[]": {**_HTTP_REQUEST, "expect_status": _STATUS_OR_LIST},
    "graceful_shutdown_drill.instances[]": {
        "name": _TEXT,
        "pidfile": _TEXT,
        "match": _TEXT,
        _REQUIRED: ("name",),
    },
    "graceful_shutdown_drill.restart": {"command": _ARGV_KIND, "cwd": _TEXT, "env": _TEXT_MAP},
    "db_benchmark": {
        "queries": _LIST,
        "repetitions": _count(1),
        "time_cap_s": _ABOVE_0,
        "statement_timeout_s": _ABOVE_0,
    },
    # an entry may also be the bare SQL (a string)
    "db_benchmark.queries[]": {
        "name": _TEXT,
        "sql": _TEXT,
        "repetitions": _count(1),
        "p50_ms": _ABOVE_0,
        "p95_ms": _ABOVE_0,
        _REQUIRED: ("sql",),
    },
    # the app's smoke workflow: a command run on the host, or a request (and its polling)
    "smoke_workflow": {
        "command": _ARGV_KIND,
        "cwd": _TEXT,
        "env": _TEXT_MAP,
        "timeout_s": _ABOVE_0,
        "expect_state": _TEXT,
        "json_key": _TEXT,
        "state_regex": _REGEX,
        "url": _TEXT,
        "method": _TEXT,
        "json": _JSON,
        "body": _TEXT,
        "headers": _TEXT_MAP,
        "poll_url": _TEXT,
        "id_key": _TEXT,
        "state_key": _TEXT,
        "final_states": _STRINGS,
        "poll_interval_s": _ABOVE_0,
        "request_timeout_s": _ABOVE_0,
    },
    "workflow_benchmark": {"runs": _count(0), "concurrency": _count(0), "time_cap_s": _ABOVE_0},
    "repository_benchmark": {
        "repetitions": _count(1),
        "time_cap_s": _ABOVE_0,
        "operations": _STRINGS,
    },
}
# "MAP.*": each entry of the mapping MAP, whose keys the user names (an entry may be null).
SHAPES["adapter_health.*"] = {
    "url_setting": _TEXT,
    "health_path": _TEXT,
    "health_url": _TEXT,
    "expect_status": _STATUS_OR_LIST,
    "expect_body": _TEXT,
    "tcp": _TEXT,
    "python_modules": _STRINGS,
    "python": _TEXT,
    "paths": _STRINGS,
    "path_settings": _STRINGS,
}
# List entries that may be a string instead of a mapping.
_STRING_ENTRIES = frozenset({"db_benchmark.queries[]"})


def _members(
    src: tuple[str, str | None], node: Mapping[str, Any], key: Any, dotted: str, expected: Any
) -> None:
    """Refuse a member of a list or of a shaped mapping that is not what the check reads:
    an entry of a list of mappings (``http_benchmarks``) with a key it does not know or a
    value of the wrong kind, a non-string in a list of strings (``required_env: [{A: 1}]``
    was a variable named "{'A': 1}"). ``src``: the layer's name and file."""
    value, where = node[key], _where(*src, node, key)
    shape = SHAPES.get(f"{dotted}[]")
    if isinstance(value, list) and shape is not None:
        for i, entry in enumerate(value):
            at = f"{dotted}[{i}]"
            if isinstance(entry, str) and f"{dotted}[]" in _STRING_ENTRIES:
                continue
            if not isinstance(entry, Mapping):
                raise ProfileError(
                    f"{where}: profile key {at!r} must be a mapping, got {_type_word(entry)}"
                )
            _shaped(src, entry, shape, at)
    elif isinstance(value, list) and (_strings_default(expected) or dotted in STRING_LISTS):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ProfileError(
                    f"{where}: profile key '{dotted}[{i}]' must be a string, got {_type_word(item)}"
                )
    elif isinstance(value, Mapping) and f"{dotted}.*" in SHAPES:
        _open_entries(src, value, dotted)
    elif isinstance(value, Mapping) and dotted in SHAPES:
        _shaped(src, value, SHAPES[dotted], dotted)
        for member in value:
            if f"{dotted}.{member}[]" in SHAPES:
                _members(src, value, member, f"{dotted}.{member}", None)


def _open_entries(src: tuple[str, str | None], value: Mapping[str, Any], dotted: str) -> None:
    """Each entry of an open mapping (``adapter_health``), against ``SHAPES["MAP.*"]``."""
    for entry_name, entry in value.items():
        at = f"{dotted}.{entry_name}"
        if isinstance(entry, Mapping):
            _shaped(src, entry, SHAPES[f"{dotted}.*"], at)
        elif entry is not None:
            raise ProfileError(
                f"{_where(*src, value, entry_name)}: profile key {at!r} must be a mapping, "
                f"got {_type_word(entry)}"
            )


# Lists of names, paths or URLs whose default is empty (no example item to take the type of).
STRING_LISTS = frozenset(
    {"database_tables", "backup_cron_files", "repository_structure", "tls_endpoints"}
)


def _strings_default(expected: Any) -> bool:
    return (
        isinstance(expected, list) and bool(expected) and all(isinstance(x, str) for x in expected)
    )


def _shaped(
    src: tuple[str, str | None], entry: Mapping[str, Any], shape: Mapping[str, Any], at: str
) -> None:
    for member, value in entry.items():
        here = _where(*src, entry, member)
        kind = shape.get(member) if member != _REQUIRED else None
        if kind is None:
            known = [k for k in shape if k != _REQUIRED]
            hint = difflib.get_close_matches(str(member), known, n=1)
            suggestion = (
                f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(known)})"
            )
            raise ProfileError(f"{here}: unknown profile key '{at}.{member}'{suggestion}")
        wanted, fits = kind
        if value is not None and not fits(value):
            raise ProfileError(
                f"{here}: profile key '{at}.{member}' must be {wanted}, got {_shown(value, kind)}"
            )
    missing = [k for k in shape.get(_REQUIRED, ()) if entry.get(k) in (None, "")]
    if missing:
        where = _where(*src, entry, _REQUIRED)  # the entry's own line
        raise ProfileError(f"{where}: profile key {at!r} needs {' and '.join(missing)}")


_TEXTUAL = (_TEXT, _STRINGS, _TEXT_MAP, _ARGV_KIND, _LIST)


def _shown(value: Any, kind: Kind) -> str:
    """A refused member: a scalar where a number belongs is quoted (``requests: 0.5``,
    ``expect_status: ok``), with any URL or DSN password masked; anything else is named by
    its kind only (a header, an environment or an argv may hold a token in any form)."""
    if isinstance(value, (Mapping, list, tuple)) or kind in _TEXTUAL:
        return _type_word(value)
    return redact_url_password(repr(value))


# (the default's type, the accepted value types, in words).
_KINDS: tuple[tuple[Any, Any, str], ...] = (
    ((int, float), (int, float), "a number"),
    ((list, tuple), (list, tuple), "a list"),
    (Mapping, Mapping, "a mapping"),
    (str, str, "a string"),
)


# Numbers a check reads with ``value or DEFAULT``: a 0 there silently became the default
# (`max_tables: 0` compared 200 tables, `sample_bytes: 0` read 64 KiB): above 0, as timeouts.
ABOVE_ZERO = frozenset(
    {
        "backup_roundtrip.max_tables",
        "alert_delivery.alert_ttl_s",
        "observability_logging.sample_bytes",
    }
)
# Counts that are whole numbers from a least value (remediate refused `remediate_keep_backups:
# 0` only when it ran, without file:line, after `validate --profile` had taken it).
WHOLE_AT_LEAST: dict[str, int] = {
    "remediate_keep_backups": 1,
    # Counts the checks read with int(): a fraction was cut down, so `secret_min_length: 40.5`
    # passed a 40-character secret and `retry_min_attempts: 2.9` took 2 attempts.
    "thresholds.secret_min_length": 0,
    "thresholds.secret_min_distinct_chars": 0,
    "thresholds.retry_min_attempts": 0,
    "thresholds.retry_max_attempts": 1,  # the seed: "1-10 attempts"
    "thresholds.backup_list_limit": 0,
    "thresholds.backup_doc_max_files": 0,
    "thresholds.backup_doc_max_bytes": 0,
    "thresholds.migrations_max_scripts": 0,
    "thresholds.monitoring_max_dashboards": 0,
}
# Fractions and ratios, read as written: an error-rate threshold of 5 (meant as 5 %) let an
# endpoint whose every request failed be READY, and a regression ratio below 1 (0.5, meant
# as "50 % slower") flagged every run that was not twice as fast as the one before.
FRACTIONS = frozenset({"thresholds.http_max_error_rate"})
RATIOS_AT_LEAST_1 = frozenset({"thresholds.benchmark_max_regression"})
# Strings the checks compile as regular expressions (a bad one was each host's NOT_READY).
REGEX_KEYS = frozenset({"backup_schedule_pattern"})


def _bad_regex(value: Any, dotted: str) -> str | None:
    if dotted not in REGEX_KEYS or not isinstance(value, str) or _compiles(value):
        return None
    return _REGEX[0]


def _bad_scale(value: float, dotted: str) -> str | None:
    """What a fraction or a ratio must be (FRACTIONS, RATIOS_AT_LEAST_1), or None."""
    if dotted in FRACTIONS and not (math.isfinite(value) and 0 <= value < 1):
        return _RATE[0]
    if dotted in RATIOS_AT_LEAST_1 and not (math.isfinite(value) and value >= 1):
        return "a ratio 1 or more (1.5: p95 may grow by half)"
    return None


def _out_of_range(value: Any, dotted: str) -> str | None:
    """What a number must be, or None when it is fine. Every count, length, age, latency and
    limit of a profile is 0 or more (a negative secret_min_length passes every secret), and
    a timeout or poll interval of 0 is no wait at all (a socket's "Operation now in
    progress" reported as an unreachable endpoint, a busy loop); resource_ranges bound the
    app's own settings and are the app's business."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if dotted.startswith("resource_ranges."):
        return None if math.isfinite(value) else "a finite number"
    least = WHOLE_AT_LEAST.get(dotted)
    if least is not None and (not isinstance(value, int) or value < least):
        return f"a whole number {least} or more"
    scale = _bad_scale(value, dotted)
    if scale is not None:
        return scale
    positive = dotted.endswith(("_timeout_s", "poll_interval_s")) or dotted in ABOVE_ZERO
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        return "a number above 0" if positive else "a number 0 or more"
    return None


def _signal_names() -> tuple[str, ...]:
    import signal

    return tuple(signal.Signals.__members__)


def _fold(value: str) -> str:
    return value.strip().lower()


# Strings that take one of a few words, as the check reads them (case folded the same way):
# dotted key, or "MAP.*" for every entry of an open mapping -> (what, in words; the words;
# how the check folds the value). Each check compared the word when it ran: `service_access:
# tunel` made every service NOT_READY ("Prometheus is not ready"), `format: jsn` judged the
# log as JSON, `signal: SIGTREM` refused the drill on the host.
WORDS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "service_access": ("one of auto, direct, ssh", ("auto", "direct", "ssh"), _fold),
    "backup_roundtrip.method": ("one of pg_dump, command", ("pg_dump", "command"), str),
    "observability_logging.format": ("one of json, text", ("json", "text"), str),
    "graceful_shutdown_drill.signal": (
        "a signal name (SIGTERM, SIGINT, SIGQUIT, SIGUSR1, ...)",
        _signal_names(),
        str.upper,
    ),
    # readiness.checks.config_validity reads these types (tests/test_profile.py: the same)
    "setting_types.*": (
        "one of int, float, bool, str, list, dict",
        ("int", "float", "bool", "str", "list", "dict"),
        str,
    ),
}


def _bad_word(value: Any, dotted: str, path: str) -> str | None:
    """What a word-valued string must be, or None when it is one of its words."""
    rule = WORDS.get(dotted) or WORDS.get(f"{path}.*")
    if rule is None or not isinstance(value, str):
        return None
    wanted, words, fold = rule
    return None if fold(value) in words else wanted


PERCENT_WANTED = "a number from 0 to 100 (a percentage: 90, not 0.9)"


def is_percentage(value: float) -> bool:
    """A pass rate in percent. A fraction (``0.9`` or ``1``, meant as 90 % or 100 %) is
    refused: the gate read it as 0.9 % and passed a category where 1 check in 100 passed."""
    return math.isfinite(value) and (value == 0 or 1 < value <= 100)


def _bad_gate_value(value: Any, path: str, key: str) -> str | None:
    """What a quality gate's rate or category must be (readiness.gates judges them): refused
    here, with file:line, by every command, not only by the suites that use the gates
    (`validate --profile` took ``min_pass_rate: 150`` and a typo'd category silently)."""
    if path.partition(".")[0] != "quality_gates" or path.count(".") != 1 or value is None:
        return None
    if key == "min_pass_rate" and isinstance(value, (int, float)) and not is_percentage(value):
        return PERCENT_WANTED
    if key == "category" and isinstance(value, str):
        from .registry import CATEGORIES

        if value not in CATEGORIES:
            return "one of " + ", ".join(CATEGORIES)
    return None


def _wrong_type(value: Any, expected: Any, dotted: str = "") -> str | None:
    """What ``value`` should have been, or None when its type fits ``expected``'s."""
    if value is None or expected is None:
        return None
    if isinstance(expected, bool):
        # YAML's true/false only: a string like "no" would be truthy to some checks and
        # falsy to others, and "yes please" would silently switch a check off.
        words = BOOL_WORDS.get(dotted, ())
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in words):
            return None
        return "true/false" + "".join(f" or {w!r}" for w in words)
    for kind, accepted, wanted in _KINDS:
        if isinstance(expected, kind):
            return None if isinstance(value, accepted) and not isinstance(value, bool) else wanted
    return None


def load_profile_file(path: str | Path) -> dict[str, Any]:
    """Read a profile YAML file with the strict loader (duplicate keys, alias bombs refused);
    a ``readiness:`` top-level wrapper is accepted. Keys remember their line."""
    from .errors import InventoryError
    from .inventory.source import Where
    from .inventory.strict_yaml import parse_yaml

    p = Path(path).expanduser()  # `profile: ~/p.yml` in readiness.yaml, as known_hosts has it
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {p}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{p}: not UTF-8 text") from None
    try:
        data = parse_yaml(text, Where(str(p))) or {}
    except InventoryError as exc:
        raise ProfileError(str(exc)) from None
    if not isinstance(data, dict):
        raise ProfileError(f"{p}: a profile must be a mapping, got {type(data).__name__}")
    if set(data) == {"readiness"} and isinstance(data["readiness"], dict):
        data = data["readiness"]
    with contextlib.suppress(AttributeError):
        data.source = str(p)  # type: ignore[attr-defined]  # a _LineDict: errors name file:line
    return data
