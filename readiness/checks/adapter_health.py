"""``adapter_health``: every adapter the app enables answers healthy, seen from the host.

For each enabled adapter (``adapters.<name>.enabled`` in the app's effective
settings) the profile's ``adapter_health.<name>`` rule says how to judge it:
an HTTP health endpoint (from an adapter setting such as ``api_url`` plus a
health path, or a full ``health_url``), a TCP endpoint, and/or local
prerequisites (python modules importable by the app's interpreter, paths that
must exist). All of it is gathered by the probe on the host, in the follow-up
round, because the adapters and their URLs are only known once the settings are.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..appconfig import AppConfig
from ..findings import Findings
from ..model import Outcome, Status
from ..netaddr import endpoint
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import parse_endpoint, read_denied_to_another, settings_problem, truthy

__all__ = ["DEFAULTS", "evaluate", "followup"]

NAME = "adapter_health"

DEFAULTS: dict[str, Any] = {
    # How to judge each adapter when the app enables it (rule keys: docs/checks/adapter_health.md).
    "adapter_health": {
        "prefect": {"url_setting": "api_url", "health_path": "/health", "expect_status": [200]},
        "llamaindex": {"python_modules": ["llama_index.core"]},
        "agno": {"python_modules": ["agno"]},
    },
    # The interpreter the app runs with (imports are tried with it); relative → under app_root.
    "adapter_python": "python3",
    "thresholds": {
        "adapter_timeout_s": 5.0,
        "adapter_max_latency_ms": 1000,
        "adapter_import_timeout_s": 20.0,
    },
}

_IMPORT = "import importlib, sys; importlib.import_module(sys.argv[1])"


@dataclass
class _Plan:
    """What will be probed for one enabled adapter (shared by followup and evaluate)."""

    name: str
    rule: Mapping[str, Any]
    url: str | None = None
    tcp: tuple[str, int] | None = None
    python: str = "python3"
    modules: list[str] = field(default_factory=list)
    paths: list[tuple[str, str]] = field(default_factory=list)  # (label, host path)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (problem, recommendation)

    def key(self, *parts: str) -> str:
        return ":".join((NAME, self.name, *parts))


def _enabled_adapters(app: AppConfig) -> dict[str, Mapping[str, Any]]:
    raw = app.get("adapters")
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for name, value in raw.items():
        cfg = value if isinstance(value, Mapping) else {}
        on = truthy(cfg.get("enabled", True)) if isinstance(value, Mapping) else truthy(value)
        if on:
            out[str(name)] = cfg
    return out


def _plans(profile: Profile, app: AppConfig) -> list[_Plan]:
    rules: Mapping[str, Any] = profile.get(NAME) or {}
    default_python = str(profile.get("adapter_python") or "python3")
    plans = []
    for name, cfg in _enabled_adapters(app).items():
        rule = rules.get(name)
        plan = _Plan(name, rule if isinstance(rule, Mapping) else {})
        if isinstance(rule, Mapping):
            _plan_endpoint(plan, cfg, app)
            python = str(rule.get("python") or default_python)
            plan.python = (profile.resolve(python) or python) if "/" in python else python
            plan.modules = [str(m) for m in rule.get("python_modules") or ()]
            _plan_paths(plan, cfg, profile, app)
        plans.append(plan)
    return plans


def _plan_endpoint(plan: _Plan, cfg: Mapping[str, Any], app: AppConfig) -> None:
    rule, name = plan.rule, plan.name
    base = None
    setting = rule.get("url_setting")
    if setting:
        base = cfg.get(str(setting))
        if base in (None, ""):
            env = app.env_name(f"adapters.{name}.{setting}")
            plan.problems.append(
                (
                    f"{name} adapter is enabled but adapters.{name}.{setting} is not set",
                    f"Set adapters.{name}.{setting} (or {env}) to the {name} endpoint",
                )
            )
            return
    if rule.get("health_url"):
        plan.url = str(rule["health_url"])
    elif base is not None and rule.get("health_path") is not None:
        plan.url = str(base).rstrip("/") + "/" + str(rule["health_path"]).lstrip("/")
    elif base is not None or rule.get("tcp"):
        target = parse_endpoint(str(rule.get("tcp") or base), default_port=80)
        if target is None:
            plan.problems.append(
                (
                    f"{name} endpoint {base or rule.get('tcp')!r} cannot be parsed",
                    f"Set adapters.{name}.{setting} to a URL or host:port",
                )
            )
        plan.tcp = target


def _plan_paths(plan: _Plan, cfg: Mapping[str, Any], profile: Profile, app: AppConfig) -> None:
    for raw in plan.rule.get("paths") or ():
        path = profile.resolve(str(raw))
        if path:
            plan.paths.append((str(raw), path))
    for setting in plan.rule.get("path_settings") or ():
        value = cfg.get(str(setting))
        label = f"adapters.{plan.name}.{setting}"
        if value in (None, ""):
            plan.problems.append(
                (
                    f"{plan.name} adapter is enabled but {label} is not set",
                    f"Set {label} (or {app.env_name(label)}) to the path {plan.name} needs",
                )
            )
            continue
        path = profile.resolve(str(value))
        if path:
            plan.paths.append((label, path))


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Probe each enabled adapter's endpoint and prerequisites from the host."""
    timeout = float(profile.threshold("adapter_timeout_s"))
    import_timeout = float(profile.threshold("adapter_import_timeout_s"))
    specs: FactSpecs = {}
    for plan in _plans(profile, app):
        if plan.url:
            specs[plan.key("http")] = {"op": "http", "url": plan.url, "timeout": timeout}
        if plan.tcp:
            host, port = plan.tcp
            specs[plan.key("tcp")] = {"op": "tcp", "host": host, "port": port, "timeout": timeout}
        for mod in plan.modules:
            specs[plan.key("module", mod)] = {
                # Importing runs the app's code: as its owner, never as root (docs/security.md).
                "op": "run_as_owner",
                "owned_by": _code_paths(profile, plan.python),
                "argv": [plan.python, "-c", _IMPORT, mod],
                # `-c` puts the working directory first on sys.path: the app's tree (whose
                # owner is judged), never the directory readiness happened to start in.
                "cwd": profile.app_root,
                "timeout": import_timeout,
                "max_bytes": 4096,
            }
        for label, path in plan.paths:
            specs[plan.key("path", label)] = {"op": "stat", "path": path}
    return specs


def _code_paths(profile: Profile, python: str) -> list[str]:
    """Whose code an import runs: the app tree's, and the interpreter's environment's."""
    paths = [profile.app_root]
    if "/" in python:
        # <venv>/bin/python: the venv (its site-packages) and the interpreter itself.
        paths += [posixpath.dirname(posixpath.dirname(python)), python]
    return paths


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    if ctx.app.settings_error:  # first: a settings file that cannot be read is not missing
        settings_problem(f, ctx.app)
        return f.outcome("", subject="Adapter health")
    if not ctx.fact("app:settings").get("exists"):
        path = ctx.profile.path_of("settings_file")
        f.fail(
            f"settings file {path} does not exist, so the enabled adapters are unknown",
            f"Create {path} with an adapters: section",
        )
        return f.outcome("", subject="Adapter health")
    plans = _plans(ctx.profile, ctx.app)
    if not plans:
        return Outcome(
            Status.SKIPPED,
            "No adapter is enabled in the app's settings",
            {"adapters": {}},
            ("Enable the adapters the app uses (adapters.<name>.enabled: true)",),
        )
    report = {plan.name: _judge(ctx, plan, f) for plan in plans}
    f.details["adapters"] = report
    names = ", ".join(report)
    return f.outcome(f"All enabled adapters are healthy ({names})", subject="Adapter health")


def _judge(ctx: CheckContext, plan: _Plan, f: Findings) -> dict[str, Any]:
    """Judge one adapter; its verdict is the worst of its sub-results."""
    before = (len(f.problems), len(f.warnings))
    out: dict[str, Any] = {"enabled": True}
    if not plan.rule:
        f.unknown(
            f"no health rule for the {plan.name} adapter",
            f"Add adapter_health.{plan.name} to the profile (health_url, url_setting, "
            "python_modules or paths) so its health can be judged",
        )
        out["verdict"] = "unknown"
        return out
    for problem, rec in plan.problems:
        f.fail(problem, rec)
    if plan.url:
        out["health"] = _judge_http(ctx, plan, f)
    if plan.tcp:
        out["endpoint"] = _judge_tcp(ctx, plan, f)
    if plan.modules:
        out["python"] = plan.python
        out["modules"] = {m: _judge_module(ctx, plan, m, f) for m in plan.modules}
    if plan.paths:
        out["paths"] = {label: _judge_path(ctx, plan, label, p, f) for label, p in plan.paths}
    if not (plan.url or plan.tcp or plan.modules or plan.paths or plan.problems):
        f.unknown(
            f"the adapter_health.{plan.name} rule checks nothing",
            f"Give adapter_health.{plan.name} a health_url, url_setting, python_modules or paths",
        )
    if len(f.problems) > before[0]:
        out["verdict"] = "down" if (plan.url or plan.tcp) else "missing prerequisites"
    elif len(f.warnings) > before[1]:
        out["verdict"] = "degraded"
    else:
        out["verdict"] = "healthy"
    return out


def _judge_http(ctx: CheckContext, plan: _Plan, f: Findings) -> dict[str, Any]:
    fact = ctx.fact(plan.key("http"))
    name, url = plan.name, plan.url
    out: dict[str, Any] = {"url": url, "status": fact.get("status")}
    if not fact.get("ok"):
        out["error"] = fact.get("error", "not probed")
        f.fail(
            f"{name} health endpoint {url} is not reachable from the host ({out['error']})",
            f"Start {name} or fix its URL (adapters.{name}.{plan.rule.get('url_setting', 'api_url')} "
            f"or adapter_health.{name}.health_url), then check `curl -fsS {url}` on the host",
        )
        return out
    out["latency_ms"] = fact.get("latency_ms")
    expected = plan.rule.get("expect_status", [200])
    allowed = [int(s) for s in (expected if isinstance(expected, list) else [expected])]
    body = str(fact.get("body") or "")
    want_body = plan.rule.get("expect_body")
    status = fact.get("status")
    if status not in allowed and isinstance(status, int) and 300 <= status < 400:
        # a redirect is not the health answer (a load balancer's check expecting 200 marks
        # it down too), but "reports unhealthy, read its logs" sent the reader the wrong way
        key = f"adapter_health.{name}"
        f.fail(
            f"{name} health endpoint {url} answered HTTP {status}, a redirect"
            f"{_to(fact.get('location'))} (not followed; expected "
            f"{', '.join(map(str, allowed))})",
            f"Point {key}.health_url (or health_path) at the health endpoint itself (the "
            f"redirect's target, if that is it), or list {status} in {key}.expect_status if "
            "the redirect is its healthy answer",
        )
    elif status not in allowed:
        f.fail(
            f"{name} health endpoint {url} answered HTTP {fact.get('status')} "
            f"(expected {', '.join(map(str, allowed))}): {body.strip()[:120]!r}",
            f"Investigate {name}'s logs and dependencies; its health endpoint reports unhealthy",
        )
    elif want_body and str(want_body) not in body:
        f.fail(
            f"{name} health endpoint {url} answered without {want_body!r}: {body.strip()[:120]!r}",
            f"Investigate {name}: its health answer does not contain {want_body!r}",
        )
    _judge_latency(ctx, f, name, f"health endpoint {url}", fact.get("latency_ms"))
    return out


def _to(location: Any) -> str:
    """`` to <where>`` of a redirect, without its query or fragment (a token may be there)."""
    if not location:
        return ""
    parts = urlsplit(str(location))
    where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return f" to {where[:120]}"


def _judge_latency(ctx: CheckContext, f: Findings, name: str, what: str, latency: Any) -> None:
    limit = float(ctx.profile.threshold("adapter_max_latency_ms"))
    if isinstance(latency, (int, float)) and latency > limit:
        f.warn(
            f"{name} {what} is slow ({latency:.0f} ms > {limit:.0f} ms)",
            f"Find why {name} answers slowly (load, network path from the host), "
            "or raise thresholds.adapter_max_latency_ms if this latency is expected",
        )


def _judge_tcp(ctx: CheckContext, plan: _Plan, f: Findings) -> dict[str, Any]:
    fact = ctx.fact(plan.key("tcp"))
    host, port = plan.tcp or ("?", 0)
    where = endpoint(host, port)
    out: dict[str, Any] = {"target": where, "reachable": bool(fact.get("ok"))}
    if not fact.get("ok"):
        out["error"] = fact.get("error", "not probed")
        f.fail(
            f"{plan.name} endpoint {where} is not reachable from the host ({out['error']})",
            f"Start {plan.name} or fix its address, then check `nc -vz {host} {port}` on the host",
        )
        return out
    out["latency_ms"] = fact.get("latency_ms")
    _judge_latency(ctx, f, plan.name, f"endpoint {where}", fact.get("latency_ms"))
    return out


def _judge_module(ctx: CheckContext, plan: _Plan, module: str, f: Findings) -> str:
    fact = ctx.fact(plan.key("module", module))
    if fact.get("refused"):
        owner = fact.get("owner")
        f.unknown(
            f"{plan.name} adapter: importing {module} with {plan.python} was not tried: "
            f"{fact['refused']}",
            f"Rerun with --sudo so readiness can run {plan.python} as {owner}"
            if owner
            else "Give the app tree and its interpreter one owner (the app user) and no "
            "group/other write (chmod -R go-w)",
        )
        return "refused"
    if not fact.get("started"):
        f.fail(
            f"{plan.name} adapter: cannot run {plan.python} ({fact.get('error', 'not probed')})",
            "Set adapter_python in the profile to the interpreter the app runs with "
            "(e.g. .venv/bin/python under app_root)",
        )
        return "interpreter missing"
    if fact.get("timed_out"):
        f.unknown(
            f"{plan.name} adapter: importing {module} timed out",
            "Raise thresholds.adapter_import_timeout_s or investigate the slow import",
        )
        return "timed out"
    if fact.get("exit_code") != 0:
        lines = str(fact.get("stderr") or "").strip().splitlines()
        why = lines[-1] if lines else f"exit code {fact.get('exit_code')}"
        f.fail(
            f"{plan.name} adapter: python module {module} is not importable ({why})",
            f"Install the {plan.name} dependencies into the app's environment "
            f"(`{plan.python} -m pip install ...` providing {module})",
        )
        return "missing"
    return "importable"


def _judge_path(ctx: CheckContext, plan: _Plan, label: str, path: str, f: Findings) -> str:
    fact = ctx.fact(plan.key("path", label))
    if fact.get("exists") is None:
        f.unknown(
            f"{plan.name} adapter: cannot stat {path} ({fact.get('error', 'not probed')})",
            "Rerun with --sudo so the probe can see the path",
        )
        return "unknown"
    if not fact.get("exists"):
        f.fail(
            f"{plan.name} adapter: {label} {path} does not exist",
            f"Provide {posixpath.basename(path) or path} at {path} (download the model / create the directory)",
        )
        return "missing"
    if read_denied_to_another(fact, ctx.meta):
        f.unknown(
            f"{plan.name} adapter: cannot tell whether the app can read {path}: the audit "
            f"account {ctx.meta.get('user')} may not, and {fact.get('owner')} owns it",
            "Rerun with --sudo (or as the user the app runs as)",
        )
        return "unknown"
    if not fact.get("readable"):
        f.fail(
            f"{plan.name} adapter: {path} is not readable",
            f"Fix the permissions of {path}",
        )
        return "unreadable"
    return str(fact.get("type") or "exists")


register(
    NAME,
    title="Adapter health",
    description=(
        "Each adapter enabled in the app's settings answers healthy from the host (HTTP health "
        "endpoint or TCP), within the latency threshold, or has its local prerequisites "
        "(importable python modules, model paths)."
    ),
    categories=("integration",),
    suites=("production",),
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "adapter_health",
        "adapter_python",
        "thresholds.adapter_timeout_s",
        "thresholds.adapter_max_latency_ms",
        "thresholds.adapter_import_timeout_s",
    ),
    aliases=("adapters_health", "adapter_connectivity"),
    order=140,
)(evaluate)
