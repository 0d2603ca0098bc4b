"""``repository_benchmark``: how long local git operations take on the app's repositories.

Opt-in (``repository_benchmark`` in the profile). The repositories are those of
the app's repos manifest, read as ``repository_access`` reads it. Each operation
(``git status --porcelain``, ``git rev-list --count HEAD``, ``git log -1``; never
a network fetch) is timed ON THE HOST by the probe's ``repeat`` op: ``repetitions``
runs per repository, bounded by ``time_cap_s`` per operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..appconfig import AppConfig
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
from ._common import unreadable
from ._owned import refused_run
from .repository_access import _git_code_paths, _manifest, git_argv, parse_manifest
from .repository_access import facts as manifest_facts

__all__ = ["DEFAULTS", "OPERATIONS", "evaluate", "facts", "followup"]

NAME = "repository_benchmark"

DEFAULTS: dict[str, Any] = {
    # None: SKIPPED. {repetitions: 5, time_cap_s: 10, operations: [status, rev_list, log]}
    "repository_benchmark": None,
    "thresholds": {"repository_op_p95_ms": 1000.0},
}

# Local, read-only operations (no network): name → git arguments.
OPERATIONS: dict[str, list[str]] = {
    "status": ["status", "--porcelain"],
    "rev_list": ["rev-list", "--count", "HEAD"],
    "log": ["log", "-1", "--format=%H %ct"],
}
MAX_REPOS = 50  # repositories timed per host (the rest are named in the message)
_EXAMPLE = "repository_benchmark: {repetitions: 5, time_cap_s: 10, operations: [status, log]}"


def _config(profile: Profile) -> Mapping[str, Any] | None:
    value = profile.get("repository_benchmark")
    return value if isinstance(value, Mapping) and value else None


def _operations(cfg: Mapping[str, Any]) -> list[str]:
    wanted = cfg.get("operations") or list(OPERATIONS)
    return [str(o) for o in wanted if str(o) in OPERATIONS]


def facts(profile: Profile) -> FactSpecs:
    """The manifest candidates, exactly as repository_access asks for them (same keys)."""
    return manifest_facts(profile) if _config(profile) is not None else {}


def _home_relative(path: str) -> bool:
    return path.strip().startswith("~")


def _key(i: int, op: str) -> str:
    return f"{NAME}:{i}:{op}"


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    cfg = _config(profile)
    path, fact = _manifest(profile, app, facts)
    if cfg is None or path is None or fact.get("text") is None:
        return {}
    repos, _ = parse_manifest(str(fact["text"]), profile)
    reps = max(1, min(int(cfg.get("repetitions") or 5), 1000))
    cap = float(cfg.get("time_cap_s") or 10)
    timeout = float(profile.threshold("repository_git_timeout_s"))
    specs: FactSpecs = {}
    for i, repo in enumerate(repos[:MAX_REPOS]):
        if _home_relative(repo.path):
            continue  # where it is depends on the app user's home: judged in evaluate
        for op in _operations(cfg):
            inner = {
                # The repository's config can run hooks: as its owner, never as root.
                "op": "run_as_owner",
                "owned_by": _git_code_paths(repo.host_path),
                "argv": git_argv(repo.host_path, *OPERATIONS[op]),
                "timeout": timeout,
                # Optional locks off: a benchmark must not rewrite the repository's index.
                "env": {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
                "max_bytes": 4096,
            }
            specs[_key(i, op)] = {
                "op": "repeat",
                "spec": inner,
                "runs": reps,
                "concurrency": 1,
                "time_cap": cap,
                "keep_bytes": 512,
            }
    return specs


def _sample(res: Mapping[str, Any]) -> Sample:
    ms = float(res.get("duration_s") or 0) * 1000
    if not res.get("started", True) or res.get("error"):
        return Sample(ms, f"did not run: {res.get('error') or 'not started'}")
    if res.get("timed_out"):
        return Sample(ms, "timed out")
    if res.get("exit_code") != 0:
        err = str(res.get("stderr") or "").strip().splitlines()
        return Sample(ms, f"exit code {res.get('exit_code')}: {err[-1][:160] if err else ''}")
    return Sample(ms)


def _judge_op(
    ctx: CheckContext, f: Findings, repo: str, op: str, fact: Mapping[str, Any]
) -> dict[str, Any]:
    results = [r for r in fact.get("results") or () if isinstance(r, Mapping)]
    name = f"{repo}:{op}"
    label = f"git {' '.join(OPERATIONS[op])} in {repo}"
    if results and refused_run(f, label, results[0]):
        return {"name": name, "target": repo, "verdict": "not run"}
    samples = [_sample(r) for r in results if not r.get("cut")]
    cut = len(results) - len(samples) + int(fact.get("not_started") or 0)
    summary = summarize(
        samples,
        float(fact.get("duration_s") or 0),
        requested=int(fact.get("requested") or 0),
        cut=cut,
    )
    mark = verdict_mark(f)
    judge_errors(f, label, summary, 0.0)
    limit = float(ctx.profile.threshold("repository_op_p95_ms"))
    how = (
        f"Speed up {repo} (git gc, git maintenance start, fewer untracked files, a faster "
        "disk) or raise thresholds.repository_op_p95_ms"
    )
    judge_latency(f, label, summary, {"p95_ms": limit}, how)
    judge_regression(ctx, f, summary, check=NAME, label=label, name=name)
    update_baseline(ctx, f, NAME, name, summary)
    return {"name": name, "target": repo, **summary, "verdict": mark.verdict(f)}


def evaluate(ctx: CheckContext) -> Outcome:
    cfg = _config(ctx.profile)
    if cfg is None:
        return skipped("repository_benchmark", _EXAMPLE)
    f = Findings()
    path, fact = _manifest(ctx.profile, ctx.app, ctx.facts)
    if path is None:
        f.unknown(
            "the app has no repos_path setting: no repositories to benchmark",
            f"Set repos_path in the app's settings (or {ctx.app.env_name('repos_path')})",
        )
        return f.outcome("", subject="Repository benchmark")
    if unreadable(fact):  # the audit account may not read it: nothing known, nothing timed
        f.unknown(
            f"cannot read the repos manifest {path} ({fact['error']})",
            "Rerun with --sudo (or as a user that may read the app's files)",
        )
        return f.outcome("", subject="Repository benchmark")
    if fact.get("exists") is False:
        f.unknown(
            f"the repos manifest {path} does not exist: no repositories to time",
            f"Create {path} listing the app's repositories, or fix repos_path",
        )
        return f.outcome("", subject="Repository benchmark")
    if fact.get("text") is None:
        f.unknown(
            f"the repos manifest {path} was not read in the first probe round",
            "Add it to repository_manifest_paths",
        )
        return f.outcome("", subject="Repository benchmark")
    repos, problem = parse_manifest(str(fact["text"]), ctx.profile)
    if problem:
        f.fail(f"the repos manifest {path} is invalid: {problem}", "Fix the manifest")
    for repo in repos[:MAX_REPOS]:
        if _home_relative(repo.path):
            # As repository_access: "~" is the home of the user the app runs as, not the
            # audit account's, and git does not expand it ("cannot change to '~/...'").
            f.unknown(
                f"cannot time git in repository {repo.name} ({repo.path}): its path starts "
                "with '~', whose home depends on the user the app runs as",
                f"Write {repo.name}'s path in the manifest absolute (e.g. /home/<service user>/"
                f"{repo.path.strip().lstrip('~/')})",
            )
    rows = [
        _judge_op(ctx, f, repo.name, op, ctx.fact(_key(i, op)))
        for i, repo in enumerate(repos[:MAX_REPOS])
        for op in _operations(cfg)
        if ctx.fact(_key(i, op)) and not _home_relative(repo.path)
    ]
    if not rows and not problem and not f.warnings:
        f.unknown(
            f"nothing was timed: the manifest {path} lists no repositories (or no known operation "
            f"is configured; known: {', '.join(OPERATIONS)})",
            "List the app's repositories in the manifest",
        )
    f.details["manifest"] = path
    f.details["benchmark"] = bench_block("repository", rows)
    timed = len({str(r["target"]) for r in rows})
    more = f" (the first {MAX_REPOS} of {len(repos)} in {path})" if len(repos) > MAX_REPOS else ""
    return f.outcome(
        f"{len(rows)} git operation(s) on {timed} repository(ies) within thresholds{more}",
        subject="Repository benchmark",
    )


register(
    NAME,
    title="Repository benchmark",
    description=(
        "Local git operations (status, rev-list, log; never a fetch) on every repository of the "
        "app's repos manifest, timed on the host, within thresholds."
    ),
    categories=("performance",),
    suites=("production",),
    facts=facts,
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=("repository_benchmark", "thresholds.repository_op_p95_ms"),
    aliases=("repository_bench", "git_benchmark"),
    order=330,
    opt_in=True,
)(evaluate)
