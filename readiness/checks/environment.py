"""``environment``: the service's real environment has what production needs, safely set."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from ..appconfig import (
    SOURCE_ENV_FILE,
    SOURCE_PROCESS,
    SUDO_FIX,
    EnvVar,
    truncated_problem,
    unreadable_problem,
)
from ..findings import Findings
from ..model import Outcome
from ..redact import is_secret_name
from ..registry import CheckContext, register
from ._common import (
    about_a_secret,
    describe_secret,
    env_file_values,
    parse_dsn,
    process_problem,
    stale_config,
    truthy,
    unreadable,
)

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
    # Weak credential values, judged only on credential-like variables (names matching
    # secret_env or containing SECRET/PASSWORD/TOKEN/KEY...). Compared case-insensitively,
    # whole value. The app's own name is deliberately not here: it is an ordinary value
    # of service names, queues and pools (add it in a profile if you need to).
    "insecure_values": [
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "passw0rd",
        "admin",
        "default",
        "example",
        "test",
        "dev",
        "development",
        "12345678",
        "123456",
        "your-secret-key",
        "your-secret-key-here",
        "insecure",
        "todo",
        # PostgreSQL's own defaults: the superuser's password in countless compose files
        # and tutorials, and the official image's documented example.
        "postgres",
        "mysecretpassword",
    ],
    # Default account names, judged only on user-name-like variables (username_env).
    # "postgres": PostgreSQL's superuser; an app connecting as it has every privilege.
    "insecure_usernames": [
        "admin",
        "administrator",
        "root",
        "test",
        "guest",
        "default",
        "postgres",
    ],
    "username_env": ["*_USER", "*_USERNAME", "*_USER_NAME", "*__USER", "*_LOGIN"],
    # true: the service manager exports the env file into the process environment (systemd
    # EnvironmentFile=), so a declared variable missing from /proc/<pid>/environ means the
    # process has not loaded the file. false: the app reads the env file itself.
    "env_file_in_process_env": True,
    # A file changed more than this many seconds after the process started is "newer".
    "thresholds": {"stale_config_grace_s": 1.0},
}


# The built-in defaults (required_env, conditional_env, dsn_env) name the app's variables
# with the built-in prefix and nesting delimiter.
_BUILTIN_PREFIX, _BUILTIN_DELIMITER = "MAHAVISHNU_", "__"


def app_variable(ctx: CheckContext, name: str) -> str:
    """A variable named with the built-in prefix/delimiter, as the app names it: with
    env_prefix MHV_ the app reads MHV_AUTH__SECRET, not MAHAVISHNU_AUTH__SECRET (which
    validate called "not set" while security_settings found the secret)."""
    app = ctx.app
    if not name.startswith(_BUILTIN_PREFIX) or (
        app.env_prefix == _BUILTIN_PREFIX and app.delimiter == _BUILTIN_DELIMITER
    ):
        return name
    dotted = name[len(_BUILTIN_PREFIX) :].lower().replace(_BUILTIN_DELIMITER, ".")
    return app.env_name(dotted)


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    profile, app = ctx.profile, ctx.app
    patterns = [str(p) for p in profile.get("secret_env") or ()]
    env_file = ctx.fact("app:env_file")
    if env_file.get("truncated"):
        f.fail(*truncated_problem("env file", env_file))
        return f.outcome("", subject="Environment")
    if unreadable(env_file):
        # Rightly 0600 and another user's: its variables are unknown, never "not set".
        f.unknown(unreadable_problem("env file", env_file), SUDO_FIX)
        return f.outcome("", subject="Environment")
    _service_source(ctx, f)
    # Judged first (what is loaded decides what is judged), reported last: the critical
    # findings and their recommendations come before "restart the service".
    later = Findings()
    stale = stale_config(ctx, later)
    if later.details.get("restart_needed"):
        f.details["stale"] = stale
        f.details["restart_needed"] = True
    elif stale:
        f.details["process_started_at"] = stale["started_at"]
    not_loaded = set(stale.get("lacking") or ())
    required = [app_variable(ctx, str(v)) for v in profile.get("required_env") or ()]
    if app.settings_error and profile.get("conditional_env"):
        # The feature flags that make variables required are settings: unreadable settings
        # leave those requirements unknown, which is never READY.
        f.unknown(
            f"{app.settings_error}; so which feature-conditional variables are required "
            "cannot be told",
            app.settings_fix,
        )
    conditional: dict[str, str] = {}
    for rule in profile.get("conditional_env") or ():
        flag = str(rule.get("when", ""))
        if flag and truthy(app.get(flag)):
            for name in rule.get("require") or ():
                conditional.setdefault(app_variable(ctx, str(name)), flag)
    checked = list(dict.fromkeys([*required, *conditional]))
    variables: dict[str, Any] = {}
    missing: list[str] = []
    for name in checked:
        var = app.env.get(name)
        secret = is_secret_name(name, patterns)
        # Only whitespace is no value: an app that strips it sees nothing, one that does
        # not gets a path of spaces or a secret anyone can guess.
        if var is None or not var.value.strip():
            missing.append(name)
            why = (
                f" (required because {conditional[name]} is enabled)" if name in conditional else ""
            )
            env_file = ctx.fact("app:env_file").get("path") or profile.get("env_file")
            state = "is not set" if var is None or var.value == "" else "is set to only whitespace"
            f.fail(
                f"{name} {state}{why}",
                f"Set {name} in the service environment (env file {env_file} or the unit's "
                "Environment=), then restart the service",
            )
            variables[name] = {"status": "missing" if var is None or not var.value else "blank"}
            continue
        variables[name] = (
            describe_secret(var.value, var.source)
            if secret
            else {"status": "set", "value": var.value, "source": var.source}
        )
        if name in not_loaded:
            # In the env file only: the running process does not have it (see "stale").
            variables[name]["status"] = "not loaded by the running process"
    invalid = _check_dsns(ctx, f, variables)
    insecure = _check_insecure(ctx, f, patterns, stale)
    f.warnings += later.warnings
    f.recommendations += [r for r in later.recommendations if r not in f.recommendations]
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
        "All required environment variables are properly configured" + _read_from(ctx, f),
        subject="Environment",
    )


def _read_from(ctx: CheckContext, f: Findings) -> str:
    """Where the variables were read, for the READY message: with no service process
    configured only the env file was, and "properly configured" claimed the service's
    real environment too (a unit's Environment= may override or lack any of them)."""
    sources = [str(s) for s in f.details.get("sources") or ()]
    if ctx.profile.get("pidfile") or ctx.profile.get("process_match"):
        return f" (read from {' and '.join(sources)})" if sources else ""
    where = f" (read from {sources[0]} only" if sources else " (no env file"
    return (
        f"{where}: no service process is configured (pidfile or process_match), so its real "
        "environment was not read)"
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
        if not proc.get("found") or not proc.get("running"):
            why = process_problem(proc, ctx.profile.get("process_match"))
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
    weak = {str(v).lower() for v in ctx.profile.get("insecure_values") or ()}
    default_users = {str(v).lower() for v in ctx.profile.get("insecure_usernames") or ()}
    for name in (app_variable(ctx, str(n)) for n in ctx.profile.get("dsn_env") or ()):
        var = ctx.app.env.get(name)
        if var is None or not var.value:
            continue
        # libpq's defaults make a valid string: postgresql:///app is the local socket
        # (peer authentication), a URL without a database connects to the user's; both
        # were NOT_READY "not a valid PostgreSQL connection string"
        dsn, problem = parse_dsn(var.value, libpq_defaults=True)
        if dsn is not None:
            ctx.secret(dsn.password)
            entry = variables.setdefault(str(name), describe_secret(var.value, var.source))
            entry.update({"format": "valid", "target": dsn.safe()})
            if dsn.password and dsn.password.lower() in weak:
                f.fail(
                    f"{name} uses an insecure default database password ({_label(ctx, var)})",
                    f"Give the database role a unique, strong password and update {name} "
                    f"{_place(ctx, var)}",
                )
            # The account a DSN names is judged like a *_USER variable's.
            if dsn.user and dsn.user.strip().lower() in default_users:
                f.fail(
                    f"{name} connects as the default account {dsn.user!r} ({_label(ctx, var)})",
                    f"Create a dedicated login role for the app (CREATE ROLE … LOGIN, only the "
                    f"privileges it needs) and use it in {name} {_place(ctx, var)}",
                )
            continue
        invalid.append(str(name))
        variables.setdefault(str(name), describe_secret(var.value, var.source))["format"] = problem
        f.fail(
            f"{name} is not a valid PostgreSQL connection string: {problem}",
            f"Fix {name} format: postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        )
    return invalid


def _label(ctx: CheckContext, var: EnvVar) -> str:
    if var.source == SOURCE_PROCESS:
        return f"from the environment of process {ctx.fact('app:process').get('pid')}"
    if var.source == SOURCE_ENV_FILE:
        return f"from env file {ctx.fact('app:env_file').get('path')}"
    return f"from {var.source}"


def _place(ctx: CheckContext, var: EnvVar) -> str:
    if var.source == SOURCE_PROCESS:
        return (
            "where the service's environment is defined (the unit's Environment= or its "
            "launcher), then restart the service"
        )
    return f"in env file {ctx.fact('app:env_file').get('path')}, then restart the service"


def _judged(ctx: CheckContext, stale: Mapping[str, Any]) -> list[EnvVar]:
    """The values to judge: what the process runs with, and what the env file declares.

    When the env file changed after the process started, a declared value that differs
    from the process's is the new intent (a fix on disk awaiting a restart, reported as
    stale): the file's value is judged instead of the superseded one.
    """
    declared = env_file_values(ctx)
    # Only when the service manager loads the env file: otherwise a process variable is
    # an override from elsewhere, which no edit of the file can supersede.
    file_is_newer = bool(stale.get("env_file_newer")) and truthy(
        ctx.profile.get("env_file_in_process_env", True)
    )
    out: list[EnvVar] = []
    for name in sorted(set(ctx.app.env) | set(declared)):
        var, in_file = ctx.app.env.get(name), declared.get(name)
        superseded = file_is_newer and in_file is not None and var is not None
        if var is not None and not (superseded and var.value != in_file):
            # A process variable that repeats the env file is set in the env file.
            out.append(EnvVar(name, var.value, SOURCE_ENV_FILE) if var.value == in_file else var)
        if in_file is not None and (var is None or var.value != in_file):
            out.append(EnvVar(name, in_file, SOURCE_ENV_FILE))
    return out


def credential_like(name: str, patterns: list[str]) -> bool:
    """A variable whose value is a credential (judged for insecure defaults)."""
    return is_secret_name(name, patterns) and not about_a_secret(name)


def _check_insecure(
    ctx: CheckContext, f: Findings, patterns: list[str], stale: Mapping[str, Any]
) -> list[str]:
    """Weak default credentials: secret values on credential-like variables only, default
    account names on user-name-like ones. Ordinary values (a service name, a pool called
    ``default``) are never judged."""
    bad_values = {str(v).lower() for v in ctx.profile.get("insecure_values") or ()}
    bad_users = {str(v).lower() for v in ctx.profile.get("insecure_usernames") or ()}
    user_patterns = [str(p).upper() for p in ctx.profile.get("username_env") or ()]
    insecure: list[str] = []
    for var in _judged(ctx, stale):
        value = var.value.strip().lower()
        if credential_like(var.name, patterns) and value in bad_values:
            problem = f"{var.name} uses an insecure default credential ({_label(ctx, var)})"
            advice = (
                f"Replace {var.name} with a unique, strong value (e.g. `openssl rand -hex 32`) "
                f"{_place(ctx, var)}"
            )
        elif value in bad_users and any(
            fnmatch.fnmatchcase(var.name.upper(), p) for p in user_patterns
        ):
            problem = f"{var.name} uses a default account name ({_label(ctx, var)})"
            advice = f"Use a dedicated, non-default account for {var.name} {_place(ctx, var)}"
        else:
            continue
        if var.name not in insecure:
            insecure.append(var.name)
        f.fail(problem, advice)
    return insecure


register(
    "environment",
    title="Environment variables",
    description=(
        "Required and feature-conditional variables are set in the service's real environment "
        "(env file, /proc/<pid>/environ); DSN formats parse; no insecure default credentials; "
        "the running process has loaded its current env and settings files."
    ),
    categories=("configuration", "security"),
    suites=("validate",),
    defaults=DEFAULTS,
    profile_keys=(
        "required_env",
        "conditional_env",
        "dsn_env",
        "insecure_values",
        "insecure_usernames",
        "username_env",
        "env_file_in_process_env",
        "thresholds.stale_config_grace_s",
        "secret_env",
        "env_file",
        "env_prefix",
        "pidfile",
        "process_match",
    ),
    aliases=("environment_variables", "env"),
    order=10,
)(evaluate)
