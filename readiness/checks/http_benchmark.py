"""``http_benchmark``: bounded HTTP load from the controller against the app's endpoints.

Opt-in (``http_benchmarks`` in the profile). For each endpoint: ``requests``
requests on ``concurrency`` workers (one requests Session each, TLS verified,
a timeout on every call) until the request count or ``time_cap_s`` is reached,
whichever comes first. p50/p95/p99, error rate and throughput are judged against
thresholds (error rate and latency over their limits → NOT_READY) and against the stored
previous run (p95 ratio → DEGRADED); this run then becomes the new baseline.

A remote host's loopback URL (``http://127.0.0.1:8080/health``) is loaded through the host's
SSH connection per ``service_access`` (docs/fleet.md, "Services behind the host"). The
numbers then measure the tunnel too (SSH encryption, one channel per connection, the
controller-host network); the row's ``via`` and ``details["via"]`` say so. The load bounds
are the same.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..findings import Findings
from ..model import Outcome
from ..registry import CheckContext, register
from . import _access
from ._bench import (
    BASELINE_DEFAULTS,
    CUT,
    Sample,
    bench_block,
    drop_thin_percentiles,
    judge_errors,
    judge_latency,
    judge_regression,
    judge_thin,
    run_bounded,
    skipped,
    summarize,
    update_baseline,
    verdict_mark,
)

__all__ = ["DEFAULTS", "evaluate"]

NAME = "http_benchmark"

DEFAULTS: dict[str, Any] = {
    # Endpoints to load (empty: SKIPPED). Keys per entry: docs/checks/http_benchmark.md.
    "http_benchmarks": [],
    **BASELINE_DEFAULTS,
    "thresholds": {
        **BASELINE_DEFAULTS["thresholds"],
        "http_p95_ms": 500.0,
        "http_p99_ms": 1000.0,
        "http_max_error_rate": 0.01,
    },
}

_EXAMPLE = (
    "http_benchmarks: [{name: health, url: 'https://app.example:8080/health', requests: 200, "
    "concurrency: 8, time_cap_s: 10, p95_ms: 300}]"
)
TUNNEL_NOTE = (
    "measured through the host's SSH tunnel: latency and throughput include the tunnel "
    "(encryption, the controller-host network)"
)
_LIMITS = {"requests": 100_000, "concurrency": 64, "time_cap_s": 300.0}


def _endpoints(ctx: CheckContext) -> list[Mapping[str, Any]]:
    raw = ctx.profile.get("http_benchmarks") or []
    return [e for e in raw if isinstance(e, Mapping)] if isinstance(raw, list) else []


def _num(entry: Mapping[str, Any], key: str, default: float) -> float:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and value > 0 else default


def _plan(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "requests": int(min(_num(entry, "requests", 200), _LIMITS["requests"])),
        "concurrency": int(min(_num(entry, "concurrency", 8), _LIMITS["concurrency"])),
        "time_cap_s": min(_num(entry, "time_cap_s", 10.0), _LIMITS["time_cap_s"]),
        "timeout_s": _num(entry, "timeout_s", 5.0),
    }


def _session() -> Any:

    # Controller proxies would be measured too (and see the requests): none.
    return _access.http_session()


def _request(entry: Mapping[str, Any], plan: Mapping[str, Any], route: _access.HttpRoute) -> Any:
    import requests

    url = route.target
    headers = {
        **route.headers,
        **{str(k): str(v) for k, v in dict(entry.get("headers") or {}).items()},
    }
    method = str(entry.get("method") or "GET").upper()
    expect = entry.get("expect_status")
    # one status or a list of them (an `expect_status: 200` was refused, unlike adapter_health)
    wanted = (
        {int(x) for x in (expect if isinstance(expect, list) else [expect])} if expect else None
    )
    verify: Any = str(entry["ca_bundle"]) if entry.get("ca_bundle") else True

    def work(session: requests.Session, left: float) -> Sample:
        timeout = min(float(plan["timeout_s"]), max(0.05, left))
        t0 = time.perf_counter()
        try:
            resp = session.request(
                method,
                url,
                headers=headers,
                json=entry.get("json"),
                data=entry.get("body"),
                timeout=(timeout, timeout),
                verify=verify,
                allow_redirects=False,
            )
            resp.close()
        except requests.Timeout:
            cut = time.perf_counter() - t0 >= left - 0.05
            return Sample(0.0, CUT if cut else f"timeout after {timeout:g}s")
        except requests.RequestException as exc:
            return Sample(0.0, f"{type(exc).__name__}: {str(exc)[:160]}")
        ms = (time.perf_counter() - t0) * 1000
        code = resp.status_code
        # 2xx unless expect_status says otherwise: a 3xx is not followed, so its time is the
        # redirect's, not the endpoint's (a health URL sending to /login was READY)
        good = code in wanted if wanted else 200 <= code < 300
        if good:
            return Sample(ms, None)
        if 300 <= code < 400:
            return Sample(ms, f"HTTP {code} redirect{_to(resp.headers.get('Location'))}")
        return Sample(ms, f"HTTP {code}")

    return work


def _to(location: str | None) -> str:
    """`` to <where>`` of a redirect, without its query or fragment (a token may be there)."""
    if not location:
        return ""
    parts = urlsplit(location[:300])
    where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return f" to {where[:120]} (not followed)"


def _limits(ctx: CheckContext, entry: Mapping[str, Any]) -> dict[str, float | None]:
    th = ctx.profile.get("thresholds") or {}
    return {
        "p95_ms": _num(entry, "p95_ms", float(th.get("http_p95_ms") or 0)) or None,
        "p99_ms": _num(entry, "p99_ms", float(th.get("http_p99_ms") or 0)) or None,
    }


def _max_error_rate(ctx: CheckContext, entry: Mapping[str, Any]) -> float:
    value = entry.get("max_error_rate")
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    return float(ctx.profile.threshold("http_max_error_rate"))


def _bench_one(ctx: CheckContext, f: Findings, i: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    name = str(entry.get("name") or f"endpoint{i + 1}")
    url = str(entry.get("url") or "")
    label = f"{name} ({entry.get('method') or 'GET'} {url})"
    if not _valid_url(url):
        f.fail(f"{name}: url {url!r} is not an http(s) URL", "Fix http_benchmarks[].url")
        return {"name": name, "target": url, "verdict": "invalid"}
    route = _access.http_route(ctx, url)
    if route.stranded:
        f.unknown(f"{name}: {route.why_stranded(ctx.host)}", _access.STRANDED_FIX)
        return {"name": name, "target": url, "verdict": "not run"}
    if route.error:
        f.fail(
            f"{name}: {url} cannot be reached: {route.error}", "Start the service or fix the URL"
        )
        return {"name": name, "target": url, "verdict": "not run", "access": route.access}
    via = {"via": f"ssh tunnel via {route.via}"} if route.via else {}
    plan = _plan(entry)
    samples, wall, cut = run_bounded(
        _request(entry, plan, route),
        requests=plan["requests"],
        concurrency=plan["concurrency"],
        time_cap_s=plan["time_cap_s"],
        worker_setup=_session,
    )
    summary = summarize(samples, wall, requested=plan["requests"], cut=cut)
    thin = drop_thin_percentiles(summary)
    mark = verdict_mark(f)
    judge_errors(f, label, summary, _max_error_rate(ctx, entry))
    redirected = any(" redirect" in str(e) for e in summary.get("first_errors") or ())
    if redirected and mark.verdict(f) == "not_ready":
        f.recommendations.append(
            f"{name} redirects: point http_benchmarks[].url at the final location (redirects "
            "are not followed), or list the redirect's status in expect_status if it is the "
            "answer to measure"
        )
    how = (
        f"Profile {name} under load (slow handler, database, pool size) or raise "
        "http_benchmarks[].{p}_ms / thresholds.http_{p}_ms"
    )
    limits = _limits(ctx, entry)
    judge_latency(f, label, summary, limits, how)
    more = (
        f"Raise {name}'s requests to {{need}} or more (and time_cap_s so that many complete), "
        "or leave {p} unjudged (thresholds.http_{p}_ms: null, no http_benchmarks[].{p}_ms)"
    )
    judge_thin(f, label, summary, limits, thin, how=how, fix=more)
    judge_regression(ctx, f, summary, check=NAME, label=label, name=name)
    update_baseline(ctx, f, NAME, name, summary)
    return {"name": name, "target": url, **via, **plan, **summary, "verdict": mark.verdict(f)}


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def destinations(ctx: CheckContext) -> list[tuple[str, int]]:
    """Where :func:`evaluate` tunnels to: every endpoint with a valid http(s) URL."""
    urls = [str(e.get("url") or "") for e in _endpoints(ctx)]
    return _access.http_destinations(ctx, [u for u in urls if _valid_url(u)])


def evaluate(ctx: CheckContext) -> Outcome:
    endpoints = _endpoints(ctx)
    if not endpoints:
        return skipped("http_benchmarks", _EXAMPLE)
    f = Findings()
    rows = [_bench_one(ctx, f, i, e) for i, e in enumerate(endpoints)]
    f.details["benchmark"] = bench_block("http", rows)
    tunnelled = sorted({str(r["via"]) for r in rows if r.get("via")})
    if tunnelled:
        f.details["via"] = ", ".join(tunnelled)
        f.details["via_note"] = TUNNEL_NOTE
    p95s = [r["p95_ms"] for r in rows if isinstance(r.get("p95_ms"), (int, float))]
    worst = f"worst p95 {max(p95s):.1f} ms" if p95s else "p95 not measured"
    through = f"; {TUNNEL_NOTE}" if tunnelled else ""
    return f.outcome(
        f"{len(rows)} endpoint(s) within thresholds ({worst}){through}",
        subject="HTTP benchmark",
    )


register(
    NAME,
    title="HTTP benchmark",
    description=(
        "Bounded load (request count, concurrency, time cap) from the controller against the "
        "profile's HTTP endpoints: p50/p95/p99, error rate and throughput within thresholds "
        "and not regressed against the previous run."
    ),
    categories=("performance",),
    suites=("production",),
    defaults=DEFAULTS,
    profile_keys=(
        "http_benchmarks",
        "benchmark_baseline_dir",
        "thresholds.http_p95_ms",
        "thresholds.http_p99_ms",
        "thresholds.http_max_error_rate",
        "thresholds.benchmark_max_regression",
        "service_access",
    ),
    aliases=("http_bench", "load_test"),
    order=300,
    destinations=destinations,
    opt_in=True,
)(evaluate)
