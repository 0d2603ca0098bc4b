"""`remediate` and the celery engine: remediation runs on the controller only.

Through the real command on a one-host loopback sshd fleet with a broken app tree:
`--engine celery` is refused with one line and exit 2 before any host is touched, while
celery chosen by $READINESS_ENGINE or the configuration file (set there for `validate`)
warns once on stderr and remediates locally, exactly like a run without it.
No broker is needed: none is ever contacted.
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
REASON = (
    "remediation runs on the controller only: the confirmation, the fixes and their audit "
    "log stay on this machine (docs/distributed.md)"
)
REFUSED = f"readiness: --engine celery: {REASON}"


@dataclass
class Site:
    fleet: LoopbackFleet
    home: Path
    inventory: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remediate-engine")
    with start_fleet(1, app_writer=lambda _i, app: write_app(app)) as fleet:
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


@pytest.mark.timeout(120)
def test_remediate_engine_celery_by_flag_is_refused_before_touching_a_host(
    site: Site, tmp_path: Path
) -> None:
    host = site.fleet.hosts[0]
    before = host.accepted_logins()
    for extra in (["--engine=celery"], ["--engine=celery", "--apply", "--yes"]):
        res = _remediate(site, tmp_path / "flag", *extra)
        assert res.returncode == 2, res.stderr
        assert res.stdout == ""
        assert res.stderr.splitlines() == [REFUSED]
    assert host.accepted_logins() == before  # refused before any SSH session
    assert not (tmp_path / "flag" / "audit.jsonl").exists()
    # also over a configuration file or environment that says celery: the flag decides
    both = tmp_path / "flag-and-config"
    both.mkdir()
    (both / "readiness.yaml").write_text(yaml.safe_dump({"readiness": {"engine": "local"}}))
    res = _remediate(site, both, "--engine=celery")
    assert (res.returncode, res.stderr.splitlines()) == (2, [REFUSED])


@pytest.mark.timeout(120)
def test_celery_from_the_environment_or_configuration_warns_and_remediates_locally(
    site: Site, tmp_path: Path
) -> None:
    local = _remediate(site, tmp_path / "local")
    assert local.returncode == 0, local.stderr
    planned = _plan(local.stdout)
    assert planned and any(h["fixes"] for h in planned)  # there is something to plan
    assert "warning" not in local.stderr

    by_env = _remediate(site, tmp_path / "env", env={"READINESS_ENGINE": "celery"})
    config = tmp_path / "config"
    config.mkdir()
    (config / "readiness.yaml").write_text(
        yaml.safe_dump({"readiness": {"engine": "celery", "broker": "redis://:pw@127.0.0.1:1/0"}})
    )
    by_config = _remediate(site, config)
    for res, source in (
        (by_env, "$READINESS_ENGINE=celery"),
        (by_config, "readiness.engine celery (configuration file)"),
    ):
        assert res.returncode == local.returncode, res.stderr
        assert _plan(res.stdout) == planned  # the same dry run, from this machine
        warnings = [line for line in res.stderr.splitlines() if "warning" in line]
        assert warnings == [f"readiness: warning: {source} ignored: {REASON}"], res.stderr
        assert "pw@" not in res.stdout + res.stderr

    # --engine local wins over the environment: no warning at all
    quiet = _remediate(
        site, tmp_path / "flag-local", "--engine=local", env={"READINESS_ENGINE": "celery"}
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
    assert _plan(quiet.stdout) == planned
    # a bad value is one line and exit 2, as everywhere
    bad = _remediate(site, tmp_path / "bad", env={"READINESS_ENGINE": "kubernetes"})
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "$READINESS_ENGINE" in bad.stderr
