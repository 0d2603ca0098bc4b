"""The audited application's effective configuration, as the app itself would see it.

Built from facts the probe gathered on the host: the settings YAML file, the env
file, and the running process's environment (``/proc/<pid>/environ``). Like
pydantic-settings, environment variables win over the env file, which wins over
the settings file; ``MAHAVISHNU_AUTH__SECRET`` overrides ``auth.secret``.
Every value remembers where it came from.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dotenv import dotenv_values

from .hostdata import HostDataError, copy_parsed, load_yaml, printable

__all__ = [
    "AppConfig",
    "EnvVar",
    "build_app_config",
    "coerce_scalar",
    "env_text_values",
    "parse_settings",
    "truncated_problem",
    "unreadable_problem",
]

SOURCE_PROCESS = "process environment"
SOURCE_ENV_FILE = "env file"
SOURCE_SETTINGS = "settings file"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    source: str


@dataclass(frozen=True)
class AppConfig:
    settings: Mapping[str, Any] = field(default_factory=dict)
    settings_path: str | None = None
    settings_error: str | None = None
    # What to do about settings_error (a YAML error, or a file longer than the probe reads).
    settings_fix: str = "Fix the YAML syntax at the line shown"
    # True when settings_error means "could not be read" (judge as undetermined, not broken).
    settings_undetermined: bool = False
    env: Mapping[str, EnvVar] = field(default_factory=dict)
    env_prefix: str = ""
    delimiter: str = "__"
    # The env file's own prefixed values (None: no env file text), parsed once per host for
    # every check that compares them with the running process (checks/_common.py).
    env_file_values: Mapping[str, str] | None = None

    def env_name(self, dotted: str) -> str:
        """``auth.secret`` → ``MAHAVISHNU_AUTH__SECRET``."""
        if len(dotted) > _NAME_CACHE_MAX_CHARS:
            return _env_name(self.env_prefix, self.delimiter, dotted)
        return _env_name_cached(self.env_prefix, self.delimiter, dotted)

    def lookup(self, dotted: str) -> tuple[Any, str | None]:
        """Value and source of a setting; the environment overrides the settings file."""
        var = self.env.get(self.env_name(dotted))
        if var is not None:
            return coerce_scalar(var.value), var.source
        node: Any = self.settings
        for part in dotted.split("."):
            if not (type(node) is dict or isinstance(node, Mapping)) or part not in node:
                return self._env_subtree(dotted)
            node = node[part]
        return self._overlay(dotted, node), SOURCE_SETTINGS

    def get(self, dotted: str, default: Any = None) -> Any:
        value, source = self.lookup(dotted)
        return default if source is None else value

    def source(self, dotted: str) -> str | None:
        return self.lookup(dotted)[1]

    def _overlay(self, dotted: str, node: Any) -> Any:
        """A mapping from the settings file, with env overrides of its children applied."""
        if not isinstance(node, Mapping):
            return node
        prefix = self.env_name(dotted) + self.delimiter
        # A deep copy: overlaying must never write env values into the parsed settings file.
        out = copy_parsed(dict(node))
        for name, var in self.env.items():
            if name.startswith(prefix):
                _set_path(out, name[len(prefix) :].lower().split(self.delimiter), var.value)
        return out

    def _env_subtree(self, dotted: str) -> tuple[Any, str | None]:
        prefix = self.env_name(dotted) + self.delimiter
        out: dict[str, Any] = {}
        source = None
        for name, var in self.env.items():
            if name.startswith(prefix):
                _set_path(out, name[len(prefix) :].lower().split(self.delimiter), var.value)
                source = var.source
        return (out, source) if out else (None, None)


def _env_name(prefix: str, delimiter: str, dotted: str) -> str:
    return prefix + delimiter.join(p.upper() for p in dotted.split("."))


# The checks ask for the same few dozen settings on every host (33 lookups per host on the
# example): each name is made once per prefix and delimiter. The names are the checks'
# own and the profile's, never a host's; a long one is made uncached all the same.
_NAME_CACHE_MAX_CHARS = 4096
_env_name_cached = functools.lru_cache(maxsize=4096)(_env_name)


def _set_path(target: dict[str, Any], parts: list[str], raw: str) -> None:
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    target[parts[-1]] = coerce_scalar(raw)


def coerce_scalar(raw: str) -> Any:
    """``"true"`` → True, ``"5"`` → 5, anything else stays a string (as pydantic would)."""
    low = raw.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(raw.strip())
        except ValueError:
            continue
    return raw


def parse_settings(text: str, path: str) -> tuple[dict[str, Any], str | None]:
    """Parse the settings YAML from the host; an error names the file and line.

    The host writes this file, so it goes through the strict loader with its alias
    budget and depth limit (:func:`readiness.hostdata.load_yaml`): an alias bomb or a
    deeply nested document is one clear settings error, never a hung controller. No tags
    beyond SafeLoader's are constructed (no python/* objects).
    """
    path = printable(path)
    try:
        data = load_yaml(text, path)
    except HostDataError as exc:
        return {}, str(exc)
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"{path}: settings must be a mapping, got {type(data).__name__}"
    return dict(data), None


def env_text_values(text: str) -> dict[str, str | None]:
    """``dotenv_values`` of an env file's text. Interpolation (``${VAR}``) copies the
    controller's whole environment per call: it is only asked for when a ``$`` is there
    (without one the result is the same).

    A text of plain lines only (comments, ``NAME=value`` without quotes, ``$``, ``#`` or
    backslashes) is parsed once per distinct text: a fleet's hosts usually share their env
    file, and such lines can neither depend on the controller's environment nor make
    python-dotenv log a warning (which a cached answer would not repeat)."""
    if len(text) <= _ENV_CACHE_MAX_TEXT and all(
        _PLAIN_ENV_LINE.fullmatch(line) for line in text.splitlines()
    ):
        return dict(_plain_env_values(text))
    return dict(dotenv_values(stream=io.StringIO(text), interpolate="$" in text))


_ENV_CACHE_MAX_TEXT = 64 * 1024
_PLAIN_ENV_LINE = re.compile(
    r"[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*"
    r"|(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_.]*[ \t]*=[^'\"\\$#\x00-\x08\x0a-\x1f\x7f]*)?"
)


@functools.lru_cache(maxsize=64)
def _plain_env_values(text: str) -> tuple[tuple[str, str | None], ...]:
    return tuple(dotenv_values(stream=io.StringIO(text), interpolate=False).items())


def truncated_problem(kind: str, fact: Mapping[str, Any]) -> tuple[str, str]:
    """(problem, recommendation) for a settings or env file longer than the probe reads."""
    where = printable(str(fact.get("path")))
    size = fact.get("size")
    bytes_ = f" ({size} bytes)" if isinstance(size, int) else ""
    return (
        f"{kind} {where}{bytes_} is longer than the audit reads: what follows (which may "
        "override what was read) cannot be judged",
        f"Keep {where} under 256 KiB (move comments and data elsewhere)",
    )


SUDO_FIX = "Rerun with --sudo (or as the service's user) so the audit can read it"


def unreadable_problem(kind: str, fact: Mapping[str, Any]) -> str:
    return (
        f"cannot read {kind} {printable(str(fact.get('path')))} ({fact.get('error')}), so "
        "the settings it holds cannot be judged"
    )


def build_app_config(
    *,
    settings_fact: Mapping[str, Any] | None,
    env_file_fact: Mapping[str, Any] | None,
    process_fact: Mapping[str, Any] | None,
    env_prefix: str,
    delimiter: str = "__",
) -> AppConfig:
    settings: dict[str, Any] = {}
    error = None
    fix = AppConfig.settings_fix
    path = None
    if settings_fact and settings_fact.get("text") is not None:
        path = str(settings_fact.get("path"))
        settings, error = parse_settings(str(settings_fact["text"]), path)
    # Only the head of a file longer than the probe reads was seen: a key past that point
    # (auth.enabled: false at the end) overrides what was read, so nothing is judged.
    undetermined = False
    for kind, fact in (("settings file", settings_fact), ("env file", env_file_fact)):
        if error is None and fact and fact.get("truncated"):
            error, fix = truncated_problem(kind, fact)
        elif error is None and fact and fact.get("exists") is None and fact.get("error"):
            # There, but not readable by the audit account (an env file is rightly 0600):
            # every value it may set is unknown, never "not set".
            error, fix, undetermined = unreadable_problem(kind, fact), SUDO_FIX, True
    env: dict[str, EnvVar] = {}
    file_values: dict[str, str] | None = None
    if env_file_fact and env_file_fact.get("text") is not None:
        values = env_text_values(str(env_file_fact["text"]))
        file_values = {}
        for name, value in values.items():
            if value is not None and name.startswith(env_prefix):
                env[name] = EnvVar(name, value, SOURCE_ENV_FILE)
                file_values[name] = value
    environ = (process_fact or {}).get("environ") or {}
    for name, value in environ.items():
        env[name] = EnvVar(name, str(value), SOURCE_PROCESS)
    return AppConfig(
        settings=settings,
        settings_path=path,
        settings_error=error,
        settings_fix=fix,
        settings_undetermined=undetermined,
        env=env,
        env_prefix=env_prefix,
        delimiter=delimiter,
        env_file_values=file_values,
    )
