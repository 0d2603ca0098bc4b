"""``error_handling``: add the missing resilience settings (retry, circuit breaker, dead
letter queue, error categories) with recommended values, and create the DLQ directory."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ...model import CheckResult
from ...profile import Profile
from ..plan import Change, EnsureDir, Fix
from . import FixInput, creation_refusal, fixer
from ._settings import add_settings, settings_reads

DLQ_PATH = "data/dlq"
CATEGORIES = ["transient", "permanent", "validation", "timeout"]


def recommended(profile: Profile) -> dict[str, Any]:
    lo = int(profile.get_path("thresholds.retry_min_attempts", 1))
    hi = int(profile.get_path("thresholds.retry_max_attempts", 10))
    return {
        "retry": {
            "max_attempts": min(max(3, lo), hi),
            "backoff_base_s": 1.0,
            "backoff_max_s": 30.0,
        },
        "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
        "dead_letter_queue": {"enabled": True, "path": DLQ_PATH},
        "error_categories": list(CATEGORIES),
    }


_NOT_SET = re.compile(r"^(\S+) is not set$")


def _missing_dlq(_profile: Profile, result: CheckResult) -> list[str]:
    """The dead letter queue directory the check reported missing (from the host's
    settings): read before it is planned, like the default one."""
    d = result.details
    return [
        p.split("dead letter queue directory ", 1)[1].rsplit(" does not exist", 1)[0]
        for p in map(str, (*(d.get("problems") or ()), *(d.get("warnings") or ())))
        if "dead letter queue directory " in p and p.endswith(" does not exist")
    ]


@fixer(
    "error_handling",
    summary="add missing retry/circuit breaker/DLQ/error category settings; create the DLQ directory",
    reads=lambda p: [*settings_reads(p), *[d for d in [p.resolve(DLQ_PATH)] if d]],
    named=_missing_dlq,
)
def fix(inp: FixInput) -> Fix | None:
    prefix = str(inp.profile.get("resilience_settings") or "resilience").strip(".")
    rec = recommended(inp.profile)
    inserts: list[tuple[str, Any]] = []
    addresses: list[str] = []
    changes: list[Change] = []
    section_missing = inp.matching(f"no {prefix} section in the settings")
    if section_missing:
        inserts.append((prefix, rec))
        addresses += section_missing
    for problem in inp.findings:
        m = _NOT_SET.match(problem)
        if m and m.group(1).startswith(prefix + "."):
            value = _lookup(rec, m.group(1)[len(prefix) + 1 :])
            if value is not None:
                inserts.append((m.group(1), value))
                addresses.append(problem)
    dlq = f"{prefix}.dead_letter_queue"
    if inp.matching(f"{dlq} is not configured"):
        inserts.append((dlq, rec["dead_letter_queue"]))
        addresses += inp.matching(f"{dlq} is not configured")
    cats = inp.matching(f"{prefix}.error_categories is not defined")
    if cats:
        inserts.append((f"{prefix}.error_categories", rec["error_categories"]))
        addresses += cats
    edit, notes = add_settings(inp, inserts, "add resilience settings")
    if edit is not None:
        changes.append(edit)
    # The DLQ path is only planned along with the settings that name it.
    planned = bool(section_missing or inp.matching(f"{dlq} is not configured")) and edit is not None
    dlq_dir = _dlq_dir(inp, dlq, planned)
    taken = creation_refusal(inp.file(dlq_dir[0].path)) if dlq_dir is not None else None
    if dlq_dir is not None and not _inside(dlq_dir[0].path, inp.profile.app_root):
        notes.append(
            f"refused: the dead letter queue directory {dlq_dir[0].path} (from the host's "
            f"settings) is outside app_root {inp.profile.app_root}; create it yourself"
        )
    elif dlq_dir is not None and taken:
        notes.append(taken)  # a planted link at it or above it: the applier would refuse
    elif dlq_dir is not None:
        changes.append(dlq_dir[0])
        addresses += dlq_dir[1]
    if not changes and not notes:
        return None
    return Fix(
        "error_handling", "configure error handling", tuple(changes), tuple(addresses), tuple(notes)
    )


def _dlq_dir(inp: FixInput, dlq: str, planned: bool) -> tuple[EnsureDir, list[str]] | None:
    missing = inp.matching("dead letter queue directory", "does not exist")
    if planned:
        path = inp.profile.resolve(DLQ_PATH)
        if path and inp.file(path).kind == "dir":
            return None  # already there: nothing to create (and its owner is left alone)
    elif missing:
        path = (
            missing[0].split("dead letter queue directory ", 1)[1].rsplit(" does not exist", 1)[0]
        )
    else:
        return None
    if not path:
        return None
    # The path comes from the host's settings: created only inside app_root (docs/security.md).
    root = inp.profile.app_root
    return EnsureDir(path, 0o750, owner_of=root, confine_to=root), missing


def _inside(path: str, root: str) -> bool:
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return posixpath.commonpath([path, root]) == root


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
