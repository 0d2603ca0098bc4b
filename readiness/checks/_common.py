"""Helpers shared by checks: DSN parsing, secret-aware value descriptions, endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..appconfig import (
    SOURCE_ENV_FILE,
    SOURCE_PROCESS,
    SOURCE_SETTINGS,
    coerce_scalar,
    env_text_values,
)
from ..findings import Findings
from ..netaddr import bracket
from ..redact import about_a_secret, is_secret_name

if TYPE_CHECKING:
    from ..registry import CheckContext

__all__ = [
    "RESTART",
    "STALE",
    "Dsn",
    "Endpoint",
    "Origin",
    "about_a_secret",
    "bracket",
    "describe_secret",
    "env_file_values",
    "json_collection",
    "judge_auth_secret",
    "lax_number",
    "origin",
    "parse_dsn",
    "parse_endpoint",
    "process_problem",
    "read_denied_to_another",
    "running_process",
    "settings_problem",
    "stale_config",
    "truthy",
    "unreadable",
    "where_all",
    "write_denied_to_another",
]

PG_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Endpoint:
    """One server of a DSN: ``host`` (a name, an address or a unix socket directory),
    ``hostaddr`` (the numeric address libpq connects to instead of resolving ``host``;
    empty when not given) and ``port``."""

    host: str
    hostaddr: str
    port: int

    @property
    def address(self) -> str:
        """What libpq actually connects to."""
        return self.hostaddr or self.host

    def render(self) -> str:
        """``host:port``, an IPv6 address in brackets (``[::1]:5432``); "" for libpq's
        default socket (no host given)."""
        return f"{bracket(self.host)}:{self.port}" if self.host else ""


@dataclass(frozen=True)
class Dsn:
    """A parsed libpq connection string (URL or key=value), as libpq itself reads it.

    ``host``/``port`` are the first server's (for messages); ``endpoints`` lists every
    server of a multi-host DSN; ``options`` holds every key the string sets, password
    included (never render it: :meth:`safe` is the printable form).
    """

    scheme: str
    host: str
    port: int
    dbname: str
    user: str
    password: str
    endpoints: tuple[Endpoint, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)

    def safe(self) -> str:
        """The DSN without its password, for reports."""
        auth = f"{self.user}@" if self.user else ""
        servers = self.endpoints or (Endpoint(self.host, "", self.port),)
        sockets = [e for e in servers if e.host.startswith("/")]
        if sockets:
            query = "&".join(f"host={e.host}&port={e.port}" for e in sockets)
            tcp = ",".join(e.render() for e in servers if not e.host.startswith("/"))
            return f"{self.scheme}://{auth}{tcp}/{self.dbname}?{query}"
        return f"{self.scheme}://{auth}{','.join(e.render() for e in servers)}/{self.dbname}"


def parse_dsn(value: str, *, libpq_defaults: bool = False) -> tuple[Dsn | None, str | None]:
    """Parse a libpq connection string (``postgresql://`` URL or key=value) with libpq's
    own rules (libpq's ``PQconninfoParse``, :mod:`._conninfo`): unix socket directories (``?host=/dir``)
    and multi-host strings included. Return (dsn, problem); the problem never quotes the
    string (it may hold a password).

    ``libpq_defaults``: a string without a host or a database name is valid, as libpq reads
    it (its default unix socket; the database named after the user): ``postgresql:///app``.
    A caller that connects (and must know where) leaves it False."""
    value = value.strip()
    scheme = "postgresql"
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in PG_SCHEMES:
            return None, f"scheme {scheme!r} is not postgresql:// or postgres://"
    from ._conninfo import available, conninfo_to_dict

    if not available():  # pragma: no cover - psycopg is a dependency
        return None, "psycopg is not installed on the controller"
    try:
        d = conninfo_to_dict(value)
    except Exception:  # its message quotes parts of the string, password included
        kind = "URL" if "://" in value else "key=value connection string"
        return None, f"malformed {kind} (libpq cannot parse it)"
    if libpq_defaults:
        d = {"dbname": d.get("user", ""), **d}  # a copy: the parsed dict may be cached
    endpoints, problem = _endpoints(d, url="://" in value, allow_default=libpq_defaults)
    if problem:
        return None, problem
    if not d.get("dbname") and not libpq_defaults:
        return None, "no database name"
    first = endpoints[0]
    return Dsn(
        scheme,
        first.host,
        first.port,
        d["dbname"],
        d.get("user", ""),
        d.get("password", ""),
        endpoints,
        d,
    ), None


def _endpoints(
    d: Mapping[str, str], *, url: bool, allow_default: bool = False
) -> tuple[tuple[Endpoint, ...], str | None]:
    if url and "@" in d.get("dbname", ""):
        # libpq ends a URL's user:password at the first '/': an unencoded '/' in the
        # password (base64 passwords hold them) made its head the port and its tail the
        # database name, and the whole password would be shown as the target.
        return (), "an unencoded '/' in the user or password (write it as %2F)"
    hosts = [h.strip() for h in d["host"].split(",")] if d.get("host") else []
    addrs = [a.strip() for a in d["hostaddr"].split(",")] if d.get("hostaddr") else []
    count = max(len(hosts), len(addrs))
    problem = None
    if not count and allow_default:
        hosts, count = [""], 1  # libpq's default unix socket directory
    elif not count:
        problem = "no host (name a server, or a socket directory: ?host=/var/run/postgresql)"
    elif hosts and addrs and len(hosts) != len(addrs):
        problem = f"{len(hosts)} host names but {len(addrs)} hostaddr values"
    elif any("@" in h for h in hosts):
        # libpq ends the password at the first '@': the rest became the host name.
        problem = "an unencoded '@' in the user or password (write it as %40)"
    ports, port_problem = _ports(d.get("port", ""), count)
    if problem or port_problem:
        return (), problem or port_problem
    return tuple(
        Endpoint(
            (hosts[i] if hosts else "") or (addrs[i] if addrs else ""),
            addrs[i] if addrs else "",
            ports[i],
        )
        for i in range(count)
    ), None


def _ports(text: str, count: int) -> tuple[list[int], str | None]:
    items = [p.strip() or "5432" for p in text.split(",")] if text else ["5432"]
    if len(items) not in (1, count):
        return [], f"{count} hosts but {len(items)} ports"
    ports = []
    for item in items:
        if not item.isdigit() or not 0 < int(item) < 65536:
            return [], f"port {item!r} is not a number from 1 to 65535"
        ports.append(int(item))
    return ports * count if len(ports) == 1 else ports, None


def describe_secret(value: str | None, source: str | None) -> dict[str, Any]:
    """What reports may say about a secret: set or not, its length, where it came from."""
    if value is None:
        return {"status": "missing"}
    return {"status": "set" if value else "empty", "length": len(value), "source": source}


def judge_auth_secret(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    """The auth secret (``auth.secret`` or its variable, as the app sees it) is set and at
    least ``thresholds.secret_min_length`` characters: missing, blank or short fails, and
    so does one of fewer than ``thresholds.secret_min_distinct_chars`` distinct characters.
    Surrounding whitespace adds no strength (40 spaces, or ``abc`` padded with them, is not
    a 32+ character secret), so the length is counted without it. Returns what a report
    may show: status, length and source, never the value."""
    secret, source = ctx.app.lookup("auth.secret")
    text = None if secret is None else str(secret)
    ctx.secret(text)
    minimum = int(ctx.profile.threshold("secret_min_length"))
    so = origin(ctx, "auth.secret")
    strong = f"a strong secret ({minimum}+ characters)"
    advice = (
        so.set_to(strong)
        if so.source not in (None, SOURCE_SETTINGS)
        else (
            f"Set {so.variable} to {strong} in the env file"
            + (f" and remove auth.secret from settings file {so.path}" if so.source else "")
        )
    )
    where = so.where if so.source else ""
    core = (text or "").strip()
    if not text:
        f.fail(f"auth is enabled but no auth secret is set{where}", advice)
    elif not core:
        f.fail(f"auth is enabled but the auth secret is only whitespace{where}", advice)
    elif len(core) < minimum:
        padded = " without its surrounding whitespace" if core != text else ""
        f.fail(
            f"auth secret is too short ({len(core)} < {minimum} characters{padded}){where}", advice
        )
    elif len(set(core)) < (least := int(ctx.profile.threshold("secret_min_distinct_chars"))):
        # 40 times "a", or "password" four times over, passed as 32+ characters: length is
        # strength only for a random value (a random 32-character hex secret has ~16)
        f.fail(
            f"auth secret is weak: {len(core)} characters but only {len(set(core))} distinct "
            f"(< {least}), a repeated or patterned value, not a random one{where}",
            advice.replace(f"({minimum}+ characters)", f"({minimum}+ random characters)"),
        )
    return describe_secret(text, source)


def settings_problem(f: Findings, app: Any) -> None:
    """Report ``app.settings_error``: undetermined (DEGRADED) when a file could not be
    read, a failure when it is broken (a YAML error, longer than the probe reads)."""
    (f.unknown if app.settings_undetermined else f.fail)(app.settings_error, app.settings_fix)


def unreadable(fact: Mapping[str, Any]) -> bool:
    """A stat/read fact the probe could not determine: no ``exists`` answer, only an error
    (permission denied, I/O error). Never READY: the caller says why it could not tell."""
    return fact.get("exists") is None and bool(fact.get("error"))


def write_denied_to_another(fact: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """A failed write test that says nothing of the service: the probe ran as a non-root
    account that does not own the directory and was refused (the service's own 0750
    directory, audited as a deploy account without --sudo). Whether the service can write
    there is undetermined, never "not writable"."""
    uid = meta.get("uid")
    return (
        not fact.get("write_ok")
        and str(fact.get("write_error") or "").startswith("PermissionError")
        and isinstance(uid, int)
        and uid != 0
        and fact.get("uid") != uid
    )


def read_denied_to_another(fact: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    """A path the probe, running as a non-root account that does not own it, may not read
    (the service's own 0700 directory or 0600 file, audited as a deploy account without
    --sudo). Whether the service can read it is undetermined, never "not readable"."""
    uid = meta.get("uid")
    return (
        bool(fact.get("exists"))
        and not fact.get("readable")
        and isinstance(uid, int)
        and uid != 0
        and fact.get("uid") != uid
    )


def truthy(value: Any) -> bool:
    # Every string pydantic reads as true ("y" and "t" too: `enabled: y` is a string in
    # YAML, and the app has authentication on), and "enabled".
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t", "enabled")
    return bool(value)


def json_collection(value: Any, source: str | None) -> Any:
    """A list or mapping setting as the app reads it: pydantic-settings decodes a complex
    field's value from the environment (env file or process) as JSON, so
    ``MAHAVISHNU_RBAC__ROLES='["admin", "viewer"]'`` is two roles, not a string. Anything
    else (a settings-file value, a string that is not a JSON list/object) is left as it is."""
    if source not in (SOURCE_ENV_FILE, SOURCE_PROCESS) or not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("[", "{")):
        return value
    try:
        decoded = json.loads(text)
    except ValueError:
        return value
    return decoded if isinstance(decoded, (list, dict)) else value


def lax_number(value: Any, *, integer: bool = False) -> Any:
    """A numeric setting as the app (pydantic, lax mode) reads it: a numeric string (a quoted
    YAML value, `min_workers: "2"`) is its number; for an ``integer`` field an integral
    float (`3.0`) is the integer. Anything else is returned as it is, for the caller to
    refuse."""
    if isinstance(value, str):
        value = coerce_scalar(value)
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
        # A URL's scheme names its service's port: a dead letter queue at redis://dlq/1 is
        # on 6379, not on the caller's default (4317, OTLP), where nothing listens.
        port = _SCHEME_PORTS.get(parts.scheme.lower(), default_port)
    return parts.hostname, port


_SCHEME_PORTS = {
    "http": 80,
    "https": 443,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
    "kafka": 9092,
    "nats": 4222,
    "mqtt": 1883,
    "mqtts": 8883,
    "postgres": 5432,
    "postgresql": 5432,
}


# --- where a value came from, and whether the running service has loaded it -------------

STALE = "running with stale configuration"
RESTART = "Restart the service so it loads its current configuration"


def env_file_values(ctx: CheckContext) -> dict[str, str]:
    """What the env file declares (prefixed variables only), as the service would load it."""
    text = ctx.fact("app:env_file").get("text")
    if text is None:
        return {}
    if ctx.app.env_file_values is not None:  # parsed once, from this same fact
        return dict(ctx.app.env_file_values)
    prefix = ctx.app.env_prefix
    values = env_text_values(str(text))
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
    secret: bool = False  # a secret's file value is never shown, only that it is overridden

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
            shown = "the value" if self.secret else repr(self.file_value)
            overrides = f", overriding {shown} in the settings file"
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


def where_all(origins: list[Origin]) -> str:
    """`` (from …)`` for several settings at once, naming a shared file only once."""
    if len(origins) == 1:
        return origins[0].where
    places = {(o.source, o.path, o.pid) for o in origins}
    if len(places) == 1 and origins[0].source == SOURCE_SETTINGS:
        names = " and ".join(o.dotted for o in origins)
        return f" (from {names} in settings file {origins[0].path})"
    return " (from " + "; ".join(o.label for o in origins) + ")"


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
    patterns = [str(p) for p in ctx.profile.get("secret_env") or ()]
    secret = is_secret_name(variable, patterns) or is_secret_name(dotted.rsplit(".", 1)[-1])
    return Origin(dotted, variable, source, path, pid, file_value, secret)


def _settings_value(settings: Mapping[str, Any], dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, (Mapping, list)) else node


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _changed_after_start(
    ctx: CheckContext,
    f: Findings,
    proc: Mapping[str, Any],
    started: float,
    out: dict[str, Any],
    *,
    env: bool,
    env_loaded: bool,
) -> None:
    """Warn for each configuration file changed after the process started."""
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
            if env_loaded:
                continue
        if mtime > started + grace:
            out.setdefault("changed_after_start", []).append(st.get("path"))
            f.warn(
                f"{STALE}: {what} {st.get('path')} changed at {_when(mtime)}, after process "
                f"{proc.get('pid')} started at {_when(started)}"
            )


def stale_config(ctx: CheckContext, f: Findings, *, env: bool = True) -> dict[str, Any]:
    """Warn when the running service has not loaded its current configuration.

    Stale when the settings file (and, with ``env``, the env file) changed after the
    process started, or a variable the env file declares is missing from or different in
    the process environment (only when ``env_file_in_process_env``: the service manager
    exports the env file, as systemd's EnvironmentFile= does). Values are never shown.
    """
    proc = running_process(ctx)
    started = proc.get("started_at") if proc else None
    if proc is not None and proc.get("started_error"):
        f.unknown(
            f"cannot tell when process {proc.get('pid')} started ({proc['started_error']}), so "
            "not whether it runs its current configuration",
            "Rerun with --sudo so the probe can read /proc/<pid>/stat",
        )
    if proc is None or not isinstance(started, (int, float)):
        return {}
    out: dict[str, Any] = {"process": proc.get("pid"), "started_at": _when(started)}
    environ = proc.get("environ")
    loaded: Mapping[str, Any] | None = (
        environ
        if env
        and isinstance(environ, Mapping)
        and truthy(ctx.profile.get("env_file_in_process_env", True))
        else None
    )
    declared = env_file_values(ctx) if loaded is not None else {}
    # The process's variables are exactly the env file's (read from /proc): an edit of a
    # comment, or a rewrite with the same content, left nothing to load, whatever its mtime
    # says. A variable only the process has (the file dropped it, or the unit sets it)
    # keeps the mtime judgement.
    env_loaded = loaded is not None and dict(loaded) == declared
    _changed_after_start(ctx, f, proc, started, out, env=env, env_loaded=env_loaded)
    if loaded is not None:
        lacking = sorted(k for k in declared if k not in loaded)
        differing = sorted(k for k in declared if k in loaded and loaded[k] != declared[k])
        path = ctx.fact("app:env_file").get("path")
        for names, how in ((lacking, "lacks"), (differing, "has other values for")):
            if names:
                out["lacking" if how == "lacks" else "differing"] = names
                f.warn(
                    f"{STALE}: process {proc.get('pid')} {how} {', '.join(names)} "
                    f"(declared in env file {path})"
                )
    if any(k in out for k in ("changed_after_start", "lacking", "differing")):
        f.details["restart_needed"] = True
        # One recommendation for all of it: a restart loads every file at once.
        changed = ", ".join(str(p) for p in out.get("changed_after_start") or ())
        why = f" ({changed} changed after it started)" if changed else ""
        if out.get("differing"):
            why += (
                "; if the process environment sets "
                f"{', '.join(out['differing'])} on purpose, declare that in the env file instead"
            )
        if f"{RESTART}{why}" not in f.recommendations:
            f.recommendations.append(f"{RESTART}{why}")
    return out
