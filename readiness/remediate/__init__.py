"""Remediation: fixers per check, a dry-run plan (diffs), transactional apply, audit log.

>>> from readiness.remediate import remediate
>>> report = remediate("local", ["documentation"])          # doctest: +SKIP (dry run)
>>> report = remediate("web*", apply=True, yes=True)          # doctest: +SKIP
"""

from __future__ import annotations

from .fixers import all_fixers
from .render import FORMATS, render
from .run import ConfirmationRefused, HostRemediation, RemediationReport, remediate

__all__ = [
    "FORMATS",
    "ConfirmationRefused",
    "HostRemediation",
    "RemediationReport",
    "all_fixers",
    "remediate",
    "render",
]
