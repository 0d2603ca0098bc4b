"""``monitoring``: a starter Prometheus alert rules file and a Grafana dashboard for the app."""

from __future__ import annotations

import posixpath

from ..plan import Change, CreateFile, Fix
from . import FixInput, fixer
from ._templates import alert_rules, dashboard


@fixer("monitoring", summary="create a starter alert rules file and a dashboard JSON")
def fix(inp: FixInput) -> Fix | None:
    profile = inp.profile
    app = str(profile.get("app_name") or "app")
    job = str(profile.get("prometheus_job") or app)
    changes: list[Change] = []
    addresses: list[str] = []
    rules = profile.path_of("alert_rules_file")
    missing_rules = inp.matching("alert rules file", "does not exist")
    if rules and missing_rules:
        changes.append(CreateFile(rules, alert_rules(app, job)))
        addresses += missing_rules
    dashboards = profile.path_of("dashboards_dir")
    no_dash = inp.matching("dashboards directory", "does not exist") + inp.matching(
        "no dashboard JSON files in"
    )
    if dashboards and no_dash:
        changes.append(
            CreateFile(posixpath.join(dashboards, f"{app}-overview.json"), dashboard(app, job))
        )
        addresses += no_dash
    if not changes:
        return None
    return Fix("monitoring", "add alert rules and a dashboard", tuple(changes), tuple(addresses))
