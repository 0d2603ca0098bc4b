"""The core ``validate`` checks' verdicts on a fleet of app trees, one planted defect each.

Generated from ``FLEET``: each row is an app tree (tests.services.apps.write_app) with one
defect, the check that must see it, the status the seed documents / an SRE requires, a
fragment of the message and a fragment of the recommendation that fixes it. The whole fleet
is audited by ONE real ``readiness validate --hosts all`` (each host a local app tree), as a
user runs it. Limits are inclusive: a value exactly at a limit (32-character secret, 10
retries, backoff_max == backoff_base, 8 == 8 workers, 5/20 workflows, 300/1800 s) is READY,
one past it is not.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services.apps import write_app
from tests.services.cli import run_cli

RESILIENCE: dict[str, Any] = {
    "retry": {"max_attempts": 3, "backoff_base_s": 1.0, "backoff_max_s": 30},
    "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
    "dead_letter_queue": {"enabled": True, "path": "data/dlq"},
    "error_categories": ["transient", "permanent"],
}
DLQ = {"data/dlq/.keep": ""}
DOCS = {
    "README.md": "# App\n## Installation\nx\n## Usage\nx\n## Configuration\nx\n",
    "docs/API.md": "api",
    "docs/DEPLOYMENT.md": "deploy",
    "docs/runbooks/incident-response.md": "x",
    "docs/runbooks/escalation.md": "x",
    "docs/runbooks/rollback.md": "x",
}
BACKUP = {"docs/backup.md": "How to back up and restore.\n", "backups/db-1.dump": "data"}
SCHEDULED = {"backup_schedule": "0 2 * * * pg-backup"}
OTLP = "@OTLP@"  # replaced by a listening loopback endpoint
SECRET_32 = "Zq8w3Jr5Nv1Lx7Tb9Hc2Pm4Kd6Fs0Gy1A"


def resilience(**changes: Any) -> dict[str, Any]:
    """The resilience section with ``retry__max_attempts=11``-style changes."""
    out = copy.deepcopy(RESILIENCE)
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            out[section][name] = value
        else:
            out[section] = value
    return {"resilience": out}


def observed(**extra: Any) -> dict[str, Any]:
    return {"observability": {"metrics_enabled": True, "otlp_endpoint": OTLP}, **extra}


@dataclass(frozen=True)
class Planted:
    check: str
    status: str
    says: str = ""  # in the message
    fix: str = ""  # in a recommendation (DEGRADED / NOT_READY)
    settings: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str | None] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    profile: Mapping[str, Any] = field(default_factory=dict)
    age_h: Mapping[str, float] = field(default_factory=dict)


FLEET: dict[str, Planted] = {
    # environment
    "env_ok": Planted("environment", "ready", "properly configured (read from env file"),
    "env_no_repos": Planted(
        "environment",
        "not_ready",
        "MAHAVISHNU_REPOS_PATH is not set",
        "Set MAHAVISHNU_REPOS_PATH in the service environment",
        env={"MAHAVISHNU_REPOS_PATH": None},
    ),
    "env_no_secret": Planted(
        "environment",
        "not_ready",
        "MAHAVISHNU_AUTH__SECRET is not set (required because auth.enabled is enabled)",
        "Set MAHAVISHNU_AUTH__SECRET in the service environment",
        env={"MAHAVISHNU_AUTH__SECRET": None},
    ),
    "env_default_secret": Planted(
        "environment",
        "not_ready",
        "MAHAVISHNU_AUTH__SECRET uses an insecure default credential",
        "Replace MAHAVISHNU_AUTH__SECRET with a unique, strong value",
        env={"MAHAVISHNU_AUTH__SECRET": "changeme"},
    ),
    "env_dsn_scheme": Planted(
        "environment",
        "not_ready",
        "scheme 'mysql' is not postgresql:// or postgres://",
        "Fix MAHAVISHNU_DATABASE__URL format",
        env={"MAHAVISHNU_DATABASE__URL": "mysql://app:Zx9vB7nM3qL1@db/x"},
    ),
    "env_dsn_port": Planted(
        "environment",
        "not_ready",
        "port '99999' is not a number from 1 to 65535",
        "Fix MAHAVISHNU_DATABASE__URL format",
        env={"MAHAVISHNU_DATABASE__URL": "postgresql://app:Zx9vB7nM3qL1@db:99999/x"},
    ),
    "env_dsn_superuser": Planted(
        "environment",
        "not_ready",
        "connects as the default account 'postgres'",
        "Create a dedicated login role for the app",
        env={"MAHAVISHNU_DATABASE__URL": "postgresql://postgres:Zx9vB7nM3qL1@db/x"},
    ),
    "env_no_process": Planted(
        "environment",
        "degraded",
        "service process not found",
        "Start the service (or fix 'pidfile'/'process_match' in the profile)",
        profile={"pidfile": "run/app.pid"},
    ),
    # configuration
    "cfg_ok": Planted("configuration", "ready", "complete and consistent", settings=observed()),
    "cfg_secret_at_32": Planted(
        "configuration",
        "ready",
        "complete and consistent",
        settings=observed(),
        env={"MAHAVISHNU_AUTH__SECRET": SECRET_32},
    ),
    "cfg_secret_31": Planted(
        "configuration",
        "not_ready",
        "auth secret is too short (31 < 32 characters)",
        "to a strong secret (32+",
        settings=observed(),
        env={"MAHAVISHNU_AUTH__SECRET": SECRET_32[:31]},
    ),
    "cfg_secret_repeated": Planted(
        "configuration",
        "not_ready",
        "auth secret is weak: 40 characters but only 1 distinct",
        "to a strong secret (32+ random characters)",
        settings=observed(),
        env={"MAHAVISHNU_AUTH__SECRET": "q" * 40},
    ),
    "cfg_auth_off": Planted(
        "configuration",
        "not_ready",
        "authentication is disabled on a production host",
        "set auth.enabled to true",
        settings=observed(auth={"enabled": False}),
    ),
    "cfg_alg_none": Planted(
        "configuration",
        "not_ready",
        "auth algorithm 'none' is not allowed",
        "Set auth.algorithm to one of: HS256, RS256",
        settings=observed(auth={"enabled": True, "algorithm": "none"}),
    ),
    "cfg_alg_unset": Planted(
        "configuration",
        "degraded",
        "auth.algorithm is not set, so the app's default applies",
        "Set auth.algorithm to one of: HS256, RS256",
        settings=observed(auth={"enabled": True, "algorithm": None}),
    ),
    "cfg_pool_equal": Planted(
        "configuration",
        "ready",
        settings=observed(pools={"min_workers": 8, "max_workers": 8}),
    ),
    "cfg_pool_inverted": Planted(
        "configuration",
        "not_ready",
        "pools.min_workers (9) > pools.max_workers (8)",
        "Set pools.min_workers to at most 8",
        settings=observed(pools={"min_workers": 9, "max_workers": 8}),
    ),
    "cfg_pool_zero": Planted(
        "configuration",
        "not_ready",
        "pool workers must be positive integers",
        "Set pools.min_workers to a positive integer",
        settings=observed(pools={"min_workers": 0}),
    ),
    "cfg_routing": Planted(
        "configuration",
        "not_ready",
        "unknown pool routing strategy 'fastest'",
        "Set pools.routing_strategy to one of",
        settings=observed(pools={"routing_strategy": "fastest"}),
    ),
    "cfg_metrics_off": Planted(
        "configuration",
        "degraded",
        "metrics are disabled",
        "Set observability.metrics_enabled to true",
        settings={"observability": {"metrics_enabled": False, "otlp_endpoint": OTLP}},
    ),
    "cfg_otlp_unparseable": Planted(
        "configuration",
        "not_ready",
        "OTLP endpoint 'http://[::1' cannot be parsed",
        "Set observability.otlp_endpoint to host:port or a URL",
        settings={"observability": {"metrics_enabled": True, "otlp_endpoint": "http://[::1"}},
    ),
    "cfg_adapter_unset": Planted(
        "configuration",
        "degraded",
        "prefect adapter is enabled but missing api_url",
        "set adapters.prefect.api_url",
        settings=observed(adapters={"prefect": {"enabled": True, "api_url": ""}}),
    ),
    # error_handling (seed: "Validates retry settings (1-10 attempts)")
    "eh_ok": Planted("error_handling", "ready", settings=resilience(), files=DLQ),
    "eh_retry_at_10": Planted(
        "error_handling", "ready", settings=resilience(retry__max_attempts=10), files=DLQ
    ),
    "eh_retry_at_1": Planted(
        "error_handling", "ready", settings=resilience(retry__max_attempts=1), files=DLQ
    ),
    "eh_retry_11": Planted(
        "error_handling",
        "degraded",
        "resilience.retry.max_attempts is 11, outside 1-10",
        "Set resilience.retry.max_attempts to a value between 1 and 10",
        settings=resilience(retry__max_attempts=11),
        files=DLQ,
    ),
    "eh_retry_0": Planted(
        "error_handling",
        "degraded",
        "resilience.retry.max_attempts is 0, outside 1-10",
        "Set resilience.retry.max_attempts to a value between 1 and 10",
        settings=resilience(retry__max_attempts=0),
        files=DLQ,
    ),
    "eh_retry_absent": Planted(
        "error_handling",
        "not_ready",
        "resilience.retry.max_attempts is not set",
        "Set resilience.retry.max_attempts",
        settings=resilience(retry__max_attempts=None),
        files=DLQ,
    ),
    "eh_backoff_equal": Planted(
        "error_handling", "ready", settings=resilience(retry__backoff_max_s=1.0), files=DLQ
    ),
    "eh_backoff_below": Planted(
        "error_handling",
        "degraded",
        "backoff_max_s (0.5) is below backoff_base_s (1.0)",
        "Set resilience.retry.backoff_max_s to at least",
        settings=resilience(retry__backoff_max_s=0.5),
        files=DLQ,
    ),
    "eh_breaker_0": Planted(
        "error_handling",
        "degraded",
        "failure_threshold is 0",
        "Set resilience.circuit_breaker.failure_threshold to a positive value",
        settings=resilience(circuit_breaker__failure_threshold=0),
        files=DLQ,
    ),
    "eh_dlq_off": Planted(
        "error_handling",
        "degraded",
        "resilience.dead_letter_queue is disabled",
        "Set resilience.dead_letter_queue.enabled to true",
        settings=resilience(dead_letter_queue={"enabled": False}),
        files=DLQ,
    ),
    "eh_dlq_no_dir": Planted(
        "error_handling",
        "not_ready",
        "dead letter queue directory",
        "mkdir -p",
        settings=resilience(),
    ),
    "eh_no_categories": Planted(
        "error_handling",
        "not_ready",
        "resilience.error_categories is not defined or empty",
        "resilience.error_categories: [",
        settings=resilience(error_categories=[]),
        files=DLQ,
    ),
    # resource_limits (guide: 5-20 workflows, 3-5 retries, 300-1800 s; absent → NOT_READY)
    "rl_at_low": Planted(
        "resource_limits",
        "ready",
        "max_concurrent_workflows=5, resilience.retry.max_attempts=3, workflow_timeout=300s",
        settings={"max_concurrent_workflows": 5, "workflow_timeout": 300, **resilience()},
    ),
    "rl_at_high": Planted(
        "resource_limits",
        "ready",
        "max_concurrent_workflows=20, resilience.retry.max_attempts=5, workflow_timeout=1800s",
        settings={
            "max_concurrent_workflows": 20,
            "workflow_timeout": 1800,
            **resilience(retry__max_attempts=5),
        },
    ),
    "rl_past_high": Planted(
        "resource_limits",
        "degraded",
        "max_concurrent_workflows = 21 is outside the recommended range 5-20",
        "Set max_concurrent_workflows to a value within 5-20",
        settings={"max_concurrent_workflows": 21, **resilience()},
    ),
    "rl_absent": Planted(
        "resource_limits",
        "not_ready",
        "workflow_timeout is not set",
        "Set workflow_timeout (300-1800s)",
        settings={"workflow_timeout": None, **resilience()},
    ),
    # `.inf` is no limit at all, as an absent one: it was DEGRADED "infs is outside the range"
    "rl_infinite": Planted(
        "resource_limits",
        "not_ready",
        "workflow_timeout = inf is no limit at all",
        "Set workflow_timeout to a number within 300-1800s",
        settings={"workflow_timeout": float("inf"), **resilience()},
    ),
    # documentation
    "doc_ok": Planted("documentation", "ready", files=DOCS),
    "doc_no_usage": Planted(
        "documentation",
        "degraded",
        "has no 'Usage' section",
        "Add Usage section to README.md",
        files={**DOCS, "README.md": "# App\n## Installation\n## Configuration\nusage: see x\n"},
    ),
    "doc_no_rollback": Planted(
        "documentation",
        "degraded",
        "rollback runbook is missing",
        "Create rollback runbook (docs/runbooks/rollback.md)",
        files={k: v for k, v in DOCS.items() if "rollback" not in k},
    ),
    "doc_empty_rollback": Planted(
        "documentation",
        "degraded",
        "rollback runbook",
        "Write the rollback runbook",
        files={**DOCS, "docs/runbooks/rollback.md": ""},
    ),
    # a runbook of blank lines is as empty as one of 0 bytes (it was READY)
    "doc_blank_rollback": Planted(
        "documentation",
        "degraded",
        "docs/runbooks/rollback.md is empty (only whitespace)",
        "Write the rollback runbook",
        files={**DOCS, "docs/runbooks/rollback.md": " \n\n\t\n"},
    ),
    # backup_restore
    "bk_ok": Planted("backup_restore", "ready", files=BACKUP, profile=SCHEDULED),
    "bk_just_fresh": Planted(
        "backup_restore",
        "ready",
        files=BACKUP,
        profile=SCHEDULED,
        age_h={"backups/db-1.dump": 23.5},
    ),
    "bk_stale": Planted(
        "backup_restore",
        "degraded",
        "is 25.0 h old (more than 24 h)",
        "take a fresh backup now",
        files=BACKUP,
        profile=SCHEDULED,
        age_h={"backups/db-1.dump": 25},
    ),
    "bk_empty_newest": Planted(
        "backup_restore",
        "not_ready",
        "newest backup db-1.dump is empty (0 bytes)",
        "verify the new file is non-empty",
        files={**BACKUP, "backups/db-1.dump": ""},
        profile=SCHEDULED,
    ),
    "bk_none": Planted(
        "backup_restore",
        "not_ready",
        "no backups in",
        "Create initial backup before production deployment",
        files={"docs/backup.md": BACKUP["docs/backup.md"], "backups/.keep": ""},
        profile=SCHEDULED,
    ),
    "bk_unscheduled": Planted(
        "backup_restore",
        "degraded",
        "no backup schedule found",
        "Schedule regular backups",
        files=BACKUP,
    ),
    "bk_undocumented": Planted(
        "backup_restore",
        "degraded",
        "describing both backup and restore",
        "Document the backup and restore procedure",
        files={"backups/db-1.dump": "data"},
        profile=SCHEDULED,
    ),
    "bk_future": Planted(
        "backup_restore",
        "degraded",
        "has a modification time in the future",
        "Check the host's clock (NTP)",
        files=BACKUP,
        profile=SCHEDULED,
        age_h={"backups/db-1.dump": -2},
    ),
}


def _plant(root: Path, planted: Planted, otlp: str) -> None:
    settings = json.loads(json.dumps(planted.settings).replace(json.dumps(OTLP), json.dumps(otlp)))
    write_app(root, settings=settings, env=dict(planted.env), files=dict(planted.files))
    for rel, hours in planted.age_h.items():
        then = time.time() - hours * 3600
        os.utime(root / rel, (then, then))


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every planted tree audited by one `readiness validate --hosts all`: host → check →
    result. An OTLP collector stand-in listens on loopback for the whole run."""
    base = tmp_path_factory.mktemp("fleet")
    collector = socket.socket()
    collector.bind(("127.0.0.1", 0))
    collector.listen(64)
    otlp = f"http://127.0.0.1:{collector.getsockname()[1]}"
    hosts = {}
    for name, planted in FLEET.items():
        _plant(base / name, planted, otlp)
        settings = {"app_root": str(base / name), **planted.profile}
        hosts[name] = {"ansible_connection": "local", "readiness": settings}
    inventory = base / "fleet.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    checks = ",".join(sorted({p.check for p in FLEET.values()}))
    try:
        res = run_cli(
            "validate", "-i", str(inventory), "--hosts", "all", "-c", checks, "--format", "json"
        )
    finally:
        collector.close()
    assert res.returncode == 1, res.stdout + res.stderr  # some hosts are planted NOT_READY
    doc = json.loads(res.stdout)
    yield {h["host"]: {c["check_name"]: c for c in h["checks"]} for h in doc["hosts"]}


@pytest.mark.parametrize("name", list(FLEET))
def test_a_planted_defect_gets_the_verdict_and_fix_the_seed_requires(
    name: str, audited: dict[str, dict[str, Any]]
) -> None:
    planted = FLEET[name]
    result = audited[name][planted.check]
    assert result["status"] == planted.status, result["message"]
    assert planted.says in result["message"]
    if planted.status == "ready":
        assert result["recommendations"] == [], "READY with something to fix"
    else:
        assert any(planted.fix in r for r in result["recommendations"]), result["recommendations"]
