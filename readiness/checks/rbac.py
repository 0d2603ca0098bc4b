"""``rbac``: a low-privilege credential is refused a forbidden action and allowed an allowed one.

Opt-in (``rbac.enabled``): the forbidden request is really sent, so pick one that is
harmless if RBAC is broken (an admin-only read, a delete of a resource that does not
exist). From the controller with requests (explicit timeouts, no proxies):

* the token comes from an environment variable on the controller (``token_env``) or
  from the app's effective environment on the host (``token_app_env``); it is declared
  secret (``ctx.secret``) so it never appears in any report;
* every ``forbidden`` request must answer 401/403 (2xx → NOT_READY: privilege escalation;
  anything else → DEGRADED: the refusal could not be confirmed);
* every ``allowed`` request must answer its expected status (default: any 2xx).

A remote host's loopback URL (``http://127.0.0.1:8080/...``) is reached through the host's
SSH connection per ``service_access`` (docs/fleet.md, "Services behind the host").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..registry import CheckContext, register
from . import _access
from ._integration import as_list, gate

__all__ = ["DEFAULTS", "evaluate"]

NAME = "rbac"
REFUSED = (401, 403)

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        "token_env": None,  # variable on the controller holding the low-privilege token
        "token_app_env": None,  # or: variable of the app's environment on the host
        "header": "Authorization",
        "scheme": "Bearer",  # "" sends the bare token
        # [{method, url, json?}], each must be refused with 401/403
        "forbidden": [],
        # [{method, url, json?, expect_status?}], each must succeed (default: any 2xx)
        "allowed": [],
    },
    "thresholds": {"rbac_request_timeout_s": 5},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable with rbac: {enabled: true, token_env: READINESS_VIEWER_TOKEN, "
    "forbidden: [{method: DELETE, url: http://app:8080/api/workflows/readiness-nonexistent}], "
    "allowed: [{method: GET, url: http://app:8080/api/workflows}]}; see docs/checks/rbac.md"
)


def _token(ctx: CheckContext, cfg: Mapping[str, Any]) -> tuple[str | None, str]:
    if cfg.get("token_env"):
        name = str(cfg["token_env"])
        return os.environ.get(name), f"controller environment variable {name}"
    if cfg.get("token_app_env"):
        name = str(cfg["token_app_env"])
        var = ctx.app.env.get(name)
        return (var.value if var else None), f"app environment variable {name}"
    return None, "no token_env or token_app_env in the profile"


def _requests(cfg: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [r for r in as_list(cfg.get(key)) if isinstance(r, Mapping) and r.get("url")]


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    f = Findings()
    cfg = ctx.profile[NAME]
    token, source = _token(ctx, cfg)
    ctx.secret(token)
    f.details["token"] = {"source": source, "set": bool(token)}
    forbidden, allowed = _requests(cfg, "forbidden"), _requests(cfg, "allowed")
    if not token:
        f.fail(
            f"no low-privilege token: {source} is not set",
            "Provision a dedicated low-privilege (viewer) token and point token_env at it",
        )
    if not forbidden or not allowed:
        f.fail(
            "rbac needs at least one forbidden and one allowed request",
            "List rbac.forbidden and rbac.allowed requests in the profile",
        )
    routes = {str(r["url"]): _access.http_route(ctx, str(r["url"])) for r in forbidden + allowed}
    stranded = [r for r in routes.values() if r.stranded]
    if stranded:
        f.unknown(stranded[0].why_stranded(ctx.host), _access.STRANDED_FIX)
    if f.problems or stranded or token is None:
        return f.outcome("", subject="RBAC")
    access = {url: r.access for url, r in routes.items() if r.access}
    if access:
        f.details["access"] = access
    _exercise(ctx, f, cfg, token, routes, forbidden=forbidden, allowed=allowed)
    return f.outcome(
        f"Low-privilege token refused {len(forbidden)} forbidden and allowed {len(allowed)} "
        "permitted request(s)",
        subject="RBAC",
    )


def _exercise(
    ctx: CheckContext,
    f: Findings,
    cfg: Mapping[str, Any],
    token: str,
    routes: Mapping[str, _access.HttpRoute],
    *,
    forbidden: list[Mapping[str, Any]],
    allowed: list[Mapping[str, Any]],
) -> None:
    import requests

    scheme = str(cfg.get("scheme") or "")
    headers = {str(cfg.get("header") or "Authorization"): f"{scheme} {token}".strip()}
    timeout = float(ctx.profile.threshold("rbac_request_timeout_s"))
    results: list[dict[str, Any]] = []
    f.details["requests"] = results
    with _access.http_session() as session:  # no proxy variables, no ~/.netrc
        for kind, items in (("forbidden", forbidden), ("allowed", allowed)):
            for item in items:
                method, url = str(item.get("method") or "GET").upper(), str(item["url"])
                route = routes[url]
                if route.error:
                    results.append(
                        {"kind": kind, "request": f"{method} {url}", "error": route.error}
                    )
                    f.fail(f"{method} {url} failed: {route.error}")
                    continue
                try:
                    res = session.request(
                        method,
                        route.target,
                        headers={**route.headers, **headers},
                        json=item.get("json"),
                        timeout=timeout,
                    )
                except requests.RequestException as exc:
                    results.append({"kind": kind, "request": f"{method} {url}", "error": str(exc)})
                    f.fail(f"{method} {url} failed: {type(exc).__name__}: {exc}")
                    continue
                results.append(
                    {"kind": kind, "request": f"{method} {url}", "status": res.status_code}
                )
                judge = _judge_forbidden if kind == "forbidden" else _judge_allowed
                judge(f, item, f"{method} {url}", res.status_code)


def _judge_forbidden(f: Findings, item: Mapping[str, Any], what: str, status: int) -> None:
    if 200 <= status < 300:
        f.fail(
            f"forbidden action {what} SUCCEEDED (HTTP {status}) with the low-privilege token",
            "Enforce authorization on this endpoint (role check before the action)",
        )
    elif status not in REFUSED:
        f.warn(
            f"forbidden action {what} answered HTTP {status}, not 401/403: refusal not confirmed",
            "Make the API refuse unauthorized actions with 403 before any other processing",
        )


def _judge_allowed(f: Findings, item: Mapping[str, Any], what: str, status: int) -> None:
    expect = item.get("expect_status")
    # one status or a list of them, as http_benchmarks[] and adapter_health take it
    listed = expect if isinstance(expect, list) else [] if expect is None else [expect]
    wanted_codes = [int(x) for x in listed]
    ok = status in wanted_codes if expect is not None else 200 <= status < 300
    if not ok and status in REFUSED:
        f.fail(
            f"allowed action {what} was refused with the low-privilege token (HTTP {status})",
            "Grant the role this permission, or fix the token / rbac.allowed in the profile",
        )
    elif not ok:  # not a refusal: the action itself failed (a 5xx, a 404, a redirect)
        codes = " or ".join(map(str, wanted_codes))
        wanted = f"HTTP {codes}" if expect is not None else "a 2xx answer"
        f.fail(
            f"allowed action {what} failed with the low-privilege token: HTTP {status}, "
            f"expected {wanted}",
            "Check the API's logs for this request, or fix its URL / expect_status in rbac.allowed",
        )


def destinations(ctx: CheckContext) -> list[tuple[str, int]]:
    """Where :func:`evaluate` tunnels to: every forbidden and allowed request's URL
    (routed even when the token is missing), none when the check is skipped."""
    if gate(ctx, NAME, KEYS, HOW) is not None:
        return []
    cfg = ctx.profile[NAME]
    urls = [str(r["url"]) for r in _requests(cfg, "forbidden") + _requests(cfg, "allowed")]
    return _access.http_destinations(ctx, urls)


register(
    NAME,
    title="Role-based access control",
    description=(
        "Opt-in: with a low-privilege token (a secret from the controller's or the app's "
        "environment), a forbidden action is refused with 401/403 and an allowed one succeeds."
    ),
    categories=("integration",),
    suites=("production",),
    defaults=DEFAULTS,
    profile_keys=(
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "thresholds.rbac_request_timeout_s",
        "service_access",
    ),
    aliases=("authorization", "rbac_test"),
    destinations=destinations,
    order=225,
    opt_in=True,
)(evaluate)
