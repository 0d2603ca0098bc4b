"""``configuration``: the app's settings are complete and coherent (adapters, pools,
observability, security), judged on the effective configuration the service sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import (
    judge_auth_secret,
    lax_number,
    origin,
    parse_endpoint,
    settings_problem,
    stale_config,
    truthy,
    where_all,
)

DEFAULTS: dict[str, Any] = {
    # Settings each enabled adapter needs (under adapters.<name> in the settings file).
    "adapters": {
        "prefect": {"required": ["api_url"]},
        "llamaindex": {"required": ["llm_model", "embedding_model"]},
        "agno": {"required": ["model"]},
    },
    "routing_strategies": ["round_robin", "least_loaded", "random", "affinity"],
    "auth_algorithms": ["HS256", "RS256"],
    # secret_min_distinct_chars: a 32+ character secret of fewer distinct characters is a
    # repeated or patterned value ("a" * 40), not a random one.
    "thresholds": {
        "secret_min_length": 32,
        "secret_min_distinct_chars": 8,
        "otlp_connect_timeout_s": 2.0,
    },
    # Audited hosts are production: authentication off is NOT_READY. A profile for a
    # staging or development group may set false (then it is DEGRADED).
    "require_auth": True,
}

OTLP_FACT = "configuration:otlp_tcp"


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Once the settings are known: can the host reach the OTLP endpoint?"""
    endpoint = app.get("observability.otlp_endpoint")
    target = parse_endpoint(str(endpoint)) if endpoint else None
    if target is None:
        return {}
    timeout = float(profile.threshold("otlp_connect_timeout_s"))
    return {OTLP_FACT: {"op": "tcp", "host": target[0], "port": target[1], "timeout": timeout}}


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    app = ctx.app
    if app.settings_error:  # first: a settings file that cannot be read is not missing
        settings_problem(f, app)
        return f.outcome("", subject="Configuration")
    if not ctx.fact("app:settings").get("exists"):
        path = ctx.profile.path_of("settings_file")
        f.fail(
            f"settings file {path} does not exist", f"Create {path} (see docs/profiles.md for keys)"
        )
        return f.outcome("", subject="Configuration")
    f.details["settings_file"] = app.settings_path
    f.details["security"] = _security(ctx, f)
    f.details["adapters"] = _adapters(ctx, f)
    f.details["pools"] = _pools(ctx, f)
    f.details["observability"] = _observability(ctx, f)
    stale = stale_config(ctx, f, env=False)
    if f.details.get("restart_needed"):
        f.details["stale"] = stale
    return f.outcome("Configuration is complete and consistent", subject="Configuration")


def _adapters(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    wanted: Mapping[str, Any] = ctx.profile.get("adapters") or {}
    out: dict[str, Any] = {}
    for name, rule in wanted.items():
        raw = ctx.app.get(f"adapters.{name}")
        cfg = raw if isinstance(raw, Mapping) else {}
        enabled = truthy(cfg.get("enabled", True)) if isinstance(raw, Mapping) else truthy(raw)
        if not enabled:
            out[name] = {"enabled": False}
            continue
        required = [str(k) for k in (rule or {}).get("required", ())]
        missing = [k for k in required if cfg.get(k) in (None, "")]
        out[name] = {"enabled": True, "missing": missing}
        if missing:
            f.warn(
                f"{name} adapter is enabled but missing {', '.join(missing)}",
                f"Configure {name} adapter properly: set adapters.{name}.{missing[0]} "
                f"(or {ctx.app.env_name(f'adapters.{name}.{missing[0]}')})",
            )
    if wanted and not any(v.get("enabled") for v in out.values()):
        f.warn(
            "no adapter is enabled", "Enable at least one adapter (adapters.<name>.enabled: true)"
        )
    return out


def _pools(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    app = ctx.app
    if not truthy(app.get("pools.enabled", True)):
        return {"enabled": False}
    # `min_workers: "2"` is 2 to the app: it was NOT_READY "must be positive integers"
    lo = lax_number(app.get("pools.min_workers"), integer=True)
    hi = lax_number(app.get("pools.max_workers"), integer=True)
    strategy = app.get("pools.routing_strategy")
    out = {"min_workers": lo, "max_workers": hi, "routing_strategy": strategy}
    o_lo, o_hi = origin(ctx, "pools.min_workers"), origin(ctx, "pools.max_workers")
    bad = [
        o
        for o, v in ((o_lo, lo), (o_hi, hi))
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0
    ]
    if bad:
        f.fail(
            f"pool workers must be positive integers (min_workers={lo!r}, max_workers={hi!r})"
            + where_all(bad),
            " and ".join(o.set_to("a positive integer") for o in bad),
        )
    elif lo > hi:
        f.fail(
            f"pools.min_workers ({lo}) > pools.max_workers ({hi}){where_all([o_lo, o_hi])}",
            "Fix pool worker configuration (min_workers <= max_workers): "
            + o_lo.set_to(f"at most {hi}"),
        )
    known = [str(s) for s in ctx.profile.get("routing_strategies") or ()]
    if strategy not in known:
        o = origin(ctx, "pools.routing_strategy")
        f.fail(
            f"unknown pool routing strategy {strategy!r}{o.where}",
            o.set_to(f"one of: {', '.join(known)}"),
        )
    return out


def _observability(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    app = ctx.app
    metrics = app.get("observability.metrics_enabled")
    endpoint = app.get("observability.otlp_endpoint")
    out: dict[str, Any] = {"metrics_enabled": metrics, "otlp_endpoint": endpoint}
    if not truthy(metrics):
        o = origin(ctx, "observability.metrics_enabled")
        f.warn(f"metrics are disabled{o.where}", o.set_to("true"))
    if not endpoint:
        f.warn(
            "no OTLP endpoint configured",
            "Set observability.otlp_endpoint (e.g. http://otel-collector:4317)",
        )
        return out
    o = origin(ctx, "observability.otlp_endpoint")
    if parse_endpoint(str(endpoint)) is None:
        f.fail(
            f"OTLP endpoint {endpoint!r} cannot be parsed{o.where}", o.set_to("host:port or a URL")
        )
        return out
    tcp = ctx.fact(OTLP_FACT)
    out["reachable"] = tcp.get("ok")
    if tcp.get("ok"):
        out["latency_ms"] = tcp.get("latency_ms")
    else:
        f.warn(
            f"OTLP endpoint {endpoint} is not reachable from the host "
            f"({tcp.get('error', 'not tested')}){o.where}",
            "Fix OTLP endpoint connectivity: start the collector, or "
            + o.set_to("the collector's address").replace("Set ", "set ", 1),
        )
    return out


def _security(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    app = ctx.app
    enabled = truthy(app.get("auth.enabled"))
    o = origin(ctx, "auth.enabled")
    out: dict[str, Any] = {"auth_enabled": enabled, "auth_enabled_from": o.label}
    if not enabled:
        state = "not configured" if o.source is None else "disabled"
        problem = f"authentication is {state} on a production host{o.where}"
        advice = "Enable authentication in production: " + o.set_to("true").replace(
            "Set ", "set ", 1
        )
        if o.file_value is not None and truthy(o.file_value):
            advice += f" (the settings file already says {o.dotted}: true; the override wins)"
        if truthy(ctx.profile.get("require_auth", True)):
            f.fail(problem, advice)
        else:
            f.warn(problem.replace(" on a production host", ""), advice)
        return out
    out["secret"] = judge_auth_secret(ctx, f)
    algorithm = app.get("auth.algorithm")
    allowed = [str(a) for a in ctx.profile.get("auth_algorithms") or ()]
    out["algorithm"] = algorithm
    if algorithm is None:
        # Not set: the app signs with its own default, which the audit cannot see (it was
        # NOT_READY "auth algorithm None is not allowed").
        ao = origin(ctx, "auth.algorithm")
        f.unknown(
            "auth.algorithm is not set, so the app's default applies and whether it is "
            f"one of {', '.join(allowed)} cannot be told",
            ao.set_to(f"one of: {', '.join(allowed)}") + " to make it explicit",
        )
    elif algorithm not in allowed:
        ao = origin(ctx, "auth.algorithm")
        f.fail(
            f"auth algorithm {algorithm!r} is not allowed{ao.where}",
            ao.set_to(f"one of: {', '.join(allowed)}"),
        )
    return out


register(
    "configuration",
    title="Configuration completeness",
    description=(
        "Adapters have their settings, pools are sane (0 < min <= max, known routing), metrics on "
        "and the OTLP endpoint reachable from the host, authentication enabled (NOT_READY when "
        "off on a production host), auth secret strong and algorithm allowed; every finding names "
        "where its value comes from."
    ),
    categories=("configuration",),
    suites=("validate",),
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "settings_file",
        "adapters",
        "routing_strategies",
        "auth_algorithms",
        "thresholds.secret_min_length",
        "thresholds.secret_min_distinct_chars",
        "thresholds.otlp_connect_timeout_s",
        "require_auth",
    ),
    aliases=("configuration_completeness", "config"),
    order=20,
)(evaluate)
