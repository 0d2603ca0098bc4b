"""readiness: fleet-wide production-readiness audits over SSH.

The public API: :func:`validate` returns a :class:`FleetReport`;
:class:`ProductionReadinessValidator` keeps the original validator's async API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Every public name is imported on first use. The console script imports this package
# before readiness.cli can take over Ctrl-C and SIGTERM; importing the API here (~0.08 s)
# left that long a window in which a signal printed a traceback (docs/fleet.md).
# The original validator (asyncio, the text report) costs ~0.07 s more and the CLI never
# needs it.
_LAZY = {
    "validate": "api",
    "CheckResult": "model",
    "FleetReport": "model",
    "HostReport": "model",
    "Outcome": "model",
    "Status": "model",
    "RunOptions": "runner",
    "ProductionReadinessValidator": "validator",
    "print_validation_report": "validator",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
