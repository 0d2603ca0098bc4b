"""Commands the app's code runs (``readiness/checks/_owned.py``) that the probe refuses to run:
"cannot determine" (DEGRADED), never a failure of the command the check never ran."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.loopback import start_fleet
from tests.services.apps import write_app
from tests.services.cli import run_cli
from tests.services.gitrepos import make_repo
from tests.services.httpd import HttpServer
from tests.services.sshd import NOPW_USER

CHECKS = (
    "workflow_execution",
    "workflow_benchmark",
    "workflow_state",
    "observability_logging",
    "repository_benchmark",
)


@pytest.mark.ssh
def test_an_app_owned_command_a_non_root_audit_account_cannot_run_is_undetermined(
    tmp_path: Path, http_server: Callable[[], HttpServer]
) -> None:
    """The ordinary non-root audit: readiness-nopw over SSH, the app tree nobody's (the app
    user's). The probe cannot become nobody, so it runs none of the app's commands; each
    check said NOT_READY ("could not be started", "2/2 runs failed", "start_command failed",
    "logging the marker failed") with a recommendation to fix the command."""
    status = http_server().route("/runs/7", json={"id": "7", "state": "completed"})
    record = "import json; print(json.dumps({'state': 'completed', 'id': '7'}))"

    def write(index: int, root: Path) -> None:
        write_app(
            root,
            files={
                "repos.yaml": yaml.safe_dump(["repos/one"]),
                "logs/mahavishnu.log": '{"level": "info"}\n',
            },
        )
        make_repo(root / "repos" / "one", 1)
        subprocess.run(["chown", "-R", "nobody", str(root)], check=True, timeout=30)

    profile: dict[str, Any] = {
        "smoke_workflow": {"command": ["python3", "-c", record], "timeout_s": 10},
        "workflow_benchmark": {"runs": 2, "concurrency": 2, "time_cap_s": 10},
        "repository_benchmark": {"repetitions": 2, "operations": ["status"]},
        "workflow_state": {
            "enabled": True,
            "start_command": ["python3", "-c", record],
            "status_url": status.url + "/runs/{id}",
        },
        "observability_logging": {
            "enabled": True,
            "marker_command": ["sh", "-c", 'echo \'{"m": "{marker}"}\' >> logs/mahavishnu.log'],
        },
        "benchmark_baseline_dir": None,
    }
    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {"app_root": str(h.app_root), **profile},
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", ",".join(CHECKS)]
        res = run_cli(*argv, "--known-hosts", str(fleet.known_hosts), "--format", "json")
        log = (fleet.hosts[0].app_root / "logs" / "mahavishnu.log").read_text()
    assert res.returncode in (0, 1), res.stderr
    checks = {c["check_name"]: c for c in json.loads(res.stdout)["hosts"][0]["checks"]}
    for name in CHECKS:
        result = checks[name]
        assert result["status"] == "degraded", (name, result["message"])
        assert "cannot determine" in result["message"], (name, result["message"])
        assert "belongs to nobody" in result["message"], (name, result["message"])
        assert result["recommendations"] == [
            "Rerun with --sudo so readiness can run it as nobody"
        ], name
    assert "readiness-marker" not in log, "the marker command ran"
    assert status.requests == [], "the workflow was never started, so never polled"


SMOKE_RECORDING_UID = """\
import json, os, sys
with open(sys.argv[1], "a") as fh:
    fh.write("%d\\n" % os.getuid())
print(json.dumps({"state": "completed"}))
"""


def test_an_app_script_run_by_roots_interpreter_outside_the_app_tree_runs_as_its_owner() -> None:
    """`smoke_workflow: {command: [/usr/bin/python3, /srv/app/smoke.py], cwd: /}`: only the
    working directory (/) and argv[0] (root's interpreter) were judged, so under --sudo the
    app user's smoke.py ran as root. The script now counts: it runs as its owner."""
    import os
    import pwd
    import shutil
    import tempfile

    from tests.services.cli import local_inventory, validate_check

    base = Path(tempfile.mkdtemp(prefix="readiness-owned-"))
    base.chmod(0o755)
    record = base / "uids"
    record.write_text("")
    record.chmod(0o666)
    try:
        app = write_app(base / "app", files={"smoke.py": SMOKE_RECORDING_UID})
        subprocess.run(["chown", "-R", "nobody", str(app)], check=True, timeout=10)
        argv = ["/usr/bin/python3", str(app / "smoke.py"), str(record)]
        smoke = {"command": argv, "cwd": "/", "timeout_s": 20}
        inventory = local_inventory(base / "inv.yml", app, smoke_workflow=smoke)
        result = validate_check(inventory, "workflow_execution")
        uids = [int(u) for u in record.read_text().split()]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert result["status"] == "ready", result["message"]
    assert uids == [pwd.getpwnam("nobody").pw_uid] and os.geteuid() == 0, uids
