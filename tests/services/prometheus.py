"""A real Prometheus (Debian's ``prometheus`` binary) on 127.0.0.1:<free port>.

It scrapes, every second, one target that is up (an HTTP server serving
``/metrics``) under the job ``mahavishnu`` and one that is down (a closed
loopback port) under the job ``mahavishnu-worker``. The fixture returns only
once ``/-/ready`` answers 200, the up target's health is ``up`` and the down
target's health is ``down`` (bounded wait). A missing binary fails the test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .daemon import background_service, free_port
from .httpd import start_http_server
from .ports import held_closed_port

__all__ = ["PROMETHEUS_BIN", "PrometheusServer", "free_port", "prometheus"]

PROMETHEUS_BIN = "/usr/bin/prometheus"
UP_JOB = "mahavishnu"
DOWN_JOB = "mahavishnu-worker"
READY_WAIT_S = 20.0

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


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """A ready Prometheus with one up and one down target (see module docstring)."""
    if shutil.which(PROMETHEUS_BIN) is None:
        pytest.fail(f"{PROMETHEUS_BIN} not found: apt-get install prometheus (see .ci/run)")
    workdir = Path(tempfile.mkdtemp(prefix="readiness-prometheus-"))
    # The down target's port stays bound (never listening) for the whole session: held, it
    # cannot become Prometheus's own port or any later test server's, so it stays down.
    with start_http_server() as metrics, held_closed_port() as down_port:
        metrics.route("/metrics", body=METRICS, content_type="text/plain; version=0.0.4")
        up = f"127.0.0.1:{metrics.port}"
        down = f"127.0.0.1:{down_port}"
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(_config(up, down)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            with background_service(
                "prometheus",
                [
                    PROMETHEUS_BIN,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                workdir,
                lambda: _healthy(url, up, down),
                wait_s=READY_WAIT_S,
                poll_s=0.2,
            ):
                yield PrometheusServer(url, UP_JOB, up, DOWN_JOB, down, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
