"""Prometheus exposition text, for node-exporter's textfile collector (or any scrape).

Metrics (docs/reports.md):

- ``readiness_check_status{host,check,status}`` 1 for each result's status (one series per
  result, not one per possible status: 7× fewer series on a big fleet, and a status change
  ends the old series at the next scrape);
- ``readiness_host_up{host}`` 1 when the host was audited, 0 when unreachable/interrupted;
- ``readiness_run_duration_seconds`` and ``readiness_last_run_timestamp_seconds``;
- ``readiness_run_exit_code``, the exit code the CLI gives this report.

prometheus-client writes the text, so label values are escaped by the library that defines
the format; control characters are removed from host and check names first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from ..model import FleetReport, Status
from ._clean import one_line

__all__ = ["collect_metrics", "render_prometheus", "run_duration_s"]

_NOT_AUDITED = (Status.UNREACHABLE, Status.INTERRUPTED)


def run_duration_s(report: FleetReport) -> float:
    """Seconds from the first check's start to the report (never less than the slowest
    host): the model keeps no run start, so the results' own timestamps bound it."""
    slowest = max((h.duration_s for h in report.hosts), default=0.0)
    starts = [r.timestamp for r in report.results]
    if not starts:
        return slowest
    span = (report.generated_at - min(starts)).total_seconds()
    return max(span, slowest, 0.0)


def collect_metrics(
    report: FleetReport, fail_on: Status = Status.NOT_READY, *, run_metrics: bool = True
) -> list[Metric]:
    """The metric families of one report. ``run_metrics=False`` gives only the per-host
    families, for a server (``watch``'s ``/metrics``) that measures runs itself."""
    status = GaugeMetricFamily(
        "readiness_check_status",
        "1 for the status of each check on each host (label status).",
        labels=["host", "check", "status"],
    )
    up = GaugeMetricFamily(
        "readiness_host_up",
        "1 when the host was audited, 0 when it was unreachable or not reached (interrupted).",
        labels=["host"],
    )
    for host in report.hosts:
        name = one_line(host.host)
        audited = bool(host.results) and host.status not in _NOT_AUDITED
        up.add_metric([name], 1.0 if audited else 0.0)
        for r in host.results:
            status.add_metric([name, one_line(r.check_name), r.status.value], 1.0)
    if not run_metrics:
        return [status, up]
    duration = GaugeMetricFamily(
        "readiness_run_duration_seconds", "Wall time of the last readiness run."
    )
    duration.add_metric([], round(run_duration_s(report), 3))
    stamp = GaugeMetricFamily(
        "readiness_last_run_timestamp_seconds", "Unix time the last readiness run finished."
    )
    stamp.add_metric([], report.generated_at.timestamp())
    code = GaugeMetricFamily(
        "readiness_run_exit_code", "Exit code of the last readiness run (docs/exit-codes.md)."
    )
    code.add_metric([], float(report.exit_code(fail_on)))
    return [status, up, duration, stamp, code]


class _ReportCollector:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def render_prometheus(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(collect_metrics(report, fail_on)))
    return generate_latest(registry).decode("utf-8").rstrip("\n")
