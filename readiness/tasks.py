"""Invoke tasks: flags in, ``readiness.api`` call, report out, ``Exit(code)``.

Top-level ``tasks.py`` and the ``readiness`` console script expose this same
collection. Defaults for inventory, forks and timeouts can live in
``invoke.yaml`` under ``readiness:``.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from . import report as report_mod
from .api import INVENTORY_ENV, load_selected_hosts
from .errors import ReadinessError
from .hostdata import printable_streams
from .interrupt import exit_code_for, handle_signals, signal_name
from .model import FleetReport, Status, utcnow
from .runner import RunOptions
from .suites import SUITES, run_suite

__all__ = ["ns"]

printable_streams()  # a report never dies on a character the terminal cannot show

_AUDIT_HELP = {
    "hosts": "Host pattern: group, host, a,b  a:b  a:&b  a:!b  web*  (default: local)",
    "check": "Check to run; repeatable or comma list (default: every check of the suite)",
    "format": "Output format: text, table, json, markdown (default: text)",
    "json": "Shorthand for --format json",
    "save": "Also save the report; optional PATH (default: reports/readiness-<time>.<ext>)",
    "inventory": "Inventory file or directory (default: ./inventories or $READINESS_INVENTORY)",
    "profile": "Profile YAML file overriding the built-in application defaults",
    "limit": "Further limit the selected hosts with another pattern (like ansible --limit)",
    "forks": "Hosts audited at once (default 32)",
    "connect_timeout": "Seconds to establish an SSH connection (default 10)",
    "command_timeout": "Seconds one remote command may run (default 60)",
    "host_deadline": "Seconds one host may take in total (default 120)",
    "sudo": "Run the probe through `sudo -n` (never prompts)",
    "accept_new_host_keys": "Trust-on-first-use: record unknown host keys (changed keys still fail)",
    "known_hosts": "known_hosts file to verify against (default ~/.ssh/known_hosts)",
    "quiet": "No progress line on stderr",
    "fail_on": "Exit non-zero from this status up: not_ready (default) or degraded (exit 2)",
    "group_by": "Table layout: 'group' groups rows by inventory group",
    "store": "Results store: SQLite path, postgresql://URL, or none (default: $READINESS_STORE, "
    "invoke.yaml readiness.store, else ~/.local/share/readiness/history.sqlite3)",
    "baseline": "Fail only on regressions against the accepted baseline (docs/history.md)",
    "drift": "Add a DRIFT section: hosts whose settings/env differ from most hosts (docs/history.md)",
}


def _cfg(c: Context) -> Mapping[str, Any]:
    try:
        value = c.config.get("readiness", {})
    except AttributeError:
        return {}
    return value if isinstance(value, Mapping) else {}


# RunOptions that invoke.yaml's ``readiness:`` section may set (flags win where given).
_CONFIG_OPTIONS = (
    "forks",
    "connect_timeout",
    "command_timeout",
    "host_deadline",
    "known_hosts",
    "ssh_config",
    "identity_file",
    "max_output",
    "progress_interval",
)


def _inventory(c: Context, flag: str | None) -> str | None:
    """-i wins, then $READINESS_INVENTORY, then invoke.yaml's readiness.inventory;
    None lets the API fall back to ./inventories."""
    return flag or os.environ.get(INVENTORY_ENV) or _cfg(c).get("inventory") or None


def _options(c: Context, **given: Any) -> RunOptions:
    cfg = _cfg(c)
    base = RunOptions()
    kw: dict[str, Any] = {}
    for name in _CONFIG_OPTIONS:
        value = given.get(name)
        if value is None:
            value = cfg.get(name, getattr(base, name))
        kw[name] = value
    for flag in ("sudo", "accept_new_host_keys", "quiet"):  # a flag or invoke.yaml turns it on
        kw[flag] = bool(given.get(flag) or cfg.get(flag, False))
    return RunOptions(**kw)


def _emit(report: FleetReport, fmt: str, save: Any, fail_on: Status, group_by: str | None) -> None:
    text = report_mod.render(report, fmt, fail_on=fail_on, group_by=group_by)
    print(text)
    if save:
        path = save if isinstance(save, str) else report_mod.default_save_path(report, fmt)
        written = report_mod.save(text, path, mode=report_mod.FILE_MODES.get(fmt))
        print(f"report saved to {written}", file=sys.stderr)


def _audit(
    c: Context,
    *,
    suite: str | None,
    hosts: str,
    check: list[str] | None,
    format: str,
    json: bool,
    save: Any,
    inventory: str | None,
    profile: str | None,
    limit: str | None,
    fail_on: str,
    group_by: str | None,
    store: str | None = None,
    baseline: bool = False,
    drift: bool = False,
    **opts: Any,
) -> None:
    fmt = "json" if json else format
    started = utcnow()
    location = _store_location(c, store)
    verdict = None
    try:
        location, collector = _open_for_recording(location, required=baseline or drift)
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    try:
        if fmt not in report_mod.FORMATS:
            raise ReadinessError(f"unknown format {fmt!r} (valid: {', '.join(report_mod.FORMATS)})")
        threshold = Status.parse(fail_on)
        inv = _inventory(c, inventory)
        # Ctrl-C/SIGTERM during the run: the fleet loop returns the partial report, which is
        # rendered and saved; a second one while saving leaves the previous file intact.
        with handle_signals(), _observing(collector):
            run = run_suite(
                suite or "validate",
                hosts,
                check or None,
                inventory=inv,
                limit=limit,
                profile=profile,
                options=_options(c, **opts),
                fail_on=threshold,
            )
            report = run.report
            if collector is not None:
                collector.add_host_meta(report)
            if drift:
                report = _with_drift(report, collector)
            if baseline:
                verdict = _judge_baseline(location, report, threshold)
                report = replace(report, extra={**report.extra, "baseline": verdict.to_dict()})
            _emit(report, fmt, save, threshold, group_by)
            if verdict is not None and fmt != "json":
                print(render_verdict(verdict))
            if drift and fmt != "json":
                print(_drift_text(report))
            fingerprints = collector.hosts if collector is not None else None
            _record(
                c,
                location,
                report,
                suite or "validate",
                hosts,
                limit,
                profile,
                started,
                fingerprints=fingerprints,
            )
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    except ValueError as exc:
        raise Exit(f"readiness: {exc}", code=2) from None
    code = verdict.exit_code if verdict is not None else run.exit_code
    if code:
        raise Exit(code=code)


@task(
    help=_AUDIT_HELP,
    iterable=["check"],
    optional=["save"],
    aliases=["validate-production"],
)
def validate(
    c: Context,
    hosts: str = "local",
    check: list[str] | None = None,
    format: str = "text",
    json: bool = False,
    save: Any = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    forks: int | None = None,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    host_deadline: float | None = None,
    sudo: bool = False,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    quiet: bool = False,
    fail_on: str = "not_ready",
    group_by: str | None = None,
    store: str | None = None,
    baseline: bool = False,
    drift: bool = False,
) -> None:
    """Audit hosts for production readiness (the 8 checks of the original validator).

    Exit codes: 0 every result READY/DEGRADED/SKIPPED; 1 anything NOT_READY, ERROR
    or UNREACHABLE (or DEGRADED with --fail-on degraded); 2 usage errors; 130/143
    interrupted by SIGINT/SIGTERM (the partial report is still printed and saved).
    """
    _audit(
        c,
        suite="validate",
        hosts=hosts,
        check=check,
        format=format,
        json=json,
        save=save,
        inventory=inventory,
        profile=profile,
        limit=limit,
        fail_on=fail_on,
        group_by=group_by,
        forks=forks,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
        host_deadline=host_deadline,
        sudo=sudo,
        accept_new_host_keys=accept_new_host_keys,
        known_hosts=known_hosts,
        quiet=quiet,
        store=store,
        baseline=baseline,
        drift=drift,
    )


@task(
    help={
        "hosts": "Host pattern (default: all)",
        "inventory": _AUDIT_HELP["inventory"],
        "limit": _AUDIT_HELP["limit"],
        "profile": _AUDIT_HELP["profile"],
        "format": "text (default) or json (the whole effective profile per host)",
        "vars": "Also show each host's merged inventory variables, secrets masked",
    }
)
def inventory(
    c: Context,
    hosts: str = "all",
    inventory: str | None = None,
    limit: str | None = None,
    profile: str | None = None,
    format: str = "text",
    vars: bool = False,
) -> None:
    """List the selected hosts with address, port, user and effective readiness profile.

    Text shows, per host, the profile values that differ from the built-in defaults and
    the paths they resolve to on the host; --format json prints the whole effective
    profile. Secrets are redacted either way.
    """
    from .api import profile_layers
    from .inventory_view import render_inventory

    try:
        if format not in ("text", "json"):
            raise ReadinessError(f"unknown format {format!r} (valid: text, json)")
        inv = _inventory(c, inventory)
        selected = load_selected_hosts(hosts, inventory=inv, limit=limit)
        print(render_inventory(selected, profile_layers(profile), format, show_vars=vars))
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None


@task(help={"format": "Output format: text (a table, default) or json"})
def checks(c: Context, format: str = "text") -> None:
    """List every check: categories, suites that run it, what it examines, profile keys."""
    from .suites import render_catalog

    try:
        print(render_catalog(format))
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None


def _suite_task(suite: str) -> Any:
    """The task for ``suite``: validate's flags (one signature) and the shared ``_audit``."""
    spec = SUITES[suite]

    def run(c: Context, **flags: Any) -> None:
        _audit(c, suite=suite, **flags)

    run.__signature__ = inspect.signature(validate)  # type: ignore[attr-defined]
    run.__name__ = suite.replace("-", "_")
    run.__doc__ = (
        f"{spec.title}: {spec.description}\n\n"
        "Exit codes: 0 every quality gate passes; 1 a critical gate fails; 3 only non-critical "
        "gates fail or lack data; 2 usage errors; 130/143 interrupted (docs/exit-codes.md)."
    )
    return task(help=_AUDIT_HELP, iterable=["check"], optional=["save"])(run)


_SUITE_TASKS = {name: _suite_task(name) for name in SUITES if name != "validate"}


@task(
    help={
        "hosts": "Number of loopback sshd hosts to start (1..1000, default 10)",
        "forks": "Hosts audited at once, for the suite and the floor alike (default 32)",
        "rounds": "Measure the floor and the suite this many times each (1..5, default 1)",
        "check": "Check to run; repeatable (default: every check of the validate suite)",
        "command_timeout": "Seconds one remote command may run (default 60)",
        "hostile": "Instead: 5 % refused, 2.6 % silent, 2.4 % hanging hosts; check every row",
    },
    iterable=["check"],
)
def bench(
    c: Context,
    hosts: int = 10,
    forks: int = 32,
    rounds: int = 1,
    check: list[str] | None = None,
    command_timeout: float = 60.0,
    hostile: bool = False,
) -> None:
    """Benchmark the validate suite on N loopback sshd hosts against the bare-SSH floor.

    With --hostile: 5 % refused, 2.6 % stalling before the banner and 2.4 % hanging probes
    (25/13/12 of 500), every row's classification, sshd login counts and remote leftovers.
    """
    from .bench import format_hostile, format_result, run_bench, run_hostile_bench

    if hostile:
        n = int(hosts)
        try:
            hostile_result = run_hostile_bench(
                n,
                refused=n * 5 // 100,
                stalling=n * 26 // 1000,
                hanging=n * 24 // 1000,
                forks=int(forks),
                command_timeout=float(command_timeout),
                checks=check or None,
            )
        except (ValueError, RuntimeError) as exc:
            raise Exit(f"readiness bench: {exc}", code=2) from None
        print(format_hostile(hostile_result))
        return
    try:
        result = run_bench(
            int(hosts),
            forks=int(forks),
            rounds=int(rounds),
            checks=check or None,
            command_timeout=float(command_timeout),
        )
    except (ValueError, RuntimeError) as exc:
        raise Exit(f"readiness bench: {exc}", code=2) from None
    print(format_result(result))


@task(
    help={
        **{k: _AUDIT_HELP[k] for k in ("hosts", "inventory", "profile", "limit", "forks")},
        **{k: _AUDIT_HELP[k] for k in ("connect_timeout", "command_timeout", "host_deadline")},
        **{k: _AUDIT_HELP[k] for k in ("accept_new_host_keys", "known_hosts", "quiet")},
        "check": "Check to fix; repeatable or comma list (default: every check that has a fixer)",
        "apply": "Carry the plan out (default: dry run, print the plan as a diff)",
        "yes": "Apply to several hosts without asking (required when there is no terminal)",
        "run_migrations": (
            "Plan (and with --apply run, on the host) the profile's migration_command when the "
            "audit reports pending migrations; never a guessed tool, and it cannot be reverted"
        ),
        "sudo": "Run the audit and the fixes through `sudo -n` (never prompts)",
        "format": "Output format: text or json (default: text)",
        "audit_log": "JSON-lines audit log (default: ~/.local/state/readiness/remediation-audit.jsonl)",
        "store": _AUDIT_HELP["store"],
    },
    iterable=["check"],
)
def remediate(
    c: Context,
    hosts: str = "local",
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    apply: bool = False,
    yes: bool = False,
    run_migrations: bool = False,
    sudo: bool = False,
    format: str = "text",
    audit_log: str | None = None,
    forks: int | None = None,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    host_deadline: float | None = None,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    quiet: bool = False,
    store: str | None = None,
) -> None:
    """Fix what the audit found: dry run by default (a diff), --apply to change hosts.

    Each fix is a transaction: snapshot, apply, re-audit the check, restore if it still fails.
    Pending migrations are only run with --run-migrations, via the profile's migration_command
    (an argv list), and are never reverted: a failing migration is reported as failed.
    Exit codes: 0 every fix worked (or the dry run planned); 1 a fix failed or was reverted, or a
    host was unreachable; 2 usage errors and refused confirmation; 130/143 interrupted
    (docs/remediation.md).
    """
    from .remediate.cli import run_remediate_task

    opts = _options(
        c,
        forks=forks,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
        host_deadline=host_deadline,
        known_hosts=known_hosts,
        sudo=sudo,
        accept_new_host_keys=accept_new_host_keys,
        quiet=quiet,
    )
    started = utcnow()
    location = _store_location(c, store)
    finished: list[Any] = []
    try:
        # Ctrl-C/SIGTERM: hosts already remediated keep their results, the rest INTERRUPTED.
        with handle_signals():
            text, code = run_remediate_task(
                hosts=hosts,
                check=check,
                inventory=_inventory(c, inventory),
                profile=profile,
                limit=limit,
                apply=apply,
                yes=yes,
                run_migrations=run_migrations,
                fmt=format,
                audit_log=audit_log,
                options=opts,
                sink=finished.append,
            )
            print(text)
            _record_remediation(c, location, finished, hosts, limit, profile, started)
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    if code:
        raise Exit(code=code)


# invoke's @task returns a Task at runtime; its stubs type it as the wrapped function.
production = Collection("production")
production.add_task(validate, name="validate")
for _name, _suite in _SUITE_TASKS.items():
    production.add_task(_suite, name=_name)

ns = Collection()
for _t in (validate, inventory, checks):
    ns.add_task(_t)
for _name, _suite in _SUITE_TASKS.items():
    ns.add_task(_suite, name=_name)  # top-level aliases of production.<suite>
ns.add_task(bench)
ns.add_task(remediate)
ns.add_collection(production)
ns.configure({"readiness": {}})


# --- results store: history, show, diff, baselines (docs/history.md) ---------------------
# Kept in one block: the helpers the audit tasks above call to record a run, then the
# store's own tasks. invoke has no sub-subcommands, so `history prune` is `history-prune`
# and `baseline accept` is `baseline-accept`.

import contextlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from .store.baseline import BaselineVerdict, render_verdict  # noqa: E402
from .store.location import StoreLocation, resolve_location  # noqa: E402


def _store_location(c: Context, flag: str | None) -> StoreLocation:
    return resolve_location(flag, _cfg(c))


def _store_keep(c: Context) -> Any:
    from .store.cli import config_keep

    return config_keep(_cfg(c))


def _record(
    c: Context,
    location: StoreLocation,
    report: FleetReport,
    kind: str,
    hosts: str,
    limit: str | None,
    profile: str | None,
    started: Any,
    redacted: bool = True,
    fingerprints: Any = None,
) -> str | None:
    """Record the run (a failure warns on stderr and never changes the exit code)."""
    if not location.enabled:
        return None
    from .store.record import record_run, run_meta

    pattern = f"{hosts} --limit {limit}" if limit else hosts
    meta = run_meta(kind, pattern, started=started, profile=profile)
    return record_run(
        location, report, meta, keep=_store_keep(c), redacted=redacted, fingerprints=fingerprints
    )


def _fingerprints(collector: Any, report: FleetReport) -> Any:
    """The run's drift fingerprints, the probe's host facts included (None: no collector)."""
    if collector is None:
        return None
    collector.add_host_meta(report)
    return collector.hosts


def _drift_collector(location: StoreLocation) -> Any:
    """For watch's runs: None when the store is off or (this time) unavailable."""
    from .store.record import drift_collector

    try:
        return drift_collector(location)
    except ReadinessError:
        return None


def _open_for_recording(location: StoreLocation, *, required: bool) -> tuple[StoreLocation, Any]:
    """(location, drift collector). A store that cannot be opened is warned about once,
    now, and not retried after the audit (a dead database would cost its timeout twice);
    when ``required`` (--baseline, --drift) it is a usage error instead."""
    from .store.location import parse_location
    from .store.record import drift_collector

    try:
        return location, drift_collector(location)
    except ReadinessError as exc:
        if required:
            raise
        print(f"readiness: warning: run not recorded: {exc}", file=sys.stderr)
        return parse_location("none"), None


@contextlib.contextmanager
def _observing(collector: Any) -> Iterator[None]:
    """While the audit runs, ``collector`` fingerprints each host's configuration."""
    from .runner import APP_OBSERVERS

    if collector is None:
        yield
        return
    APP_OBSERVERS.append(collector)
    try:
        yield
    finally:
        APP_OBSERVERS.remove(collector)


def _with_drift(report: FleetReport, collector: Any) -> FleetReport:
    if collector is None:
        raise ReadinessError("--drift needs a results store (its key fingerprints the values)")
    from .store.cli import drift_section

    return replace(report, extra={**report.extra, "drift": drift_section(collector)})


def _drift_text(report: FleetReport) -> str:
    from .store.drift import DriftFinding, render_drift

    section = report.extra.get("drift") or {}
    findings = [
        DriftFinding(f["host"], f["item"], f["kind"], f["secret"], f["agree"], f["group"])
        for f in section.get("findings", [])
    ]
    title = f"DRIFT across {section.get('hosts', 0)} host(s): {len(findings)} odd one(s) out"
    return render_drift(findings, "text", title)


def _record_remediation(
    c: Context,
    location: StoreLocation,
    finished: list[Any],
    hosts: str,
    limit: str | None,
    profile: str | None,
    started: Any,
) -> None:
    if not finished or not location.enabled:
        return
    from .store.remediation import remediation_to_fleet

    fleet = remediation_to_fleet(finished[0])  # built here, so the store redacts it fully
    _record(c, location, fleet, "remediate", hosts, limit, profile, started, redacted=False)


def _judge_baseline(
    location: StoreLocation, report: FleetReport, threshold: Status
) -> BaselineVerdict:
    from .store.cli import apply_baseline

    if not location.enabled:
        raise ReadinessError("--baseline needs a results store (--store is 'none')")
    return apply_baseline(location, report, fail_on=threshold)


def _store_call(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run a store task function, print its text, exit with its code (errors: one line)."""
    try:
        text, code = fn(*args, **kwargs)
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    print(text)
    if code:
        raise Exit(code=code)


_STORE_HELP = {"store": _AUDIT_HELP["store"]}


@task(
    help={
        **_STORE_HELP,
        "hosts": "Per-host timelines for hosts or groups matching these globs (a,b  web*)",
        "check": "Timelines of this check only",
        "since": "Only runs since an age (7d, 12h) or a date (2026-11-01)",
        "kind": "Only runs of this kind (validate, check-config, remediate, ...)",
        "limit": "At most this many runs listed, or in a timeline/trend (default 50)",
        "format": "text, table, json or markdown (default: text)",
        "trend": "Per check: how many hosts were ready/degraded/not ready in each run",
    }
)
def history(
    c: Context,
    hosts: str | None = None,
    check: str | None = None,
    since: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    format: str = "text",
    store: str | None = None,
    trend: bool = False,
) -> None:
    """List recorded runs, newest first; with --hosts/--check, per host x check timelines;
    with --trend, per check counts over time (a sparkline of the ready share in text)."""
    from .store.cli import history_task

    _store_call(
        history_task,
        _store_location(c, store),
        hosts=hosts,
        check=check,
        since=since,
        kind=kind,
        limit=int(limit),
        fmt=format,
        trend=trend,
    )


@task(
    name="history-prune",
    help={**_STORE_HELP, "keep": "Keep runs younger than this age (90d, 12w, 36h); required"},
)
def history_prune(c: Context, keep: str | None = None, store: str | None = None) -> None:
    """Delete recorded runs older than --keep (and findings no run uses any more)."""
    from .store.cli import prune_task

    if not keep:
        raise Exit("readiness: history-prune needs --keep AGE (e.g. --keep 90d)", code=2)
    _store_call(prune_task, _store_location(c, store), keep)


@task(
    help={
        **_STORE_HELP,
        "run": "Run id, unique prefix, latest or latest~N",
        "format": "Any report format: text, table, json, markdown (default: text)",
    }
)
def show(c: Context, run: str, format: str = "text", store: str | None = None) -> None:
    """Re-render a stored run in any report format (exits 0: it shows, it does not judge)."""
    from .store.cli import show_task

    _store_call(show_task, _store_location(c, store), run, format)


@task(
    help={
        **_STORE_HELP,
        "old": "The earlier run (default: the run before --new of the same pattern and kind)",
        "new": "The later run (default: latest)",
        "format": "text, table, json or markdown (default: text)",
    }
)
def diff(
    c: Context,
    old: str | None = None,
    new: str | None = None,
    format: str = "text",
    store: str | None = None,
) -> None:
    """What changed between two runs per host x check; exit 1 when anything got worse."""
    from .store.cli import diff_task

    _store_call(diff_task, _store_location(c, store), old, new, format)


@task(
    name="baseline-accept",
    help={
        **_STORE_HELP,
        "run": "Run to accept (default: latest)",
        "hosts": "Accept only these hosts' results (globs over host and group names)",
        "check": "Accept only this check's results",
        "name": "Baseline name (default: default)",
    },
)
def baseline_accept(
    c: Context,
    run: str | None = None,
    hosts: str | None = None,
    check: str | None = None,
    name: str = "default",
    store: str | None = None,
) -> None:
    """Accept a stored run's results as the baseline that `validate --baseline` ratchets on."""
    from .store.cli import baseline_accept_task

    _store_call(
        baseline_accept_task, _store_location(c, store), run, hosts=hosts, check=check, name=name
    )


@task(
    name="baseline-export",
    help={**_STORE_HELP, "output": "File to write (default: stdout)", "name": "Baseline name"},
)
def baseline_export(
    c: Context, output: str | None = None, name: str = "default", store: str | None = None
) -> None:
    """Write the baseline as a JSON file (readiness.baseline/1) to keep in git."""
    from .store.cli import baseline_export_task

    _store_call(baseline_export_task, _store_location(c, store), output, name)


@task(
    name="baseline-import",
    help={
        **_STORE_HELP,
        "file": "A readiness.baseline/1 JSON file",
        "name": "Store it under this name",
    },
)
def baseline_import(
    c: Context, file: str, name: str | None = None, store: str | None = None
) -> None:
    """Replace the stored baseline with one from a file (as exported by baseline-export)."""
    from .store.cli import baseline_import_task

    _store_call(baseline_import_task, _store_location(c, store), file, name)


@task(
    help={
        **_STORE_HELP,
        "hosts": "Only these hosts (globs over host and group names)",
        "run": "The run to examine (default: latest)",
        "since": "Compare each host with itself in this earlier run instead of with the others",
        "format": "text, table, json or markdown (default: text)",
    }
)
def drift(
    c: Context,
    hosts: str | None = None,
    run: str | None = None,
    since: str | None = None,
    format: str = "text",
    store: str | None = None,
) -> None:
    """Configuration drift: odd hosts out (settings keys, env variables; secrets as keyed
    fingerprints), or with --since what changed on each host. Exit 1 when drift is found."""
    from .store.cli import drift_task

    _store_call(
        drift_task, _store_location(c, store), run=run, since=since, hosts=hosts, fmt=format
    )


def _watch_settings(
    jitter: float, alert_after: int, alert_on: str, max_runs: int | None, listen: str
) -> tuple[Any, tuple[str, int]]:
    from .store.watch import AlertTracker

    if not 0 <= float(jitter) < 1:
        raise ReadinessError(f"--jitter must be in [0, 1) (got {jitter})")
    if int(alert_after) < 1 or (max_runs is not None and int(max_runs) < 1):
        raise ReadinessError("--alert-after and --max-runs must be at least 1")
    tracker = AlertTracker(after=int(alert_after), alert_on=Status.parse(alert_on))
    return tracker, _listen_address(listen)


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ReadinessError(f"bad --listen {text!r}: use HOST:PORT, e.g. 127.0.0.1:9470")
    return host.strip("[]") or "127.0.0.1", int(port)


@task(
    help={
        **{k: _AUDIT_HELP[k] for k in ("hosts", "check", "inventory", "profile", "limit", "forks")},
        **{k: _AUDIT_HELP[k] for k in ("connect_timeout", "command_timeout", "host_deadline")},
        **{k: _AUDIT_HELP[k] for k in ("sudo", "accept_new_host_keys", "known_hosts", "store")},
        "every": "Interval between run starts (15m, 1h, 30s; default 15m)",
        "jitter": "Each start moves by up to this fraction of the interval (default 0.1)",
        "listen": "HTTP address for /metrics, /healthz and / (default 127.0.0.1:9470; port 0: any)",
        "alertmanager_url": "Alertmanager base URL to send alerts to (or readiness.alertmanager_url)",
        "webhook": "URL that gets one JSON POST per alert firing or resolved",
        "alert_after": "Consecutive bad (or good) results before an alert fires (resolves); default 2",
        "alert_on": "Status from which a result is bad: degraded (default) or not_ready",
        "max_runs": "Stop after this many runs (default: run until SIGTERM/SIGINT)",
    },
    iterable=["check"],
)
def watch(
    c: Context,
    hosts: str = "local",
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    every: str = "15m",
    jitter: float = 0.1,
    listen: str = "127.0.0.1:9470",
    alertmanager_url: str | None = None,
    webhook: str | None = None,
    alert_after: int = 2,
    alert_on: str = "degraded",
    max_runs: int | None = None,
    forks: int | None = None,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    host_deadline: float | None = None,
    sudo: bool = False,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    store: str | None = None,
) -> None:
    """Audit on a schedule; record each run; serve /metrics, /healthz, /; alert on degrading.

    Runs never overlap; SIGTERM or SIGINT lets the current run finish and be recorded, then
    exits 0. docs/history.md describes metrics, alerts and the systemd unit.
    """
    import signal
    import time

    from .store.history import parse_age
    from .store.watch import Watcher, WatchState, serve

    location = _store_location(c, store)
    try:
        every_s = parse_age(every).total_seconds()
        tracker, address = _watch_settings(jitter, alert_after, alert_on, max_runs, listen)
        opts = _options(
            c,
            forks=forks,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            host_deadline=host_deadline,
            known_hosts=known_hosts,
            sudo=sudo,
            accept_new_host_keys=accept_new_host_keys,
            quiet=True,
        )
        inv = _inventory(c, inventory)
        load_selected_hosts(hosts, inventory=inv, limit=limit)  # a bad pattern: exit 2 now
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    except ValueError as exc:
        raise Exit(f"readiness: {exc}", code=2) from None

    def once() -> tuple[FleetReport, str | None]:
        started, began = utcnow(), time.monotonic()
        collector = _drift_collector(location)
        try:
            with _observing(collector):
                run = run_suite(
                    "validate",
                    hosts,
                    check or None,
                    inventory=inv,
                    limit=limit,
                    profile=profile,
                    options=opts,
                )
        except ReadinessError as exc:  # e.g. the inventory became unreadable: keep watching
            print(f"readiness watch: run failed: {exc}", file=sys.stderr)
            return FleetReport(hosts=()), None
        took = time.monotonic() - began
        watch_info = {"interval_s": every_s, "overran": took > every_s}
        report = replace(run.report, extra={**run.report.extra, "watch": watch_info})
        fingerprints = _fingerprints(collector, report)
        run_id = _record(
            c,
            location,
            report,
            "validate",
            hosts,
            limit,
            profile,
            started,
            fingerprints=fingerprints,
        )
        return report, run_id

    state = WatchState()
    try:
        server = serve(state, *address)
    except OSError as exc:
        raise Exit(f"readiness: cannot listen on {listen}: {exc.strerror}", code=2) from None
    am = alertmanager_url or _cfg(c).get("alertmanager_url")
    watcher = Watcher(
        once,
        every_s,
        state,
        tracker,
        float(jitter),
        am,
        webhook,
        None if max_runs is None else int(max_runs),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: watcher.stop.set())
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"readiness watch: serving http://{host}:{port} (every {every}, store {location.display})",
        file=sys.stderr,
        flush=True,
    )
    try:
        code = watcher.loop()
    finally:
        server.shutdown()
        server.server_close()
    print(f"readiness watch: stopped after {state.runs} run(s)", file=sys.stderr)
    if code:
        raise Exit(code=code)


for _store_task in (
    watch,
    drift,
    history,
    history_prune,
    show,
    diff,
    baseline_accept,
    baseline_export,
    baseline_import,
):
    ns.add_task(_store_task)


# --- reports: the Nagios/Icinga plugin task (docs/reports.md) ------------------------------
# Its own block: the plugin convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) holds only
# here. A usage error or an interruption is UNKNOWN on stdout, never readiness' 2/130/143,
# which Nagios would read as CRITICAL or as a plugin crash.

from .report.nagios import NagiosState, nagios_state, nagios_unknown, render_nagios  # noqa: E402

_NAGIOS_HELP = {
    k: _AUDIT_HELP[k]
    for k in (
        "hosts",
        "check",
        "inventory",
        "profile",
        "limit",
        "forks",
        "connect_timeout",
        "command_timeout",
        "host_deadline",
        "sudo",
        "known_hosts",
        "fail_on",
    )
}
_NAGIOS_HELP["suite"] = "Suite to run (default: validate)"


@task(help=_NAGIOS_HELP, iterable=["check"])
def nagios(
    c: Context,
    hosts: str = "local",
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    forks: int | None = None,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    host_deadline: float | None = None,
    sudo: bool = False,
    known_hosts: str | None = None,
    fail_on: str = "not_ready",
    suite: str = "validate",
) -> None:
    """Audit like `validate` and answer as a Nagios/Icinga plugin (check_by_ssh, NRPE).

    Prints one status line with perfdata, then one line per problem. Exit codes follow the
    plugin convention, unlike every other task: 0 OK, 1 WARNING (degraded, or only
    non-critical gates failed), 2 CRITICAL (not ready, error, unreachable, a critical gate),
    3 UNKNOWN (usage error, nothing selected, interrupted).
    """
    try:
        threshold = Status.parse(fail_on)
        with handle_signals():
            run = run_suite(
                suite,
                hosts,
                check or None,
                inventory=_inventory(c, inventory),
                limit=limit,
                profile=profile,
                options=_options(
                    c,
                    forks=forks,
                    connect_timeout=connect_timeout,
                    command_timeout=command_timeout,
                    host_deadline=host_deadline,
                    known_hosts=known_hosts,
                    sudo=sudo,
                    quiet=True,  # a plugin's stderr is noise to the monitoring server
                ),
                fail_on=threshold,
            )
            print(render_nagios(run.report, fail_on=threshold))
    except KeyboardInterrupt as exc:
        print(nagios_unknown(f"run interrupted ({signal_name(exc)})"))
        raise Exit(code=NagiosState.UNKNOWN) from None
    except (ReadinessError, ValueError) as exc:
        print(nagios_unknown(exc))
        raise Exit(code=NagiosState.UNKNOWN) from None
    state = nagios_state(run.report, threshold)
    if state:
        raise Exit(code=int(state))


ns.add_task(nagios)
