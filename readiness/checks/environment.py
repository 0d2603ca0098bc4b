"""``environment``: the service's real environment has what production needs, safely set."""

from __future__ import annotations

from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..redact import is_secret_name
from ..registry import CheckContext, register
from ._common import describe_secret, parse_dsn, truthy

DEFAULTS: dict[str, Any] = {
    # Variables required only when a feature flag (a dotted settings path) is on.
    "conditional_env": [
        {"when": "auth.enabled", "require": ["MAHAVISHNU_AUTH__SECRET"]},
        {
            "when": "otel_storage.enabled",
            "require": ["MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING"],
        },
    ],
    # Variables whose values must be PostgreSQL connection strings.
    "dsn_env": ["MAHAVISHNU_OTEL_STORAGE__CONNECTION_STRING", "MAHAVISHNU_DATABASE__URL"],
    # Values that must never reach production (compared case-insensitively).
    "insecure_values": [
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "admin",
        "default",
        "example",
        "test",
        "dev",
        "development",
        "12345678",
        "mahavishnu",
        "your-secret-key",
        "your-secret-key-here",
        "insecure",
        "todo",
    ],
}


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    profile, app = ctx.profile, ctx.app
    patterns = [str(p) for p in profile.get("secret_env") or ()]
    _service_source(ctx, f)
    required = [str(v) for v in profile.get("required_env") or ()]
    conditional: dict[str, str] = {}
    for rule in profile.get("conditional_env") or ():
        flag = str(rule.get("when", ""))
        if flag and truthy(app.get(flag)):
            for name in rule.get("require") or ():
                conditional.setdefault(str(name), flag)
    checked = list(dict.fromkeys([*required, *conditional]))
    variables: dict[str, Any] = {}
    missing: list[str] = []
    for name in checked:
        var = app.env.get(name)
        secret = is_secret_name(name, patterns)
        if var is None or var.value == "":
            missing.append(name)
            why = (
                f" (required because {conditional[name]} is enabled)" if name in conditional else ""
            )
            f.fail(
                f"{name} is not set{why}",
                f"Set {name} in the service environment ({profile.get('env_file')} or the unit's Environment=)",
            )
            variables[name] = {"status": "missing"}
            continue
        variables[name] = (
            describe_secret(var.value, var.source)
            if secret
            else {"status": "set", "value": var.value, "source": var.source}
        )
    invalid = _check_dsns(ctx, f, variables)
    insecure = _check_insecure(ctx, f, patterns)
    f.details.update(
        {
            "checked": checked,
            "missing": missing,
            "invalid": invalid,
            "insecure": insecure,
            "conditional": [
                {"variable": k, "because": f"{v} is enabled"} for k, v in conditional.items()
            ],
            "variables": variables,
        }
    )
    return f.outcome(
        "All required environment variables are properly configured", subject="Environment"
    )


def _service_source(ctx: CheckContext, f: Findings) -> None:
    proc = ctx.fact("app:process")
    env_file = ctx.fact("app:env_file")
    sources = []
    if env_file.get("exists"):
        sources.append(f"env file {env_file.get('path')}")
    elif ctx.profile.get("env_file"):
        f.details["env_file"] = f"{env_file.get('path')} does not exist"
    if ctx.profile.get("pidfile") or ctx.profile.get("process_match"):
        if not proc.get("found"):
            why = proc.get("pidfile_error") or "no matching process"
            f.warn(
                f"service process not found ({why}); judged the env file only",
                "Start the service (or fix 'pidfile'/'process_match' in the profile) so its real environment is audited",
            )
        elif proc.get("environ") is None:
            f.unknown(
                f"cannot read /proc/{proc.get('pid')}/environ ({proc.get('environ_error')})",
                "Rerun with --sudo to read the service's environment",
            )
        else:
            sources.append(f"process {proc.get('pid')} environment")
    f.details["sources"] = sources


def _check_dsns(ctx: CheckContext, f: Findings, variables: dict[str, Any]) -> list[str]:
    invalid = []
    for name in ctx.profile.get("dsn_env") or ():
        var = ctx.app.env.get(str(name))
        if var is None or not var.value:
            continue
        dsn, problem = parse_dsn(var.value)
        if dsn is not None:
            ctx.secret(dsn.password)
            entry = variables.setdefault(str(name), describe_secret(var.value, var.source))
            entry.update({"format": "valid", "target": dsn.safe()})
            continue
        invalid.append(str(name))
        variables.setdefault(str(name), describe_secret(var.value, var.source))["format"] = problem
        f.fail(
            f"{name} is not a valid PostgreSQL connection string: {problem}",
            f"Fix {name} format: postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        )
    return invalid


def _check_insecure(ctx: CheckContext, f: Findings, patterns: list[str]) -> list[str]:
    bad_values = {str(v).lower() for v in ctx.profile.get("insecure_values") or ()}
    insecure = []
    for name, var in sorted(ctx.app.env.items()):
        if var.value.strip().lower() in bad_values:
            insecure.append(name)
            kind = "secret" if is_secret_name(name, patterns) else "value"
            f.fail(
                f"{name} uses an insecure default {kind}",
                f"Replace {name} with a unique, strong value (e.g. `openssl rand -hex 32` for secrets)",
            )
    return insecure


register(
    "environment",
    title="Environment variables",
    description=(
        "Required and feature-conditional variables are set in the service's real environment "
        "(env file, /proc/<pid>/environ); DSN formats parse; no insecure default values."
    ),
    categories=("configuration", "security"),
    suites=("validate",),
    defaults=DEFAULTS,
    profile_keys=(
        "required_env",
        "conditional_env",
        "dsn_env",
        "insecure_values",
        "secret_env",
        "env_file",
        "env_prefix",
        "pidfile",
        "process_match",
    ),
    aliases=("environment_variables", "env"),
    order=10,
)(evaluate)
