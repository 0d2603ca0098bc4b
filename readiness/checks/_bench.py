"""Shared by the performance checks: bounded load loops, sample summaries, thresholds, baselines.

Every benchmark reports its samples the same way (``summarize``), judges them the
same way (``judge_latency``, ``judge_errors``, ``judge_regression``) and puts a
``details["benchmark"]`` block in its result, which ``readiness.report.benchmarks``
renders as a per-host table. See docs/benchmarks.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..findings import Findings
from ..model import Outcome, Status
from ..profile import Profile
from ..registry import CheckContext

__all__ = [
    "BASELINE_DEFAULTS",
    "CUT",
    "PERCENTILE_MIN_SAMPLES",
    "Sample",
    "baseline_path",
    "bench_block",
    "drop_thin_percentiles",
    "judge_errors",
    "judge_latency",
    "judge_regression",
    "judge_thin",
    "percentile",
    "run_bounded",
    "skipped",
    "summarize",
    "update_baseline",
    "verdict_mark",
]

# Shared by every benchmark; declared once (by http_benchmark) so the profile keys stay unique.
BASELINE_DEFAULTS: dict[str, Any] = {
    # Directory (on the controller) of the previous runs; null disables baselines.
    "benchmark_baseline_dir": "reports/benchmarks",
    "thresholds": {"benchmark_max_regression": 1.5},
}

# The error text a work function returns for a run the time cap interrupted (not an error).
CUT = "\0cut-by-time-cap"
MAX_WORKERS = 64  # a profile typo (concurrency: 8000) must not start thousands of threads


@dataclass(frozen=True)
class Sample:
    """One timed operation: its latency, and an error text when it failed."""

    latency_ms: float
    error: str | None = None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# A nearest-rank percentile differs from the slowest sample only from this many samples on
# (its rank ceil(q/100 * n) is below n): from 8 requests, "p95" and "p99" are the maximum.
PERCENTILE_MIN_SAMPLES: dict[str, int] = {"p50_ms": 1, "p95_ms": 20, "p99_ms": 100}


def drop_thin_percentiles(summary: dict[str, Any]) -> dict[str, int]:
    """Blank each percentile measured on fewer samples than it needs; returns them → need.

    ``summary["max_ms"]`` stays: :func:`judge_thin` uses it."""
    ok = int(summary.get("ok") or 0)
    thin = {k: need for k, need in PERCENTILE_MIN_SAMPLES.items() if 0 < ok < need}
    for key in thin:
        summary[key] = None
    if thin:
        summary["percentiles_need_samples"] = dict(thin)
    return thin


def judge_thin(
    f: Findings,
    label: str,
    summary: Mapping[str, Any],
    limits: Mapping[str, float | None],
    thin: Mapping[str, int],
    *,
    how: str,
    fix: str,
) -> None:
    """A limited percentile with too few samples: over its limit (NOT_READY, as
    :func:`judge_latency`) when the slowest sample is
    (with n below the percentile's need, one sample is more than its share of the tail;
    ``how`` fixes that), else "cannot determine" (DEGRADED), never READY (``fix``: take
    more samples). ``{p}`` in either, and ``{need}`` in ``fix``, are filled in."""
    ok = int(summary.get("ok") or 0)
    slowest = summary.get("max_ms")
    for key, need in thin.items():
        limit = limits.get(key)
        if limit is None or not isinstance(slowest, (int, float)):
            continue
        p = key.removesuffix("_ms")
        share = 100 - int(p.removeprefix("p"))
        if slowest > float(limit):
            f.fail(
                f"{label}: {p} > {float(limit):g} ms: the slowest of {ok} successful "
                f"request(s) took {slowest:.1f} ms (1 in {ok} is more than {share} %)",
                how.replace("{p}", p),
            )
        else:
            f.unknown(
                f"{label}: {p} cannot be determined from {ok} successful request(s) "
                f"(a {p} needs at least {need}; every one took {float(limit):g} ms or less)",
                fix.replace("{p}", p).replace("{need}", str(need)),
            )


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def summarize(
    samples: Sequence[Sample], duration_s: float, *, requested: int, cut: int = 0
) -> dict[str, Any]:
    """n, p50/p95/p99/min/max/mean of the successful samples, errors, throughput, duration.

    ``requested`` is how many runs the profile asked for; ``cut`` how many were not
    started or were interrupted because the time cap was reached (not errors).
    """
    ok = sorted(s.latency_ms for s in samples if s.error is None)
    errors = [s.error for s in samples if s.error is not None]
    total = len(samples)
    return {
        "n": total,
        "requested": requested,
        "cut_by_time_cap": cut,
        "ok": len(ok),
        "errors": len(errors),
        "error_rate": round(len(errors) / total, 4) if total else 0.0,
        "p50_ms": _r(percentile(ok, 50)),
        "p95_ms": _r(percentile(ok, 95)),
        "p99_ms": _r(percentile(ok, 99)),
        "min_ms": _r(ok[0] if ok else None),
        "max_ms": _r(ok[-1] if ok else None),
        "mean_ms": _r(sum(ok) / len(ok) if ok else None),
        "throughput_per_s": round(total / duration_s, 2) if duration_s > 0 else None,
        "duration_s": round(duration_s, 3),
        "first_errors": sorted(set(errors))[:3],
    }


def run_bounded(
    work: Callable[[Any, float], Sample],
    *,
    requests: int,
    concurrency: int,
    time_cap_s: float,
    worker_setup: Callable[[], Any] | None = None,
) -> tuple[list[Sample], float, int]:
    """Run ``work`` up to ``requests`` times on ``concurrency`` threads until ``time_cap_s``.

    Whichever ends first wins: no new run starts after the cap, and ``work(state, left)``
    gets its worker's state (``worker_setup()``, e.g. a requests Session, closed at the
    end) and the seconds left, so it can bound its own timeout. Returns (samples, wall seconds,
    runs not done because of the cap). Samples marked ``error == CUT`` are dropped.
    """
    started = time.monotonic()
    deadline = started + time_cap_s
    lock = threading.Lock()
    counter = [0]
    samples: list[Sample] = []
    cut = [0]

    def take() -> bool:
        with lock:
            if counter[0] >= requests or time.monotonic() >= deadline:
                return False
            counter[0] += 1
            return True

    def worker() -> None:
        state = worker_setup() if worker_setup is not None else None
        try:
            while take():
                sample = work(state, deadline - time.monotonic())
                with lock:
                    if sample.error == CUT:
                        cut[0] += 1
                    else:
                        samples.append(sample)
        finally:
            close = getattr(state, "close", None)
            if callable(close):
                close()

    threads = [
        threading.Thread(target=worker, name=f"bench-{i}", daemon=True)
        for i in range(max(1, min(concurrency, requests, MAX_WORKERS)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_cap_s + 60)  # work() bounds itself by the time left; this is a backstop
    wall = time.monotonic() - started
    return samples, wall, cut[0] + max(0, requests - counter[0])


# --- judgement --------------------------------------------------------------------------------


def judge_errors(f: Findings, label: str, summary: Mapping[str, Any], max_rate: float) -> None:
    """More failures than allowed → NOT_READY (the thing being timed does not work).

    The rate is the exact count ratio: the summary's is rounded to 4 decimals, so 1 failure
    in 30 000 requests was 0.0 and passed ``max_error_rate: 0`` (no failure allowed)."""
    n = int(summary.get("n") or 0)
    rate = int(summary.get("errors") or 0) / n if n else 0.0
    if n and rate > max_rate:
        first = "; ".join(str(e) for e in summary.get("first_errors") or ())
        f.fail(
            f"{label}: {summary['errors']}/{summary['n']} runs failed "
            f"(error rate {_rate(rate)} > {_rate(max_rate)}){': ' + first if first else ''}",
            f"Fix the failures of {label} first; its latency is meaningless while it errors",
        )
    elif not summary.get("n"):
        f.fail(
            f"{label}: no run completed within the time cap",
            "Raise the benchmark's time_cap_s, or find why a single run takes that long",
        )


def _rate(rate: float) -> str:
    """A rate in percent, with enough digits to tell a small one from 0 (1/30000: 0.0033%)."""
    return f"{rate:.1%}" if rate == 0 or rate >= 0.001 else f"{rate * 100:.2g}%"


def judge_latency(
    f: Findings,
    label: str,
    summary: Mapping[str, Any],
    limits: Mapping[str, float | None],
    how: str,
) -> None:
    """A percentile over its limit → NOT_READY; ``limits`` maps ``p95_ms`` etc. to a limit
    (``{p}`` in ``how`` becomes the percentile's name).

    The seed's quality gate is "performance benchmarks: within acceptable thresholds", and a
    gate counts DEGRADED as passed: a p95 over its limit was DEGRADED, so `run-benchmarks`
    with every endpoint over its threshold said "performance 100 % PASS", exit 0. The gate
    is non-critical, so a miss exits 3 ("failed but usable"), not 1."""
    for key, limit in limits.items():
        value = summary.get(key)
        if limit is None or not isinstance(value, (int, float)):
            continue
        if value > float(limit):
            p = key.removesuffix("_ms")
            f.fail(f"{label}: {p} {value:.1f} ms > {float(limit):g} ms", how.replace("{p}", p))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"


def baseline_path(profile: Profile, host: str, check: str, name: str) -> Path | None:
    """``<benchmark_baseline_dir>/<host>-<check>-<name>.json``; None when baselines are off."""
    directory = profile.get("benchmark_baseline_dir")
    if not directory:
        return None
    return Path(str(directory)) / f"{_safe(host)}-{_safe(check)}-{_safe(name)}.json"


def _load(path: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None


def judge_regression(
    ctx: CheckContext, f: Findings, summary: dict[str, Any], *, check: str, label: str, name: str
) -> None:
    """Compare p95 with the stored previous run: now / before > max ratio → DEGRADED.

    Adds ``baseline_p95_ms`` and ``regression`` (the ratio) to ``summary``.
    """
    path = baseline_path(ctx.profile, ctx.host, check, name)
    previous = _load(path) if path is not None else None
    before = (previous or {}).get("p95_ms")
    now = summary.get("p95_ms")
    if not isinstance(before, (int, float)) or not isinstance(now, (int, float)) or before <= 0:
        return
    ratio = now / before
    summary["baseline_p95_ms"] = before
    summary["regression"] = round(ratio, 2)
    limit = float(ctx.profile.threshold("benchmark_max_regression"))
    if ratio > limit:
        f.warn(
            f"{label}: p95 regressed {ratio:.2f}x against the previous run "
            f"({before:.1f} ms → {now:.1f} ms; limit {limit:g}x)",
            "Find what slowed down since the previous run (deploy, data growth, load), or raise "
            "thresholds.benchmark_max_regression",
        )


def update_baseline(
    ctx: CheckContext, f: Findings, check: str, name: str, summary: Mapping[str, Any]
) -> None:
    """Store this run as the next run's baseline (atomic write); only runs with samples."""
    path = baseline_path(ctx.profile, ctx.host, check, name)
    if path is None or not summary.get("ok"):
        return
    keep = {k: v for k, v in summary.items() if k not in ("baseline_p95_ms", "regression")}
    doc = {"host": ctx.host, "check": check, "name": name, "stored_at": time.time(), **keep}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
        Path(tmp).replace(path)
    except OSError as exc:
        f.unknown(
            f"could not store the baseline {path}: {exc.strerror or exc}",
            "Make benchmark_baseline_dir writable on the controller, or set it to null",
        )


@dataclass(frozen=True)
class _Mark:
    problems: int
    warnings: int

    def verdict(self, f: Findings) -> str:
        """``not_ready`` / ``degraded`` / ``ready``: what this row added to the findings."""
        if len(f.problems) > self.problems:
            return "not_ready"
        return "degraded" if len(f.warnings) > self.warnings else "ready"


def verdict_mark(f: Findings) -> _Mark:
    """Remember the findings' size, to tell afterwards what one benchmark row added."""
    return _Mark(len(f.problems), len(f.warnings))


def bench_block(kind: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``details["benchmark"]`` block read by readiness.report.benchmarks."""
    return {"kind": kind, "rows": [dict(r) for r in rows]}


def skipped(key: str, example: str) -> Outcome:
    return Outcome(
        Status.SKIPPED,
        f"Not configured: set {key} in the profile to run this benchmark (it puts load on the "
        "system, so it is opt-in)",
        {"enable_with": key},
        (f"Configure {key}, e.g. {example}; see docs/benchmarks.md",),
    )
