"""A small fleet with planted defects: real sshd hosts, real service processes, one defect each.

Every host runs the example app's stand-in service (examples/mahavishnu/bin/mahavishnu-demo)
started from its env file, as systemd's EnvironmentFile= would. Each defect host has
exactly one defect; the clean hosts carry the near-misses that must stay READY (ordinary
values equal to the app name or ``default``, a strong secret containing "password",
files edited just before the service started). The expected verdicts come from the
original validator's requirements (insecure default credentials and missing required
variables are critical; retries outside 1-10 and a service that has not loaded its
configuration are warnings; authentication is required in production; a service that is
not running cannot shut down gracefully), not from this project's own docs.

The audit runs as a user types it: ``readiness validate -i INV --json`` in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from readiness.loopback import LoopbackFleet, start_fleet
from tests.services.apps import env_file_of, running_service, write_app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mahavishnu"
BIN = Path(sys.executable).parent
CHECKS = [
    "environment",
    "configuration",
    "error_handling",
    "graceful_shutdown",
    "documentation",
    "backup_restore",
]
RESILIENCE: dict[str, Any] = {
    "retry": {"max_attempts": 3, "backoff_base_s": 1.0, "backoff_max_s": 30.0},
    "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
    "dead_letter_queue": {"enabled": True, "path": "data/dlq"},
    "error_categories": ["transient", "permanent", "validation", "timeout"],
}
# Ordinary values every host carries: none of them is a credential.
NEAR_MISSES = {
    "MAHAVISHNU_OBSERVABILITY__SERVICE_NAME": "mahavishnu",
    "MAHAVISHNU_ADAPTERS__PREFECT__WORK_POOL": "default",
    "MAHAVISHNU_BROKER__PASSWORD": "Vq7-password-K2m9-Xr4t-unguessable",
}
# 4,000 comment lines of 80 bytes: 320,000 bytes, past the 256 KiB the probe reads of a file.
PADDING = ("# " + "-" * 77 + "\n") * 4000
GRACE_S = 0.2  # thresholds.stale_config_grace_s for the fleet: keeps the test's sleep short


@dataclass(frozen=True)
class Scenario:
    name: str
    expect: dict[str, str] = field(default_factory=dict)  # check -> status; others "ready"
    says: dict[str, str] = field(default_factory=dict)  # check -> text its message contains
    env: dict[str, str | None] = field(default_factory=dict)  # env file changes
    process_env: dict[str, str] = field(default_factory=dict)  # only in the process
    files: dict[str, str] = field(default_factory=dict)  # written over the app tree
    append: dict[str, str] = field(default_factory=dict)  # appended to the app's files


SCENARIOS = [
    Scenario("clean"),
    Scenario("clean-edited-before-start"),
    Scenario(
        # Saved by a Windows editor: a byte-order mark and CRLF line ends. Its first heading,
        # "# Installation" right after the BOM, was missed (documentation DEGRADED).
        "clean-readme-bom-crlf",
        files={
            "README.md": "\ufeff# Installation\r\n\r\nUnpack into /opt/mahavishnu.\r\n\r\n"
            "## Usage\r\n\r\nmahavishnu serve\r\n\r\nConfiguration\r\n=============\r\n\r\n"
            "settings/mahavishnu.yaml and .env\r\n"
        },
    ),
    # "t" is true to pydantic: authentication is on (was NOT_READY "disabled").
    Scenario("clean-auth-enabled-t", process_env={"MAHAVISHNU_AUTH__ENABLED": "t"}),
    Scenario(
        "insecure-credential",
        {"environment": "not_ready"},
        {"environment": "MAHAVISHNU_BROKER__PASSWORD uses an insecure default credential"},
        env={"MAHAVISHNU_BROKER__PASSWORD": "changeme"},
    ),
    Scenario(
        # Was READY: PostgreSQL's textbook default password was not on the default list.
        "postgres-default-password",
        {"environment": "not_ready"},
        {"environment": "MAHAVISHNU_DATABASE__URL uses an insecure default database password"},
        env={"MAHAVISHNU_DATABASE__URL": "postgresql://postgres:postgres@127.0.0.1:5432/app"},
    ),
    Scenario(
        # Was READY: the account a DSN names was never judged.
        "dsn-superuser",
        {"environment": "not_ready"},
        {"environment": "MAHAVISHNU_DATABASE__URL connects as the default account"},
        env={"MAHAVISHNU_DATABASE__URL": "postgresql://postgres:Vq7-K2m9-Xr4t@127.0.0.1:5432/app"},
    ),
    Scenario(
        # Longer than the probe reads (256 KiB), authentication switched off at the end:
        # configuration was judged on the head alone (auth on).
        "oversized-settings",
        {"environment": "degraded", "configuration": "not_ready", "error_handling": "not_ready"},
        {"configuration": "is longer than the audit reads"},
        append={"settings/mahavishnu.yaml": PADDING + "auth:\n  enabled: false\n"},
    ),
    Scenario(
        "oversized-env",
        {"environment": "not_ready", "configuration": "not_ready", "error_handling": "not_ready"},
        {"environment": "is longer than the audit reads", "configuration": "env file "},
        append={".env": PADDING + "MAHAVISHNU_BROKER__PASSWORD=changeme\n"},
    ),
    Scenario(
        "stale-env",
        {"environment": "degraded"},
        {"environment": "running with stale configuration: env file "},
        env={"MAHAVISHNU_REPOS_PATH": None},  # added to the env file after the start
    ),
    Scenario(
        "auth-off-in-process",
        {"configuration": "not_ready"},
        {"configuration": "authentication is disabled on a production host (from MAHAVISHNU_AUTH"},
        process_env={"MAHAVISHNU_AUTH__ENABLED": "false"},
    ),
    Scenario(
        "retry-override-in-process",
        {"error_handling": "degraded"},
        {"error_handling": "overriding 3 in the settings file"},
        process_env={"MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS": "50"},
    ),
    Scenario(
        "blank-required-variable",
        {"environment": "not_ready"},
        {"environment": "MAHAVISHNU_REPOS_PATH is set to only whitespace"},
        env={"MAHAVISHNU_REPOS_PATH": '"   "'},  # was READY: "   " counted as set
    ),
    Scenario(
        "padded-auth-secret",
        {"configuration": "not_ready"},
        {"configuration": "auth secret is too short (3 < 32 characters without its surrounding"},
        env={"MAHAVISHNU_AUTH__SECRET": '"abc' + " " * 40 + '"'},  # was READY: 43 characters
    ),
    Scenario(
        "nan-backoff-in-process",
        {"error_handling": "not_ready"},
        {"error_handling": "resilience.retry.backoff_base_s must be a finite number, got nan"},
        process_env={"MAHAVISHNU_RESILIENCE__RETRY__BACKOFF_BASE_S": "nan"},  # was READY
    ),
    Scenario(
        "stale-pidfile",
        {"environment": "degraded", "graceful_shutdown": "not_ready"},
        {
            "environment": "which no longer exists); judged the env file only",
            "graceful_shutdown": "which no longer exists)",
        },
    ),
    Scenario(
        "stale-settings",
        {"environment": "degraded", "configuration": "degraded", "error_handling": "degraded"},
        {
            "environment": "running with stale configuration: settings file ",
            "configuration": "running with stale configuration: settings file ",
            "error_handling": "running with stale configuration: settings file ",
        },
    ),
]


def _writer(otlp_url: str) -> Any:
    def write(index: int, root: Path) -> None:
        scenario = SCENARIOS[index]
        write_app(
            root,
            settings={"observability": {"otlp_endpoint": otlp_url}, "resilience": RESILIENCE},
            env={**NEAR_MISSES, **scenario.env},
            files={"backups/db-1.sql": "-- dump\n"},
        )
        (root / "data" / "dlq").mkdir(parents=True)
        shutil.copytree(EXAMPLE / "docs", root / "docs", dirs_exist_ok=True)
        shutil.copy(EXAMPLE / "README.md", root / "README.md")
        (root / "docs" / "runbooks" / "escalation.md").write_text(
            "# Escalation\n\nPage the on-call engineer, then the team lead.\n"
        )
        for rel, text in scenario.files.items():
            (root / rel).write_bytes(text.encode())
        for rel, text in scenario.append.items():
            with (root / rel).open("a") as fh:
                fh.write(text)

    return write


@dataclass
class Planted:
    fleet: LoopbackFleet
    inventory: Path
    pids: dict[str, int]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    otlp = socket.socket()
    otlp.bind(("127.0.0.1", 0))
    otlp.listen(64)
    url = f"http://127.0.0.1:{otlp.getsockname()[1]}"
    try:
        with start_fleet(len(SCENARIOS), app_writer=_writer(url)) as fleet, ExitStack() as stack:
            by_name = {h.name: s for h, s in zip(fleet.hosts, SCENARIOS, strict=True)}
            procs: dict[str, subprocess.Popen[bytes]] = {}
            for host in fleet.hosts:
                scenario, root = by_name[host.name], host.app_root
                if scenario.name == "clean-edited-before-start":
                    (root / ".env").touch()  # a deploy writes its files, then starts the service
                    (root / "settings" / "mahavishnu.yaml").touch()
                env = {**env_file_of(root), **scenario.process_env}
                procs[host.name] = stack.enter_context(running_service(root, env))[0]
            time.sleep(GRACE_S + 0.2)  # what happens next happens after the services started
            for host in fleet.hosts:
                scenario, root = by_name[host.name], host.app_root
                if scenario.name == "stale-env":
                    with (root / ".env").open("a") as fh:
                        fh.write("MAHAVISHNU_REPOS_PATH=repos.yaml\n")
                elif scenario.name == "stale-settings":
                    settings = root / "settings" / "mahavishnu.yaml"
                    settings.write_text(settings.read_text() + "# tuned after the start\n")
                elif scenario.name == "stale-pidfile":
                    procs[host.name].send_signal(signal.SIGKILL)  # leaves its pidfile behind
                    procs[host.name].wait(5)
            inventory = fleet.write_inventory(
                tmp_path_factory.mktemp("scenarios") / "inventory.yml",
                host_vars=lambda h: {
                    "readiness": {
                        "app_root": str(h.app_root),
                        "pidfile": "run/mahavishnu.pid",
                        "backup_schedule": "cron, daily 02:00 (ops-managed)",
                        "thresholds": {"stale_config_grace_s": GRACE_S},
                    }
                },
            )
            yield Planted(fleet, inventory, {k: p.pid for k, p in procs.items()})
    finally:
        otlp.close()


@pytest.fixture(scope="module")
def audited(planted: Planted) -> dict[str, Any]:
    """The fleet's report, from ``readiness validate`` as a user runs it."""
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "validate",
            "-i",
            str(planted.inventory),
            "--hosts",
            "fleet",
            "-c",
            ",".join(CHECKS),
            "--known-hosts",
            str(planted.fleet.known_hosts),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 1, res.stderr  # defect hosts are not ready
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def _results(audited: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {h["host"]: {c["check_name"]: c for c in h["checks"]} for h in audited["hosts"]}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_host_gets_exactly_the_expected_verdict_per_check(
    planted: Planted, audited: dict[str, Any], scenario: Scenario
) -> None:
    host = planted.fleet.hosts[SCENARIOS.index(scenario)].name
    results = _results(audited)[host]
    got = {check: results[check]["status"] for check in CHECKS}
    want = {check: scenario.expect.get(check, "ready") for check in CHECKS}
    messages = {c: results[c]["message"] for c in CHECKS if got[c] != "ready"}
    assert got == want, messages
    for check, text in scenario.says.items():
        assert text in results[check]["message"] + " ".join(
            results[check]["details"].get("warnings") or ()
        ), results[check]["message"]


def test_clean_hosts_have_zero_non_ready_results(planted: Planted, audited: dict[str, Any]) -> None:
    results = _results(audited)
    clean = [h.name for h, s in zip(planted.fleet.hosts, SCENARIOS, strict=True) if not s.expect]
    assert len(clean) == 4
    bad = {
        (host, check): r["message"]
        for host in clean
        for check, r in results[host].items()
        if r["status"] != "ready"
    }
    assert bad == {}
    # The near-misses really were there, in the running process too.
    for host in clean:
        env = results[host]["environment"]["details"]
        assert env["insecure"] == []
        assert any(s.startswith("process ") for s in env["sources"])


def test_planted_messages_name_the_pid_and_the_place(
    planted: Planted, audited: dict[str, Any]
) -> None:
    results = _results(audited)
    names = {s.name: h for h, s in zip(planted.fleet.hosts, SCENARIOS, strict=True)}
    gone = names["stale-pidfile"]
    pidfile = gone.app_root / "run" / "mahavishnu.pid"
    assert (
        f"pidfile {pidfile} names PID {planted.pids[gone.name]}, which no longer exists"
        in results[gone.name]["graceful_shutdown"]["message"]
    )
    auth = results[names["auth-off-in-process"].name]["configuration"]
    pid = planted.pids[names["auth-off-in-process"].name]
    assert f"MAHAVISHNU_AUTH__ENABLED in the environment of process {pid}" in auth["message"]
    stale = results[names["stale-env"].name]["environment"]
    assert stale["details"]["restart_needed"] is True
    assert stale["details"]["stale"]["lacking"] == ["MAHAVISHNU_REPOS_PATH"]
    assert any(r.startswith("Restart the service") for r in stale["recommendations"])
