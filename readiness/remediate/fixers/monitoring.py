"""``monitoring``: a starter Prometheus alert rules file and a Grafana dashboard for the app."""

from __future__ import annotations

import posixpath

from ...profile import Profile
from ..plan import Change, CreateFile, Fix
from . import FixInput, creation_refusal, fixer
from ._templates import alert_rules, dashboard


def _targets(profile: Profile) -> tuple[str | None, str | None]:
    """(the alert rules file, the dashboard file) this fixer may create."""
    app = str(profile.get("app_name") or "app")
    dashboards = profile.path_of("dashboards_dir")
    board = posixpath.join(dashboards, f"{app}-overview.json") if dashboards else None
    return profile.path_of("alert_rules_file"), board


@fixer(
    "monitoring",
    summary="create a starter alert rules file and a dashboard JSON",
    reads=lambda p: [t for t in _targets(p) if t],
)
def fix(inp: FixInput) -> Fix | None:
    profile = inp.profile
    app = str(profile.get("app_name") or "app")
    job = str(profile.get("prometheus_job") or app)
    changes: list[Change] = []
    addresses: list[str] = []
    notes: list[str] = []
    rules, board = _targets(profile)
    missing_rules = inp.matching("alert rules file", "does not exist")
    no_dash = inp.matching("dashboards directory", "does not exist") + inp.matching(
        "no dashboard JSON files in"
    )
    for path, found, kind in ((rules, missing_rules, "rules"), (board, no_dash, "dashboard")):
        if not path or not found:
            continue
        refusal = creation_refusal(inp.file(path))
        if refusal:
            notes.append(refusal)
            continue
        content = alert_rules(app, job) if kind == "rules" else dashboard(app, job)
        changes.append(CreateFile(path, content))
        addresses += found
    if not changes and not notes:
        return None
    return Fix(
        "monitoring",
        "add alert rules and a dashboard",
        tuple(changes),
        tuple(addresses),
        tuple(notes),
    )
