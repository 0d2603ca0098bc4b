"""``repository_access``: every repository in the app's repos manifest is there and usable.

The manifest is the app's ``repos_path`` setting (relative to ``app_root``),
a YAML file with ``repos: [{name, path}, ...]`` or a plain list of paths. The
probe reads it in the first round (from the candidate paths in the profile,
because the settings are not parsed yet); the follow-up round stats each
repository, its expected structure, asks ``git status --porcelain=v2 --branch``
(run as the repository's owner, never as root: see docs/security.md) and, when a
separate ``service_user`` is configured, tests readability as that user with
``runuser -u USER -- test -r PATH -a -x PATH`` (needs the probe to run as root:
``--sudo``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..hostdata import HostDataError, load_yaml
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import read_denied_to_another, unreadable

__all__ = [
    "DEFAULTS",
    "evaluate",
    "facts",
    "followup",
    "git_argv",
    "parse_manifest",
    "parse_status",
]

NAME = "repository_access"

DEFAULTS: dict[str, Any] = {
    # Where the first probe round looks for the repos manifest (relative → under app_root).
    # The app's effective repos_path should be one of them, or repositories cannot be inspected.
    "repository_manifest_paths": ["repos.yaml", "settings/repos.yaml"],
    # The user the service runs as (None: the probe's own user judges readability).
    "service_user": None,
    # Paths, relative to each repository, that must exist (e.g. [".git", "pyproject.toml"]).
    "repository_structure": [],
    # true: NOT_READY; "warn": DEGRADED; false: reported in details only.
    "repository_forbid_detached": True,
    "repository_forbid_dirty": True,
    "thresholds": {"repository_git_timeout_s": 10.0},
}


@dataclass(frozen=True)
class Repo:
    name: str
    path: str  # as written in the manifest
    host_path: str  # resolved on the host


def _manifest_key(path: str) -> str:
    return f"{NAME}:manifest:{path}"


def _candidates(profile: Profile) -> list[str]:
    raw = profile.get("repository_manifest_paths") or []
    items = [raw] if isinstance(raw, str) else list(raw)
    return [p for p in (profile.resolve(str(i)) for i in items) if p]


def facts(profile: Profile) -> FactSpecs:
    return {
        _manifest_key(p): {"op": "file", "path": p, "max_bytes": 256 * 1024}
        for p in _candidates(profile)
    }


def _manifest_path(profile: Profile, app: AppConfig) -> str | None:
    value = app.get("repos_path")
    return profile.resolve(str(value)) if value not in (None, "") else None


def parse_manifest(text: str, profile: Profile) -> tuple[list[Repo], str | None]:
    """Repositories of a manifest (``repos: [...]`` or a list); relative paths under app_root."""
    try:
        data = load_yaml(text, "manifest")  # the host wrote it: strict, alias-budgeted
    except HostDataError as exc:
        return [], str(exc).removeprefix("manifest").lstrip(":")
    items = data.get("repos") if isinstance(data, Mapping) else data
    if data is None or items is None:
        return [], None
    if not isinstance(items, list):
        return [], f"'repos' must be a list, got {type(items).__name__}"
    repos = []
    for i, item in enumerate(items):
        path = item.get("path") if isinstance(item, Mapping) else item
        if not isinstance(path, str) or not path.strip():
            return [], f"entry {i + 1} has no path: {item!r}"
        name = item.get("name") if isinstance(item, Mapping) else None
        host_path = profile.resolve(path.strip()) or path
        repos.append(Repo(str(name or posixpath.basename(path.rstrip("/"))), path, host_path))
    return repos, None


def _manifest(
    profile: Profile, app: AppConfig, facts: Mapping[str, Any]
) -> tuple[str | None, Mapping[str, Any]]:
    path = _manifest_path(profile, app)
    fact = facts.get(_manifest_key(path)) if path else None
    return path, fact if isinstance(fact, Mapping) else {}


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Stat, git-status and (as the service user) access-test every listed repository."""
    path, fact = _manifest(profile, app, facts)
    if path is None:
        return {}
    if not fact:  # not among the first-round candidates: read it now, to report on it
        return {_manifest_key(path): {"op": "file", "path": path, "max_bytes": 256 * 1024}}
    if fact.get("text") is None:
        return {}
    repos, _ = parse_manifest(str(fact["text"]), profile)
    timeout = float(profile.threshold("repository_git_timeout_s"))
    user = profile.get("service_user")
    structure = [str(s) for s in profile.get("repository_structure") or ()]
    specs: FactSpecs = {}
    for i, repo in enumerate(repos):
        key = f"{NAME}:repo:{i}"
        specs[f"{key}:stat"] = {"op": "stat", "path": repo.host_path}
        specs[f"{key}:git"] = {
            # The repository's config (core.fsmonitor, filters) is code its owner controls:
            # the probe runs git as that owner, never as root (docs/security.md).
            "op": "run_as_owner",
            "owned_by": _git_code_paths(repo.host_path),
            "argv": _git_status_argv(repo.host_path),
            "timeout": timeout,
            # Optional locks off: auditing must not rewrite the repository's index.
            "env": {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
            "max_bytes": 64 * 1024,
        }
        # A release pinned by tag (`git checkout v2.3.1`, Ansible's git module with
        # version: v2.3.1) is a detached HEAD by design: the tags at HEAD tell it apart.
        specs[f"{key}:tags"] = {
            **specs[f"{key}:git"],
            "argv": _git_tags_argv(repo.host_path),
            "max_bytes": 4096,
        }
        for rel in structure:
            specs[f"{key}:struct:{rel}"] = {
                "op": "stat",
                "path": posixpath.join(repo.host_path, rel),
            }
        if user:
            specs[f"{key}:access"] = {
                "op": "run",
                "argv": [
                    "runuser",
                    "-u",
                    str(user),
                    "--",
                    "test",
                    "-r",
                    repo.host_path,
                    "-a",
                    "-x",
                    repo.host_path,
                ],
                "timeout": 5,
                "max_bytes": 4096,
            }
    return specs


def _git_code_paths(path: str) -> list[str]:
    """What decides which code ``git status`` may run in a repository: its config's owners."""
    return [path, posixpath.join(path, ".git"), posixpath.join(path, ".git", "config")]


def git_argv(path: str, *args: str) -> list[str]:
    """``git ARGS`` in the repository at ``path``. safe.directory for this path only: a root
    probe must not trip over a repo owned by the service user ("dubious ownership");
    command-line config is allowed to set it."""
    return ["git", "-c", f"safe.directory={path}", "-C", path, *args]


def _git_status_argv(path: str) -> list[str]:
    return git_argv(path, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")


def _git_tags_argv(path: str) -> list[str]:
    return git_argv(path, "tag", "--points-at", "HEAD")


def parse_status(stdout: str) -> dict[str, Any]:
    """``git status --porcelain=v2 --branch`` → branch, head, detached, changed/untracked counts."""
    out: dict[str, Any] = {
        "branch": None,
        "head": None,
        "detached": False,
        "changed": 0,
        "untracked": 0,
        "unmerged": 0,
    }
    for line in stdout.splitlines():
        if line.startswith("# branch.oid "):
            out["head"] = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            out["detached"] = head == "(detached)"
            out["branch"] = None if out["detached"] else head
        elif line.startswith(("1 ", "2 ")):
            out["changed"] += 1
        elif line.startswith("u "):
            out["unmerged"] += 1
        elif line.startswith("? "):
            out["untracked"] += 1
    out["dirty"] = bool(out["changed"] or out["untracked"] or out["unmerged"])
    return out


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    path, fact = _manifest(ctx.profile, ctx.app, ctx.facts)
    f.details["manifest"] = path
    repos = _read_manifest(ctx, f, path, fact)
    if repos is None or not _inspected(ctx, f, path, repos):
        return f.outcome("", subject="Repository access")
    if not repos:
        f.warn(
            f"the repos manifest {path} lists no repositories",
            f"List the repositories the app works on in {path} (repos: [{{name, path}}])",
        )
    f.details["repositories"] = {
        repo.name: _judge_repo(ctx, f, i, repo) for i, repo in enumerate(repos)
    }
    return f.outcome(
        f"All {len(repos)} repositories are accessible, clean git checkouts",
        subject="Repository access",
    )


def _read_manifest(
    ctx: CheckContext, f: Findings, path: str | None, fact: Mapping[str, Any]
) -> list[Repo] | None:
    env = ctx.app.env_name("repos_path")
    if path is None:
        f.fail(
            "repos_path is not set, so the repositories cannot be located",
            f"Set repos_path in the settings (or {env}) to the repos manifest, e.g. repos.yaml",
        )
        return None
    if unreadable(fact):
        f.unknown(f"cannot read the repos manifest {path} ({fact['error']})", "Rerun with --sudo")
        return None
    if not fact.get("exists"):
        f.fail(
            f"the repos manifest {path} does not exist",
            f"Create {path} listing the repositories (repos: [{{name, path}}]) or fix repos_path / {env}",
        )
        return None
    if fact.get("text") is None:
        f.fail(
            f"the repos manifest {path} is not a readable file ({fact.get('error') or fact.get('type')})",
            f"Make {path} a readable YAML file",
        )
        return None
    repos, problem = parse_manifest(str(fact["text"]), ctx.profile)
    if problem:
        f.fail(f"the repos manifest {path} is invalid: {problem}", f"Fix {path}")
        return None
    return repos


def _inspected(ctx: CheckContext, f: Findings, path: str | None, repos: list[Repo]) -> bool:
    """False when the manifest was only found in the second round (repos not probed)."""
    if not repos or ctx.fact(f"{NAME}:repo:0:stat"):
        return True
    f.unknown(
        f"the repos manifest {path} was not among repository_manifest_paths, so its "
        f"{len(repos)} repositories were not inspected",
        f"Add {path} to repository_manifest_paths in the profile",
    )
    f.details["repositories"] = {r.name: {"path": r.host_path, "inspected": False} for r in repos}
    return False


def _judge_repo(ctx: CheckContext, f: Findings, i: int, repo: Repo) -> dict[str, Any]:
    key = f"{NAME}:repo:{i}"
    st = ctx.fact(f"{key}:stat")
    out: dict[str, Any] = {"path": repo.host_path}
    label = f"repository {repo.name} ({repo.host_path})"
    if st.get("exists") is None:
        f.unknown(f"cannot stat {label}: {st.get('error', 'not probed')}", "Rerun with --sudo")
        out["verdict"] = "unknown"
        return out
    if not st.get("exists") and repo.path.strip().startswith("~"):
        # Whose home "~" is (the service user's, if the app expands it at all) the audit
        # cannot know: "does not exist, clone it" was a guess.
        f.unknown(
            f"cannot tell where {label} is: its path starts with '~', whose home depends on "
            "the user the app runs as (and on whether it expands it)",
            f"Write {repo.name}'s path in the manifest absolute (e.g. /home/<service user>/"
            f"{repo.path.strip().lstrip('~/')})",
        )
        out["verdict"] = "unknown"
        return out
    if not st.get("exists") or st.get("type") != "dir":
        what = (
            "does not exist" if not st.get("exists") else f"is not a directory ({st.get('type')})"
        )
        f.fail(
            f"{label} {what}",
            f"Clone {repo.name} to {repo.host_path} (git clone <url> {repo.host_path}) or fix its path in the manifest",
        )
        out["verdict"] = "missing"
        return out
    out["owner"], out["mode"] = st.get("owner"), oct(int(st.get("mode") or 0))
    if not _judge_access(ctx, f, key, label, st=st, out=out):
        out.setdefault("verdict", "unreadable")
        return out
    _judge_structure(ctx, f, key, label, out)
    _judge_git(ctx, f, key, label, out)
    out.setdefault("verdict", "ok")
    return out


def _judge_access(
    ctx: CheckContext,
    f: Findings,
    key: str,
    label: str,
    *,
    st: Mapping[str, Any],
    out: dict[str, Any],
) -> bool:
    user = ctx.profile.get("service_user")
    probe_user = ctx.meta.get("user")
    if not user or str(user) == str(probe_user):
        out["readable_by"] = str(probe_user or "probe user")
        if not st.get("readable") and not user and read_denied_to_another(st, ctx.meta):
            # The audit account is not the service: its own "no" says nothing of the app's.
            out["verdict"] = "unknown"
            f.unknown(
                f"cannot tell whether the service can read {label}: the audit account "
                f"{probe_user} may not, and {st.get('owner')} owns it (mode {out['mode']})",
                "Set service_user in the profile and rerun with --sudo, so readiness tests "
                "access as the user the app runs as",
            )
        elif not st.get("readable"):
            f.fail(
                f"{label} is not readable by {out['readable_by']}",
                f"Fix the permissions of {st.get('path')}",
            )
        return bool(st.get("readable"))
    out["readable_by"] = str(user)
    res = ctx.fact(f"{key}:access")
    stderr = str(res.get("stderr") or "").strip()
    if not res.get("started") or res.get("timed_out") or (res.get("exit_code") != 0 and stderr):
        why = res.get("error") or stderr or "runuser timed out"
        if "does not exist" in why:
            f.fail(
                f"service user {user} does not exist on the host",
                f"Create the user {user} or fix service_user in the profile",
            )
            return False
        f.unknown(
            f"cannot test {label} as {user} ({why[:200]})",
            f"Rerun with --sudo so the probe (as root) can test access as {user}",
        )
        return True
    if res.get("exit_code") != 0:
        f.fail(
            f"{label} is not readable by the service user {user} (owner {st.get('owner')}, mode {out['mode']})",
            f"Give {user} read access: chown -R {user} {st.get('path')} or chmod o+rX",
        )
        return False
    return True


def _judge_structure(
    ctx: CheckContext, f: Findings, key: str, label: str, out: dict[str, Any]
) -> None:
    missing = []
    for rel in ctx.profile.get("repository_structure") or ():
        st = ctx.fact(f"{key}:struct:{rel}")
        if unreadable(st):
            # Maybe there: the audit account cannot look (never "lacks the structure").
            f.unknown(
                f"cannot tell whether {label} has {rel} ({st['error']})",
                "Rerun with --sudo so the probe can look inside the repository",
            )
        elif not st.get("exists"):
            missing.append(str(rel))
    if missing:
        out["missing_structure"] = missing
        f.fail(
            f"{label} lacks the expected structure: {', '.join(missing)}",
            "Check out the right revision/repository, or adjust repository_structure in the profile",
        )


def _judge_git(ctx: CheckContext, f: Findings, key: str, label: str, out: dict[str, Any]) -> None:
    res = ctx.fact(f"{key}:git")
    stderr = str(res.get("stderr") or "").strip()
    if res.get("refused"):
        out["git_refused"] = str(res["refused"])
        owner = res.get("owner")
        f.unknown(
            f"git status was not run for {label}: {res['refused']}",
            f"Rerun with --sudo so readiness can run git as {owner}"
            if owner
            else f"Give {out['path']} one owner (the app user) and no group/other write "
            f"(chown -R <app user> {out['path']}; chmod -R go-w {out['path']})",
        )
        return
    if res.get("run_as"):
        out["git_run_as"] = str(res["run_as"])
    if not res.get("started"):
        f.unknown(
            f"cannot run git for {label} ({res.get('error', 'not probed')})",
            "Install git on the host",
        )
        return
    if res.get("timed_out"):
        f.unknown(
            f"git status timed out for {label}",
            "Raise thresholds.repository_git_timeout_s or investigate the repository",
        )
        return
    if res.get("exit_code") != 0:
        if "not a git repository" in stderr.lower():
            out["verdict"] = "not a git repository"
            f.fail(f"{label} is not a git repository", f"Re-clone {out['path']} with git clone")
        else:
            f.unknown(
                f"git status failed for {label}: {stderr[:200]}",
                "Run `git status` in the repository on the host",
            )
        return
    status = parse_status(str(res.get("stdout") or ""))
    out["git"] = status
    if status["head"] == "(initial)":
        f.warn(f"{label} has no commits", f"Check out a real revision in {out['path']}")
    tags = _tags_at_head(ctx, key) if status["detached"] else []
    if tags:
        status["tags"] = tags
    _forbid(
        ctx,
        f,
        "repository_forbid_detached",
        status["detached"] and not tags,
        problem=f"{label} is on a detached HEAD ({str(status['head'])[:12]})",
        rec=f"Check out a branch in {out['path']} (git -C {out['path']} switch <branch>)",
    )
    what = f"{status['changed']} changed, {status['untracked']} untracked, {status['unmerged']} unmerged"
    _forbid(
        ctx,
        f,
        "repository_forbid_dirty",
        status["dirty"],
        problem=f"{label} has a dirty working tree ({what})",
        rec=f"Commit, stash or discard local changes in {out['path']} (git -C {out['path']} status)",
    )


def _tags_at_head(ctx: CheckContext, key: str) -> list[str]:
    res = ctx.fact(f"{key}:tags")
    if res.get("exit_code") != 0 or res.get("timed_out"):
        return []
    return [t.strip() for t in str(res.get("stdout") or "").splitlines() if t.strip()][:10]


def _forbid(
    ctx: CheckContext, f: Findings, key: str, found: bool, *, problem: str, rec: str
) -> None:
    rule = ctx.profile.get(key)
    if not found or rule is False or rule is None:
        return
    if isinstance(rule, str) and rule.strip().lower() == "warn":
        f.warn(problem, rec)
    else:
        f.fail(problem, rec)


register(
    NAME,
    title="Repository access",
    description=(
        "Every repository in the app's repos manifest exists, is readable by the service user, "
        "has the expected structure, and is a git checkout that is neither detached nor dirty "
        "(as the profile demands)."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "repository_manifest_paths",
        "service_user",
        "repository_structure",
        "repository_forbid_detached",
        "repository_forbid_dirty",
        "thresholds.repository_git_timeout_s",
    ),
    aliases=("repository_accessibility", "repos"),
    order=150,
)(evaluate)
