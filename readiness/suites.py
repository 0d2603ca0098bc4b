"""Named suites and quality gates: which checks a suite runs and how its exit code is judged.

A :class:`Suite` selects registered checks by registry suite membership and by
category. A :class:`QualityGate` requires a minimum pass rate over every
(host, check) result of one category. :func:`evaluate_gates` is pure: a
:class:`~readiness.model.FleetReport` and gates in, a :class:`GateReport` out.
:func:`run_suite` wires selection, the audit and the gates together for
``tasks.py``. docs/suites.md explains the choices made here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ProfileError, UsageError
from .gates import (
    PROFILE_KEY,
    GateReport,
    GateRow,
    QualityGate,
    Verdict,
    evaluate_gates,
    gates_from_profile,
)
from .model import FleetReport, HostReport, Status
from .registry import CheckSpec, all_checks, resolve_names
from .runner import Connector, HostLike, RunOptions

__all__ = [
    "SUITES",
    "GateReport",
    "GateRow",
    "QualityGate",
    "Suite",
    "SuiteRun",
    "Verdict",
    "catalog",
    "evaluate_gates",
    "gates_from_profile",
    "get_suite",
    "render_catalog",
    "run_suite",
    "select_checks",
]


@dataclass(frozen=True)
class Suite:
    """A named selection of checks.

    A check belongs to the suite when it is a member of one of ``member_of``
    (registry suites) and has one of ``member_categories`` (``None``: any), or
    when it has one of ``categories`` whatever its registry suite.
    ``gate_categories`` says which quality gates judge the suite (``None``:
    every gate; ``()``: none, the suite exits like ``validate``).
    """

    name: str
    title: str
    description: str
    member_of: tuple[str, ...] = ()
    member_categories: tuple[str, ...] | None = None
    categories: tuple[str, ...] = ()
    gate_categories: tuple[str, ...] | None = ()

    @property
    def gated(self) -> bool:
        return self.gate_categories != ()

    def selects(self, spec: CheckSpec) -> bool:
        member = any(s in spec.suites for s in self.member_of) and (
            self.member_categories is None
            or any(c in spec.categories for c in self.member_categories)
        )
        return member or any(c in spec.categories for c in self.categories)

    def applies_to(self, gate: QualityGate) -> bool:
        return self.gate_categories is None or gate.category in self.gate_categories

    def wanted(self) -> str:
        """What the suite selects, in words (for "nothing registered" messages)."""
        parts = []
        if self.member_of:
            cats = self.member_categories
            where = f" in category {' or '.join(cats)}" if cats else ""
            parts.append(f"checks of suite {' or '.join(self.member_of)}{where}")
        if self.categories:
            parts.append(f"checks in category {' or '.join(self.categories)}")
        return " plus ".join(parts)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "validate",
            "Production readiness validation (the 8 original checks)",
            "Every check of registry suite 'validate'; exit codes from the worst status.",
            member_of=("validate",),
        ),
        Suite(
            "check-config",
            "Configuration and security checks",
            "Production-suite checks in category configuration or security.",
            member_of=("production",),
            member_categories=("configuration", "security"),
            gate_categories=("configuration", "security"),
        ),
        Suite(
            "run-integration-tests",
            "Integration tests",
            "Every check in category integration.",
            categories=("integration",),
            gate_categories=("integration",),
        ),
        Suite(
            "run-benchmarks",
            "Performance benchmarks",
            "Every check in category performance.",
            categories=("performance",),
            gate_categories=("performance",),
        ),
        Suite(
            "run-all-tests",
            "Complete production readiness suite",
            "The production suite plus every integration and performance check "
            "(the 8 'validate' checks run with `validate`).",
            member_of=("production",),
            categories=("integration", "performance"),
            gate_categories=None,
        ),
    )
}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UsageError(f"unknown suite {name!r} (valid: {', '.join(SUITES)})") from None


def select_checks(suite: Suite, specs: Iterable[CheckSpec] | None = None) -> list[CheckSpec]:
    """The checks ``suite`` runs, in report order.

    Opt-in checks (integration tests and benchmarks that act on the system) are
    selected like any other: each reports SKIPPED, naming the profile key that
    enables it, until the profile does. A suite therefore always shows what it
    did not exercise, and a gate with only skipped results says "no data".
    """
    if suite.name == "validate" and specs is None:
        return resolve_names(None, suite="validate")  # exactly what `validate` always ran
    pool = all_checks() if specs is None else list(specs)
    return [s for s in pool if suite.selects(s)]


# --- running a suite -----------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteRun:
    """A suite's report (its gates are ``report.gates``) and its exit code."""

    suite: Suite
    report: FleetReport
    gates: GateReport | None = None
    fail_on: Status = Status.NOT_READY

    @property
    def exit_code(self) -> int:
        return self.report.exit_code(self.fail_on)


def run_suite(
    name: str,
    hosts: str | Sequence[HostLike] = "local",
    checks: Iterable[str] | str | None = None,
    *,
    inventory: str | Sequence[str] | None = None,
    limit: str | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    connector: Connector | None = None,
    fail_on: Status = Status.NOT_READY,
    specs: Sequence[CheckSpec] | None = None,
    group_by_inventory_group: bool = True,
    refuse_implicit_local: str | None = None,
) -> SuiteRun:
    """Audit the hosts with the suite's checks (or ``checks``) and judge its quality gates.

    ``specs`` replaces the registry (tests). With ``fail_on=DEGRADED`` a DEGRADED
    result fails its gates. A suite that selects no check does not contact the
    hosts: its gates report no data and a note says what was looked for.
    """
    from . import api

    suite = get_suite(name)
    planned = api.plan(
        hosts,
        inventory=inventory,
        limit=limit,
        profile=profile,
        profile_overrides=profile_overrides,
        specs=_chosen(suite, checks, specs),
        refuse_implicit_local=refuse_implicit_local,
    )
    if not suite.gated:
        report = api.run_plan(planned, options=options, connector=connector)
        return SuiteRun(suite, replace(report, fail_on=fail_on), fail_on=fail_on)
    gates = _fleet_gates(planned, overrides=profile_overrides, profile=profile)
    gates = [g for g in gates if suite.applies_to(g)]
    notes: list[str] = []
    if planned.specs:
        report = api.run_plan(planned, options=options, connector=connector)
    else:
        notes.append(f"suite {suite.name}: no check registered ({suite.wanted()}); nothing ran")
        report = FleetReport(hosts=tuple(_unaudited(h) for h in planned.hosts))
    cats = {s.name: s.categories for s in (specs if specs is not None else all_checks())}
    judged = evaluate_gates(
        report,
        gates,
        group_by_inventory_group,
        categories=cats,
        degraded_passes=fail_on is not Status.DEGRADED,
    )
    judged = replace(judged, notes=(*notes, *judged.notes))
    return SuiteRun(suite, _attach(report, suite, judged, fail_on), judged, fail_on)


def _chosen(
    suite: Suite, checks: Iterable[str] | str | None, specs: Sequence[CheckSpec] | None
) -> list[CheckSpec]:
    names = [checks] if isinstance(checks, str) else list(checks or ())
    if any(str(n).strip() for n in names):
        return resolve_names(names, suite=None)
    return select_checks(suite, specs)


def _fleet_gates(
    planned: Any,
    *,
    overrides: Mapping[str, Any] | None,
    profile: str | Path | Mapping[str, Any] | None,
) -> list[QualityGate]:
    """The gates every planned host's merged profile agrees on (they judge the whole fleet)."""
    from .api import profile_layers
    from .profile import merge_layers
    from .registry import default_profile

    if not planned.hosts:
        extra = [("overrides", overrides)] if overrides else []
        layers = profile_layers(profile)
        return gates_from_profile(merge_layers(default_profile(), [*layers, *extra]))
    found = {name: prof.get(PROFILE_KEY) for name, prof in planned.profiles.items()}
    first_host, first = next(iter(found.items()))
    for host_name, value in found.items():
        if value != first:
            raise ProfileError(
                f"{PROFILE_KEY} differ between hosts {first_host!r} and {host_name!r}: gates judge "
                "the whole fleet, so set them in the profile file or for group 'all'"
            )
    return gates_from_profile({PROFILE_KEY: first})


def _unaudited(host: Any) -> HostReport:
    return HostReport(
        host=str(host.name),
        address=str(getattr(host, "address", "")),
        groups=tuple(getattr(host, "groups", ())),
    )


def _attach(report: FleetReport, suite: Suite, gates: GateReport, fail_on: Status) -> FleetReport:
    """The suite's name, judged gates and threshold become the report's own typed fields."""
    title = f"PRODUCTION READINESS: {suite.title.upper()} ({suite.name})"
    return replace(report, suite=suite.name, gates=gates, fail_on=fail_on, title=title)


# --- the check catalog (`invoke checks`) ---------------------------------------------------


def catalog(specs: Sequence[CheckSpec] | None = None) -> list[dict[str, Any]]:
    """Every check as data: categories, registry suites, the named suites that run it."""
    pool = all_checks() if specs is None else list(specs)
    return [
        {
            "name": s.name,
            "title": s.title,
            "categories": list(s.categories),
            "suites": list(s.suites),
            "run_by": [n for n, suite in SUITES.items() if suite.selects(s)],
            "description": s.description,
            "profile_keys": list(s.profile_keys),
            "opt_in": s.opt_in,
        }
        for s in pool
    ]


def render_catalog(fmt: str = "text", specs: Sequence[CheckSpec] | None = None) -> str:
    """``invoke checks``: one block per check, wrapped to the terminal, or a JSON document."""
    import json

    entries = catalog(specs)
    pool = all_checks() if specs is None else list(specs)
    counts = {name: len(select_checks(s, pool)) for name, s in SUITES.items()}
    if fmt == "json":
        suites = [
            {"name": n, "title": s.title, "selects": s.wanted(), "checks": counts[n]}
            for n, s in SUITES.items()
        ]
        return json.dumps({"checks": entries, "suites": suites}, indent=2)
    if fmt != "text":
        raise UsageError(f"unknown format {fmt!r} (valid: text, json)")
    width = _terminal_width()
    lines: list[str] = []
    for e in entries:
        lines.append(e["name"] + ("  (opt-in)" if e["opt_in"] else ""))
        lines += _field("categories", ", ".join(e["categories"]), width)
        lines += _field("suite", ", ".join(e["suites"]) or "-", width)
        lines += _field("run by", ", ".join(e["run_by"]) or "-", width)
        lines += _field("examines", e["description"], width)
        lines += _field("profile keys", ", ".join(e["profile_keys"]) or "-", width)
        lines.append("")
    lines.append("suites:")

    for name, suite in SUITES.items():
        n = counts[name]
        found = f"{n} check(s)" if n else "no check registered yet"
        lines += _field(name, f"{found}: {suite.wanted()}", width, label_width=22)
    return "\n".join(lines)


def _terminal_width() -> int:
    from .report.style import terminal_width

    return terminal_width()


def _field(label: str, text: str, width: int, label_width: int = 13) -> list[str]:
    """``  label:  text`` wrapped at ``width``; words (profile keys) are never split."""
    import textwrap

    head = f"  {label + ':':<{label_width}} "
    return textwrap.wrap(
        text,
        width,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_long_words=False,
        break_on_hyphens=False,
    ) or [head.rstrip()]
