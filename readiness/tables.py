"""Text tables through ``tabulate``, imported when a table is first rendered.

Importing ``tabulate`` costs ~20-40 ms of start-up (it asks ``importlib.metadata`` for its
own version, and imports ``wcwidth``); ``readiness validate`` with the default text report
on the local example draws no table, so only the runs that render one pay for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["tabulate"]


def tabulate(tabular_data: Any, headers: Any = (), **options: Any) -> str:
    """``tabulate.tabulate`` (same arguments, same text)."""
    from tabulate import tabulate as render

    return render(tabular_data, headers=headers, **options)
