"""readiness: fleet-wide production-readiness audits over SSH.

The public API: :func:`validate` returns a :class:`FleetReport`;
:class:`ProductionReadinessValidator` keeps the original validator's async API.
"""

from __future__ import annotations

from .api import validate
from .model import CheckResult, FleetReport, HostReport, Outcome, Status
from .runner import RunOptions
from .validator import ProductionReadinessValidator, print_validation_report

__all__ = [
    "CheckResult",
    "FleetReport",
    "HostReport",
    "Outcome",
    "ProductionReadinessValidator",
    "RunOptions",
    "Status",
    "__version__",
    "print_validation_report",
    "validate",
]

__version__ = "0.1.0"
