"""``readiness watch``: audit on a schedule, record each run, serve /metrics, /healthz and
the latest report over HTTP, and alert on degrading results.

- Schedule: one run every ``every`` seconds, each start jittered by up to ``jitter`` of the
  interval; runs never overlap (one loop, one run at a time). A run that takes longer than
  the interval is recorded with ``watch.overran`` and the next one starts at once.
- A run that could not audit at all (the inventory became unreadable) is counted as a
  failed run: /healthz answers 503 and the last success time stays where it was, while
  the last report and its alerts stay as they were (nothing was found to be fixed).
- HTTP (loopback by default): ``/metrics`` (Prometheus exposition), ``/healthz`` (200 when
  the latest run has nothing blocking, 503 otherwise or before the first run), ``/`` (the
  latest report: JSON when the client accepts ``application/json``, else HTML).
- Alerts (:class:`AlertTracker`): a host x check fires after ``after`` consecutive results
  at or above ``alert_on`` and resolves after ``after`` consecutive results below it, like
  Nagios' soft/hard states, so a flapping check does not page. Firing alerts are re-sent
  to Alertmanager on every run (with ``endsAt`` two intervals ahead, so a dead watcher's
  alerts expire); a webhook gets one POST per transition.
- SIGTERM/SIGINT: the current run finishes and is recorded, then the loop ends (exit 0).
"""

from __future__ import annotations

import html
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from ..model import FleetReport, Status
from ..redact import redact_url_password
from ..report.prometheus import collect_metrics
from ._text import url_password_masked, webhook_shown

__all__ = ["Alert", "AlertTracker", "WatchState", "Watcher", "serve"]

_HTTP_TIMEOUT = 5.0


# The check of a host-level alert: the host could not be audited (UNREACHABLE), which is one
# alert, not one per check (a network blip paged once per check, each saying "unreachable").
HOST_ALERT = ""


@dataclass(frozen=True)
class Alert:
    host: str
    check: str
    status: Status
    message: str
    recommendations: tuple[str, ...]
    since: datetime
    # the status it fired with: its severity label, which Alertmanager keys the alert on,
    # stays while it fires; ``status`` is the latest (the summary said NOT_READY of a
    # check that had become DEGRADED)
    fired_as: Status | None = None

    def as_fired(self) -> Alert:
        """The alert as it fired: what a resolution must name."""
        return replace(self, status=self.fired_as or self.status, fired_as=None)

    @property
    def is_host_alert(self) -> bool:
        """The host could not be audited at all: one alert for the host, no check."""
        return self.check == HOST_ALERT

    def labels(self) -> dict[str, str]:
        severity = self.fired_as or self.status
        if self.is_host_alert:
            return {
                "alertname": "ReadinessHostNotAudited",
                "host": self.host,
                "severity": "critical",
            }
        return {
            "alertname": "ReadinessCheckDegraded",
            "host": self.host,
            "check": self.check,
            "severity": "critical" if severity.blocking else "warning",
        }

    @property
    def summary(self) -> str:
        if self.is_host_alert:
            return f"{self.host}: {self.status.label}"
        return f"{self.host} / {self.check}: {self.status.label}"


@dataclass
class AlertTracker:
    """Consecutive-result damping per host x check (pure: no I/O)."""

    after: int = 2
    alert_on: Status = Status.DEGRADED
    _streak: dict[tuple[str, str], int] = field(default_factory=dict)
    firing: dict[tuple[str, str], Alert] = field(default_factory=dict)

    def observe(self, report: FleetReport, now: datetime) -> tuple[list[Alert], list[Alert]]:
        """(newly firing, newly resolved) after this run."""
        fired: list[Alert] = []
        resolved: list[Alert] = []
        down = {h.host for h in report.hosts if h.reason and h.status is Status.UNREACHABLE}
        observed = [
            (r.host, r.check_name, r.status, r.message, r.recommendations)
            for r in report.results
            # nothing is known of a check on a host not reached: its alert stays as it was
            # (neither resolved nor escalated), its damping count too
            if r.host not in down
        ]
        for h in report.hosts:  # the host's own alert: reached or not
            if h.host in down:  # the runner gives each result the reason's advice
                advice = h.results[0].recommendations if h.results else ()
                observed.append((h.host, HOST_ALERT, Status.UNREACHABLE, h.reason, advice))
            else:
                observed.append((h.host, HOST_ALERT, Status.READY, "", ()))
        for host, check, status, message, recommendations in observed:
            key = (host, check)
            bad = status >= self.alert_on
            streak = self._streak.get(key, 0)
            # Positive streak: consecutive bad runs; negative: consecutive good ones.
            streak = (max(streak, 0) + 1) if bad else (min(streak, 0) - 1)
            self._streak[key] = streak
            if bad:
                alert = Alert(host, check, status, message, recommendations, now)
                current = self.firing.get(key)
                if current is not None:
                    fired_as = current.fired_as or current.status
                    if alert.labels() != current.labels() and status > fired_as:
                        resolved.append(current.as_fired())  # escalated: a new alert
                        self.firing[key] = alert
                        fired.append(alert)
                    else:  # same alert (its labels stay), latest status and words
                        self.firing[key] = replace(
                            current,
                            status=status,
                            message=message,
                            recommendations=recommendations,
                            fired_as=fired_as,
                        )
                elif streak >= self.after:
                    self.firing[key] = alert
                    fired.append(alert)
            elif key in self.firing and -streak >= self.after:
                resolved.append(self.firing.pop(key).as_fired())
        # A host x check no longer audited (the host left the inventory) resolves at once,
        # as a Prometheus alert does when its series goes: it was re-sent for ever.
        audited = {(r.host, r.check_name) for r in report.results}
        audited |= {(h.host, HOST_ALERT) for h in report.hosts}
        for key in [k for k in self.firing if k not in audited]:
            resolved.append(self.firing.pop(key).as_fired())
        for key in [k for k in self._streak if k not in audited]:
            del self._streak[key]  # a host that comes back starts its damping afresh
        return fired, resolved


@dataclass
class WatchState:
    """What the HTTP endpoints serve; replaced whole after each run (under a lock)."""

    report: FleetReport | None = None
    run_id: str | None = None
    runs: int = 0
    overruns: int = 0
    failed_runs: int = 0
    last_run_failed: bool = False
    last_duration_s: float = 0.0
    last_run_ts: float = 0.0
    last_success_ts: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def metrics(self) -> bytes:
        registry = CollectorRegistry()
        registry.register(_Collector(self))
        return generate_latest(registry)

    def healthy(self) -> bool:
        with self.lock:
            report, failed = self.report, self.last_run_failed
        if report is None or failed:  # a run that audited nothing is never healthy
            return False
        return not report.overall_status.blocking and not report.interrupted


class _Collector:
    def __init__(self, state: WatchState) -> None:
        self.state = state

    def collect(self) -> Any:
        with self.state.lock:
            s = self.state
            report, runs, overruns, failed = s.report, s.runs, s.overruns, s.failed_runs
            duration, last_run, last_ok = s.last_duration_s, s.last_run_ts, s.last_success_ts
        unreachable = 0
        if report is not None:  # the per-host families the prometheus report writes, the same
            yield from collect_metrics(report, run_metrics=False)
            unreachable = sum(1 for h in report.hosts if h.status is Status.UNREACHABLE)
        yield GaugeMetricFamily(
            "readiness_hosts_unreachable", "Hosts unreachable in the latest run", value=unreachable
        )
        yield GaugeMetricFamily(
            "readiness_run_duration_seconds", "Wall time of the latest run", value=duration
        )
        yield GaugeMetricFamily(
            "readiness_last_run_timestamp_seconds", "When the latest run ended", value=last_run
        )
        yield GaugeMetricFamily(
            "readiness_last_success_timestamp_seconds",
            "When a run last ended with nothing blocking",
            value=last_ok,
        )
        yield CounterMetricFamily("readiness_runs", "Runs since watch started", value=runs)
        yield CounterMetricFamily(
            "readiness_runs_overrun", "Runs that took longer than the interval", value=overruns
        )
        yield CounterMetricFamily(
            "readiness_runs_failed",
            "Runs that could not audit (e.g. unreadable inventory)",
            value=failed,
        )


# A client that connects and sends nothing (or half a request) is dropped after this long:
# otherwise each such connection holds a server thread forever.
REQUEST_TIMEOUT_S = 10.0


def _handler(state: WatchState, render_html: Callable[[FleetReport], str]) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "readiness-watch"
        timeout = REQUEST_TIMEOUT_S

        def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
            return

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, state.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                ok = state.healthy()
                body = (
                    b"ok\n" if ok else b"run failed\n" if state.last_run_failed else b"not ready\n"
                )
                self._send(200 if ok else 503, body, "text/plain")
            elif path == "/":
                self._root()
            else:
                self._send(404, b"not found\n", "text/plain")

        def _root(self) -> None:
            with state.lock:
                report, run_id = state.report, state.run_id
            wants_json = "application/json" in (self.headers.get("Accept") or "")
            if report is None:
                self._send(503, b"no run yet\n", "text/plain")
            elif wants_json:
                doc = {**report.to_dict(), "run_id": run_id}
                self._send(200, json.dumps(doc).encode(), "application/json")
            else:
                self._send(200, render_html(report).encode(), "text/html; charset=utf-8")

    return Handler


def default_html(report: FleetReport) -> str:
    """The latest report as HTML: the report package's html format when present, else
    the text report escaped inside <pre>."""
    from .. import report as report_mod

    if "html" in report_mod.FORMATS:
        return report_mod.render(report, "html")
    body = html.escape(report_mod.render(report, "text"))
    return f"<!doctype html><meta charset=utf-8><title>readiness</title><pre>{body}</pre>"


class _IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(
    state: WatchState,
    host: str,
    port: int,
    render_html: Callable[[FleetReport], str] = default_html,
) -> ThreadingHTTPServer:
    server_class = _IPv6HTTPServer if ":" in host else ThreadingHTTPServer  # --listen [::1]:0
    server = server_class((host, port), _handler(state, render_html))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="watch-http", daemon=True).start()
    return server


# (report, run id); a None report: the run could not audit at all (it said why on stderr).
RunOnce = Callable[[], tuple["FleetReport | None", "str | None"]]


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@dataclass
class Watcher:
    """The loop. ``run_once()`` audits, records (marking an overrun itself: it knows the
    interval) and returns (report, run id)."""

    run_once: RunOnce
    every: float
    state: WatchState
    tracker: AlertTracker
    jitter: float = 0.1
    alertmanager_url: str | None = None
    webhook_url: str | None = None
    max_runs: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    warn: Callable[[str], None] = _stderr
    rng: random.Random = field(default_factory=random.Random)

    def loop(self) -> int:
        while not self.stop.is_set():
            began = time.monotonic()
            report, run_id = self.run_once()
            self._publish(report, run_id, time.monotonic() - began)
            self._alert(report, run_id)
            if self.max_runs is not None and self.state.runs >= self.max_runs:
                break
            offset = self.rng.uniform(-self.jitter, self.jitter) * self.every
            # After an overrun (already past began + every) the next run starts at once:
            # one loop, so runs never overlap.
            self.stop.wait(max(0.0, began + self.every + offset - time.monotonic()))
        return 0

    def _publish(self, report: FleetReport | None, run_id: str | None, duration: float) -> None:
        now = time.time()
        with self.state.lock:
            self.state.runs += 1
            self.state.overruns += int(duration > self.every)
            self.state.last_duration_s, self.state.last_run_ts = duration, now
            self.state.last_run_failed = report is None
            if report is None:
                # Nothing was audited: an empty report here read as a success (healthz 200,
                # last success now) and dropped every check series, resolving their alerts.
                self.state.failed_runs += 1
                return
            self.state.report, self.state.run_id = report, run_id
            if not report.overall_status.blocking and not report.interrupted:
                self.state.last_success_ts = now

    def _alert(self, report: FleetReport | None, run_id: str | None) -> None:
        now = datetime.now(timezone.utc)
        # A failed run observes nothing; the firing alerts are re-sent below so that they do
        # not expire while the watcher cannot see the fleet.
        fired, resolved = self.tracker.observe(report, now) if report is not None else ([], [])
        if self.alertmanager_url and (self.tracker.firing or resolved):
            ends = now + timedelta(seconds=2 * self.every + 60)
            body = [_am_alert(a, None, ends, run_id) for a in self.tracker.firing.values()]
            body += [_am_alert(a, now, now, run_id) for a in resolved]
            self._post(f"{self.alertmanager_url.rstrip('/')}/api/v2/alerts", body)
        if self.webhook_url:
            for a, state in [(a, "firing") for a in fired] + [(a, "resolved") for a in resolved]:
                self._post(self.webhook_url, _webhook(a, state, run_id))

    def _post(self, url: str, body: Any) -> None:
        try:
            res = requests.post(url, json=body, timeout=_HTTP_TIMEOUT)
            res.raise_for_status()
        except requests.RequestException as exc:
            # One line per failure; the watch goes on (the next run re-sends firing alerts).
            text = f"readiness watch: alert not delivered to {url}: {exc}"
            if url == self.webhook_url:  # its path is its token (requests quotes it too)
                text = _without_webhook_secret(text, url)
            self.warn(url_password_masked(redact_url_password(text), url))


def _without_webhook_secret(text: str, url: str) -> str:
    parts = urlsplit(url)
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    text = text.replace(url, webhook_shown(url))
    for piece in (secret, parts.path, parts.query):
        if piece not in ("", "/"):
            text = text.replace(piece, "/***")
    return text


def _am_alert(
    alert: Alert, ended: datetime | None, ends: datetime, run_id: str | None
) -> Mapping[str, Any]:
    return {
        "labels": alert.labels(),
        "annotations": {
            "summary": alert.summary,
            "description": alert.message,
            "recommendation": "; ".join(alert.recommendations),
            "run_id": run_id or "",
        },
        "startsAt": alert.since.isoformat(),
        "endsAt": (ended or ends).isoformat(),
    }


def _webhook(alert: Alert, state: str, run_id: str | None) -> Mapping[str, Any]:
    return {
        "schema": "readiness.alert/1",
        "status": state,
        "host": alert.host,
        "check": None if alert.is_host_alert else alert.check,
        "severity": alert.status.value,
        "message": alert.message,
        "recommendations": list(alert.recommendations),
        "since": alert.since.isoformat(),
        "run_id": run_id,
    }
