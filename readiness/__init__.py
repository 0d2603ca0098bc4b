"""readiness: fleet-wide production-readiness audits over SSH.

The public API: :func:`validate` returns a :class:`FleetReport`;
:class:`ProductionReadinessValidator` keeps the original validator's async API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import validate
from .model import CheckResult, FleetReport, HostReport, Outcome, Status
from .runner import RunOptions

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    """The original validator's API (asyncio, the text report) is imported on first use:
    the CLI does not need it, and it costs ~0.07 s of start-up."""
    if name in ("ProductionReadinessValidator", "print_validation_report"):
        from . import validator

        return getattr(validator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
