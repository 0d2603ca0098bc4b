"""Recording a finished run: who ran it, where, with which command line (secrets masked).

:func:`record_run` is what ``tasks.py`` calls after every validate, suite and
remediate run. Recording never changes a run's outcome: when the store cannot be
written the report has already been printed, a one-line warning goes to stderr,
and the exit code stays the audit's.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ReadinessError
from ..hostdata import printable
from ..model import FleetReport, utcnow
from ..redact import MASK, Redactor, is_secret_name
from ._text import url_password_masked, webhook_shown
from .db import RunMeta, RunSummary, Store, open_store
from .drift import DriftCollector
from .history import TrendPoint, trend_series
from .location import StoreLocation

__all__ = [
    "TREND_RUNS",
    "drift_collector",
    "profile_material",
    "record_run",
    "redact_argv",
    "report_trend",
    "run_meta",
    "stored_trend",
]

TREND_RUNS = 30  # runs per check in the HTML report's trend charts, this one included

_OPTION_WITH_VALUE = re.compile(r"^(?P<opt>--?[A-Za-z0-9_-]+)=(?P<value>.*)$", re.S)


# Options whose value is a URL that is itself a credential (watch --webhook): stored and
# shown as scheme://host/*** (a Slack or Teams hook's token is its path).
_WEBHOOK_OPTIONS = ("--webhook",)


def redact_argv(argv: Sequence[str], redactor: Redactor | None = None) -> str:
    """The command line as one string, with values of secret-named options, known
    secrets and URL passwords masked (``--store postgresql://u:***@db/x``)."""
    redactor = redactor or Redactor()
    out: list[str] = []
    mask_next = webhook_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if webhook_next:
            out.append(webhook_shown(arg))
            webhook_next = False
            continue
        match = _OPTION_WITH_VALUE.match(arg)
        if match and match["opt"] in _WEBHOOK_OPTIONS:
            out.append(f"{match['opt']}={webhook_shown(match['value'])}")
            continue
        if arg in _WEBHOOK_OPTIONS:
            webhook_next = True
        if match and is_secret_name(match["opt"].lstrip("-")):
            out.append(f"{match['opt']}={MASK}")
            continue
        if arg.startswith("-") and not match and is_secret_name(arg.lstrip("-")):
            mask_next = True
        out.append(url_password_masked(redactor.text(arg), arg))
    # An argument from a non-UTF-8 name (lone surrogates) is stored as \xNN escapes.
    return printable(" ".join(_quote(a) for a in out))


def _quote(arg: str) -> str:
    return arg if arg and not re.search(r"[\s'\"\\$`]", arg) else json.dumps(arg)


def profile_material(profile: str | Path | Mapping[str, Any] | None, kind: str) -> str:
    """What the profile fingerprint covers: the suite and the profile file's content.

    Host and group vars differ per host and are drift's business, not the run's.
    The material may hold secrets: it is only ever HMACed with the store's key.
    """
    if profile is None:
        body: Any = None
    elif isinstance(profile, Mapping):
        body = profile
    else:
        try:
            body = Path(profile).read_text(encoding="utf-8", errors="replace")
        except OSError:
            body = str(profile)
    return json.dumps({"kind": kind, "profile": body}, sort_keys=True, default=str)


def run_meta(
    kind: str,
    pattern: str,
    *,
    started: datetime,
    profile: str | Path | Mapping[str, Any] | None = None,
    argv: Sequence[str] | None = None,
) -> RunMeta:
    return RunMeta(
        kind=kind,
        pattern=pattern,
        command=redact_argv(
            [Path(sys.argv[0]).name, *sys.argv[1:]] if argv is None else list(argv)
        ),
        controller=socket.gethostname(),
        user=_user(),
        started_at=started,
        duration_s=max(0.0, (utcnow() - started).total_seconds()),
        profile_material=profile_material(profile, kind),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def record_run(
    location: StoreLocation,
    report: FleetReport,
    meta: RunMeta,
    *,
    keep: timedelta | None = None,
    warn: Any = None,
    redacted: bool = True,
    fingerprints: Mapping[str, Any] | None = None,
) -> str | None:
    """Record ``report``; return its run id, or None (with a warning) when that failed."""
    if not location.enabled:
        return None
    warn = warn or sys.stderr
    try:
        with open_store(location) as store:
            run_id = store.record(report, meta, redacted=redacted, fingerprints=fingerprints)
            if location.kind == "postgresql":  # shared: other controllers' clocks count
                _warn_clock_skew(store.clock_skew(), warn)
            if keep is not None:
                try:
                    store.prune(keep)
                except ReadinessError as exc:  # the run is in: say so, not "not recorded"
                    print(
                        f"readiness: warning: run {run_id} recorded, but history_keep could "
                        f"not prune older runs: {exc}",
                        file=warn,
                    )
    except ReadinessError as exc:
        print(f"readiness: warning: run not recorded: {exc}", file=warn)
        return None
    return run_id


CLOCK_SKEW_WARN = timedelta(minutes=5)


def _warn_clock_skew(skew: timedelta, warn: Any) -> None:
    """Runs are stamped by the recording controller's clock: say so when it is far from
    the shared store's, or `history`, `diff`'s choice of the previous run and the trends
    order this controller's runs wrongly among the others', with no word."""
    if abs(skew) <= CLOCK_SKEW_WARN:
        return
    way = "ahead of" if skew > timedelta(0) else "behind"
    print(
        f"readiness: warning: this controller's clock is {_span(abs(skew))} {way} the store's "
        "database server: its runs' start times are off by as much",
        file=warn,
    )


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{round(seconds / size)}{unit}"
    return f"{round(seconds)}s"


def drift_collector(location: StoreLocation, *, read_only: bool = False) -> DriftCollector | None:
    """A collector keyed with the store's HMAC key, or None when the store is off.

    Raises :class:`ReadinessError` when the store cannot be opened: the caller warns
    once and skips recording, rather than waiting for a dead database twice.
    ``read_only``: the key is only read (``--drift`` on a store this run cannot record in).
    """
    if not location.enabled:
        return None
    with open_store(location, create=not read_only) as store:
        return DriftCollector(store.hmac_key())


def report_trend(
    location: StoreLocation,
    report: FleetReport,
    *,
    kind: str,
    pattern: str,
    runs: int = TREND_RUNS,
    warn: Any = None,
) -> dict[str, list[TrendPoint]] | None:
    """Per check, the host counts of the last ``runs - 1`` recorded runs of this kind and
    host pattern, then this run's (not recorded yet: reports are written first). None when
    the store is off or holds no earlier run of the pattern; an unreadable store warns once
    and the report is written without a trend."""
    if not location.enabled:
        return None
    try:
        with open_store(location, create=False) as store:  # reading: a read-only store will do
            rows = store.trend(
                check=None, since=None, limit=max(1, runs - 1), pattern=pattern, kind=kind
            )
    except ReadinessError as exc:
        print(f"readiness: warning: no trend in the report: {exc}", file=warn or sys.stderr)
        return None
    if not rows:
        return None
    now = Counter((r.check_name, r.status) for h in report.hosts for r in h.results)
    current = [("this run", report.generated_at, c, st, n) for (c, st), n in now.items()]
    return trend_series([*rows, *current])


def stored_trend(
    store: Store, summary: RunSummary, report: FleetReport, *, runs: int = TREND_RUNS
) -> dict[str, list[TrendPoint]] | None:
    """The trend a stored run's HTML report had (``show RUN --format html``): the last
    ``runs`` recorded runs of its kind and host pattern up to and including it, the run
    itself labelled "this run" at its report's time, as :func:`report_trend` drew it
    live. None when no earlier run of the pattern is left in the store."""
    rows = store.trend(
        check=None,
        since=None,
        limit=max(1, runs),
        pattern=summary.pattern,
        kind=summary.kind,
        until_seq=summary.seq,
    )
    if not any(run_id != summary.run_id for run_id, *_rest in rows):
        return None
    relabelled = [
        ("this run", report.generated_at, check, status, n)
        if run_id == summary.run_id
        else (run_id, started, check, status, n)
        for run_id, started, check, status, n in rows
    ]
    return trend_series(relabelled)
