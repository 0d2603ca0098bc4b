"""Import invoke for the ``readiness`` console script without ``unittest.mock``.

``invoke/__init__`` imports ``invoke.context``, whose first lines are
``from unittest.mock import Mock``: that pulls in ``unittest``, ``argparse`` and
``asyncio`` (with ``ssl`` and ``concurrent.futures``), ~25-40 ms of every start-up,
for ``MockContext``, a test helper the console script never creates. So, while
invoke is imported, ``unittest.mock`` in ``sys.modules`` is a stand-in whose only name,
``Mock``, builds the real ``unittest.mock.Mock`` when called. Nothing else changes:
``MockContext`` still wraps ``run``/``sudo`` in real mocks, the stand-in is gone from
``sys.modules`` before anything else is imported (a later ``import unittest.mock``
gets the real module), and the ``invoke`` program (``invoke validate``) is untouched:
it imports invoke itself before any readiness code runs.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["import_invoke"]


class _DeferredMock:
    """Stands in for ``unittest.mock.Mock`` in ``invoke.context``: the real one on call."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from unittest.mock import Mock

        return Mock(*args, **kwargs)


def import_invoke() -> None:
    """Import invoke with ``unittest.mock`` deferred (a no-op once either is imported)."""
    if "invoke" in sys.modules or "unittest.mock" in sys.modules:
        return
    stand_in = types.ModuleType("unittest.mock", "readiness: unittest.mock, deferred")
    vars(stand_in)["Mock"] = _DeferredMock
    sys.modules["unittest.mock"] = stand_in
    try:
        import invoke  # noqa: F401 - the import is the point
    finally:
        if sys.modules.get("unittest.mock") is stand_in:
            del sys.modules["unittest.mock"]
