"""Helpers shared by checks: DSN parsing, secret-aware value descriptions, endpoints."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from ..appconfig import SOURCE_ENV_FILE, SOURCE_PROCESS, SOURCE_SETTINGS
from ..findings import Findings

if TYPE_CHECKING:
    from ..registry import CheckContext

__all__ = [
    "RESTART",
    "STALE",
    "Dsn",
    "Origin",
    "describe_secret",
    "env_file_values",
    "origin",
    "parse_dsn",
    "parse_endpoint",
    "process_problem",
    "running_process",
    "stale_config",
    "truthy",
]

PG_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Dsn:
    scheme: str
    host: str
    port: int
    dbname: str
    user: str
    password: str

    def safe(self) -> str:
        """The DSN without its password, for reports."""
        auth = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.dbname}"


def parse_dsn(value: str) -> tuple[Dsn | None, str | None]:
    """Parse a postgresql:// DSN or a libpq key=value string; return (dsn, problem)."""
    value = value.strip()
    if "://" not in value:
        return _parse_kv(value)
    try:
        parts = urlsplit(value)
        port = parts.port or 5432
    except ValueError as exc:
        return None, f"malformed URL ({exc})"
    if parts.scheme not in PG_SCHEMES:
        return None, f"scheme {parts.scheme!r} is not postgresql:// or postgres://"
    if not parts.hostname:
        return None, "no host"
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        return None, "no database name"
    return Dsn(
        parts.scheme,
        parts.hostname,
        port,
        dbname,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    ), None


def _parse_kv(value: str) -> tuple[Dsn | None, str | None]:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None, "not a postgresql:// URL"
    try:
        d = conninfo_to_dict(value)
    except Exception:
        return None, "neither a postgresql:// URL nor a valid key=value connection string"
    if not d.get("dbname"):
        return None, "no dbname"
    if not d.get("host"):
        return None, "no host"
    return Dsn(
        "postgresql",
        str(d["host"]),
        int(str(d.get("port") or 5432)),
        str(d["dbname"]),
        str(d.get("user") or ""),
        str(d.get("password") or ""),
    ), None


def describe_secret(value: str | None, source: str | None) -> dict[str, Any]:
    """What reports may say about a secret: set or not, its length, where it came from."""
    if value is None:
        return {"status": "missing"}
    return {"status": "set" if value else "empty", "length": len(value), "source": source}


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "enabled")
    return bool(value)


def parse_endpoint(value: str, default_port: int = 4317) -> tuple[str, int] | None:
    """``http://h:4317`` or ``h:4317`` → (host, port); None when it cannot be parsed."""
    text = value.strip()
    if "://" not in text:
        text = "tcp://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme, default_port)
    return parts.hostname, port


# --- where a value came from, and whether the running service has loaded it -------------

STALE = "running with stale configuration"
RESTART = "Restart the service so it loads its current configuration"


def env_file_values(ctx: CheckContext) -> dict[str, str]:
    """What the env file declares (prefixed variables only), as the service would load it."""
    text = ctx.fact("app:env_file").get("text")
    if text is None:
        return {}
    prefix = ctx.app.env_prefix
    values = dotenv_values(stream=io.StringIO(str(text)))
    return {k: v for k, v in values.items() if v is not None and k.startswith(prefix)}


def running_process(ctx: CheckContext) -> dict[str, Any] | None:
    """The service's process fact when it was found running, else None."""
    proc = ctx.fact("app:process")
    return proc if proc.get("found") and proc.get("running") else None


def process_problem(proc: Mapping[str, Any], match: Any = None) -> str:
    """Why the service process was not found, naming what was looked at (pidfile, PID, match)."""
    pidfile, pid = proc.get("pidfile"), proc.get("pid")
    if proc.get("found"):
        return f"process {pid} is not running (state {proc.get('state') or 'unknown'})"
    if pid is not None:
        error = str(proc.get("status_error") or "")
        named = f"pidfile {pidfile} names PID {pid}" if proc.get("source") == "pidfile" else None
        named = named or f"process {pid} (matched {match!r})"
        if error.startswith(("FileNotFoundError", "ProcessLookupError")):
            return f"{named}, which no longer exists"
        return f"{named}, whose /proc entry cannot be read ({error})"
    parts = []
    error = str(proc.get("pidfile_error") or "")
    if pidfile and error:
        exists = "does not exist" in error
        parts.append(
            f"pidfile {pidfile} " + ("does not exist" if exists else f"is unusable ({error})")
        )
    if match:
        parts.append(f"no process command line contains {str(match)!r}")
    return " and ".join(parts) or "no matching process"


@dataclass(frozen=True)
class Origin:
    """Where a setting's effective value comes from, and how to change it there."""

    dotted: str
    variable: str
    source: str | None  # SOURCE_PROCESS / SOURCE_ENV_FILE / SOURCE_SETTINGS, None = default
    path: str | None = None  # the env file or settings file it came from
    pid: Any = None
    file_value: Any = None  # what the settings file says, when the environment overrides it

    @property
    def label(self) -> str:
        if self.source == SOURCE_PROCESS:
            return f"{self.variable} in the environment of process {self.pid}"
        if self.source == SOURCE_ENV_FILE:
            return f"{self.variable} in env file {self.path}"
        if self.source == SOURCE_SETTINGS:
            return f"{self.dotted} in settings file {self.path}"
        return f"{self.dotted} not set anywhere: the default applies"

    @property
    def where(self) -> str:
        """`` (from X)``, to append to a finding."""
        overrides = ""
        if self.source in (SOURCE_PROCESS, SOURCE_ENV_FILE) and self.file_value is not None:
            overrides = f", overriding {self.file_value!r} in the settings file"
        return f" (from {self.label}{overrides})"

    def set_to(self, what: str) -> str:
        """A recommendation that targets the place the value comes from."""
        if self.source == SOURCE_PROCESS:
            return (
                f"Set {self.variable} to {what} where the service's environment is defined "
                f"(the unit's Environment= or its launcher; it overrides {self.dotted} in the "
                "settings file), then restart the service"
            )
        if self.source == SOURCE_ENV_FILE:
            return (
                f"Set {self.variable} to {what} in env file {self.path}, then restart the service"
            )
        where = f" in settings file {self.path}" if self.path else " in the settings file"
        if self.source is None:
            return f"Set {self.dotted} to {what}{where} (or {self.variable} in the service environment)"
        return f"Set {self.dotted} to {what}{where}"


def origin(ctx: CheckContext, dotted: str) -> Origin:
    """The :class:`Origin` of ``dotted``: a process variable that merely repeats the env file
    counts as the env file's (that is where it is set)."""
    app = ctx.app
    source = app.source(dotted)
    variable = app.env_name(dotted)
    pid = ctx.fact("app:process").get("pid")
    var = app.env.get(variable)
    repeated = var is not None and env_file_values(ctx).get(variable) == var.value
    if source == SOURCE_PROCESS and repeated:
        source = SOURCE_ENV_FILE
    path = {
        SOURCE_ENV_FILE: ctx.fact("app:env_file").get("path") or ctx.profile.path_of("env_file"),
        SOURCE_SETTINGS: app.settings_path,
        None: app.settings_path or ctx.profile.path_of("settings_file"),
    }.get(source)
    file_value = None
    if source in (SOURCE_PROCESS, SOURCE_ENV_FILE):
        file_value = _settings_value(app.settings, dotted)
    return Origin(dotted, variable, source, path, pid, file_value)


def _settings_value(settings: Mapping[str, Any], dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, (Mapping, list)) else node


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def stale_config(ctx: CheckContext, f: Findings, *, env: bool = True) -> dict[str, Any]:
    """Warn when the running service has not loaded its current configuration.

    Stale when the settings file (and, with ``env``, the env file) changed after the
    process started, or a variable the env file declares is missing from or different in
    the process environment (only when ``env_file_in_process_env``: the service manager
    exports the env file, as systemd's EnvironmentFile= does). Values are never shown.
    """
    proc = running_process(ctx)
    started = proc.get("started_at") if proc else None
    if proc is None or not isinstance(started, (int, float)):
        return {}
    out: dict[str, Any] = {"process": proc.get("pid"), "started_at": _when(started)}
    grace = float(ctx.profile.get_path("thresholds.stale_config_grace_s", 1.0))
    facts = [("app:settings", "settings file")] + ([("app:env_file", "env file")] if env else [])
    for key, what in facts:
        st = ctx.fact(key)
        mtime = st.get("mtime")
        if not st.get("exists") or not isinstance(mtime, (int, float)):
            continue
        if key == "app:env_file":
            # Without the grace: which env file values supersede the process's (environment).
            out["env_file_newer"] = mtime > started
        if mtime > started + grace:
            out.setdefault("changed_after_start", []).append(st.get("path"))
            f.warn(
                f"{STALE}: {what} {st.get('path')} changed at {_when(mtime)}, after process "
                f"{proc.get('pid')} started at {_when(started)}",
                f"{RESTART} ({what} {st.get('path')} changed after it started)",
            )
    environ = proc.get("environ")
    if (
        env
        and isinstance(environ, Mapping)
        and truthy(ctx.profile.get("env_file_in_process_env", True))
    ):
        declared = env_file_values(ctx)
        lacking = sorted(k for k in declared if k not in environ)
        differing = sorted(k for k in declared if k in environ and environ[k] != declared[k])
        path = ctx.fact("app:env_file").get("path")
        for names, how in ((lacking, "lacks"), (differing, "has other values for")):
            if names:
                out["lacking" if how == "lacks" else "differing"] = names
                f.warn(
                    f"{STALE}: process {proc.get('pid')} {how} {', '.join(names)} "
                    f"(declared in env file {path})",
                    f"{RESTART} from env file {path} (if the process environment sets these on "
                    "purpose, declare them in the env file instead)",
                )
    if any(k in out for k in ("changed_after_start", "lacking", "differing")):
        f.details["restart_needed"] = True
    return out
