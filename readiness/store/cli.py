"""What the store's tasks do between their flags and their output (testable without invoke).

Each function opens the store, does one thing, and returns ``(text, exit code)``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .. import report as report_mod
from ..errors import UsageError, refuse_unless_writable
from ..model import utcnow
from .baseline import (
    baseline_document,
    entries_from_run,
    load_baseline_file,
)
from .db import BaselineEntry, RunSummary, open_store, store_where, with_run_summary
from .diff import FORMATS as DIFF_FORMATS
from .diff import diff_reports, render_diff
from .drift import (
    DriftCollector,
    drift_across_hosts,
    drift_over_time,
    item_check,
    render_drift,
)
from .history import FORMATS as HISTORY_FORMATS
from .history import (
    config_keep,
    match_hosts,
    parse_age,
    parse_since,
    render_runs,
    render_timeline,
    render_trend,
)
from .location import StoreLocation
from .record import stored_trend

DRIFT_FORMATS = ("text", "table", "json", "markdown")

__all__ = [
    "baseline_accept_task",
    "baseline_export_task",
    "baseline_import_task",
    "config_keep",
    "diff_task",
    "drift_section",
    "drift_task",
    "history_task",
    "load_baseline",
    "prune_task",
    "show_task",
]


def _fmt(fmt: str, valid: tuple[str, ...]) -> str:
    if fmt not in valid:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(valid)})")
    return fmt


def history_task(
    location: StoreLocation,
    *,
    hosts: str | None = None,
    check: str | None = None,
    since: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    fmt: str = "text",
    trend: bool = False,
    warn: TextIO | None = None,
) -> tuple[str, int]:
    """Runs (newest first); with --hosts or --check, per host x check timelines instead;
    with --trend, per check counts of ready/degraded/not ready hosts per run."""
    _fmt(fmt, HISTORY_FORMATS)
    if limit <= 0:
        raise UsageError(f"--limit must be at least 1 (got {limit})")
    now = utcnow()
    start = parse_since(since, now) if since else None
    if start is not None and start > now:
        # a local time typed without its zone is read as UTC: ahead of UTC, "since 09:00"
        # was in the future and the answer "no runs" gave no hint why
        _warn(
            warn,
            f"--since {since} is {start:%Y-%m-%d %H:%M:%S} UTC, after this controller's clock "
            f"({now:%Y-%m-%d %H:%M:%S} UTC); a time without a zone is UTC",
        )
    given = {"--hosts": hosts, "--check": check, "--since": since, "--kind": kind}
    filters = " ".join(f"{flag} {value}" for flag, value in given.items() if value is not None)

    def nothing(what: str) -> str:
        """An empty answer says which store, and names the filters only when there are some."""
        said = f"no {what} recorded in {store_where(location)}"
        return f"{said} matching {filters}" if filters else said

    with open_store(location, create=False) as store:
        if hosts is None and check is None and not trend:
            runs = store.runs(since=start, kind=kind, limit=limit)
            return (render_runs(runs, fmt) if runs or fmt == "json" else nothing("runs")), 0
        chosen = None
        if hosts is not None:
            groups = store.host_groups(limit)
            chosen = match_hosts(hosts, groups, groups)
        if trend:
            counts = store.trend(check=check, since=start, limit=limit, kind=kind, hosts=chosen)
            if not counts and fmt != "json":
                return nothing("results"), 0
            return render_trend(counts, fmt), 0
        rows = store.timeline(hosts=chosen, check=check, since=start, limit=limit)
        if not rows and fmt != "json":
            return nothing("results"), 0
        return render_timeline(rows, fmt), 0


def show_task(location: StoreLocation, run: str, fmt: str = "text") -> tuple[str, int]:
    """Re-render a stored run in any report format (exit 0: showing is not judging)."""
    if fmt not in report_mod.FORMATS:
        raise UsageError(f"unknown format {fmt!r} (valid: {', '.join(report_mod.FORMATS)})")
    trend = None
    with open_store(location, create=False) as store:
        stored = store.load(run)
        if fmt == "html":  # the trend charts as of that run, as the live report drew them
            trend = stored_trend(store, stored.summary, stored.report)
    report = stored.report
    if fmt == "json":
        report = with_run_summary(report, stored.summary)
    if fmt == "html":
        return report_mod.render(report, fmt, trend=trend), 0
    return report_mod.render(report, fmt), 0


def prune_task(location: StoreLocation, keep: str) -> tuple[str, int]:
    try:
        age = parse_age(keep)
    except UsageError as exc:
        raise UsageError(f"--keep: {exc}") from None
    with open_store(location, create=False) as store:
        removed = store.prune(age)
    return f"pruned {removed} run(s) older than {keep} from {store_where(location)}", 0


def diff_task(
    location: StoreLocation,
    old: str | None,
    new: str | None,
    fmt: str = "text",
    warn: TextIO | None = None,
) -> tuple[str, int]:
    """Exit 1 when anything got worse from OLD to NEW (default: the two latest runs of the
    latest run's pattern and kind), else 0.

    Runs named the wrong way round are compared as given (going back in time is a
    question one may ask), with a warning on ``warn``: silently, a regression read as
    "resolved" and the exit code as 0.
    """
    _fmt(fmt, DIFF_FORMATS)
    with open_store(location, create=False) as store:
        new_run = store.resolve(new or "latest")
        if old:
            old_run = store.resolve(old)
        else:
            found = store.previous(new_run)
            if found is None:
                raise UsageError(
                    f"run {new_run.run_id} is the first of pattern {new_run.pattern!r} "
                    f"({new_run.kind}): nothing to compare with; name --old RUN"
                )
            old_run = found
        a, b = store.load(old_run), store.load(new_run)
    if old_run.run_id == new_run.run_id:
        _warn(warn, f"--old and --new are the same run {old_run.run_id}: nothing can differ")
    elif old_run.started_at > new_run.started_at:
        _warn(
            warn,
            f"--old {old_run.run_id} started after --new {new_run.run_id}: showing what "
            "changed going back in time (swap them for what the newer run changed)",
        )
    diff = diff_reports(a.report, b.report, old_run.run_id, new_run.run_id)
    return render_diff(diff, fmt, (old_run, new_run)), diff.exit_code


def _warn(stream: TextIO | None, message: str) -> None:
    print(f"readiness: warning: {message}", file=stream or sys.stderr, flush=True)


_ACCEPT_SCAN = 1000  # runs looked through for the latest audit (bounded: a long history)
_INTERRUPTED_CODES = (130, 143)  # the exit code recorded for a run cut short by a signal


def baseline_accept_task(
    location: StoreLocation,
    run: str | None = None,
    *,
    hosts: str | None = None,
    check: str | None = None,
    name: str = "default",
) -> tuple[str, int]:
    """Accept a run (default: the latest audit, validate or a suite) as the baseline; with
    --hosts/--check only those results are accepted (added to the baseline, the rest kept)."""
    with open_store(location, create=False) as store:
        if run is None:
            # not a remediate run: it records only the checks it fixes (a baseline of those
            # made `validate --baseline` call every other check a new problem); nor one
            # cut short (130/143): the hosts it never got to were accepted as INTERRUPTED,
            # replacing their accepted statuses
            audits = [
                r
                for r in store.runs(limit=_ACCEPT_SCAN)
                if r.kind != "remediate" and r.exit_code not in _INTERRUPTED_CODES
            ]
            if not audits:
                raise UsageError(
                    f"no complete validate or suite run among the newest {_ACCEPT_SCAN} runs "
                    f"in {store_where(location)}: pass --run RUN"
                )
            stored = store.load(audits[0])
        else:
            stored = store.load(run)
        chosen = None
        if hosts is not None:
            names = [h.host for h in stored.report.hosts]
            groups = {h.host: h.groups for h in stored.report.hosts}
            chosen = match_hosts(hosts, names, groups)
        entries = entries_from_run(stored, chosen, check)
        if not entries:
            raise UsageError(f"run {stored.summary.run_id} has no result matching --hosts/--check")
        partial = hosts is not None or check is not None
        count = store.set_baseline(entries, name=name, replace_all=not partial)
    how = "added to" if partial else "now form"
    return f"{count} result(s) of run {stored.summary.run_id} {how} baseline '{name}'", 0


def baseline_export_task(
    location: StoreLocation, output: str | None = None, name: str = "default"
) -> tuple[str, int]:
    with open_store(location, create=False) as store:
        entries = store.baseline(name)
    if not entries:
        raise UsageError(f"no baseline '{name}' in {store_where(location)}")
    doc = baseline_document(name, entries.values())
    if not output or output == "-":
        return doc, 0
    target = Path(output).expanduser()
    # as cp and tar: the directory must exist (a typo in it made a new directory tree); a
    # symlink is written through, so the directory of the file it names counts
    directory = Path(os.path.realpath(target)).parent
    if location.kind == "sqlite" and location.path is not None:
        db = os.path.realpath(location.path.expanduser())
        if os.path.realpath(target) in {db, f"{db}-wal", f"{db}-shm"}:
            # the store was replaced by the JSON (its history gone), exit 0
            raise UsageError(f"--output {output}: cannot write: it is the results store")
    if not directory.is_dir():
        raise UsageError(f"--output {output}: cannot write: no such directory {directory}")
    # --save's and --report's check: the file is written beside and renamed over, which
    # replaced /dev/stdout, /dev/full or a FIFO with a regular file (as root, in /dev)
    refuse_unless_writable(target, f"--output {output}")  # flag and value, as --save says
    try:
        report_mod.save(doc, target)
    except OSError as exc:  # a directory, /proc/x, a read-only place: one line, exit 2
        raise UsageError(f"--output {output}: cannot write: {exc.strerror or exc}") from None
    return f"baseline '{name}' ({len(entries)} result(s)) written to {output}", 0


def baseline_import_task(
    location: StoreLocation, path: str, name: str | None = None
) -> tuple[str, int]:
    file_name, entries = load_baseline_file(path)
    target = name or file_name
    with open_store(location) as store:
        count = store.set_baseline(entries, name=target, replace_all=True)
    return f"baseline '{target}' replaced by {count} result(s) from {path}", 0


def load_baseline(
    location: StoreLocation, name: str = "default"
) -> dict[tuple[str, str], BaselineEntry]:
    """The stored baseline's entries; none is exit 2, never a silent pass. Read before the
    audit, so a missing baseline costs no fleet-wide run."""
    with open_store(location, create=False) as store:
        entries = store.baseline(name)
    if not entries:
        raise UsageError(
            f"no baseline '{name}' in {store_where(location)}: run `readiness baseline-accept` "
            "or `readiness baseline-import FILE` first"
        )
    return entries


def drift_task(
    location: StoreLocation,
    *,
    run: str | None = None,
    since: str | None = None,
    hosts: str | None = None,
    fmt: str = "text",
    warn: TextIO | None = None,
) -> tuple[str, int]:
    """Across hosts (default) or, with ``since``, over time; exit 1 when drift is found."""
    _fmt(fmt, DRIFT_FORMATS)
    with open_store(location, create=False) as store:
        # Without --run, the newest run that has fingerprints: a remediate run since then
        # (it records none) does not hide the fleet's drift.
        target = (store.resolve(run) if run else store.latest_fingerprinted()) or store.resolve(
            "latest"
        )
        now = store.fingerprints(target)
        old_run = store.resolve(since) if since else None
        if old_run is not None:
            _refuse_backwards_drift(old_run, target, since or "", run, warn)
        before = store.fingerprints(old_run) if old_run else {}
        target_report = store.load(target).report
        groups = {h.host: h.groups for h in target_report.hosts}
        not_audited: set[str] = set()
        if old_run:  # a host only in the older run is matched by its groups then
            old_report = store.load(old_run).report
            old_groups = {h.host: h.groups for h in old_report.hosts}
            groups = {**old_groups, **groups}
            # the checks run in only one of the two: their items are not compared
            not_audited = set(old_report.check_names) ^ set(target_report.check_names)
    # --since a run without any (a remediate run: `drift --since latest~1` right after one)
    # compared nothing and answered "no drift", exit 0
    for run_, fps in ((target, now), *([(old_run, before)] if old_run else [])):
        if not fps:
            raise UsageError(
                f"run {run_.run_id} has no drift fingerprints (recorded before they existed, "
                "or remediate)"
            )
    if hosts is not None:
        chosen = set(match_hosts(hosts, [*now, *before], groups))
        if not chosen:  # a typo read as "no drift", exit 0 (a CI gate passed)
            runs = (
                f"runs {old_run.run_id} and {target.run_id}" if old_run else f"run {target.run_id}"
            )
            raise UsageError(f"--hosts {hosts!r} matches no host with fingerprints in {runs}")
        now = {h: v for h, v in now.items() if h in chosen}
        before = {h: v for h, v in before.items() if h in chosen}
    if old_run:
        findings = drift_over_time(before, now, not_audited)
        skipped = sorted(
            {
                check
                for fps in (*before.values(), *now.values())
                for item in fps
                if (check := item_check(item)) in not_audited
            }
        )
        title = (
            f"DRIFT on each host from run {old_run.run_id} to {target.run_id}: "
            f"{len(findings)} change(s)"
        )
        # A host audited in only one of the runs (added, removed, or unreachable in the
        # other) is not compared: say so, or "no drift" read as the whole fleet's.
        not_compared = {
            old_run.run_id: sorted(set(before) - set(now)),
            target.run_id: sorted(set(now) - set(before)),
        }
        drift = render_drift(findings, fmt, title, not_compared, skipped)
        return drift, 1 if findings else 0
    findings = drift_across_hosts(now)
    title = (
        f"DRIFT across {len(now)} host(s) of run {target.run_id}: {len(findings)} odd one(s) out"
    )
    return render_drift(findings, fmt, title), 1 if findings else 0


def _refuse_backwards_drift(
    old: RunSummary, new: RunSummary, since: str, run: str | None, warn: TextIO | None
) -> None:
    """``--since`` must name an earlier run than the one compared (``--run``, default the
    newest with fingerprints). ``drift --since latest`` compared that run with itself and
    ``--since`` a newer run compared backwards (added read as removed): both answered "no
    drift" or a reversed one, exit 0/1, with no word. Exit 2 now. When the start times and
    the recording order disagree (a long run recorded after a later, quicker one, or two
    controllers whose clocks differ), which is earlier cannot be told: a warning."""
    what = f"--run {run}" if run else "the newest run with fingerprints"
    named = f"--since {since} (run {old.run_id})"
    if old.seq == new.seq:
        raise UsageError(
            f"{named} is {what}: a run compared with itself shows no drift; name an earlier "
            "run (e.g. --since latest~1)"
        )
    started_after = old.started_at > new.started_at
    recorded_after = old.seq > new.seq
    if started_after and recorded_after:
        raise UsageError(
            f"{named} is newer than {what} ({new.run_id}): --since names the earlier run; swap them"
        )
    if started_after or (recorded_after and old.started_at < new.started_at):
        how = "started after" if started_after else "was recorded after"
        _warn(
            warn,
            f"{named} {how} {new.run_id} (runs that overlapped, or controllers whose clocks "
            "differ): which one is earlier cannot be told; compared as given",
        )


def drift_section(collector: DriftCollector) -> dict[str, Any]:
    """The ``drift`` key ``validate --drift`` adds to the report (JSON) and its text."""
    findings = drift_across_hosts(collector.hosts)
    return {"hosts": len(collector.hosts), "findings": [f.to_dict() for f in findings]}
