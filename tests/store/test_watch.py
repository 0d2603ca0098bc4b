"""`readiness watch`: damping (pure), then the real thing — a watch subprocess scraped by a
real Prometheus, alerting a real Alertmanager through to a webhook, stopped by SIGTERM."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from readiness.model import FleetReport, Status
from readiness.store.watch import AlertTracker
from tests.services.alertmanager import ALERTMANAGER_BIN
from tests.services.apps import write_app
from tests.services.daemon import background_service, free_port
from tests.services.httpd import HttpServer, start_http_server
from tests.services.prometheus import PROMETHEUS_BIN
from tests.store.helpers import fleet
from tests.store.test_store_cli import READINESS, ROOT, readiness

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
NOT_READY = 'readiness_check_status{status="not_ready"} == 1'


def _observe(tracker: AlertTracker, status: Status) -> tuple[list[str], list[str]]:
    fired, resolved = tracker.observe(fleet({"web1": {"env": status}}), NOW)
    return [a.status.value for a in fired], [a.status.value for a in resolved]


def test_an_alert_fires_after_n_bad_results_and_resolves_after_n_good_ones() -> None:
    tracker = AlertTracker(after=2)
    R, D, N = Status.READY, Status.DEGRADED, Status.NOT_READY
    seen = [_observe(tracker, s) for s in (D, R, D, N, N, R, D, R, R, D, D, N)]
    assert seen == [
        ([], []),  # soft: one bad result
        ([], []),  # flapping back: nothing fires
        ([], []),
        (["not_ready"], []),  # hard: second bad result in a row
        ([], []),  # still firing: not fired again
        ([], []),  # one good result: not resolved yet
        ([], []),  # bad again: keeps firing
        ([], []),
        ([], ["not_ready"]),  # second good result in a row: resolved
        ([], []),
        (["degraded"], []),  # fires as a warning...
        (["not_ready"], ["degraded"]),  # ...escalated: critical replaces the warning
    ]
    assert [a.status for a in tracker.firing.values()] == [N]

    # web1 leaves the report: its alert resolves at once; back, it is damped afresh
    fired, resolved = tracker.observe(fleet({"web2": {"env": R}}), NOW)
    assert (fired, [(a.host, a.status) for a in resolved]) == ([], [("web1", N)])
    assert not tracker.firing
    assert _observe(tracker, N) == ([], [])


@dataclass
class _Alerting:
    url: str
    receiver: HttpServer

    def notifications(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.receiver.requests_to("/am-hook", "POST")]

    def direct(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.receiver.requests_to("/direct", "POST")]


@pytest.fixture
def alerting() -> Iterator[_Alerting]:
    """An Alertmanager that also notifies resolutions, and one receiver for both hooks."""
    workdir = Path(tempfile.mkdtemp(prefix="readiness-watch-am-"))
    with start_http_server() as receiver:
        receiver.route("/am-hook", method="POST", json={"status": "ok"})
        receiver.route("/direct", method="POST", json={"status": "ok"})
        config = {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname", "host", "check"],
                "group_wait": "200ms",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "hook",
                    "webhook_configs": [{"url": f"{receiver.url}/am-hook", "send_resolved": True}],
                }
            ],
        }
        (workdir / "am.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            with background_service(
                "alertmanager",
                [
                    ALERTMANAGER_BIN,
                    f"--config.file={workdir / 'am.yml'}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                workdir,
                lambda: _ok(f"{url}/-/ready"),
                wait_s=20,
            ):
                yield _Alerting(url, receiver)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _until(what: str, probe: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _prometheus(workdir: Path, target: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "readiness", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prom.yml").write_text(yaml.safe_dump(config))
    with background_service(
        "prometheus",
        [
            PROMETHEUS_BIN,
            f"--config.file={workdir / 'prom.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        workdir,
        lambda: _ok(f"{url}/-/ready"),
        wait_s=20,
    ):
        yield url


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    try:
        res = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=2)
        return list(res.json()["data"]["result"])
    except (requests.RequestException, ValueError, KeyError):
        return []


@pytest.mark.prometheus
def test_watch_is_scraped_alerts_and_resolves_then_stops_on_sigterm(
    alerting: _Alerting, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    inv = tmp_path / "inv.yml"
    inv.write_text(
        f"all:\n  hosts:\n    local:\n      ansible_connection: local\n      readiness:\n        app_root: {app}\n"
    )
    store = tmp_path / "h.db"
    port = free_port()
    watch = subprocess.Popen(
        [
            READINESS, "watch", "-i", str(inv), "-c", "environment", "--every", "1s",
            "--jitter", "0", "--listen", f"127.0.0.1:{port}", "--alert-after", "2",
            "--alertmanager-url", alerting.url, "--webhook", f"{alerting.receiver.url}/direct",
            "--store", str(store),
        ],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _until(
            "watch's first run",
            lambda: (
                _ok(f"{base}/metrics") and requests.get(f"{base}/", timeout=2).status_code == 200
            ),
        )
        assert requests.get(f"{base}/healthz", timeout=2).status_code == 503
        doc = requests.get(f"{base}/", headers={"Accept": "application/json"}, timeout=2).json()
        assert doc["hosts"][0]["checks"][0]["status"] == "not_ready" and doc["run_id"]
        assert "<" in requests.get(f"{base}/", timeout=2).text  # HTML by default

        promtool = subprocess.run(
            ["promtool", "check", "metrics"], input=requests.get(f"{base}/metrics", timeout=2).text,
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert promtool.returncode == 0, promtool.stdout + promtool.stderr

        workdir = Path(tempfile.mkdtemp(prefix="readiness-watch-prom-"))
        try:
            for prom in _prometheus(workdir, f"127.0.0.1:{port}"):
                series = _until("Prometheus to scrape watch", lambda p=prom: _query(p, NOT_READY))
                assert series[0]["metric"]["host"] == "local"
                assert series[0]["metric"]["check"] == "environment"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

        firing = _until(
            "Alertmanager's firing notification",
            lambda: [n for n in alerting.notifications() if n["status"] == "firing"],
        )
        alert = firing[0]["alerts"][0]
        assert alert["labels"]["host"] == "local" and alert["labels"]["check"] == "environment"
        assert alert["labels"]["severity"] == "critical"
        assert "MAHAVISHNU_AUTH__SECRET" in alert["annotations"]["description"]
        direct = _until("the direct webhook", alerting.direct)
        assert direct[0]["status"] == "firing" and direct[0]["recommendations"]

        write_app(app)  # repaired: two good runs resolve the alert
        _until(
            "Alertmanager's resolved notification",
            lambda: [n for n in alerting.notifications() if n["status"] == "resolved"],
        )
        _until(
            "the direct webhook's resolution",
            lambda: [d for d in alerting.direct() if d["status"] == "resolved"],
        )
        assert requests.get(f"{base}/healthz", timeout=2).status_code == 200
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    runs = int(err.strip().splitlines()[-1].split("after ")[1].split(" ")[0])
    assert f"readiness watch: stopped after {runs} run(s)" in err
    recorded = json.loads(
        readiness("history", "--limit", "500", "--format", "json", store=store).stdout
    )["runs"]
    assert len(recorded) == runs >= 4
    assert out == ""


def test_the_loop_never_overlaps_counts_overruns_and_stops_when_told() -> None:
    import threading

    from readiness.store.watch import Watcher, WatchState

    starts: list[float] = []
    active = threading.Lock()
    durations = iter([0.3, 0.0, 0.0, 0.0])

    def once() -> tuple[Any, str | None]:
        assert active.acquire(blocking=False), "two runs at once"
        try:
            starts.append(time.monotonic())
            time.sleep(next(durations, 0.0))
            return fleet({"web1": {"env": Status.READY}}), f"run{len(starts)}"
        finally:
            active.release()

    state = WatchState()
    watcher = Watcher(once, 0.2, state, AlertTracker(), jitter=0.0, max_runs=4)
    assert watcher.loop() == 0
    assert state.runs == 4 and state.overruns == 1 and state.run_id == "run4"
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.3  # the overrun: the next run starts right after, not during it
    assert all(g >= 0.19 for g in gaps[1:])
    assert state.healthy() and state.last_success_ts > 0

    stopper = Watcher(once, 30.0, WatchState(), AlertTracker())
    threading.Timer(0.3, stopper.stop.set).start()
    began = time.monotonic()
    assert stopper.loop() == 0  # stop() ends the 30 s wait at once
    assert time.monotonic() - began < 5 and stopper.state.runs == 1


def test_a_silent_client_is_dropped_and_never_blocks_the_endpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection that sends nothing holds no server thread forever (slowloris)."""
    import socket

    from readiness.store import watch

    monkeypatch.setattr(watch, "REQUEST_TIMEOUT_S", 0.5)
    state = watch.WatchState(report=fleet({"h": {"environment": Status.READY}}), run_id="r1")
    server = watch.serve(state, "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        started = time.monotonic()
        assert silent.recv(1) == b""  # the server closed it
        assert time.monotonic() - started < 4
        silent.close()
    finally:
        server.shutdown()
        server.server_close()


def test_watch_listens_on_an_ipv6_loopback_address(tmp_path: Path) -> None:
    """`--listen [::1]:0` was parsed, then refused: "Address family for hostname not
    supported" (the server was IPv4 only). Now it serves, and says so with a usable URL."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    argv = [READINESS, "watch", "-i", str(inv), "-H", "web1", "-c", "documentation"]
    argv += ["--every", "1h", "--listen", "[::1]:0", "--store", "none"]
    watch = subprocess.Popen(
        argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.stderr is not None
        first = watch.stderr.readline()
        assert first.startswith("readiness watch: serving http://[::1]:"), first
        url = first.split()[3]
        deadline = time.monotonic() + 30
        while "readiness_runs_total 1.0" not in requests.get(f"{url}/metrics", timeout=5).text:
            assert time.monotonic() < deadline, "no run within 30 s"
            time.sleep(0.2)
        report = requests.get(url, headers={"Accept": "application/json"}, timeout=5).json()
        assert [h["host"] for h in report["hosts"]] == ["web1"]
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_run_that_cannot_read_the_inventory_is_a_failure_not_a_success(
    tmp_path: Path,
) -> None:
    """The inventory became unreadable between runs: the run audited nothing, yet it was
    published as an empty report — /healthz 200 ok, the last success time set to now and
    every check series gone (resolving alerts on them). Now it is a failed run."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    argv = [READINESS, "watch", "-i", str(inv), "-H", "web1", "-c", "environment"]
    argv += ["--every", "1s", "--jitter", "0", "--listen", "127.0.0.1:0", "--store", "none"]
    watch = subprocess.Popen(
        argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.stderr is not None
        base = watch.stderr.readline().split()[3]
        _until("the first run", lambda: requests.get(f"{base}/healthz", timeout=2).ok, 20)
        first = requests.get(f"{base}/metrics", timeout=2).text
        last_success = _metric(first, "readiness_last_success_timestamp_seconds")
        assert last_success > 0 and _metric(first, "readiness_runs_failed_total") == 0

        inv.write_text("all: [broken\n")
        metrics = _until(
            "a failed run",
            lambda: (
                (t := requests.get(f"{base}/metrics", timeout=2).text)
                and _metric(t, "readiness_runs_failed_total") >= 1
                and t
            ),
            20,
        )
        health = requests.get(f"{base}/healthz", timeout=2)
        assert (health.status_code, health.text) == (503, "run failed\n")
        assert _metric(metrics, "readiness_last_success_timestamp_seconds") == last_success
        # the last known status of each check stays exported (nothing was found fixed)
        assert 'readiness_check_status{check="environment",host="web1",status="ready"} 1.0' in (
            metrics
        )
        latest = requests.get(f"{base}/", headers={"Accept": "application/json"}, timeout=2)
        assert [h["host"] for h in latest.json()["hosts"]] == ["web1"]  # the last audit's
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert "readiness watch: run failed: " in err and "Traceback" not in err


def test_the_alert_of_a_host_taken_out_of_the_inventory_resolves(tmp_path: Path) -> None:
    """A host removed from the inventory while its alert fired: the alert was re-sent to
    Alertmanager on every run for as long as the watch lived (never resolved). Now it
    resolves on the first run without the host, as a Prometheus alert whose series went."""
    broken = write_app(tmp_path / "broken", env={"MAHAVISHNU_AUTH__SECRET": None})
    fine = write_app(tmp_path / "fine")
    inv = tmp_path / "inv.yml"

    def inventory(*hosts: tuple[str, Path]) -> None:
        entries = {
            n: {"ansible_connection": "local", "readiness": {"app_root": str(a)}} for n, a in hosts
        }
        inv.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": entries}}}}))

    inventory(("web1", broken), ("web2", fine))
    with start_http_server() as receiver:
        receiver.route("/direct", method="POST", json={"status": "ok"})

        def direct() -> list[dict[str, Any]]:
            return [r.json() for r in receiver.requests_to("/direct", "POST")]

        argv = [READINESS, "watch", "-i", str(inv), "-H", "web", "-c", "environment"]
        argv += ["--every", "1s", "--jitter", "0", "--alert-after", "1", "--store", "none"]
        argv += ["--listen", "127.0.0.1:0", "--webhook", f"{receiver.url}/direct"]
        watch = subprocess.Popen(
            argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _until("web1's alert", lambda: [d for d in direct() if d["status"] == "firing"], 20)
            inventory(("web2", fine))  # web1 decommissioned
            gone = _until(
                "web1's resolution",
                lambda: [d for d in direct() if d["status"] == "resolved"],
                10,
            )
        finally:
            watch.send_signal(signal.SIGTERM)
            _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert [(d["host"], d["check"]) for d in gone] == [("web1", "environment")]
    assert [d["host"] for d in direct() if d["status"] == "firing"] == ["web1"]


def test_a_webhooks_token_is_neither_recorded_nor_printed(tmp_path: Path) -> None:
    """A Slack/Teams webhook's secret is its path. The store kept `--webhook URL` whole in
    the recorded command line (`history`, `show`), and a failed delivery printed it on
    stderr (the journal) twice: in our words and in requests' error."""
    from tests.services.ports import closed_port

    token = "T0KEN-hook-7f3a9c"
    port = closed_port()
    hook = f"http://127.0.0.1:{port}/services/T01/B02/{token}?sig={token}-q"
    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    store = tmp_path / "h.db"
    argv = [READINESS, "watch", "-i", str(inv), "-H", "web1", "-c", "environment"]
    argv += ["--every", "1s", "--alert-after", "1", "--max-runs", "1", "--store", str(store)]
    argv += ["--listen", "127.0.0.1:0", "--webhook", hook]
    run = subprocess.run(
        argv, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"alert not delivered to http://127.0.0.1:{port}/***: " in run.stderr
    files = [store, store.with_name("h.db-wal")]
    seen = [
        run.stderr,
        run.stdout,
        *(f.read_bytes().decode("latin-1") for f in files if f.exists()),
    ]
    for args in (("history", "--format", "json"), ("show", "latest", "--format", "json")):
        shown = readiness(*args, store=store)
        assert shown.returncode == 0, shown.stderr
        seen.append(shown.stdout)
    assert f"--webhook http://127.0.0.1:{port}/***" in seen[-1]
    assert not [text for text in seen if token in text or "/services/" in text]


def test_a_critical_alert_that_eases_keeps_its_severity_but_says_what_it_is_now(
    tmp_path: Path,
) -> None:
    """A check fired as NOT_READY (critical), then became DEGRADED: the alert kept firing
    (its severity label is its identity in Alertmanager) but its summary still said
    NOT_READY next to the degraded finding. Through `readiness watch`, to a loopback
    receiver of Alertmanager's POST /api/v2/alerts."""
    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    with start_http_server() as am:
        am.route("/api/v2/alerts", method="POST", json={})

        def posted() -> list[dict[str, Any]]:
            return [a for r in am.requests_to("/api/v2/alerts", "POST") for a in r.json()]

        argv = [READINESS, "watch", "-i", str(inv), "-H", "web1", "-c", "configuration"]
        argv += ["--every", "1s", "--jitter", "0", "--alert-after", "1", "--store", "none"]
        argv += ["--listen", "127.0.0.1:0", "--alertmanager-url", am.url]
        watch = subprocess.Popen(
            argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            first = _until("the critical alert", posted, 20)[0]
            assert first["labels"]["severity"] == "critical"
            assert first["annotations"]["summary"] == "web1 / configuration: NOT_READY"
            write_app(app)  # the secret is back; no OTLP endpoint: DEGRADED
            eased = _until(
                "the eased alert",
                lambda: [a for a in posted() if a["annotations"]["summary"].endswith("DEGRADED")],
                10,
            )[0]
        finally:
            watch.send_signal(signal.SIGTERM)
            _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert eased["labels"] == first["labels"] and eased["startsAt"] == first["startsAt"]
    assert "OTLP" in eased["annotations"]["description"]


def _host_down(report: FleetReport, host: str, reason: str) -> FleetReport:
    """``report`` with ``host`` not reached: each of its checks UNREACHABLE, as the runner
    writes a host it could not connect to."""
    hosts = tuple(
        replace(
            h,
            reason=reason,
            results=tuple(replace(r, status=Status.UNREACHABLE, message=reason) for r in h.results),
        )
        if h.host == host
        else h
        for h in report.hosts
    )
    return replace(report, hosts=hosts)


def test_a_host_that_cannot_be_reached_is_one_alert_and_its_checks_alerts_are_held() -> None:
    """A network blip paged once per check ("environment: UNREACHABLE", "configuration:
    UNREACHABLE", ...), and a check's warning was "resolved" by it as if it had got better.
    Now the host is one alert (ReadinessHostNotAudited); nothing is known of its checks, so
    their alerts stay as they were, neither resolved nor escalated."""
    tracker = AlertTracker(after=2)
    up = fleet({"web1": {"environment": Status.DEGRADED, "configuration": Status.READY}})
    down = _host_down(up, "web1", "connection refused by 127.0.0.1:22")

    def observe(report: FleetReport) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        fired, resolved = tracker.observe(report, NOW)
        return [a.labels() for a in fired], [a.labels() for a in resolved]

    warning = {
        "alertname": "ReadinessCheckDegraded", "host": "web1", "check": "environment",
        "severity": "warning",
    }  # fmt: skip
    host_alert = {"alertname": "ReadinessHostNotAudited", "host": "web1", "severity": "critical"}
    assert [observe(r) for r in (up, up)] == [([], []), ([warning], [])]
    assert [observe(r) for r in (down, down, down)] == [([], []), ([host_alert], []), ([], [])]
    assert sorted(a.check for a in tracker.firing.values()) == ["", "environment"]
    held = tracker.firing[("web1", "environment")]
    assert held.status is Status.DEGRADED and held.labels() == warning
    [firing_host] = [a for a in tracker.firing.values() if a.is_host_alert]
    assert firing_host.summary == "web1: UNREACHABLE"
    assert firing_host.message == "connection refused by 127.0.0.1:22"
    # back: the host alert resolves after two good runs; the warning was never re-fired
    assert [observe(r) for r in (up, up)] == [([], []), ([], [host_alert])]
    assert list(tracker.firing) == [("web1", "environment")]


def test_watch_sends_one_webhook_for_an_unreachable_host_not_one_per_check(
    tmp_path: Path,
) -> None:
    """Through `readiness watch`: a host on a closed port, three checks, every run for a few
    seconds: one firing POST naming the host (check null), none per check."""
    from tests.services.ports import closed_port

    inv = tmp_path / "inv.yml"
    host = {"ansible_host": "127.0.0.1", "ansible_port": closed_port()}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"db1": host}}}))
    with start_http_server() as receiver:
        receiver.route("/direct", method="POST", json={"status": "ok"})
        argv = [READINESS, "watch", "-i", str(inv), "-H", "db1"]
        argv += ["-c", "environment,configuration,monitoring", "--every", "1s", "--jitter", "0"]
        argv += ["--alert-after", "1", "--max-runs", "3", "--store", "none"]
        argv += ["--listen", "127.0.0.1:0", "--webhook", f"{receiver.url}/direct"]
        run = subprocess.run(
            argv, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=90, check=False,
        )  # fmt: skip
        posted = [r.json() for r in receiver.requests_to("/direct", "POST")]
    assert run.returncode == 0, run.stderr
    assert [(p["status"], p["host"], p["check"], p["severity"]) for p in posted] == [
        ("firing", "db1", None, "unreachable")
    ]
    assert "connection refused" in posted[0]["message"]
    assert posted[0]["recommendations"]


def test_a_dead_store_costs_each_watch_run_one_connect_timeout_not_two(tmp_path: Path) -> None:
    """Each run opened the store for the drift key (failure ignored), then again to record:
    a PostgreSQL store that does not answer cost every run its connect timeout twice."""
    import socket
    import threading

    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:  # a database that takes the connection and never answers
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    url = f"postgresql://ops@127.0.0.1:{port}/readiness?connect_timeout=2&sslmode=disable"
    try:
        res = readiness(
            "watch", "-i", str(inv), "-H", "web1", "-c", "environment", "--every", "1s",
            "--jitter", "0", "--max-runs", "2", "--listen", "127.0.0.1:0", store=url,
        )  # fmt: skip
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "run not recorded" in line]
    assert len(warnings) == 2 and "connection timeout expired" in warnings[0], res.stderr
    assert len(accepted) == 2  # one connection attempt per run


def test_an_alertmanager_password_the_redactor_does_not_read_is_neither_stored_nor_shown(
    tmp_path: Path,
) -> None:
    """`--alertmanager-url 'http://ops:pa ss@am'` (a space: not a URL password to the
    pattern redactor) was stored in clear in the recorded command line and shown in the
    'alert not delivered' warning."""
    from tests.services.ports import closed_port

    app = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})  # NOT_READY
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    store = tmp_path / "h.db"
    url = f"http://ops:SENTINEL am-pw@127.0.0.1:{closed_port()}"
    res = readiness(
        "watch", "-i", str(inv), "-H", "web1", "-c", "environment", "--every", "30s",
        "--max-runs", "1", "--alert-after", "1", "--listen", "127.0.0.1:0",
        "--alertmanager-url", url, store=store,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "readiness watch: alert not delivered to http://ops:***@127.0.0.1:" in res.stderr
    command = json.loads(readiness("history", "--format", "json", store=store).stdout)["runs"][0]
    assert "--alertmanager-url http://ops:***@127.0.0.1:" in command["command"]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("h.db"))
    for piece in ("SENTINEL am-pw", "am-pw"):
        assert piece not in res.stdout + res.stderr and piece.encode() not in raw


def test_the_watch_banner_says_whether_the_store_is_bounded(tmp_path: Path) -> None:
    """A watch records a run every interval (a 500-host fleet every 15 min: ~15 GB a year)
    and nothing said whether anything pruned it. The banner now says `history_keep` or
    that every run is kept."""
    app = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    config = tmp_path / "keep.yaml"
    config.write_text("readiness:\n  history_keep: 30d\n")
    store = tmp_path / "h.db"
    watch_argv = ["watch", "-i", str(inv), "-H", "web1", "-c", "documentation", "--every", "1h"]
    watch_argv += ["--listen", "127.0.0.1:0", "--max-runs", "1", "--store", str(store)]
    for pre, said in (
        ([], ", every run kept: set history_keep to prune)"),
        (["-f", str(config)], ", history_keep 30d)"),
    ):
        res = subprocess.run(
            [READINESS, *pre, *watch_argv], cwd=tmp_path, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        first = res.stderr.splitlines()[0]
        assert first.startswith("readiness watch: serving http://127.0.0.1:"), first
        assert first.endswith(f"(every 1h, store {store}{said}"), first
