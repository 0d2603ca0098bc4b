"""`remediate` and the celery engine: how the engine is chosen, and what is refused early.

Through the real command on a two-host loopback sshd fleet with broken app trees, without
a broker: `--engine celery` (or celery from $READINESS_ENGINE or the configuration file)
without a reachable broker is one line and exit 2 before any host is touched, and so is
applying to several hosts with no terminal to confirm on. `--engine local` wins over the
environment. `watch` and `nagios` always run here: celery from the environment or the
configuration file is one warning line. Remediation through real workers:
tests/engine/test_celery_remediate.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.loopback import LoopbackFleet, start_fleet
from tests.services.apps import write_app

pytestmark = pytest.mark.ssh

BIN = Path(sys.executable).parent
UNREACHABLE = "redis://:pw-canary-91@127.0.0.1:1/0"  # nothing listens on port 1


@dataclass
class Site:
    fleet: LoopbackFleet
    home: Path
    inventory: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remediate-engine")
    with start_fleet(2, app_writer=lambda _i, app: write_app(app)) as fleet:
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")
        yield Site(fleet, home, fleet.write_inventory(root / "inventory.yml"))


def _remediate(
    site: Site, cwd: Path, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    environ = {
        k: v for k, v in os.environ.items() if k not in ("READINESS_ENGINE", "READINESS_BROKER_URL")
    }
    environ.update({"HOME": str(site.home)}, **(env or {}))
    return subprocess.run(
        [
            str(BIN / "readiness"),
            "remediate",
            f"--inventory={site.inventory}",
            "--hosts=fleet",
            "--format=json",
            "--store=none",
            f"--audit-log={cwd / 'audit.jsonl'}",
            *extra,
        ],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _plan(stdout: str) -> list[Any]:
    """The planned fixes of every host, without what changes on every run."""
    volatile = {"duration_s", "timestamp", "generated_at", "started_at", "finished_at"}

    def strip(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: strip(v) for k, v in node.items() if k not in volatile}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return [strip(h) for h in json.loads(stdout)["hosts"]]


def _logins(site: Site) -> list[int]:
    return [h.accepted_logins() for h in site.fleet.hosts]


@pytest.mark.timeout(120)
def test_celery_without_a_reachable_broker_is_refused_before_touching_a_host(
    site: Site, tmp_path: Path
) -> None:
    before = _logins(site)
    config = tmp_path / "config"
    config.mkdir()
    (config / "readiness.yaml").write_text(yaml.safe_dump({"readiness": {"engine": "celery"}}))
    for res in (_remediate(site, tmp_path / "none", "--engine=celery"), _remediate(site, config)):
        assert (res.returncode, res.stdout) == (2, ""), res.stderr
        assert len(res.stderr.splitlines()) == 1 and "needs a broker" in res.stderr
    for res in (
        _remediate(site, tmp_path / "flag", "--engine=celery", f"--broker={UNREACHABLE}"),
        _remediate(
            site,
            tmp_path / "env",
            "--apply",
            "--yes",
            env={"READINESS_ENGINE": "celery", "READINESS_BROKER_URL": UNREACHABLE},
        ),
    ):
        assert (res.returncode, res.stdout) == (2, ""), res.stderr
        assert len(res.stderr.splitlines()) == 1 and "unreachable" in res.stderr, res.stderr
        assert "pw-canary-91" not in res.stderr
    assert _logins(site) == before  # refused before any SSH session
    assert not list(tmp_path.rglob("audit.jsonl"))


@pytest.mark.timeout(120)
def test_apply_to_several_hosts_without_a_terminal_is_refused_before_the_broker(
    site: Site, tmp_path: Path
) -> None:
    before = _logins(site)
    res = _remediate(site, tmp_path, "--apply", "--engine=celery", f"--broker={UNREACHABLE}")
    assert res.returncode == 2, res.stderr
    assert "without confirmation: pass --yes" in res.stderr  # not the broker's error
    assert _logins(site) == before
    assert not (tmp_path / "audit.jsonl").exists()


@pytest.mark.timeout(120)
def test_engine_local_wins_over_the_environment(site: Site, tmp_path: Path) -> None:
    local = _remediate(site, tmp_path / "local")
    assert local.returncode == 0, local.stderr
    planned = _plan(local.stdout)
    assert planned and any(h["fixes"] for h in planned)  # there is something to plan
    quiet = _remediate(
        site,
        tmp_path / "flag-local",
        "--engine=local",
        env={"READINESS_ENGINE": "celery", "READINESS_BROKER_URL": UNREACHABLE},
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
    assert _plan(quiet.stdout) == planned
    # a bad value is one line and exit 2, as everywhere
    bad = _remediate(site, tmp_path / "bad", env={"READINESS_ENGINE": "kubernetes"})
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "$READINESS_ENGINE" in bad.stderr


def _local_only(site: Site, cwd: Path, task: str, env: Mapping[str, str]) -> Any:
    cwd.mkdir(parents=True, exist_ok=True)
    environ = {
        k: v for k, v in os.environ.items() if k not in ("READINESS_ENGINE", "READINESS_BROKER_URL")
    }
    environ.update({"HOME": str(site.home)}, **env)
    extra = (
        ["--max-runs=1", "--every=1h", "--listen=127.0.0.1:0", "--store=none"]
        if task == "watch"
        else []
    )
    return subprocess.run(
        [
            str(BIN / "readiness"),
            task,
            f"--inventory={site.inventory}",
            "--hosts=fleet",
            "--check=environment",
            *extra,
        ],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("task", ["watch", "nagios"])
def test_watch_and_nagios_say_when_they_ignore_celery(
    site: Site, tmp_path: Path, task: str
) -> None:
    """They always audit from this machine: celery from the environment or the configuration
    file is one warning line on stderr, and the run is the same as without it."""
    plain = _local_only(site, tmp_path / "plain", task, {})
    assert "warning" not in plain.stderr
    config = tmp_path / "config"
    config.mkdir()
    (config / "readiness.yaml").write_text(
        yaml.safe_dump({"readiness": {"engine": "celery", "broker": UNREACHABLE}})
    )
    for res, source in (
        (
            _local_only(site, tmp_path / "env", task, {"READINESS_ENGINE": "celery"}),
            "$READINESS_ENGINE=celery",
        ),
        (_local_only(site, config, task, {}), "readiness.engine celery (configuration file)"),
    ):
        assert res.returncode == plain.returncode, res.stderr
        warnings = [line for line in res.stderr.splitlines() if "warning" in line]
        assert warnings == [
            f"readiness: warning: {source} ignored: {task} runs on this machine only "
            "(docs/distributed.md)"
        ], res.stderr
        assert "pw-canary-91" not in res.stdout + res.stderr
        if task == "nagios":  # the plugin's one status line, the same verdict
            assert (
                res.stdout.split("|")[0].split(" - ")[0]
                == plain.stdout.split("|")[0].split(" - ")[0]
            )
