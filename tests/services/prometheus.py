"""A real Prometheus (Debian's ``prometheus`` binary) on 127.0.0.1:<free port>.

It scrapes, every second, one target that is up (an HTTP server serving
``/metrics``) under the job ``mahavishnu`` and one that is down (a closed
loopback port) under the job ``mahavishnu-worker``. The fixture returns only
once ``/-/ready`` answers 200, the up target's health is ``up`` and the down
target's health is ``down`` (bounded wait). A missing binary fails the test.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .httpd import start_http_server

__all__ = ["PROMETHEUS_BIN", "PrometheusServer", "free_port", "prometheus"]

PROMETHEUS_BIN = "/usr/bin/prometheus"
UP_JOB = "mahavishnu"
DOWN_JOB = "mahavishnu-worker"
READY_WAIT_S = 20.0
PIDFILE_ROOT = Path(tempfile.gettempdir()) / "readiness-test-services"

METRICS = """\
# HELP mahavishnu_workflows_running Workflows currently running.
# TYPE mahavishnu_workflows_running gauge
mahavishnu_workflows_running 3
# HELP mahavishnu_up Whether the app is serving.
# TYPE mahavishnu_up gauge
mahavishnu_up 1
"""


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    up_job: str
    up_instance: str
    down_job: str
    down_instance: str
    workdir: Path

    def targets(self) -> list[dict[str, Any]]:
        res = requests.get(f"{self.url}/api/v1/targets", timeout=3)
        res.raise_for_status()
        return list(res.json()["data"]["activeTargets"])


def free_port() -> int:
    """A port nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(up: str, down: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": UP_JOB, "static_configs": [{"targets": [up]}]},
            {"job_name": DOWN_JOB, "static_configs": [{"targets": [down]}]},
        ],
    }


def _healthy(url: str, up: str, down: str) -> bool:
    try:
        if requests.get(f"{url}/-/ready", timeout=1).status_code != 200:
            return False
        targets = requests.get(f"{url}/api/v1/targets", timeout=1).json()["data"]["activeTargets"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    health = {t["labels"]["instance"]: t["health"] for t in targets}
    return health.get(up) == "up" and health.get(down) == "down"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """A ready Prometheus with one up and one down target (see module docstring)."""
    if shutil.which(PROMETHEUS_BIN) is None:
        pytest.fail(f"{PROMETHEUS_BIN} not found: apt-get install prometheus (see .ci/run)")
    workdir = Path(tempfile.mkdtemp(prefix="readiness-prometheus-"))
    with start_http_server() as metrics:
        metrics.route("/metrics", body=METRICS, content_type="text/plain; version=0.0.4")
        up = f"127.0.0.1:{metrics.port}"
        down = f"127.0.0.1:{free_port()}"
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(_config(up, down)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (workdir / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                PROMETHEUS_BIN,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        PIDFILE_ROOT.mkdir(parents=True, exist_ok=True)
        pidfile = PIDFILE_ROOT / f"prometheus-{proc.pid}.pid"
        pidfile.write_text(f"{proc.pid}\n")
        try:
            deadline = time.monotonic() + READY_WAIT_S
            while not _healthy(url, up, down):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"Prometheus not ready within {READY_WAIT_S:.0f}s:\n{tail}")
                time.sleep(0.2)
            yield PrometheusServer(url, UP_JOB, up, DOWN_JOB, down, workdir)
        finally:
            _stop(proc)
            log.close()
            pidfile.unlink(missing_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)
