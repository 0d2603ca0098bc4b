"""``error_handling``: retries, circuit breakers, a working dead letter queue and error categories.

Judged on the app's effective settings (settings file overlaid by environment
variables). The dead letter queue's storage is write-tested and its endpoint
connected to *from the host*, in the follow-up round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..appconfig import SOURCE_ENV_FILE, SOURCE_SETTINGS, AppConfig
from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import (
    json_collection,
    lax_number,
    origin,
    parse_endpoint,
    settings_problem,
    stale_config,
    truthy,
    write_denied_to_another,
)

DEFAULTS: dict[str, Any] = {
    # Dotted settings path of the resilience section (retry, circuit_breaker, ...).
    "resilience_settings": "resilience",
    "thresholds": {
        "retry_min_attempts": 1,
        "retry_max_attempts": 10,
        "dlq_connect_timeout_s": 2.0,
    },
}

DLQ_PATH_FACT = "error_handling:dlq_path"
DLQ_TCP_FACT = "error_handling:dlq_tcp"


def _prefix(profile: Profile) -> str:
    return str(profile.get("resilience_settings") or "resilience").strip(".")


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Once the settings are known: is the DLQ's storage writable, its endpoint reachable?"""
    dlq = app.get(f"{_prefix(profile)}.dead_letter_queue")
    if not isinstance(dlq, Mapping) or not truthy(dlq.get("enabled")):
        return {}
    out: FactSpecs = {}
    path = dlq.get("path")
    if isinstance(path, str) and path.strip():
        spec: dict[str, Any] = {"op": "write_test", "path": profile.resolve(path.strip())}
        # The path is the word of the file it came from: the write test is made only where
        # that file's owner could write (a root probe never writes where the app says).
        named_by = {SOURCE_SETTINGS: "app:settings", SOURCE_ENV_FILE: "app:env_file"}.get(
            str(app.source(f"{_prefix(profile)}.dead_letter_queue.path"))
        )
        writer = (facts.get(named_by) or {}).get("uid") if named_by else None
        if isinstance(writer, int):
            spec["writer"] = writer
        out[DLQ_PATH_FACT] = spec
    endpoint = dlq.get("endpoint")
    target = parse_endpoint(str(endpoint)) if endpoint else None
    if target is not None:
        timeout = float(profile.threshold("dlq_connect_timeout_s"))
        out[DLQ_TCP_FACT] = {"op": "tcp", "host": target[0], "port": target[1], "timeout": timeout}
    return out


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    prefix = _prefix(ctx.profile)
    section = ctx.app.get(prefix)
    f.details["settings"] = prefix
    if ctx.app.settings_error:
        settings_problem(f, ctx.app)
        return f.outcome("", subject="Error handling")
    if not isinstance(section, Mapping):
        f.fail(
            f"no {prefix} section in the settings",
            f"Add a {prefix}: section with retry, circuit_breaker, dead_letter_queue and "
            "error_categories (see docs/checks/error_handling.md)",
        )
        _app_object(ctx, f)
        return f.outcome("", subject="Error handling")
    f.details["retry"] = _retry(ctx, f, prefix)
    f.details["circuit_breaker"] = _circuit_breaker(ctx, f, prefix)
    f.details["dead_letter_queue"] = _dead_letter_queue(ctx, f, prefix)
    f.details["error_categories"] = _error_categories(ctx, f, prefix)
    _app_object(ctx, f)
    stale = stale_config(ctx, f, env=False)
    if f.details.get("restart_needed"):
        f.details["stale"] = stale
    return f.outcome(
        "Retries, circuit breakers, dead letter queue and error categories are configured",
        subject="Error handling",
    )


def _number(
    ctx: CheckContext, f: Findings, dotted: str, *, integer: bool = False
) -> tuple[float | None, Any]:
    """The setting as a number; missing or non-numeric values are recorded as failures."""
    value = ctx.app.get(dotted)
    what = "an integer" if integer else "a number"
    if value is None:
        f.fail(
            f"{dotted} is not set",
            f"Set {dotted} in the settings file (or {ctx.app.env_name(dotted)})",
        )
        return None, value
    # As the app reads it: `max_attempts: "3"` (quoted) and `3.0` are 3, `"1.5"` is 1.5;
    # each was NOT_READY "must be an integer/a number".
    value = lax_number(value, integer=integer)
    wrong_kind = integer and isinstance(value, float)
    # NaN and infinity compare false (or true) with every bound: a NaN backoff or recovery
    # timeout passed every test. Neither is a setting a retry loop or breaker can use.
    infinite = isinstance(value, float) and not math.isfinite(value)
    if infinite:
        what = "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or wrong_kind or infinite:
        o = origin(ctx, dotted)
        f.fail(f"{dotted} must be {what}, got {value!r}{o.where}", o.set_to(what))
        return None, value
    return float(value), value


def _retry(ctx: CheckContext, f: Findings, prefix: str) -> dict[str, Any]:
    base = f"{prefix}.retry"
    attempts, raw_attempts = _number(ctx, f, f"{base}.max_attempts", integer=True)
    lo = int(ctx.profile.threshold("retry_min_attempts"))
    hi = int(ctx.profile.threshold("retry_max_attempts"))
    out: dict[str, Any] = {"max_attempts": raw_attempts, "allowed_attempts": [lo, hi]}
    if attempts is not None and not lo <= attempts <= hi:
        o = origin(ctx, f"{base}.max_attempts")
        out["max_attempts_from"] = o.label
        f.warn(
            f"{base}.max_attempts is {raw_attempts}, outside {lo}-{hi}{o.where}",
            o.set_to(f"a value between {lo} and {hi} (3-5 is typical)"),
        )
    b, raw_b = _number(ctx, f, f"{base}.backoff_base_s")
    m, raw_m = _number(ctx, f, f"{base}.backoff_max_s")
    out.update({"backoff_base_s": raw_b, "backoff_max_s": raw_m})
    if b is not None and b <= 0:
        o = origin(ctx, f"{base}.backoff_base_s")
        f.warn(
            f"{base}.backoff_base_s is {raw_b}: retries would hammer a failing dependency{o.where}",
            o.set_to("a positive number of seconds (e.g. 1.0)"),
        )
    if b is not None and m is not None and m < b:
        o = origin(ctx, f"{base}.backoff_max_s")
        f.warn(
            f"{base}.backoff_max_s ({raw_m}) is below backoff_base_s ({raw_b}){o.where}",
            o.set_to(f"at least {base}.backoff_base_s (e.g. 30)"),
        )
    return out


def _circuit_breaker(ctx: CheckContext, f: Findings, prefix: str) -> dict[str, Any]:
    base = f"{prefix}.circuit_breaker"
    out: dict[str, Any] = {}
    for key, example in (("failure_threshold", "5"), ("recovery_timeout_s", "60")):
        value, raw = _number(ctx, f, f"{base}.{key}", integer=key == "failure_threshold")
        out[key] = raw
        if value is not None and value <= 0:
            o = origin(ctx, f"{base}.{key}")
            f.warn(
                f"{base}.{key} is {raw}: the circuit breaker cannot work{o.where}",
                o.set_to(f"a positive value (e.g. {example})"),
            )
    return out


def _dead_letter_queue(ctx: CheckContext, f: Findings, prefix: str) -> dict[str, Any]:
    base = f"{prefix}.dead_letter_queue"
    dlq = ctx.app.get(base)
    if not isinstance(dlq, Mapping) or "enabled" not in dlq:
        f.fail(
            f"{base} is not configured",
            f"Configure a dead letter queue: {base}.enabled: true and {base}.path (a writable "
            f"directory) or {base}.endpoint (host:port)",
        )
        return {"configured": False}
    if not truthy(dlq.get("enabled")):
        o = origin(ctx, f"{base}.enabled")
        f.warn(
            f"{base} is disabled: messages that exhaust their retries are lost{o.where}",
            o.set_to("true"),
        )
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True}
    # A blank path or endpoint is none at all (the follow-up round tests neither).
    path, endpoint = (
        v.strip() if isinstance(v, str) else v for v in (dlq.get("path"), dlq.get("endpoint"))
    )
    if not path and not endpoint:
        f.fail(
            f"{base} is enabled but has neither a path nor an endpoint",
            f"Set {base}.path to a writable directory (or {base}.endpoint to host:port)",
        )
    if path:
        out["path"] = _dlq_path(ctx, f, base, str(path))
    if endpoint:
        out["endpoint"] = _dlq_endpoint(ctx, f, base, str(endpoint))
    return out


def _dlq_path(ctx: CheckContext, f: Findings, base: str, path: str) -> dict[str, Any]:
    resolved = ctx.profile.resolve(path)
    fact = ctx.fact(DLQ_PATH_FACT)
    out: dict[str, Any] = {"path": resolved, "writable": bool(fact.get("write_ok"))}
    if fact.get("write_ok"):
        return out
    src = origin(ctx, f"{base}.path")
    if src.source != SOURCE_SETTINGS:  # the path itself came from the environment: say so
        out["path_from"] = src.label
    if not fact:
        f.unknown(f"{base}.path {resolved} was not tested", "Rerun the audit")
    elif fact.get("exists") is False:
        f.fail(
            f"dead letter queue directory {resolved} does not exist",
            f"Create it: mkdir -p {resolved} (owned by the service user)",
        )
    elif fact.get("type") != "dir":
        f.fail(
            f"dead letter queue path {resolved} is not a directory{src.where}",
            src.set_to("a directory"),
        )
    elif write_denied_to_another(fact, ctx.meta):
        out["writable"] = None
        f.unknown(
            f"cannot tell whether the service can write dead letter queue directory "
            f"{resolved}: it is {fact.get('owner')}'s and the audit account "
            f"{ctx.meta.get('user')} may not ({fact.get('write_error')})",
            "Rerun with --sudo (or as the service's user) so the write test runs as one "
            "who may write there",
        )
    else:
        out["error"] = fact.get("write_error")
        f.fail(
            f"dead letter queue directory {resolved} is not writable ({fact.get('write_error')})",
            f"Make {resolved} writable for the service user (chown/chmod)",
        )
    return out


def _dlq_endpoint(ctx: CheckContext, f: Findings, base: str, endpoint: str) -> dict[str, Any]:
    out: dict[str, Any] = {"endpoint": endpoint}
    src = origin(ctx, f"{base}.endpoint")
    if parse_endpoint(endpoint) is None:
        f.fail(
            f"{base}.endpoint {endpoint!r} cannot be parsed{src.where}",
            src.set_to("host:port or a URL"),
        )
        return out
    tcp = ctx.fact(DLQ_TCP_FACT)
    out["reachable"] = bool(tcp.get("ok"))
    if tcp.get("ok"):
        out["latency_ms"] = tcp.get("latency_ms")
    else:
        f.fail(
            f"dead letter queue endpoint {endpoint} is not reachable from the host "
            f"({tcp.get('error', 'not tested')}){src.where}",
            "Start the dead letter queue service, or "
            + src.set_to("its address").replace("Set ", "set ", 1),
        )
    return out


def _error_categories(ctx: CheckContext, f: Findings, prefix: str) -> dict[str, Any]:
    dotted = f"{prefix}.error_categories"
    value = json_collection(*ctx.app.lookup(dotted))
    recommendation = (
        f"Ensure error categories are properly defined: {dotted}: "
        "[transient, permanent, validation, timeout]"
    )
    if not value:
        o = origin(ctx, dotted)
        f.fail(f"{dotted} is not defined or empty{o.where if o.source else ''}", recommendation)
        return {"categories": []}
    if not isinstance(value, list):
        f.fail(f"{dotted} must be a list, got {type(value).__name__}", recommendation)
        return {"categories": value}
    names = [str(v).strip().lower() for v in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        f.warn(
            f"{dotted} has duplicates: {', '.join(duplicates)}",
            f"Remove duplicate entries from {dotted}",
        )
    blank = [v for v in value if not isinstance(v, str) or not v.strip()]
    if blank:
        f.warn(f"{dotted} has non-text or blank entries: {blank!r}", recommendation)
    return {"categories": list(value), "duplicates": duplicates}


def _app_object(ctx: CheckContext, f: Findings) -> None:
    """As the original validator: report the app's recovery_manager (details only)."""
    app = ctx.app_object
    if app is None:
        return
    manager = getattr(app, "recovery_manager", None)
    if not manager:
        f.details["circuit_breakers"] = {
            "configured": False,
            "note": "Ensure recovery_manager is initialized in app",
        }
        return
    breakers = getattr(manager, "circuit_breakers", None)
    count = len(breakers) if isinstance(breakers, (Mapping, list, tuple, set)) else None
    f.details["circuit_breakers"] = {"configured": True, "count": count}


register(
    "error_handling",
    title="Error handling coverage",
    description=(
        "Retry attempts within bounds with sane backoff, circuit breaker thresholds positive, "
        "a dead letter queue enabled whose storage is writable / endpoint reachable from the "
        "host, and error categories defined without duplicates."
    ),
    categories=("configuration", "operations"),
    suites=("validate",),
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "resilience_settings",
        "thresholds.retry_min_attempts",
        "thresholds.retry_max_attempts",
        "thresholds.dlq_connect_timeout_s",
    ),
    order=70,
)(evaluate)
