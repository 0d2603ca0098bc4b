"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on 127.0.0.1 with a webhook receiver.

The receiver is a loopback :class:`~tests.services.httpd.HttpServer`: Alertmanager
POSTs notifications to ``/hook``, and ``GET /received`` answers every payload
received so far (the "query the receiver" endpoint the ``alert_delivery`` check
confirms delivery with). ``group_wait`` is short so a test alert arrives within
about a second. Gossip is off (``--cluster.listen-address=``), the web port is
loopback only, and a missing binary fails the test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .daemon import background_service, free_port
from .httpd import HttpServer, RecordedRequest, start_http_server

__all__ = ["ALERTMANAGER_BIN", "Alertmanager", "alertmanager", "start_alertmanager"]

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
READY_WAIT_S = 20.0


@dataclass(frozen=True)
class Alertmanager:
    url: str
    receiver: HttpServer
    workdir: Path

    @property
    def hook_url(self) -> str:
        return f"{self.receiver.url}/hook"

    @property
    def received_url(self) -> str:
        return f"{self.receiver.url}/received"

    def silence(self, label: str, value: str, minutes: int = 10) -> str:
        """Create a silence matching ``label=value``; returns its id."""
        now = datetime.now(timezone.utc)
        body = {
            "matchers": [{"name": label, "value": value, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            "createdBy": "readiness tests",
            "comment": "silence the readiness test alert",
        }
        res = requests.post(f"{self.url}/api/v2/silences", json=body, timeout=5)
        res.raise_for_status()
        return str(res.json()["silenceID"])

    def expire(self, silence_id: str) -> None:
        requests.delete(f"{self.url}/api/v2/silence/{silence_id}", timeout=5).raise_for_status()

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        query = [f'{k}="{v}"' for k, v in filters.items()]
        res = requests.get(f"{self.url}/api/v2/alerts", params={"filter": query}, timeout=5)
        res.raise_for_status()
        return list(res.json())


def _config(hook: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "readiness_test_id"],
            "group_wait": "200ms",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "webhook", "webhook_configs": [{"url": hook, "send_resolved": False}]}
        ],
    }


def _received(req: RecordedRequest, srv: HttpServer) -> Any:
    return [r.json() for r in srv.requests_to("/hook", "POST")]


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    """A ready Alertmanager routing every alert to a recording loopback webhook."""
    with start_alertmanager() as started:
        yield started


@contextmanager
def start_alertmanager(
    configure: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[Alertmanager]:
    """The fixture's Alertmanager; ``configure`` may change its config (routes, receivers)."""
    if shutil.which(ALERTMANAGER_BIN) is None:
        pytest.fail(f"{ALERTMANAGER_BIN} not found: apt-get install prometheus-alertmanager")
    workdir = Path(tempfile.mkdtemp(prefix="readiness-alertmanager-"))
    with start_http_server() as receiver:
        receiver.route("/hook", method="POST", json={"status": "ok"})
        receiver.route("/received", handler=lambda req: _received(req, receiver))
        config = workdir / "alertmanager.yml"
        settings = _config(f"{receiver.url}/hook")
        config.write_text(yaml.safe_dump(configure(settings) if configure else settings))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            with background_service(
                "alertmanager",
                [
                    ALERTMANAGER_BIN,
                    f"--config.file={config}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                workdir,
                lambda: _ready(url),
                wait_s=READY_WAIT_S,
                poll_s=0.1,
            ):
                yield Alertmanager(url, receiver, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
