"""readiness: fleet-wide production-readiness audits over SSH.

The public API: :func:`validate` returns a :class:`FleetReport`;
:class:`ProductionReadinessValidator` keeps the original validator's async API.
"""

from __future__ import annotations

import sys as _sys

if _sys.argv and _sys.argv[0].rsplit("/", 1)[-1].removesuffix(".exe") == "readiness":
    # The console script is starting: before anything else is imported, a signal is one
    # line and exit 128 + n, not a traceback (readiness/console.py). Held (blocked, not
    # lost) while console.py is found and loaded: Python's own Ctrl-C handler is still in
    # place until then, and a KeyboardInterrupt in that import was a traceback.
    import _signal  # type: ignore[import-not-found]  # the C module: no stubs

    _held = _signal.pthread_sigmask(
        _signal.SIG_BLOCK, {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}
    )
    try:
        from .console import signals_at_start_up

        signals_at_start_up()
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, _held)

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

# Every public name is imported on first use: the console script imports this package
# first, and importing the API here (~0.08 s) delayed everything after it.
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
