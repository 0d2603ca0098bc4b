"""Remediation reports as plain data: to_dict -> from_dict -> to_dict is the identity.

The reports come from real local remediations (dry run, apply, a reverted fix, an
unreachable host), so every kind of row a Celery worker sends back is covered. A fix read
back keeps its summaries and masked diff, never the content it writes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from readiness.model import Status
from readiness.remediate import RemediationReport, remediate, render
from readiness.remediate.plan import (
    EditFile,
    Fix,
    HostPlan,
    ReportedChange,
    plan_hash,
)
from readiness.remediate.run import HostRemediation

from ..services.apps import LocalTestHost, write_app

CHECKS = ["environment", "documentation", "error_handling", "resource_limits"]


def _run(root: Path, tmp: Path, **kw: object) -> RemediationReport:
    return remediate(
        [LocalTestHost()],
        CHECKS,
        profile_overrides={"app_root": str(root)},
        audit_log=tmp / "audit.jsonl",
        log_stream=io.StringIO(),
        **kw,  # type: ignore[arg-type]
    )


def _same(report: RemediationReport) -> RemediationReport:
    data = json.loads(json.dumps(report.to_dict()))  # through JSON, as the broker carries it
    back = RemediationReport.from_dict(data)
    assert back.to_dict() == report.to_dict()
    assert render(back) == render(report)  # the text, diffs included, is the same
    assert render(back, "json") == render(report, "json")
    assert back.exit_code == report.exit_code
    return back


def test_dry_run_and_apply_reports_survive_a_round_trip(tmp_path: Path) -> None:
    secret = "round-trip-canary-3f9a1c77e2"
    root = write_app(
        tmp_path / "app",
        env={"MAHAVISHNU_AUTH__SECRET": None, "MAHAVISHNU_DB_PASSWORD": secret},
        settings_text=yaml.safe_dump({"server_name": "x", "auth": {"enabled": True}}),
    )
    dry = _run(root, tmp_path)
    assert any(h.outcomes for h in dry.hosts)
    back = _same(dry)
    fix = back.hosts[0].outcomes[0].fix
    assert all(isinstance(c, ReportedChange) for c in fix.changes)
    with pytest.raises(RuntimeError, match="cannot be applied"):
        fix.changes[0].request()
    assert secret not in json.dumps(dry.to_dict()) + render(back)
    applied = _run(root, tmp_path, apply=True)
    assert {o.outcome for o in applied.hosts[0].outcomes} == {"applied"}
    _same(applied)


def test_unreachable_interrupted_and_failed_rows_survive_a_round_trip() -> None:
    rows = (
        HostRemediation("a", HostPlan("a"), (), "connect refused", status=Status.UNREACHABLE),
        HostRemediation("b", HostPlan("b"), (), "not audited (SIGINT)", status=Status.INTERRUPTED),
        HostRemediation(
            "c",
            HostPlan("c", error="the plan changed since it was confirmed: x"),
            (),
            "",
            {"documentation": Status.DEGRADED},
        ),
    )
    report = RemediationReport(rows, True, ("documentation",), interrupted_by="SIGINT")
    back = _same(report)
    assert back.exit_code == 130
    assert [h.status for h in back.hosts] == [Status.UNREACHABLE, Status.INTERRUPTED, None]
    assert back.hosts[1].interrupted


def test_plan_hash_is_stable_and_changes_with_the_plan_or_the_salt() -> None:
    def plan(content: str) -> HostPlan:
        change = EditFile("/app/README.md", "old\n", content)
        return HostPlan("h", (Fix("documentation", "add sections", (change,)),))

    assert plan_hash(plan("new\n"), "run1") == plan_hash(plan("new\n"), "run1")
    assert plan_hash(plan("new\n"), "run1") != plan_hash(plan("other\n"), "run1")
    assert plan_hash(plan("new\n"), "run1") != plan_hash(plan("new\n"), "run2")
    assert plan_hash(HostPlan("h"), "run1") != plan_hash(plan("new\n"), "run1")
