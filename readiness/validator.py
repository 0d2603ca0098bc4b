"""The original validator's programmatic API, on top of :func:`readiness.validate`.

validator = ProductionReadinessValidator(app)          # app object optional
results = await validator.validate_all()               # {check_name: CheckResult}
print(validator.generate_report(results))
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .api import validate
from .model import CheckResult, FleetReport, HostReport
from .report.text import render_text
from .runner import RunOptions

__all__ = ["ProductionReadinessValidator", "print_validation_report", "results_to_report"]


class ProductionReadinessValidator:
    """Async facade: one awaitable per check, ``validate_all()``, ``generate_report()``.

    With one host (the default, ``local``) results are keyed by check name, as in
    the original; with several hosts keys are ``"host/check"``.
    """

    def __init__(
        self,
        app: Any = None,
        *,
        hosts: str = "local",
        inventory: str | Sequence[str] | None = None,
        profile: str | Path | Mapping[str, Any] | None = None,
        profile_overrides: Mapping[str, Any] | None = None,
        options: RunOptions | None = None,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.inventory = inventory
        self.profile = profile
        self.profile_overrides = profile_overrides
        self.options = options
        self.last_report: FleetReport | None = None

    async def validate_fleet(self, checks: Sequence[str] | None = None) -> FleetReport:
        report = await asyncio.to_thread(
            validate,
            self.hosts,
            checks,
            inventory=self.inventory,
            profile=self.profile,
            profile_overrides=self.profile_overrides,
            options=self.options,
            app_object=self.app,
        )
        self.last_report = report
        return report

    async def validate_all(self) -> dict[str, CheckResult]:
        return _keyed(await self.validate_fleet())

    async def _one(self, name: str) -> CheckResult:
        report = await self.validate_fleet([name])
        results = report.results
        if len(results) != 1:
            raise ValueError(
                f"{name}: expected one host, got {len(report.hosts)}; use validate_fleet()"
            )
        return results[0]

    async def validate_environment(self) -> CheckResult:
        return await self._one("environment")

    async def validate_configuration(self) -> CheckResult:
        return await self._one("configuration")

    async def validate_database_migration(self) -> CheckResult:
        return await self._one("database_migration")

    async def validate_backup_restore(self) -> CheckResult:
        return await self._one("backup_restore")

    async def validate_monitoring(self) -> CheckResult:
        return await self._one("monitoring")

    async def validate_documentation(self) -> CheckResult:
        return await self._one("documentation")

    async def validate_error_handling(self) -> CheckResult:
        return await self._one("error_handling")

    async def validate_graceful_shutdown(self) -> CheckResult:
        return await self._one("graceful_shutdown")

    def generate_report(self, results: Mapping[str, CheckResult] | FleetReport) -> str:
        return render_text(results_to_report(results))


def _keyed(report: FleetReport) -> dict[str, CheckResult]:
    multi = len(report.hosts) > 1
    return {(f"{r.host}/{r.check_name}" if multi else r.check_name): r for r in report.results}


def results_to_report(results: Mapping[str, CheckResult] | FleetReport) -> FleetReport:
    """Accept the original's ``{name: result}`` dict as well as a FleetReport."""
    if isinstance(results, FleetReport):
        return results
    by_host: dict[str, list[CheckResult]] = {}
    for r in results.values():
        by_host.setdefault(r.host, []).append(r)
    return FleetReport(
        hosts=tuple(HostReport(host=h, results=tuple(rs)) for h, rs in by_host.items())
    )


def print_validation_report(results: Mapping[str, CheckResult] | FleetReport) -> None:
    """Print the text report (the original's helper)."""
    print(render_text(results_to_report(results)))  # noqa: T201 - this function's job is printing
