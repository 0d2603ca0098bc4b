"""A worker that cannot report what it changes stops changing hosts.

The guard's two halves: ``_ShardRun.cannot_report`` (driven by a task whose
``update_state`` really raises, as Celery's does when Redis is gone) and the host run
that refuses every fix once it says so (a real local remediation that loses its
controller after the first fix). Not end to end with a stopped redis-server: see
docs/distributed.md.
"""

from __future__ import annotations

import functools
import io
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from readiness.engine import worker
from readiness.engine.app import LOST_AFTER_S
from readiness.remediate import remediate, render
from readiness.remediate import run as remediate_run

from ..services.apps import LocalTestHost, write_app

REASON = "results cannot be reported to the controller: "


class _Task:
    """The bound task a shard publishes through; ``down`` makes publishing raise."""

    def __init__(self) -> None:
        self.request = SimpleNamespace(id="shard-1", hostname="w1")
        self.down = False
        self.published = 0

    def update_state(self, **_: Any) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to redis://:hunter22@127.0.0.1:6390/0.")
        self.published += 1


def test_a_shard_that_cannot_publish_refuses_to_apply_and_says_why() -> None:
    task = _Task()
    shard = worker._ShardRun(task, "exec-1", None)  # its publisher thread is not started
    assert shard.cannot_report() == ""  # never published yet: it publishes, then goes on
    assert task.published == 1
    task.down = True
    assert shard.cannot_report() == ""  # a publish succeeded just now: still fresh
    assert shard.published_at is not None
    shard.published_at -= LOST_AFTER_S / 2 + 0.1  # the last publish is now too old
    why = shard.cannot_report()
    assert why.startswith(REASON + "ConnectionError: Error 111 connecting to redis://:***@")
    assert why.endswith("; nothing more was changed")
    assert "hunter22" not in why
    assert shard.publish_now() is False
    task.down = False  # Redis is back: the next fix may go on
    assert shard.cannot_report() == ""


def test_a_shard_that_never_published_refuses_its_first_fix() -> None:
    task = _Task()
    task.down = True
    shard = worker._ShardRun(task, "exec-1", None)
    assert shard.cannot_report().startswith(REASON + "ConnectionError")


def test_fixes_after_the_controller_is_lost_are_refused_and_leave_the_host_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first fix is applied; then publishing fails: the next fixes are refused, the
    files they would change are untouched, the audit log and the report say why."""
    root = write_app(
        tmp_path / "app",
        settings_text=yaml.safe_dump({"server_name": "x", "auth": {"enabled": True}}),
        files={"README.md": "# App\n\n## Installation\n\npip install app\n"},
    )
    task = _Task()
    shard = worker._ShardRun(task, "exec-1", None)
    asked: list[float] = []

    def may_apply() -> str:
        asked.append(time.monotonic())
        if len(asked) == 2:  # Redis goes away after the first fix
            task.down = True
            assert shard.published_at is not None
            shard.published_at -= LOST_AFTER_S
        return shard.cannot_report()

    original = remediate_run.remediate_hosts
    monkeypatch.setattr(
        remediate_run, "remediate_hosts", functools.partial(original, may_apply=may_apply)
    )
    settings_before = (root / "settings" / "mahavishnu.yaml").read_bytes()
    checks = ["documentation", "error_handling", "resource_limits"]
    report = remediate(
        [LocalTestHost()],
        checks,
        profile_overrides={"app_root": str(root)},
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
        apply=True,
    )
    outcomes = report.hosts[0].outcomes
    assert [o.outcome for o in outcomes] == ["applied", "refused", "refused"], render(report)
    assert "## Usage" in (root / "README.md").read_text()  # the first fix (documentation)
    assert (root / "settings" / "mahavishnu.yaml").read_bytes() == settings_before
    assert not (root / "data" / "dlq").exists()
    for o in outcomes[1:]:
        assert o.message.startswith(REASON) and o.message.endswith("nothing more was changed")
    log = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in log] == ["applied", "refused", "refused"]
    text = render(report)
    assert "1 applied, 2 refused" in text
    assert report.exit_code == 1
    assert len(asked) == 3
