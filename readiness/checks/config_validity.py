"""``config_validity``: the settings parse, required fields are present with the right
types, the repository manifest and the repositories it lists exist on the host, and
resource limits are reasonable (ranges shared with ``resource_limits``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..appconfig import SOURCE_ENV_FILE, SOURCE_PROCESS, AppConfig
from ..findings import Findings
from ..hostdata import HostDataError, load_yaml
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import (
    json_collection,
    lax_number,
    origin,
    read_denied_to_another,
    settings_problem,
    unreadable,
)
from .resource_limits import judge_limits, record_limits

DEFAULTS: dict[str, Any] = {
    # Dotted settings paths that must be present (settings file or MAHAVISHNU_A__B env).
    "required_settings": [
        "server_name",
        "repos_path",
        "auth.enabled",
        "pools.max_workers",
        "max_concurrent_workflows",
        "workflow_timeout",
    ],
    # Dotted path → int | float (any number) | bool | str | list | dict; checked when present.
    "setting_types": {
        "server_name": "str",
        "repos_path": "str",
        "auth.enabled": "bool",
        "pools.enabled": "bool",
        "pools.min_workers": "int",
        "pools.max_workers": "int",
        "max_concurrent_workflows": "int",
        "workflow_timeout": "float",
        "resilience.retry.max_attempts": "int",
        "observability.metrics_enabled": "bool",
    },
    # The setting naming the repository manifest (relative paths are under app_root).
    "repos_manifest_setting": "repos_path",
}

REPOS_FACT = "config_validity:repos_manifest"
_ENV_SOURCES = (SOURCE_ENV_FILE, SOURCE_PROCESS)
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "list": (list,),
    "dict": (Mapping,),
}


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Once the settings are known: read the manifest and stat every path it lists."""
    path = _manifest_path(profile, app)
    if app.settings_error or path is None:
        return {}
    # Relative entries are where the app finds them: under app_root (its working directory),
    # as repository_access and repository_benchmark read the same manifest.
    return {REPOS_FACT: {"op": "file_refs", "path": path, "base": profile.app_root}}


def _manifest_path(profile: Profile, app: AppConfig) -> str | None:
    raw = app.get(str(profile.get("repos_manifest_setting") or "repos_path"))
    return profile.resolve(raw) if isinstance(raw, str) and raw.strip() else None


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    settings_path = ctx.profile.path_of("settings_file")
    if ctx.app.settings_error:  # first: a settings file that cannot be read is not missing
        settings_problem(f, ctx.app)
        return f.outcome("", subject="Configuration validity")
    if not ctx.fact("app:settings").get("exists"):
        f.fail(
            f"settings file {settings_path} does not exist",
            f"Create {settings_path} with the required settings (see docs/checks/config_validity.md)",
        )
        return f.outcome("", subject="Configuration validity")
    f.details["settings_file"] = ctx.app.settings_path
    missing = _required(ctx, f, settings_path)
    f.details["types"] = _types(ctx, f)
    f.details["repositories"] = _repositories(ctx, f)
    judgements = judge_limits(ctx.app, ctx.profile.get("resource_ranges"))
    f.details["limits"] = record_limits(
        f,
        ctx.app,
        judgements,
        settings_file=settings_path,
        skip_missing=missing,
        origins=lambda dotted: origin(ctx, dotted),
    )
    return f.outcome(
        "Configuration is valid: required settings present and typed, repositories accessible, "
        "resource limits reasonable",
        subject="Configuration validity",
    )


def _required(ctx: CheckContext, f: Findings, settings_path: str | None) -> list[str]:
    missing = []
    for dotted in (str(d) for d in ctx.profile.get("required_settings") or ()):
        value, source = ctx.app.lookup(dotted)
        # Only whitespace is no value (a server name or path of spaces).
        if source is None or value is None or (isinstance(value, str) and not value.strip()):
            missing.append(dotted)
            f.fail(
                f"required setting {dotted} is missing",
                f"Set {dotted} in {settings_path} (or as {ctx.app.env_name(dotted)})",
            )
    f.details["required"] = {
        "checked": len(ctx.profile.get("required_settings") or ()),
        "missing": missing,
    }
    return missing


def _types(ctx: CheckContext, f: Findings) -> dict[str, str]:
    out: dict[str, str] = {}
    rules: Mapping[str, Any] = ctx.profile.get("setting_types") or {}
    for dotted, wanted in rules.items():
        kinds = _TYPES.get(str(wanted))
        if kinds is None:
            f.fail(
                f"profile setting_types.{dotted} names an unknown type {wanted!r}",
                f"Use one of {', '.join(_TYPES)} for setting_types.{dotted} in the readiness profile",
            )
            continue
        value, source = ctx.app.lookup(str(dotted))
        if source is None or value is None:
            continue
        out[str(dotted)] = _type_verdict(value, str(wanted), kinds, source)
        if out[str(dotted)] != "ok":
            # Only type names: the value may be a secret.
            f.fail(
                f"setting {dotted} must be {_article(str(wanted))} (got {type(value).__name__})",
                f"Set {dotted} to {_article(str(wanted))} value in the settings file",
            )
    return out


# Every text pydantic reads as a boolean (lax mode), and the two integers it takes.
_BOOL_TEXT = frozenset(("0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"))


def _type_verdict(value: Any, wanted: str, kinds: tuple[type, ...], source: str) -> str:
    """Whether the app (pydantic, lax mode) reads ``value`` as a ``wanted``: a quoted number
    (`workflow_timeout: "600"`), an integral float for an int (`10.0`) and a boolean word
    (`enabled: y`, `"true"`) are what they say, as the same text from the environment is;
    each was NOT_READY "must be …". Booleans are still no numbers."""
    if wanted == "str" and source in _ENV_SOURCES and not isinstance(value, (list, dict)):
        return "ok"  # an environment variable is always a string to the app
    if wanted in ("list", "dict"):
        value = json_collection(value, source)
    elif wanted == "bool" and isinstance(value, (str, int)) and not isinstance(value, bool):
        return "ok" if str(value).strip().lower() in _BOOL_TEXT else "wrong type"
    elif wanted in ("int", "float") and not isinstance(value, bool):
        value = lax_number(value, integer=wanted == "int")
    if isinstance(value, bool) and wanted != "bool":
        return "wrong type"
    return "ok" if isinstance(value, kinds) else "wrong type"


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean (true/false)"}.get(
        kind, f"a {kind}"
    )


def _repositories(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    setting = str(ctx.profile.get("repos_manifest_setting") or "repos_path")
    path = _manifest_path(ctx.profile, ctx.app)
    if path is None:
        return {"manifest": None}  # absence is a required_settings matter
    out: dict[str, Any] = {"manifest": path}
    text = _manifest_text(ctx.fact(REPOS_FACT), path, setting, f)
    if text is None:
        return out
    entries = _manifest_entries(text, path, f)
    if entries is None:
        return out
    if not entries:
        f.warn(
            f"repository manifest {path} lists no repositories",
            f"Add the repositories the platform manages to {path} (repos: [{{path: ..., name: ...}}])",
        )
    refs: Mapping[str, Any] = ctx.fact(REPOS_FACT).get("refs") or {}
    out["repositories"] = [
        _repository(ctx, i, e, refs=refs, manifest=path, f=f) for i, e in enumerate(entries, 1)
    ]
    return out


def _manifest_text(fact: Mapping[str, Any], path: str, setting: str, f: Findings) -> str | None:
    if not fact:
        f.unknown(f"repository manifest {path} was not examined", "Rerun the audit")
    elif unreadable(fact):  # maybe fine: the audit account cannot read it
        f.unknown(
            f"cannot read repository manifest {path} ({fact.get('error')})",
            "Rerun with --sudo (or as a user that may read the app's files)",
        )
    elif fact.get("exists") is False:
        f.fail(
            f"repository manifest {path} ({setting}) does not exist",
            f"Create {path} listing the repositories (repos: [{{path: ..., name: ...}}]) or fix {setting}",
        )
    elif fact.get("exists") is None or fact.get("error"):
        f.fail(
            f"repository manifest {path} cannot be read ({fact.get('error')})",
            f"Make {path} readable by the service user",
        )
    elif fact.get("type") != "file":
        f.fail(
            f"repository manifest {path} is a {fact.get('type')}, not a YAML file",
            f"Point {setting} at a YAML manifest file (repos: [{{path: ..., name: ...}}])",
        )
    elif fact.get("truncated"):
        f.unknown(
            f"repository manifest {path} is too large to examine",
            f"Split or trim {path}: the probe reads at most 256 KiB",
        )
    else:
        return str(fact.get("text") or "")
    return None


def _manifest_entries(text: str, path: str, f: Findings) -> list[Any] | None:
    try:
        data = load_yaml(text, path)  # the host wrote it: strict, alias-budgeted
    except HostDataError as exc:
        f.fail(str(exc), "Fix the YAML syntax at the line shown")
        return None
    if data is None:
        return []
    repos = data.get("repos") if isinstance(data, Mapping) else data
    if repos is None:
        return []
    if not isinstance(repos, list):
        f.fail(
            f"repository manifest {path} must hold a list under 'repos' (or be a list of paths)",
            f"Rewrite {path} as repos: [{{path: /srv/repos/NAME, name: NAME}}, ...]",
        )
        return None
    return repos


def _repository(
    ctx: CheckContext,
    index: int,
    entry: Any,
    *,
    refs: Mapping[str, Any],
    manifest: str,
    f: Findings,
) -> dict[str, Any]:
    raw = entry.get("path") if isinstance(entry, Mapping) else entry
    if raw is None or isinstance(raw, (Mapping, list)) or str(raw).strip() == "":
        f.fail(
            f"repository entry #{index} in {manifest} has no path",
            f"Give entry #{index} in {manifest} a path: key",
        )
        return {"entry": index, "status": "no path"}
    name = str(entry.get("name") or raw) if isinstance(entry, Mapping) else str(raw)
    stat: Mapping[str, Any] = refs.get(str(raw)) or {}
    where = str(stat.get("path") or raw)
    out: dict[str, Any] = {"name": name, "path": where}
    if str(raw).strip().startswith("~"):
        # The probe expanded it in the audit account's home, not the app user's.
        f.unknown(
            f"cannot tell where repository {name} ({raw}) is: its path starts with '~', whose "
            "home depends on the user the app runs as (and on whether it expands it)",
            f"Write {name}'s path in {manifest} absolute (e.g. /home/<service user>/"
            f"{str(raw).strip().lstrip('~/')})",
        )
        out["status"] = "unknown"
    elif not stat:
        f.unknown(
            f"repository {name} ({raw}) could not be checked on the host",
            f"Write the path of {name} in {manifest} on its own line (path: /srv/repos/{name})",
        )
        out["status"] = "unknown"
    elif stat.get("exists") is False:
        f.fail(
            f"repository {name} path {where} does not exist",
            f"Clone or create {where} on the host, or fix its entry in {manifest}",
        )
        out["status"] = "missing"
    elif unreadable(stat) or (stat.get("type") == "dir" and read_denied_to_another(stat, ctx.meta)):
        # Whether the service can read it is unknown: the audit account may not look.
        why = stat.get("error") or (
            f"not readable by {ctx.meta.get('user')}; owner {stat.get('owner')}"
        )
        f.unknown(
            f"cannot tell whether repository {name} path {where} is accessible ({why})",
            "Rerun with --sudo (or as the user the app runs as)",
        )
        out["status"] = "unknown"
    elif stat.get("exists") is None or stat.get("type") != "dir" or not stat.get("readable"):
        why = stat.get("error") or (
            f"a {stat.get('type')}, not a directory"
            if stat.get("type") != "dir"
            else "not readable"
        )
        f.fail(
            f"repository {name} path {where} is not accessible ({why})",
            f"Make {where} a directory readable by the service user (owner {stat.get('owner', '?')})",
        )
        out["status"] = "inaccessible"
    else:
        out.update(status="ok", owner=stat.get("owner"), writable=stat.get("writable"))
    return out


register(
    "config_validity",
    title="Configuration validity",
    description=(
        "Settings parse; required settings are present with the right types; the repository "
        "manifest and every repository it lists exist and are readable on the host; resource "
        "limits are within the resource_limits ranges."
    ),
    categories=("configuration",),
    suites=("production",),
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "settings_file",
        "required_settings",
        "setting_types",
        "repos_manifest_setting",
        "resource_ranges",
    ),
    aliases=("configuration_validity", "check_config"),
    order=110,
)(evaluate)
