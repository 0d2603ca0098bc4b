"""Baselines: accepted results, and the ratchet that ``validate --baseline`` applies.

A baseline maps host x check to the status accepted for it (with its message, for
people). Against a baseline a result *fails* only when it would fail the run
(status at or above the ``--fail-on`` threshold) **and** is worse than accepted — or
has no accepted entry at all (an accepted UNREACHABLE, INTERRUPTED or ERROR accepts only
itself: nothing was seen then). Known problems are reported, but do not fail CI; any
new or worse one does. Baselines live in the store under a name (``default``) and
travel as a JSON file (``readiness.baseline/1``) to keep in git.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..model import FleetReport, Status, utcnow
from ._text import plain
from .db import BaselineEntry, StoredRun, ts_text
from .diff import undetermined

__all__ = [
    "BASELINE_SCHEMA",
    "BaselineVerdict",
    "baseline_document",
    "entries_from_run",
    "judge",
    "load_baseline_file",
]

BASELINE_SCHEMA = "readiness.baseline/1"
# A baseline of 10,000 hosts x 20 checks is about 60 MB of JSON: above this it is not one.
MAX_BASELINE_BYTES = 64 * 1024 * 1024


def entries_from_run(
    run: StoredRun, hosts: Iterable[str] | None = None, check: str | None = None
) -> list[BaselineEntry]:
    wanted = None if hosts is None else set(hosts)
    now = ts_text(utcnow())
    return [
        BaselineEntry(r.host, r.check_name, r.status, r.message, run.summary.run_id, now)
        for h in run.report.hosts
        if wanted is None or h.host in wanted
        for r in h.results
        if check is None or r.check_name == check
    ]


@dataclass(frozen=True)
class Judged:
    host: str
    check: str
    status: Status
    accepted: Status | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "check": self.check,
            "status": self.status.value,
            "accepted": self.accepted.value if self.accepted else None,
            "message": self.message,
        }


@dataclass(frozen=True)
class BaselineVerdict:
    """Which failing results are known (accepted) and which are regressions."""

    name: str
    known: tuple[Judged, ...]
    regressions: tuple[Judged, ...]
    interrupted_code: int = 0

    @property
    def exit_code(self) -> int:
        if self.interrupted_code:
            return self.interrupted_code
        return 1 if self.regressions else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exit_code": self.exit_code,
            "known": [j.to_dict() for j in self.known],
            "regressions": [j.to_dict() for j in self.regressions],
        }


def judge(
    report: FleetReport,
    baseline: Mapping[tuple[str, str], BaselineEntry],
    *,
    fail_on: Status = Status.NOT_READY,
    name: str = "default",
) -> BaselineVerdict:
    known: list[Judged] = []
    regressions: list[Judged] = []
    for r in report.results:
        if r.status < fail_on:
            continue
        entry = baseline.get((r.host, r.check_name))
        judged = Judged(r.host, r.check_name, r.status, entry.status if entry else None, r.message)
        if entry is not None and _accepts(entry.status, r.status):
            known.append(judged)
        else:
            regressions.append(judged)
    code = report.exit_code() if report.interrupted else 0
    return BaselineVerdict(name, tuple(known), tuple(regressions), code)


def _accepts(accepted: Status, status: Status) -> bool:
    """An accepted outage (UNREACHABLE, INTERRUPTED, ERROR) accepts only itself: nothing was
    seen then, so a problem found now was never accepted (it passed as "less severe")."""
    if undetermined(accepted):
        return status is accepted
    return status <= accepted


def baseline_document(name: str, entries: Iterable[BaselineEntry]) -> str:
    ordered = sorted(entries, key=lambda e: (e.host, e.check))
    return json.dumps(
        {"schema": BASELINE_SCHEMA, "name": name, "entries": [e.to_dict() for e in ordered]},
        indent=2,
    )


def load_baseline_file(path: str | Path) -> tuple[str, list[BaselineEntry]]:
    """Parse an exported baseline; anything malformed is one clear line (exit 2)."""
    try:
        data = json.loads(_read_bounded(Path(path)).decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read baseline file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise UsageError(f"{path}: not a {BASELINE_SCHEMA} document")
    items = data.get("entries")
    if not isinstance(items, list):
        raise UsageError(f"{path}: 'entries' must be a list of results")
    entries = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        try:
            entries.append(
                BaselineEntry(
                    host=_text(item["host"]),
                    check=_text(item["check"]),
                    status=Status.parse(_text(item["status"])),
                    message=_text(item.get("message", "")),
                    source_run=_text(item.get("source_run", "")),
                    accepted_at=_text(item.get("accepted_at", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: entry {i}: {exc}") from None
        # a hand-merged file: the store's unique key made this an SQL error message
        first = seen.setdefault((entries[-1].host, entries[-1].check), i)
        if first != i:
            raise UsageError(
                f"{path}: entry {i} repeats entry {first} "
                f"({_shown(entries[-1].host)} / {_shown(entries[-1].check)})"
            )
    name = data.get("name", "default")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{path}: 'name' must be a non-empty string")
    return name, entries


def _read_bounded(path: Path) -> bytes:
    """The file's bytes; a FIFO waited forever for a writer and /dev/zero was read until
    memory ran out (a MemoryError traceback): only a regular file of at most
    :data:`MAX_BASELINE_BYTES` is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"cannot read baseline file {path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_BASELINE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BASELINE_BYTES:
        raise UsageError(
            f"cannot read baseline file {path}: larger than {MAX_BASELINE_BYTES // 2**20} MiB"
        )
    return data


def _shown(text: str) -> str:
    return plain(text)[:80]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
