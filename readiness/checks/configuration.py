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
from ._common import describe_secret, parse_endpoint, truthy

DEFAULTS: dict[str, Any] = {
    # Settings each enabled adapter needs (under adapters.<name> in the settings file).
    "adapters": {
        "prefect": {"required": ["api_url"]},
        "llamaindex": {"required": ["llm_model", "embedding_model"]},
        "agno": {"required": ["model"]},
    },
    "routing_strategies": ["round_robin", "least_loaded", "random", "affinity"],
    "auth_algorithms": ["HS256", "RS256"],
    "thresholds": {"secret_min_length": 32, "otlp_connect_timeout_s": 2.0},
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
    if not ctx.fact("app:settings").get("exists"):
        path = ctx.profile.path_of("settings_file")
        f.fail(
            f"settings file {path} does not exist", f"Create {path} (see docs/profiles.md for keys)"
        )
        return f.outcome("", subject="Configuration")
    if app.settings_error:
        f.fail(app.settings_error, "Fix the YAML syntax at the line shown")
        return f.outcome("", subject="Configuration")
    f.details["settings_file"] = app.settings_path
    f.details["adapters"] = _adapters(ctx, f)
    f.details["pools"] = _pools(ctx, f)
    f.details["observability"] = _observability(ctx, f)
    f.details["security"] = _security(ctx, f)
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
    lo, hi = app.get("pools.min_workers"), app.get("pools.max_workers")
    strategy = app.get("pools.routing_strategy")
    out = {"min_workers": lo, "max_workers": hi, "routing_strategy": strategy}
    if not isinstance(lo, int) or not isinstance(hi, int) or lo <= 0 or hi <= 0:
        f.fail(
            f"pool workers must be positive integers (min_workers={lo!r}, max_workers={hi!r})",
            "Set pools.min_workers and pools.max_workers to positive integers",
        )
    elif lo > hi:
        f.fail(
            f"pools.min_workers ({lo}) > pools.max_workers ({hi})",
            "Fix pool worker configuration (min_workers <= max_workers)",
        )
    known = [str(s) for s in ctx.profile.get("routing_strategies") or ()]
    if strategy not in known:
        f.fail(
            f"unknown pool routing strategy {strategy!r}",
            f"Set pools.routing_strategy to one of: {', '.join(known)}",
        )
    return out


def _observability(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    app = ctx.app
    metrics = app.get("observability.metrics_enabled")
    endpoint = app.get("observability.otlp_endpoint")
    out: dict[str, Any] = {"metrics_enabled": metrics, "otlp_endpoint": endpoint}
    if not truthy(metrics):
        f.warn("metrics are disabled", "Set observability.metrics_enabled: true")
    if not endpoint:
        f.warn(
            "no OTLP endpoint configured",
            "Set observability.otlp_endpoint (e.g. http://otel-collector:4317)",
        )
        return out
    if parse_endpoint(str(endpoint)) is None:
        f.fail(
            f"OTLP endpoint {endpoint!r} cannot be parsed",
            "Set observability.otlp_endpoint to host:port or a URL",
        )
        return out
    tcp = ctx.fact(OTLP_FACT)
    out["reachable"] = tcp.get("ok")
    if tcp.get("ok"):
        out["latency_ms"] = tcp.get("latency_ms")
    else:
        f.warn(
            f"OTLP endpoint {endpoint} is not reachable from the host ({tcp.get('error', 'not tested')})",
            "Fix OTLP endpoint connectivity: start the collector or correct observability.otlp_endpoint",
        )
    return out


def _security(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    app = ctx.app
    enabled = truthy(app.get("auth.enabled"))
    out: dict[str, Any] = {"auth_enabled": enabled}
    if not enabled:
        f.warn(
            "authentication is disabled", "Enable authentication in production (auth.enabled: true)"
        )
        return out
    secret, source = app.lookup("auth.secret")
    secret_text = None if secret is None else str(secret)
    ctx.secret(secret_text)
    out["secret"] = describe_secret(secret_text, source)
    minimum = int(ctx.profile.threshold("secret_min_length"))
    name = app.env_name("auth.secret")
    if not secret_text:
        f.fail(
            "auth is enabled but no auth secret is set",
            f"Set {name} to a strong secret ({minimum}+ characters)",
        )
    elif len(secret_text) < minimum:
        f.fail(
            f"auth secret is too short ({len(secret_text)} < {minimum} characters)",
            f"Set {name} to a strong secret ({minimum}+ characters)",
        )
    algorithm = app.get("auth.algorithm")
    allowed = [str(a) for a in ctx.profile.get("auth_algorithms") or ()]
    out["algorithm"] = algorithm
    if algorithm not in allowed:
        f.fail(
            f"auth algorithm {algorithm!r} is not allowed",
            f"Set auth.algorithm to one of: {', '.join(allowed)}",
        )
    return out


register(
    "configuration",
    title="Configuration completeness",
    description=(
        "Adapters have their settings, pools are sane (0 < min <= max, known routing), metrics on "
        "and the OTLP endpoint reachable from the host, auth secret strong and algorithm allowed."
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
        "thresholds.otlp_connect_timeout_s",
    ),
    aliases=("configuration_completeness", "config"),
    order=20,
)(evaluate)
