"""``readiness history``: the runs a store holds, and per host x check timelines.

Pure functions from store rows to text; the store calls live in :mod:`.cli`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ..errors import UsageError
from ..model import Status
from ..tables import tabulate
from ._text import md_cell, plain
from .db import RunSummary, ts_text

__all__ = [
    "FORMATS",
    "TrendPoint",
    "config_keep",
    "match_hosts",
    "parse_age",
    "parse_since",
    "render_runs",
    "render_timeline",
    "render_trend",
    "sparkline",
    "trend_series",
]

FORMATS = ("text", "table", "json", "markdown")
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


_MAX_AGE = timedelta(days=36525)  # 100 years: beyond it a date before year 1 overflows


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w``, ``45s`` → a timedelta (anything else: exit 2)."""
    match = _AGE.match(text or "")
    if not match:
        raise UsageError(f"bad age {text!r}: use a number and a unit s/m/h/d/w, e.g. 7d or 12h")
    if int(match[1]) <= 0:
        raise UsageError(f"bad age {text!r}: must be above 0, e.g. 7d or 12h")
    try:
        age = timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:  # 100000000000d: more days than timedelta holds
        age = None
    if age is None or age > _MAX_AGE:
        raise UsageError(f"bad age {text!r}: at most 100 years ({_MAX_AGE.days}d)")
    return age


def config_keep(config: Mapping[str, Any]) -> Any:
    """``readiness.history_keep`` from invoke.yaml (e.g. ``90d``), parsed, or None.

    Here, not in :mod:`.cli`: every recorded run reads it, and the store's tasks are not
    imported for that (start-up)."""
    value = config.get("history_keep")
    if not value:
        return None
    try:
        return parse_age(str(value))
    except UsageError as exc:
        raise UsageError(f"readiness.history_keep: {exc}") from None


def parse_since(text: str, now: datetime) -> datetime:
    """An age (``7d``) before ``now`` or an ISO date/time (UTC when no zone is given)."""
    if _AGE.match(text or ""):
        try:
            return now - parse_age(text)
        except UsageError as exc:
            raise UsageError(f"--since: {exc}") from None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad --since {text!r}: an age like 7d, or a date like 2026-11-01"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=now.tzinfo)
    try:  # 0001-01-01T00:00+01:00 is before year 1 in UTC: a traceback, not exit 2
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise UsageError(f"bad --since {text!r}: out of range in UTC") from None


def match_hosts(
    pattern: str, known: Iterable[str], groups: Mapping[str, Sequence[str]]
) -> list[str]:
    """Hosts whose name or one of whose groups matches one of the comma/colon-separated globs.

    Stored runs keep host names and groups, not the inventory: ``&``/``!`` and
    regex patterns of live inventories do not apply here.
    """
    globs = [g.strip() for g in re.split(r"[,:]", pattern) if g.strip()]
    if not globs:
        raise UsageError("empty --hosts pattern")
    out = []
    for host in known:
        names = [host, *groups.get(host, ())]
        if "all" in globs or any(fnmatch.fnmatchcase(n, g) for g in globs for n in names):
            out.append(host)
    return out


def _counts(summary: Mapping[str, int]) -> str:
    parts = []
    for status in Status:
        n = summary.get(status.value, 0)
        if n:
            parts.append(f"{n} {status.value}")
    return ", ".join(parts) or "no results"


def render_runs(runs: Sequence[RunSummary], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {"schema": "readiness.history/1", "runs": [r.to_dict() for r in runs]}, indent=2
        )
    if not runs:
        return "no runs recorded"
    headers = [
        "run",
        "started (UTC)",
        "kind",
        "hosts pattern",
        "hosts",
        "verdict",
        "exit",
        "results",
        "by",
    ]
    rows = [
        [
            r.run_id,
            ts_text(r.started_at)[:19].replace("T", " "),
            r.kind,
            r.pattern,
            r.host_count,
            r.overall_status.label,
            r.exit_code,
            _counts(r.summary),
            f"{r.user}@{r.controller}",
        ]
        for r in runs
    ]
    return _table(rows, headers, fmt)


def _tablefmt(fmt: str) -> str:
    return {"markdown": "github", "table": "grid"}.get(fmt, "simple")


def _table(rows: list[list[object]], headers: list[str], fmt: str) -> str:
    """Host-provided text made inert: Markdown cells escaped, control characters shown."""
    if fmt == "markdown":
        rows = [[md_cell(str(c)) for c in row] for row in rows]
        return tabulate(rows, headers=headers, tablefmt="github")
    return plain(tabulate(rows, headers=headers, tablefmt=_tablefmt(fmt)))


def render_timeline(rows: Sequence[tuple[str, datetime, str, str, Status]], fmt: str) -> str:
    """Per host x check, its status in each run (oldest → newest), e.g. ``✓✓⚠✗``."""
    if fmt == "json":
        data: dict[str, dict[str, list[dict[str, str]]]] = {}
        for run_id, when, host, check, status in rows:
            data.setdefault(host, {}).setdefault(check, []).append(
                {"run_id": run_id, "started_at": ts_text(when), "status": status.value}
            )
        return json.dumps({"schema": "readiness.timeline/1", "hosts": data}, indent=2)
    if not rows:
        return "no results recorded"
    series: dict[tuple[str, str], list[Status]] = {}
    last_seen: dict[tuple[str, str], datetime] = {}
    for _run, when, host, check, status in rows:
        series.setdefault((host, check), []).append(status)
        last_seen[(host, check)] = when
    table = [
        [
            host,
            check,
            "".join(s.symbol for s in statuses),
            statuses[-1].label,
            len(statuses),
            ts_text(last_seen[(host, check)])[:19].replace("T", " "),
        ]
        for (host, check), statuses in sorted(series.items())
    ]
    headers = ["host", "check", "timeline (old → new)", "latest", "runs", "last run (UTC)"]
    return _table(table, headers, fmt)


_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """One character per value in [0, 1]: ▁ (0) … █ (1)."""
    return "".join(_SPARK[min(len(_SPARK) - 1, int(v * (len(_SPARK) - 1) + 0.5))] for v in values)


class TrendPoint(NamedTuple):
    """One run of one check: hosts READY (or SKIPPED), DEGRADED, NOT_READY-or-worse."""

    run_id: str
    started_at: datetime
    ready: int
    degraded: int
    not_ready: int


def trend_series(
    rows: Iterable[tuple[str, datetime, str, Status, int]],
) -> dict[str, list[TrendPoint]]:
    """Store trend rows (run id, time, check, status, hosts) → per check, one point per
    run, oldest → newest (``history --trend`` and the HTML report's trend charts)."""
    counts: dict[str, dict[str, list[int]]] = {}
    when: dict[str, datetime] = {}
    for run_id, started, check, status, n in rows:
        point = counts.setdefault(check, {}).setdefault(run_id, [0, 0, 0])
        point[0 if status <= Status.READY else 1 if status is Status.DEGRADED else 2] += n
        when[run_id] = started
    return {
        check: [TrendPoint(r, when[r], *c) for r, c in points.items()]
        for check, points in counts.items()
    }


def render_trend(rows: Sequence[tuple[str, datetime, str, Status, int]], fmt: str) -> str:
    """Per check, per run: hosts READY / DEGRADED / NOT_READY-or-worse; the sparkline is the
    share of READY (or SKIPPED) hosts, oldest → newest."""
    series = trend_series(rows)
    if fmt == "json":
        data = {
            check: [
                {
                    "run_id": p.run_id,
                    "started_at": ts_text(p.started_at),
                    "ready": p.ready,
                    "degraded": p.degraded,
                    "not_ready": p.not_ready,
                }
                for p in points
            ]
            for check, points in series.items()
        }
        return json.dumps({"schema": "readiness.trend/1", "checks": data}, indent=2)
    if not series:
        return "no results recorded"
    table: list[list[object]] = []
    for check, points in sorted(series.items()):
        shares = [p.ready / max(1, p.ready + p.degraded + p.not_ready) for p in points]
        last = points[-1]
        table.append(
            [check, sparkline(shares), last.ready, last.degraded, last.not_ready, len(points)]
        )
    headers = ["check", "ready share (old → new)", "ready", "degraded", "not ready+", "runs"]
    return _table(table, headers, fmt)
