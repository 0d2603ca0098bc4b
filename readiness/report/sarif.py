"""SARIF 2.1.0, for code-scanning dashboards: one rule per check, one result per finding.

READY and SKIPPED results are not findings and are left out. NOT_READY, ERROR,
UNREACHABLE and INTERRUPTED are ``error`` (they block a release); DEGRADED is ``warning``,
or ``error`` when it fails the run (``--fail-on degraded``). Where a result's details name
a file on the host (``settings_file``, ``env_file``, ``alert_rules_file``, …, with a line
number when the check gives one) the finding points at it as ``file://HOST/PATH``
(RFC 8089: a file on that host); every finding also names its host and check as a
logical location.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..model import CheckResult, FleetReport, Status
from ._clean import visible

__all__ = ["SARIF_SCHEMA", "file_location", "render_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LINE_KEYS = ("line", "line_number", "lineno")


def _level(status: Status, fail_on: Status) -> str:
    if status is Status.DEGRADED and fail_on > Status.DEGRADED:
        return "warning"
    return "error"


def file_location(details: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """The first absolute host path in the details (``*_file``, ``file``, ``path``), with
    the line number the details give next to it, if any."""
    for key, value in details.items():
        if not isinstance(value, str) or not value.startswith("/"):
            continue
        if key in ("file", "path") or key.endswith(("_file", "_path")):
            for line_key in (f"{key.removesuffix('_file')}_line", *_LINE_KEYS):
                line = details.get(line_key)
                if isinstance(line, int) and not isinstance(line, bool) and line > 0:
                    return value, line
            return value, None
    return None


def _uri(host: str, path: str) -> str:
    authority = "" if host in ("local", "localhost") else quote(host, safe="")
    return f"file://{authority}{quote(path)}"


def _message(text: str) -> str:
    """A plain-text message as a viewer shows it: no bidi reordering or hidden text (invisible
    characters shown as ``\\u202e``), and no embedded link (§3.11.6: ``[text](N)`` or
    ``[text](URI)`` is a link in GitHub code scanning and other viewers): a literal bracket
    is written ``\\[``, as the specification says."""
    return visible(text).replace("[", "\\[").replace("]", "\\]")


def _fingerprint(result: CheckResult) -> str:
    key = f"{result.host}\0{result.check_name}\0{result.status.value}\0{result.message}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _result(result: CheckResult, rule_index: int, fail_on: Status) -> dict[str, Any]:
    text = result.message or result.status.value
    if result.recommendations:
        text += "\n\nRecommendations:\n" + "\n".join(f"- {r}" for r in result.recommendations)
    location: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": result.check_name,
                "fullyQualifiedName": visible(f"{result.host}/{result.check_name}"),
                "kind": "member",
            }
        ]
    }
    where = file_location(result.details)
    if where is not None:
        path, line = where
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(result.host, path)}}
        if line is not None:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    return {
        "ruleId": result.check_name,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": _level(result.status, fail_on),
        "message": {"text": _message(text)},
        "locations": [location],
        "partialFingerprints": {"readinessFinding/v1": _fingerprint(result)},
        "properties": {
            "host": result.host,
            "status": result.status.value,
            "details": json.loads(json.dumps(dict(result.details), default=str)),
        },
    }


def render_sarif(report: FleetReport, *, fail_on: Status = Status.NOT_READY, **_: Any) -> str:
    from .. import __version__  # here: the package imports this module while it loads
    from ..registry import all_checks

    specs = {spec.name: spec for spec in all_checks()}
    names = list(report.check_names)
    for r in report.results:  # a result of a check the report does not list still gets a rule
        if r.check_name not in names:
            names.append(r.check_name)
    rules = []
    for name in names:
        spec = specs.get(name)
        rule: dict[str, Any] = {"id": name, "name": name}
        if spec is not None:
            rule["shortDescription"] = {"text": spec.title}
            rule["fullDescription"] = {"text": spec.description}
            rule["properties"] = {"categories": list(spec.categories)}
        rules.append(rule)
    index = {name: i for i, name in enumerate(names)}
    results = [
        _result(r, index[r.check_name], fail_on)
        for r in report.results
        if r.status not in (Status.READY, Status.SKIPPED)
    ]
    hosts_without_rows = [h for h in report.hosts if not h.results and h.reason]
    notifications = [
        {
            "level": "error",
            "message": {"text": _message(f"{h.host}: {h.status.value}: {h.reason}")},
            "properties": {"host": h.host, "status": h.status.value},
        }
        for h in hosts_without_rows
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "readiness",
                "version": __version__,
                "rules": rules,
            }
        },
        "invocations": [
            {
                "executionSuccessful": not report.interrupted,
                "endTimeUtc": report.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "exitCode": report.exit_code(fail_on),
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": results,
        "properties": {"overallStatus": report.overall_status.value, "hosts": len(report.hosts)},
    }
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2)  # ASCII: host text's odd code points stay escaped
