"""Building blocks for store tests: synthetic reports (pure data) and store openers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from readiness.model import CheckResult, FleetReport, HostReport, Status
from readiness.store import RunMeta, Store, open_store
from readiness.store.location import parse_location

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def result(
    host: str, check: str, status: Status, message: str = "", **details: object
) -> CheckResult:
    return CheckResult(
        check_name=check,
        status=status,
        message=message or f"{check} is {status.value}",
        details=details,
        recommendations=(f"fix {check}",) if status > Status.READY else (),
        host=host,
        duration_s=0.25,
        timestamp=T0,
    )


def fleet(spec: dict[str, dict[str, Status | tuple[Status, str]]], **kw: object) -> FleetReport:
    """``{"web1": {"environment": Status.READY, "docs": (Status.DEGRADED, "msg")}}``."""
    hosts = []
    for host, checks in spec.items():
        results = []
        for check, value in checks.items():
            status, message = value if isinstance(value, tuple) else (value, "")
            results.append(result(host, check, status, message))
        hosts.append(
            HostReport(host=host, results=tuple(results), address="127.0.0.1", groups=("web",))
        )
    checks = tuple(dict.fromkeys(c for h in spec.values() for c in h))
    return FleetReport(hosts=tuple(hosts), checks=checks, generated_at=T0, **kw)  # type: ignore[arg-type]


def meta(
    kind: str = "validate", pattern: str = "web", minutes: int = 0, profile: str = ""
) -> RunMeta:
    return RunMeta(
        kind=kind,
        pattern=pattern,
        command="readiness validate --hosts web",
        controller="ctl",
        user="tester",
        started_at=T0 + timedelta(minutes=minutes),
        duration_s=1.5,
        profile_material=profile,
    )


def newest_tables() -> set[str]:
    """Tables the latest migration creates (absent from a store of the previous version)."""
    from readiness.store.schema import MIGRATIONS

    return {
        m.group(1)
        for stmt in MIGRATIONS[-1].statements
        if (m := re.match(r"\s*CREATE TABLE (\w+)", stmt))
    }


def sqlite_store(path: Path, **kw: object) -> Store:
    return open_store(parse_location(str(path)), **kw)  # type: ignore[arg-type]
