"""``workflow_benchmark``: how fast the smoke workflow runs, alone and K at a time.

Opt-in (``workflow_benchmark`` in the profile, plus ``smoke_workflow`` — the
workflow that ``workflow_execution`` runs, in the same way: a command or an HTTP
call executed ON THE HOST by the probe). The probe's ``repeat`` op runs it
``runs`` times one after another, then ``concurrency`` copies at once, each
batch bounded by ``time_cap_s``; every run must reach the expected state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._bench import (
    Sample,
    bench_block,
    judge_errors,
    judge_latency,
    judge_regression,
    skipped,
    summarize,
    update_baseline,
    verdict_mark,
)
from ._owned import refused_run
from .workflow_execution import (
    _command_spec,
    _dig,
    _http_spec,
    _loads,
    _smoke,
    _state_key,
    extract_state,
    same_state,
)

__all__ = ["DEFAULTS", "evaluate", "facts"]

NAME = "workflow_benchmark"
SEQ = f"{NAME}:sequential"
CONC = f"{NAME}:concurrent"

DEFAULTS: dict[str, Any] = {
    # None: SKIPPED. {runs: 3, concurrency: 4, time_cap_s: 60} (needs smoke_workflow).
    "workflow_benchmark": None,
    "thresholds": {"workflow_run_p95_s": 30.0, "workflow_concurrent_max_s": 60.0},
}

_EXAMPLE = (
    "workflow_benchmark: {runs: 3, concurrency: 4, time_cap_s: 60} together with "
    "smoke_workflow (see docs/checks/workflow_execution.md)"
)


def _config(profile: Profile) -> Mapping[str, Any] | None:
    value = profile.get("workflow_benchmark")
    return value if isinstance(value, Mapping) and value else None


def _int(cfg: Mapping[str, Any], key: str, default: int, most: int) -> int:
    value = cfg.get(key)
    return max(0, min(int(value), most)) if isinstance(value, int) else default


def facts(profile: Profile) -> FactSpecs:
    cfg, smoke = _config(profile), _smoke(profile)
    if cfg is None or smoke is None:
        return {}
    if smoke.get("command"):
        inner = _command_spec(profile, smoke)
        inner["max_bytes"] = 16 * 1024
    elif smoke.get("url"):
        inner = _http_spec(smoke)
    else:
        return {}
    cap = float(cfg.get("time_cap_s") or 60)
    out: FactSpecs = {}
    runs, conc = _int(cfg, "runs", 3, 100), _int(cfg, "concurrency", 4, 32)
    if runs:
        out[SEQ] = {"op": "repeat", "spec": inner, "runs": runs, "concurrency": 1, "time_cap": cap}
    if conc:
        out[CONC] = {
            "op": "repeat",
            "spec": inner,
            "runs": conc,
            "concurrency": conc,
            "time_cap": cap,
        }
    return out


def _state(smoke: Mapping[str, Any], res: Mapping[str, Any]) -> str | None:
    if smoke.get("command"):
        return extract_state(
            str(res.get("stdout") or ""),
            json_key=str(smoke["json_key"]) if smoke.get("json_key") else None,
            regex=str(smoke["state_regex"]) if smoke.get("state_regex") else None,
        )
    poll = res.get("poll")
    if isinstance(poll, Mapping):
        state = poll.get("state")
    else:
        state = _dig(_loads(str(res.get("body") or "")), _state_key(smoke))
    return None if state is None else str(state)


def _sample(smoke: Mapping[str, Any], res: Mapping[str, Any]) -> Sample:
    """One run → its duration, or why it failed (did not start, timed out, wrong state)."""
    ms = float(res.get("duration_s") or 0) * 1000
    expect = str(smoke.get("expect_state") or "completed")
    if res.get("error") or res.get("started") is False or res.get("ok") is False:
        return Sample(ms, f"did not run: {res.get('error') or 'not started'}")
    if res.get("timed_out") or (res.get("poll") or {}).get("timed_out"):
        return Sample(ms, "timed out")
    if smoke.get("command") and res.get("exit_code") != 0:
        return Sample(ms, f"exit code {res.get('exit_code')}")
    if smoke.get("url") and not 200 <= int(res.get("status") or 0) < 300:
        return Sample(ms, f"HTTP {res.get('status')}")
    state = _state(smoke, res)
    ok = state is not None and same_state(state, expect)
    return Sample(ms, None if ok else f"state {state!r} (expected {expect!r})")


def _batch(ctx: CheckContext, key: str) -> tuple[list[Sample], float, int, int] | None:
    fact = ctx.fact(key)
    if not fact or "results" not in fact:
        return None
    smoke = _smoke(ctx.profile) or {}
    results = [r for r in fact["results"] if isinstance(r, Mapping)]
    samples = [_sample(smoke, r) for r in results if not r.get("cut")]
    cut = len(results) - len(samples) + int(fact.get("not_started") or 0)
    return samples, float(fact.get("duration_s") or 0), int(fact.get("requested") or 0), cut


def _judge(ctx: CheckContext, f: Findings, key: str, label: str) -> dict[str, Any] | None:
    batch = _batch(ctx, key)
    if batch is None:
        error = ctx.fact(key).get("error")
        if error:
            f.fail(f"{label}: the probe could not run it ({error})", "Check smoke_workflow")
        return None
    name = key.rsplit(":", 1)[1]
    first = next((r for r in ctx.fact(key)["results"] if isinstance(r, Mapping)), {})
    if refused_run(f, f"the smoke workflow command ({label})", first):
        return {"name": name, "verdict": "not run"}
    samples, wall, requested, cut = batch
    summary = summarize(samples, wall, requested=requested, cut=cut)
    mark = verdict_mark(f)
    judge_errors(f, label, summary, 0.0)
    th = ctx.profile.get("thresholds") or {}
    if key == SEQ:
        limit = float(th.get("workflow_run_p95_s") or 0) * 1000 or None
        judge_latency(
            f,
            label,
            summary,
            {"p95_ms": limit},
            "Find the slow step of the smoke workflow (adapter latency, worker start-up) or "
            "raise thresholds.workflow_run_p95_s",
        )
    else:
        _judge_concurrent(f, label, summary, float(th.get("workflow_concurrent_max_s") or 0))
    judge_regression(ctx, f, summary, check=NAME, label=label, name=name)
    update_baseline(ctx, f, NAME, name, summary)
    return {"name": name, **summary, "verdict": mark.verdict(f)}


def _judge_concurrent(f: Findings, label: str, summary: Mapping[str, Any], limit: float) -> None:
    wall = float(summary.get("duration_s") or 0)
    if limit and wall > limit:  # over its threshold: NOT_READY, as judge_latency
        f.fail(
            f"{label}: {summary['n']} concurrent runs took {wall:.2f}s (> {limit:g}s)",
            "Check max_concurrent_workflows, the worker pool size and the adapters' rate limits, "
            "or raise thresholds.workflow_concurrent_max_s",
        )


def evaluate(ctx: CheckContext) -> Outcome:
    cfg = _config(ctx.profile)
    if cfg is None:
        return skipped("workflow_benchmark", _EXAMPLE)
    if _smoke(ctx.profile) is None:
        return skipped(
            "smoke_workflow", "smoke_workflow: {command: [...], expect_state: completed}"
        )
    f = Findings()
    rows = [
        row
        for key, label in ((SEQ, "sequential smoke workflow runs"), (CONC, "concurrent runs"))
        if (row := _judge(ctx, f, key, label)) is not None
    ]
    if not rows and not f.problems:
        f.fail(
            "no workflow run was timed (runs and concurrency are 0, or smoke_workflow has "
            "neither command nor url)",
            f"Configure {_EXAMPLE}",
        )
    f.details["benchmark"] = bench_block("workflow", rows)
    timed = {str(r.get("name")): r.get("n") for r in rows}
    how = [
        f"{timed['sequential']} run(s) alone" if "sequential" in timed else "",
        f"{timed['concurrent']} at once" if "concurrent" in timed else "",
    ]
    return f.outcome(
        f"Smoke workflow timings within thresholds: {' and '.join(h for h in how if h)}",
        subject="Workflow benchmark",
    )


register(
    NAME,
    title="Workflow benchmark",
    description=(
        "The smoke workflow's duration over N sequential runs (p95) and for K concurrent runs "
        "(wall time), run on the host like workflow_execution, within thresholds."
    ),
    categories=("performance",),
    suites=("production",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        "workflow_benchmark",
        "thresholds.workflow_run_p95_s",
        "thresholds.workflow_concurrent_max_s",
    ),
    aliases=("workflow_bench",),
    order=320,
    opt_in=True,
)(evaluate)
