"""The results store: every run recorded; history, diff and baselines read it back.

SQLite by default (``$XDG_DATA_HOME/readiness/history.sqlite3``), PostgreSQL to share
it (``--store postgresql://…``). docs/history.md describes the surface.
"""

from __future__ import annotations

from .backends import StoreError
from .db import RunMeta, RunSummary, Store, StoredRun, open_store
from .location import STORE_ENV, StoreLocation, resolve_location
from .record import record_run, run_meta

__all__ = [
    "STORE_ENV",
    "RunMeta",
    "RunSummary",
    "Store",
    "StoreError",
    "StoreLocation",
    "StoredRun",
    "open_store",
    "record_run",
    "resolve_location",
    "run_meta",
]
