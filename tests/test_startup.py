"""Start-up: the CLI imports what a run needs, on first use (docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys

import readiness
from readiness.model import FleetReport
from readiness.report import FORMATS, render


def test_importing_the_cli_leaves_the_renderers_and_the_old_validator_for_later() -> None:
    code = (
        "import sys, readiness.cli\n"
        "lazy = ['readiness.report.html', 'readiness.report.prometheus', 'prometheus_client',"
        " 'readiness.validator', 'readiness.report.markdown']\n"
        "print(','.join(m for m in lazy if m in sys.modules))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert res.stdout.strip() == ""


def test_lazy_names_still_resolve() -> None:
    from readiness import ProductionReadinessValidator, print_validation_report

    assert ProductionReadinessValidator.__module__ == "readiness.validator"
    assert callable(print_validation_report)
    assert readiness.ProductionReadinessValidator is ProductionReadinessValidator
    for fmt in FORMATS:  # each renderer is imported on first use and renders
        assert isinstance(render(FleetReport(hosts=(), checks=()), fmt), str), fmt
