"""JSON renderer: the versioned ``readiness.report/1`` schema (docs/reports.md)."""

from __future__ import annotations

import json
from typing import Any

from ..model import FleetReport, Status

__all__ = ["render_json"]


def render_json(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
    return json.dumps(report.to_dict(fail_on), indent=2, sort_keys=False, default=str)
