"""Invoke tasks: flags in, ``readiness.api`` call, report out, ``Exit(code)``.

Top-level ``tasks.py`` and the ``readiness`` console script expose this same
collection. Every option is declared once in :mod:`readiness.options` (type,
range, help, short flag); :func:`readiness.taskbase.resolve` turns flags and the
``readiness:`` settings of invoke.yaml / ./readiness.yaml into typed values
before anything runs, so a bad value is one line and exit 2 (docs/cli.md).
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit

from . import report as report_mod
from .api import INVENTORY_ENV, default_inventory_paths, load_selected_hosts, plan
from .errors import ReadinessError, UsageError
from .hostdata import printable_streams
from .interrupt import (
    exit_code_for,
    finishing,
    graceful_stop,
    handle_signals,
    interruption,
    interruption_ends_the_task,
    signal_name,
)
from .model import FleetReport, Status, utcnow
from .options import option
from .report._clean import one_line
from .runner import RunOptions
from .suites import SUITES, run_suite
from .taskbase import load_settings, readiness_task, resolve

if TYPE_CHECKING:
    from .store.db import BaselineEntry

__all__ = ["ns"]

printable_streams()  # a report never dies on a character the terminal cannot show

# RunOptions that flags or the ``readiness:`` settings may set.
_RUN_OPTIONS = (
    "forks",
    "connect_timeout",
    "command_timeout",
    "host_deadline",
    "known_hosts",
    "ssh_config",
    "identity_file",
    "max_output",
    "sudo",
    "accept_new_host_keys",
    "quiet",
    "progress_interval",
)

NO_INVENTORY = (
    "no inventory: pass -i/--inventory PATH, set {env}, or run where ./inventories exists "
    "(the repository root has an example)"
)


def _settings(c: Context) -> dict[str, Any]:
    try:
        section = c.config.get("readiness", None)
    except AttributeError:
        section = None
    # the -f FILE / $INVOKE_RUNTIME_CONFIG file (invoke keeps it apart): named on this
    # command line, it wins over the ./readiness.yaml found in the directory
    runtime = getattr(c.config, "_runtime", None)
    named = runtime.get("readiness") if isinstance(runtime, Mapping) else None
    path = getattr(c.config, "_runtime_path", None)
    return load_settings(section, runtime=named, runtime_path=str(path) if path else None)


def _cfg(c: Context) -> dict[str, Any]:
    """The validated ``readiness:`` settings (the store helpers read store/history_keep)."""
    return _settings(c)


def _typed(
    c: Context, task: str, given: Mapping[str, Any]
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    settings = _settings(c)
    return resolve(task, given, settings), settings


def _inventory(value: str | None, given: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """-i wins, then $READINESS_INVENTORY, then the settings, then ./inventories; else exit 2.

    ``value`` is the resolved option, which already holds the settings' ``inventory:`` when
    no -i was given: only an -i in ``given`` may come before the environment."""
    flag = value if given.get("inventory") else None
    env = None if flag else os.environ.get(INVENTORY_ENV)
    if env:  # -i from the environment, checked as -i is (100,000 characters: a traceback)
        env = option("inventory").coerce(env, INVENTORY_ENV)
    chosen = flag or env or settings.get("inventory") or None
    if not default_inventory_paths(chosen):
        raise UsageError(NO_INVENTORY.format(env=INVENTORY_ENV))
    return chosen or "inventories"


def _default_hosts_refusal(given: Mapping[str, Any]) -> str | None:
    """Without --hosts the pattern is ``local``: the inventory's ``local`` host. One it does
    not name would be the implicit controller audited on the built-in /opt/mahavishnu
    defaults, which a user who forgot --hosts for their fleet never meant: exit 2 instead."""
    return "no --hosts given (the default is 'local')" if given.get("hosts") is None else None


def _known_checks(names: list[str]) -> None:
    """An unknown check name is the first thing to hear about (before a missing inventory)."""
    if names:
        from .registry import resolve_names

        resolve_names(names, suite=None)


def _run_options(values: Mapping[str, Any], settings: Mapping[str, Any]) -> RunOptions:
    kw = {k: values[k] if k in values else settings.get(k) for k in _RUN_OPTIONS}
    return RunOptions(**{k: v for k, v in kw.items() if v is not None})


def _usage(exc: ReadinessError) -> Exit:
    """``exc`` on one line: a library's multi-line message (psycopg's "connection refused
    \n\tIs the server running ...") would otherwise break the one-line promise."""
    return Exit(f"readiness: {one_line(exc)}", code=exc.exit_code)


def _format(values: Mapping[str, Any], given_format: Any) -> str:
    fmt = str(values["format"])
    if values.get("json"):
        if given_format is not None and fmt != "json":
            raise UsageError(f"--json and --format {fmt} disagree; give one of them")
        fmt = "json"
    if values.get("group_by") and fmt not in ("text", "table", "markdown"):
        raise UsageError(
            f"--group-by applies to text, table and markdown, not {fmt} (each host lists its groups)"
        )
    return fmt


def _emit(
    report: FleetReport,
    fmt: str,
    target: report_mod.SaveTarget | None,
    fail_on: Status,
    group_by: str | None,
    color: str,
    sinks: tuple[report_mod.ReportSink, ...] = (),
    trend: Any = None,
) -> None:
    """Save first (a closed pipe must not lose the file), then print. ``sinks`` are the
    ``--report`` files: each format rendered once, each file atomic. ``trend`` (from the
    store) reaches the HTML report only."""
    kw: dict[str, Any] = {"group_by": group_by, "color": color}
    html_kw: dict[str, Any] = {"trend": trend}
    if target is not None:
        extra = html_kw if target.fmt == "html" else {}
        saved = report_mod.render(
            report, target.fmt, fail_on=fail_on, **{**kw, "color": "never"}, **extra
        )
        mode = report_mod.FILE_MODES.get(target.fmt)
        written = report_mod.save(saved, target.final_path(report), mode=mode)
        print(f"report saved to {written}", file=sys.stderr)
    files = [s for s in sinks if s.path is not None or s.default_path]
    _, paths = report_mod.write_reports(
        report, files, fail_on=fail_on, group_by=group_by, trend=trend
    )
    for path in paths:
        print(f"report saved to {path}", file=sys.stderr)
    extra = html_kw if fmt == "html" else {}
    report_mod.emit(report_mod.render(report, fmt, fail_on=fail_on, **kw, **extra))


def _audit(c: Context, suite: str, given: Mapping[str, Any]) -> None:
    started = utcnow()
    verdict = None
    try:
        values, settings = _typed(c, suite if suite in SUITES else "validate", given)
        fmt = _format(values, given.get("format"))
        # --report sinks are parsed and checked before the run (exit 2), like --save.
        sinks = report_mod.plan_sinks(values["report"] or (), fmt)
        fmt = next(s.fmt for s in sinks if s.path is None and not s.default_path)
        target = report_mod.plan_save(values["save"], fmt)
        report_mod.check_save_and_reports(target, sinks)
        threshold = Status.parse(values["fail_on"])
        _known_checks(values["check"])
        inv = _inventory(values["inventory"], given, settings)
        run_options = _engine_options(
            _run_options(values, settings), given, settings, (values["hosts"], inv, values["limit"])
        )
        if values["drift"] and run_options.engine == "celery":
            raise UsageError(
                "--drift compares facts the workers keep: run it with --engine local "
                "(docs/distributed.md)"
            )
        location = _store_location(c, values["store"])
        required = bool(values["baseline"] or values["drift"])
        # A usage error the store answers (none, or no baseline in it) is exit 2 before the
        # fleet is audited, not after a fleet-wide run.
        if required and not location.enabled:
            flag = "--baseline" if values["baseline"] else "--drift"
            raise UsageError(f"{flag} needs a results store (--store is 'none')")
        baseline = _load_baseline(location) if values["baseline"] else None
        # a read-only store records nothing but still gives the HTML report its trend
        readable = location
        location, collector = _open_for_recording(location, required=required)
        if not _store_read_only(readable):
            readable = location
        # Ctrl-C/SIGTERM during the run: the fleet loop returns the partial report, which is
        # rendered and saved; a second one while saving leaves the previous file intact.
        with handle_signals(), _observing(collector):
            run = run_suite(
                suite,
                values["hosts"],
                values["check"] or None,
                inventory=inv,
                limit=values["limit"],
                profile=values["profile"],
                options=run_options,
                fail_on=threshold,
                refuse_implicit_local=_default_hosts_refusal(given),
            )
            # Every host is done: a signal from here on waits until the report is out and
            # the run recorded (then exit 128 + it), instead of cutting either short.
            with finishing():
                report = run.report
                if collector is not None:
                    collector.add_host_meta(report)
                if values["drift"]:
                    report = _with_drift(report, collector)
                if baseline is not None:
                    from .store.baseline import judge

                    verdict = judge(report, baseline, fail_on=threshold, name="default")
                    report = replace(report, extra={**report.extra, "baseline": verdict.to_dict()})
                trend = _html_trend(readable, report, suite, values, fmt, target, sinks)
                group_by, color = values["group_by"], values["color"]
                _emit(report, fmt, target, threshold, group_by, color, sinks, trend)
                fingerprints = collector.hosts if collector is not None else None
                _record(
                    c,
                    location,
                    report,
                    suite,
                    values["hosts"],
                    values["limit"],
                    values["profile"],
                    started,
                    fingerprints=fingerprints,
                )
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise _usage(exc) from None
    code = verdict.exit_code if verdict is not None else run.exit_code
    if code:
        raise Exit(code=code)


@readiness_task(iterable=["check", "report"], optional=["save"], aliases=["validate-production"])
def validate(
    c: Context,
    hosts: str | None = None,
    check: list[str] | None = None,
    format: str | None = None,
    json: bool = False,
    save: Any = None,
    report: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    forks: Any = None,
    connect_timeout: Any = None,
    command_timeout: Any = None,
    host_deadline: Any = None,
    sudo: bool = False,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    quiet: bool = False,
    fail_on: str | None = None,
    group_by: str | None = None,
    color: str | None = None,
    store: str | None = None,
    baseline: bool = False,
    drift: bool = False,
    engine: str | None = None,
    broker: str | None = None,
) -> None:
    """Audit hosts for production readiness (the 8 checks of the original validator).

    Exit codes: 0 every result READY/DEGRADED/SKIPPED; 1 anything NOT_READY, ERROR or
    UNREACHABLE (or DEGRADED with --fail-on degraded); 2 usage errors; 130/143
    interrupted by SIGINT/SIGTERM (the partial report is still printed and saved).
    """
    given = dict(locals())
    given.pop("c")
    _audit(c, "validate", given)


@readiness_task()
def inventory(
    c: Context,
    hosts: str | None = None,
    inventory: str | None = None,
    limit: str | None = None,
    profile: str | None = None,
    format: str | None = None,
    vars: bool = False,
) -> None:
    """List the selected hosts with address, port, user and effective readiness profile.

    The ssh login column is where validate would log in (after ssh_config and the host's
    ansible_ssh_*_args; no connection is made). Text shows, per host, the profile values
    that differ from the built-in defaults and
    the paths they resolve to on the host; --format json prints the whole effective
    profile. Secrets are redacted either way.
    """
    given = dict(locals())
    given.pop("c")
    from .api import profile_layers
    from .inventory_view import render_inventory

    try:
        values, settings = _typed(c, "inventory", given)
        inv = _inventory(values["inventory"], given, settings)
        selected = load_selected_hosts(values["hosts"], inventory=inv, limit=values["limit"])
        text = render_inventory(
            selected,
            profile_layers(values["profile"]),
            values["format"],
            show_vars=values["vars"],
            connection=_run_options(values, settings).connection,
        )
    except ReadinessError as exc:
        raise _usage(exc) from None
    report_mod.emit(text)


@readiness_task()
def checks(c: Context, format: str | None = None) -> None:
    """List every check: categories, suites that run it, what it examines, profile keys."""
    from .suites import render_catalog

    try:
        values, _ = _typed(c, "checks", {"format": format})
        text = render_catalog(values["format"])
    except ReadinessError as exc:
        raise _usage(exc) from None
    report_mod.emit(text)


def _suite_task(suite: str) -> Any:
    """The task for ``suite``: validate's flags (one signature) and the shared ``_audit``."""
    spec = SUITES[suite]

    def run(c: Context, **flags: Any) -> None:
        _audit(c, suite, flags)

    run.__signature__ = inspect.signature(validate.body)  # type: ignore[attr-defined]
    run.__name__ = suite.replace("-", "_")
    run.__doc__ = (
        f"{spec.title}: {spec.description}\n\n"
        "Exit codes: 0 every quality gate passes; 1 a critical gate fails; 3 only non-critical "
        "gates fail or lack data; 2 usage errors; 130/143 interrupted (docs/exit-codes.md)."
    )
    return readiness_task(iterable=["check", "report"], optional=["save"])(run)


_SUITE_TASKS = {name: _suite_task(name) for name in SUITES if name != "validate"}


@readiness_task(iterable=["check"])
def bench(
    c: Context,
    hosts: Any = None,
    forks: Any = None,
    rounds: Any = None,
    check: list[str] | None = None,
    command_timeout: Any = None,
    hostile: bool = False,
    app: str | None = None,
    skip_ansible: bool = False,
    engine: str | None = None,
    workers: str | None = None,
) -> None:
    """Benchmark the validate suite on N loopback sshd hosts against the bare-SSH floor.

    Both apps by default (the bundled example is the headline), recording the run and every
    report format, and Ansible's raw and command modules as reference rows (docs/performance.md).

    With --engine celery: the same fleet audited locally, then by each of --workers N
    `readiness worker` processes on a loopback redis-server (docs/distributed.md).

    With --hostile: 5 % refused, 2.6 % stalling before the banner and 2.4 % hanging probes
    (25/13/12 of 500), every row's classification, sshd login counts and remote leftovers.
    """
    given = dict(locals())
    given.pop("c")
    from .registry import resolve_names

    try:
        values, _ = _typed(c, "bench", given)
        if values["check"]:
            resolve_names(values["check"])  # an unknown name is a usage error before the fleet
        counts = _worker_counts(values["workers"])  # checked whatever the engine
        celery = values["engine"] == "celery"
        if given["workers"] is not None and not celery:  # it was ignored, silently
            raise UsageError("--workers applies to bench --engine celery only")
        if values["hostile"] and celery:
            raise UsageError("--hostile runs with --engine local only")
        # Ctrl-C/SIGTERM ends the bench (a measured run cut short measures nothing): every
        # run hangs up its hosts, then the loopback fleet, its sshd listeners and temp
        # directory are stopped and removed on the way out (exit 130/143).
        with handle_signals(), interruption_ends_the_task():
            text = _bench_text(values, counts, celery=celery)
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise _usage(exc) from None
    except RuntimeError as exc:
        raise Exit(f"readiness bench: {exc}", code=1) from None
    report_mod.emit(text)


def _bench_text(values: Mapping[str, Any], counts: list[int], *, celery: bool) -> str:
    from .bench import format_hostile, format_result, run_bench, run_hostile_bench

    n = values["hosts"]
    if celery:
        return _engine_bench(values, counts)
    if values["hostile"]:
        return format_hostile(
            run_hostile_bench(
                n,
                refused=n * 5 // 100,
                stalling=n * 26 // 1000,
                hanging=n * 24 // 1000,
                forks=values["forks"],
                command_timeout=values["command_timeout"],
                checks=values["check"] or None,
            )
        )
    return format_result(
        run_bench(
            n,
            forks=values["forks"],
            rounds=values["rounds"],
            checks=values["check"] or None,
            command_timeout=values["command_timeout"],
            apps=("example", "minimal") if values["app"] == "both" else (values["app"],),
            ansible=not values["skip_ansible"],
        )
    )


def _worker_counts(text: object) -> list[int]:
    counts = []
    for part in str(text).split(","):
        if not part.strip().isdigit() or not 1 <= int(part) <= 16:
            raise UsageError(f"--workers: expected worker counts 1..16 like 1,2,4, got {part!r}")
        counts.append(int(part))
    return counts


def _engine_bench(values: Mapping[str, Any], counts: list[int]) -> str:
    """`bench --engine celery`: readiness/engine/bench.py (its own block, docs/distributed.md)."""
    from .engine.bench import format_engine_bench, run_engine_bench

    return format_engine_bench(
        run_engine_bench(
            values["hosts"],
            worker_counts=counts,
            forks=values["forks"],
            checks=values["check"] or None,
            command_timeout=values["command_timeout"],
        )
    )


@readiness_task(iterable=["check"])
def remediate(
    c: Context,
    hosts: str | None = None,
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    apply: bool = False,
    yes: bool = False,
    run_migrations: bool = False,
    sudo: bool = False,
    format: str | None = None,
    audit_log: str | None = None,
    forks: Any = None,
    connect_timeout: Any = None,
    command_timeout: Any = None,
    host_deadline: Any = None,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    quiet: bool = False,
    store: str | None = None,
    engine: str | None = None,
    broker: str | None = None,
) -> None:
    """Fix what the audit found: dry run by default (a diff), --apply to change hosts.

    Each fix is a transaction: snapshot, apply, re-audit the check, restore if it still fails.
    Pending migrations are only run with --run-migrations, via the profile's migration_command
    (an argv list), and are never reverted: a failing migration is reported as failed.
    Exit codes: 0 every fix worked (or the dry run planned); 1 a fix failed or was reverted, a
    fixer refused part of a fix (--apply), or a host was unreachable; 2 usage errors and
    refused confirmation; 130/143 interrupted (docs/remediation.md).
    """
    given = dict(locals())
    given.pop("c")
    from .remediate.cli import run_remediate_task

    try:
        values, settings = _typed(c, "remediate", given)
        inv = _inventory(values["inventory"], given, settings)
        started = utcnow()
        location = _store_location(c, values["store"])
        finished: list[Any] = []
        # Ctrl-C/SIGTERM: hosts already remediated keep their results, the rest INTERRUPTED.
        with handle_signals():
            text, code = run_remediate_task(
                hosts=values["hosts"],
                check=values["check"],
                inventory=inv,
                profile=values["profile"],
                limit=values["limit"],
                apply=values["apply"],
                yes=values["yes"],
                run_migrations=values["run_migrations"],
                fmt=values["format"],
                audit_log=values["audit_log"],
                options=_engine_options(
                    _run_options(values, settings),
                    given,
                    settings,
                    (values["hosts"], inv, values["limit"]),
                ),
                sink=finished.append,
            )
            with finishing():  # every host is done: a signal waits for the report and record
                report_mod.emit(text)
                _record_remediation(
                    c,
                    location,
                    finished,
                    values["hosts"],
                    values["limit"],
                    values["profile"],
                    started,
                )
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise _usage(exc) from None
    if code:
        raise Exit(code=code)


def all_tasks() -> dict[str, Any]:
    """Every task of the collection by its primary name (the contract test walks these)."""
    return {name: ns[name] for name in ns.task_names}


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

from .store.location import StoreLocation, resolve_location  # noqa: E402


def _store_location(c: Context, flag: str | None) -> StoreLocation:
    location = resolve_location(flag, _cfg(c))
    if location.enabled:
        _store_keep(c)  # a bad readiness.history_keep is exit 2 before the audit, not after it
    return location


def _store_keep(c: Context) -> Any:
    from .store.history import config_keep

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

    meta = run_meta(kind, _run_pattern(hosts, limit), started=started, profile=profile)
    return record_run(
        location, report, meta, keep=_store_keep(c), redacted=redacted, fingerprints=fingerprints
    )


def _run_pattern(hosts: str, limit: str | None) -> str:
    """The host pattern a run is recorded under (history and trends group runs by it)."""
    return f"{hosts} --limit {limit}" if limit else hosts


def _html_trend(
    location: StoreLocation,
    report: FleetReport,
    kind: str,
    values: Mapping[str, Any],
    fmt: str,
    target: Any,
    sinks: tuple[report_mod.ReportSink, ...],
) -> Any:
    """Per check trend for an HTML report (None when no report is HTML or no history)."""
    formats = {fmt, *(s.fmt for s in sinks), *([target.fmt] if target is not None else [])}
    if "html" not in formats or not location.enabled:
        return None
    from .store.record import report_trend

    pattern = _run_pattern(values["hosts"], values["limit"])
    return report_trend(location, report, kind=kind, pattern=pattern)


def _open_for_recording(location: StoreLocation, *, required: bool) -> tuple[StoreLocation, Any]:
    """(location, drift collector). A store that cannot be opened is warned about once,
    now, and not retried after the audit (a dead database would cost its timeout twice);
    when ``required`` (--baseline, --drift) it is a usage error instead."""
    from .store.backends import StoreReadOnly
    from .store.location import parse_location
    from .store.record import drift_collector

    try:
        return location, drift_collector(location)
    except StoreReadOnly as exc:
        # --baseline has read its baseline already and --drift needs only the store's key:
        # a store this run may not write costs the record, not the audit
        print(f"readiness: warning: run not recorded: {one_line(exc)}", file=sys.stderr)
        collector = drift_collector(location, read_only=True) if required else None
        return parse_location("none"), collector
    except ReadinessError as exc:
        if required:
            raise
        print(f"readiness: warning: run not recorded: {one_line(exc)}", file=sys.stderr)
        return parse_location("none"), None


def _store_read_only(location: StoreLocation) -> bool:
    """An SQLite store that exists and this process may not write (it can still be read)."""
    if location.kind != "sqlite" or location.path is None:
        return False
    from .store.backends import read_only_reason

    return bool(read_only_reason(location.path))


@contextlib.contextmanager
def _observing(collector: Any) -> Iterator[None]:
    """While the audit runs, ``collector`` fingerprints each host's configuration."""
    from .runner import APP_OBSERVERS, FACT_OBSERVERS, FACT_REQUESTS

    if collector is None:
        yield
        return
    APP_OBSERVERS.append(collector)
    FACT_OBSERVERS.append(collector.observe_facts)
    FACT_REQUESTS.append(collector.fact_request)
    try:
        yield
    finally:
        FACT_REQUESTS.remove(collector.fact_request)
        FACT_OBSERVERS.remove(collector.observe_facts)
        APP_OBSERVERS.remove(collector)


def _with_drift(report: FleetReport, collector: Any) -> FleetReport:
    if collector is None:
        raise ReadinessError("--drift needs a results store (its key fingerprints the values)")
    from .store.cli import drift_section

    return replace(report, extra={**report.extra, "drift": drift_section(collector)})


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


def _load_baseline(location: StoreLocation) -> dict[tuple[str, str], BaselineEntry]:
    from .store.cli import load_baseline

    return load_baseline(location)


def _store_call(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run a store task function, print its text, exit with its code (errors: one line)."""
    try:
        text, code = fn(*args, **kwargs)
    except ReadinessError as exc:
        raise _usage(exc) from None
    print(text)
    if code:
        raise Exit(code=code)


def _store_task(c: Context, task: str, given: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """Typed values and the store location for a store task."""
    values, _ = _typed(c, task, given)
    return values, _store_location(c, values.get("store"))


@readiness_task()
def history(
    c: Context,
    hosts: str | None = None,
    check: str | None = None,
    since: str | None = None,
    kind: str | None = None,
    limit: Any = None,
    format: str | None = None,
    store: str | None = None,
    trend: bool = False,
) -> None:
    """List recorded runs, newest first, or their timelines and trends.

    With --hosts/--check, per host x check timelines; with --trend, per check counts over
    time (a sparkline of the ready share in text).
    """
    given = dict(locals())
    given.pop("c")
    from .store.cli import history_task

    try:
        v, location = _store_task(c, "history", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(
        history_task,
        location,
        hosts=v["hosts"],
        check=v["check"],
        since=v["since"],
        kind=v["kind"],
        limit=v["limit"],
        fmt=v["format"],
        trend=v["trend"],
    )


@readiness_task(name="history-prune")
def history_prune(c: Context, keep: str | None = None, store: str | None = None) -> None:
    """Delete recorded runs older than --keep (and findings no run uses any more)."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import prune_task

    try:
        v, location = _store_task(c, "history-prune", given)
        if not v["keep"]:
            raise UsageError("history-prune needs --keep AGE (e.g. --keep 90d)")
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(prune_task, location, v["keep"])


@readiness_task()
def show(c: Context, run: str, format: str | None = None, store: str | None = None) -> None:
    """Re-render a stored run in any report format (exits 0: it shows, it does not judge)."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import show_task

    try:
        v, location = _store_task(c, "show", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(show_task, location, v["run"], v["format"])


@readiness_task()
def diff(
    c: Context,
    old: str | None = None,
    new: str | None = None,
    format: str | None = None,
    store: str | None = None,
) -> None:
    """What changed between two runs per host x check; exit 1 when anything got worse."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import diff_task

    try:
        v, location = _store_task(c, "diff", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(diff_task, location, v["old"], v["new"], v["format"])


@readiness_task(name="baseline-accept")
def baseline_accept(
    c: Context,
    run: str | None = None,
    hosts: str | None = None,
    check: str | None = None,
    name: str | None = None,
    store: str | None = None,
) -> None:
    """Accept a stored run's results as the baseline that `validate --baseline` ratchets on."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import baseline_accept_task

    try:
        v, location = _store_task(c, "baseline-accept", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(
        baseline_accept_task, location, v["run"], hosts=v["hosts"], check=v["check"], name=v["name"]
    )


@readiness_task(name="baseline-export")
def baseline_export(
    c: Context, output: str | None = None, name: str | None = None, store: str | None = None
) -> None:
    """Write the baseline as a JSON file (readiness.baseline/1) to keep in git."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import baseline_export_task

    try:
        v, location = _store_task(c, "baseline-export", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(baseline_export_task, location, v["output"], v["name"])


@readiness_task(name="baseline-import")
def baseline_import(
    c: Context, file: str, name: str | None = None, store: str | None = None
) -> None:
    """Replace the stored baseline with one from a file (as exported by baseline-export)."""
    given = dict(locals())
    given.pop("c")
    from .store.cli import baseline_import_task

    try:
        v, location = _store_task(c, "baseline-import", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(baseline_import_task, location, v["file"], v["name"])


@readiness_task()
def drift(
    c: Context,
    hosts: str | None = None,
    run: str | None = None,
    since: str | None = None,
    format: str | None = None,
    store: str | None = None,
) -> None:
    """Configuration drift: the odd hosts out, or with --since what changed on each host.

    Compares settings keys and env variables (secrets as keyed fingerprints) across the hosts
    of a recorded run. Exit 1 when drift is found.
    """
    given = dict(locals())
    given.pop("c")
    from .store.cli import drift_task

    try:
        v, location = _store_task(c, "drift", given)
    except ReadinessError as exc:
        raise _usage(exc) from None
    _store_call(
        drift_task, location, run=v["run"], since=v["since"], hosts=v["hosts"], fmt=v["format"]
    )


def _fingerprints(collector: Any, report: FleetReport) -> Any:
    """The run's drift fingerprints, the probe's host facts included (None: no collector)."""
    if collector is None:
        return None
    collector.add_host_meta(report)
    return collector.hosts


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen: expected HOST:PORT (e.g. 127.0.0.1:9470), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _http_url(text: str | None, flag: str) -> None:
    """An alert target is an http(s) URL with a host, checked now (the first alert would
    otherwise fail hours later); the message never shows a password in it."""
    if not text:
        return
    from urllib.parse import urlsplit

    from .redact import redact_url_password

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact_url_password(text)
        raise UsageError(f"{flag}: expected an http:// or https:// URL with a host, got {shown!r}")


def _watch_setup(c: Context, given: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything ``watch`` checks before it starts: a mistake is exit 2 now, not at 3 a.m."""
    from .store.history import parse_age
    from .store.watch import AlertTracker

    try:
        v, settings = _typed(c, "watch", given)
        _runs_here("watch", settings)
        _known_checks(v["check"])
        location = _store_location(c, v["store"])
        try:
            every_s = parse_age(v["every"]).total_seconds()
        except ReadinessError as exc:
            raise UsageError(f"--every: {exc}") from None
        tracker = AlertTracker(after=v["alert_after"], alert_on=Status.parse(v["alert_on"]))
        address = _listen_address(v["listen"])
        _http_url(v["webhook"], "--webhook")
        _http_url(v["alertmanager_url"] or settings.get("alertmanager_url"), "--alertmanager-url")
        inv = _inventory(v["inventory"], given, settings)
        opts = _check_known_hosts(
            _run_options({**v, "quiet": True}, settings), (v["hosts"], inv, v["limit"])
        )
        # a bad pattern or profile is exit 2 now, not "run failed" at every run
        plan(
            v["hosts"],
            v["check"] or None,
            inventory=inv,
            limit=v["limit"],
            profile=v["profile"],
            refuse_implicit_local=_default_hosts_refusal(given),
        )
    except ReadinessError as exc:
        raise _usage(exc) from None
    except ValueError as exc:
        raise Exit(f"readiness: {exc}", code=2) from None
    return v, settings, location, every_s, tracker, address, opts, inv


@readiness_task(iterable=["check"])
def watch(
    c: Context,
    hosts: str | None = None,
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    every: str | None = None,
    jitter: Any = None,
    listen: str | None = None,
    alertmanager_url: str | None = None,
    webhook: str | None = None,
    alert_after: Any = None,
    alert_on: str | None = None,
    max_runs: Any = None,
    forks: Any = None,
    connect_timeout: Any = None,
    command_timeout: Any = None,
    host_deadline: Any = None,
    sudo: bool = False,
    accept_new_host_keys: bool = False,
    known_hosts: str | None = None,
    store: str | None = None,
) -> None:
    """Audit on a schedule; record each run; serve /metrics, /healthz, /; alert on degrading.

    Runs never overlap; SIGTERM or SIGINT lets the current run finish and be recorded, then
    exits 0; a second one cuts the run short (recorded as interrupted), exit 130/143.
    docs/history.md describes metrics, alerts and the systemd unit.
    """
    given = dict(locals())
    given.pop("c")
    import time

    from .store.watch import Watcher, WatchState, serve

    v, settings, location, every_s, tracker, address, opts, inv = _watch_setup(c, given)

    def once() -> tuple[FleetReport | None, str | None]:
        started, began = utcnow(), time.monotonic()
        # a store that cannot be opened is warned about now and not retried after the
        # audit: a dead database cost each run its connect timeout twice
        run_location, collector = _open_for_recording(location, required=False)
        try:
            with _observing(collector):
                run = run_suite(
                    "validate",
                    v["hosts"],
                    v["check"] or None,
                    inventory=inv,
                    limit=v["limit"],
                    profile=v["profile"],
                    options=opts,
                    refuse_implicit_local=_default_hosts_refusal(given),
                )
        except ReadinessError as exc:  # e.g. the inventory became unreadable: keep watching
            print(f"readiness watch: run failed: {one_line(exc)}", file=sys.stderr)
            return None, None
        took = time.monotonic() - began
        watch_info = {"interval_s": every_s, "overran": took > every_s}
        report = replace(run.report, extra={**run.report.extra, "watch": watch_info})
        with finishing():  # the run is over: a signal to cut it short waits for its record
            run_id = _record(
                c,
                run_location,
                report,
                "validate",
                v["hosts"],
                v["limit"],
                v["profile"],
                started,
                fingerprints=_fingerprints(collector, report),
            )
        if report.interrupted:  # a second signal cut the run short: stored, never alerted on
            raise interruption(report.interrupted_by)
        return report, run_id

    state = WatchState()
    try:
        server = serve(state, *address)
    except OSError as exc:
        raise Exit(f"readiness: cannot listen on {v['listen']}: {exc.strerror}", code=2) from None
    am = v["alertmanager_url"] or settings.get("alertmanager_url")
    watcher = Watcher(once, every_s, state, tracker, v["jitter"], am, v["webhook"], v["max_runs"])
    host, port = str(server.server_address[0]), int(server.server_address[1])
    host = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL is bracketed
    # a watch records a run every interval: say whether anything bounds the store's growth
    keep = _cfg(c).get("history_keep") if location.enabled else None
    kept = f", history_keep {keep}" if keep else ", every run kept: set history_keep to prune"
    print(
        f"readiness watch: serving http://{host}:{port} (every {v['every']}, "
        f"store {location.display}{kept if location.enabled else ''})",
        file=sys.stderr,
        flush=True,
    )
    # First SIGTERM/SIGINT: the current run finishes and is recorded (systemd's stop). A
    # second: the run in progress is cut short like Ctrl-C in validate (hosts hung up,
    # the partial run recorded as interrupted), exit 130/143.
    notice = "readiness watch: stopping after the current run (signal again to cut it short)\n"
    try:
        with graceful_stop(watcher.stop, notice):
            code = watcher.loop()
    except KeyboardInterrupt as exc:
        name = signal_name(exc)
        print(f"readiness watch: interrupted ({name}) after {state.runs} run(s)", file=sys.stderr)
        raise Exit(code=exit_code_for(name)) from None
    finally:
        server.shutdown()
        server.server_close()
    print(f"readiness watch: stopped after {state.runs} run(s)", file=sys.stderr)
    if code:
        raise Exit(code=code)


for _store_t in (
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
    ns.add_task(_store_t)


# --- reports: the Nagios/Icinga plugin task (docs/reports.md) ------------------------------
# Its own block: the plugin convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) holds only
# here. A usage error or an interruption is UNKNOWN on stdout, never readiness' 2/130/143,
# which Nagios would read as CRITICAL or as a plugin crash.


@readiness_task(iterable=["check"])
def nagios(
    c: Context,
    hosts: str | None = None,
    check: list[str] | None = None,
    inventory: str | None = None,
    profile: str | None = None,
    limit: str | None = None,
    forks: Any = None,
    connect_timeout: Any = None,
    command_timeout: Any = None,
    host_deadline: Any = None,
    sudo: bool = False,
    known_hosts: str | None = None,
    fail_on: str | None = None,
    suite: str | None = None,
) -> None:
    """Audit like `validate` and answer as a Nagios/Icinga plugin (check_by_ssh, NRPE).

    Prints one status line with perfdata, then one line per problem. Exit codes follow the
    plugin convention, unlike every other task: 0 OK, 1 WARNING (degraded, or only
    non-critical gates failed), 2 CRITICAL (not ready, error, unreachable, a critical gate),
    3 UNKNOWN (usage error, nothing selected, interrupted).
    """
    given = dict(locals())  # the flags: before any other local name exists
    given.pop("c")
    from .report.nagios import NagiosState, nagios_state, nagios_unknown, render_nagios

    try:
        values, settings = _typed(c, "nagios", given)
        _runs_here("nagios", settings)
        threshold = Status.parse(values["fail_on"])
        _known_checks(values["check"])
        run_options = {**values, "quiet": True}  # a plugin's stderr is noise to the server
        inventory = _inventory(values["inventory"], given, settings)
        options = _check_known_hosts(
            _run_options(run_options, settings), (values["hosts"], inventory, values["limit"])
        )
        with handle_signals():
            run = run_suite(
                values["suite"],
                values["hosts"],
                values["check"] or None,
                inventory=inventory,
                limit=values["limit"],
                profile=values["profile"],
                options=options,
                fail_on=threshold,
                refuse_implicit_local=_default_hosts_refusal(given),
            )
            report_mod.emit(render_nagios(run.report, fail_on=threshold))
    except KeyboardInterrupt as exc:
        report_mod.emit(nagios_unknown(f"run interrupted ({signal_name(exc)})"))
        raise Exit(code=NagiosState.UNKNOWN) from None
    except ReadinessError as exc:
        report_mod.emit(nagios_unknown(exc))
        raise Exit(code=NagiosState.UNKNOWN) from None
    state = nagios_state(run.report, threshold)
    if state:
        raise Exit(code=int(state))


ns.add_task(nagios)


# --- distributed engine: worker and workers (docs/distributed.md) -------------------------
# `--engine celery` on validate and the suites hands the plan to readiness/engine; these
# tasks run and show the Celery workers that audit the shards.

ENGINE_ENV = "READINESS_ENGINE"
BROKER_ENV = "READINESS_BROKER_URL"
_ENGINE_SETTINGS = ("shard_size", "shard_wait", "visibility_timeout")


def _engine_choice(given: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[str, str]:
    """(engine, broker): a flag wins, then the environment, then the configuration file."""
    from .options import OPTIONS

    engine = given.get("engine")
    if engine is None and os.environ.get(ENGINE_ENV):
        engine = OPTIONS["engine"].coerce(os.environ[ENGINE_ENV], f"${ENGINE_ENV}")
    broker = given.get("broker")
    if broker is None and os.environ.get(BROKER_ENV):
        broker = OPTIONS["broker"].coerce(os.environ[BROKER_ENV], f"${BROKER_ENV}")
    engine = OPTIONS["engine"].coerce(engine, "--engine") if engine is not None else None
    broker = OPTIONS["broker"].coerce(broker, "--broker") if broker is not None else None
    return (
        str(engine or settings.get("engine") or "local"),
        str(broker or settings.get("broker") or ""),
    )


# (--hosts, inventory, --limit) of a run: what it selects decides whether SSH is used
Selection = tuple[str, Any, "str | None"]


def _engine_options(
    options: RunOptions,
    given: Mapping[str, Any],
    settings: Mapping[str, Any],
    selection: Selection | None = None,
) -> RunOptions:
    engine, broker = _engine_choice(given, settings)
    extra = {k: settings[k] for k in _ENGINE_SETTINGS if settings.get(k) is not None}
    if engine == "local":  # celery workers verify against their own known_hosts
        _check_known_hosts(options, selection)
    return replace(options, engine=engine, broker=broker or None, **extra)


def _check_known_hosts(options: RunOptions, selection: Selection | None = None) -> RunOptions:
    from .options import check_known_hosts, check_ssh_config

    try:
        check_known_hosts(options.known_hosts, accept_new=options.accept_new_host_keys)
        check_ssh_config(options.ssh_config)
    except UsageError:
        # the selection is read only for an unusable file (an extra inventory load on
        # every run otherwise): a run of local hosts makes no SSH connection, never reads it
        if selection is not None and _only_local_hosts(*selection):
            return options
        raise
    return options


def _only_local_hosts(hosts: str, inventory: Any, limit: str | None) -> bool:
    """Whether the selection is only hosts audited on this machine (``--hosts local``).

    A selection that does not resolve counts as remote: the run reports it itself."""
    try:
        selected = load_selected_hosts(hosts, inventory=inventory, limit=limit)
    except ReadinessError:
        return False
    return bool(selected) and all(getattr(host, "local", False) for host in selected)


def _runs_here(task: str, settings: Mapping[str, Any]) -> None:
    """``watch`` and ``nagios`` audit from this process: celery chosen by $READINESS_ENGINE
    or the configuration file (set there for validate) is ignored with one warning line on
    stderr, so a shared configuration neither breaks them nor goes unnoticed."""
    env = os.environ.get(ENGINE_ENV, "").strip().lower()
    if env:
        source = f"${ENGINE_ENV}={env}" if env == "celery" else ""
    else:
        source = (
            "readiness.engine celery (configuration file)"
            if settings.get("engine") == "celery"
            else ""
        )
    if source:
        print(
            f"readiness: warning: {source} ignored: {task} runs on this machine only "
            "(docs/distributed.md)",
            file=sys.stderr,
        )


def _broker_or_exit(given: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    _, broker = _engine_choice(given, settings)
    if not broker:
        raise UsageError(
            f"no broker: pass --broker URL, set {BROKER_ENV}, or readiness.broker in the "
            "configuration file"
        )
    return broker


@readiness_task()
def worker(
    c: Context,
    broker: str | None = None,
    concurrency: Any = None,
    queues: str | None = None,
    visibility_timeout: Any = None,
) -> None:
    """Run a Celery worker that audits host shards for `--engine celery` runs.

    It audits with the same runner, deadlines and probe as a local run, over this machine's
    own ~/.ssh (known_hosts, keys, ssh_config) and its configuration file: keys never travel
    through the broker. Stops on SIGTERM/SIGINT (a running shard is redelivered). Exit codes:
    0 stopped by a signal; 1 stopped on an error (the broker lost for good) or by a second
    Ctrl-C (cold shutdown); 2 usage errors (no broker, broker unreachable at start).
    """
    given = dict(locals())
    given.pop("c")
    from .engine.app import make_app
    from .engine.controller import check_broker
    from .engine.shards import valid_queue
    from .engine.worker import hide_broker_flag, start_worker

    try:
        values, settings = _typed(c, "worker", given)
        broker_url = _broker_or_exit(given, settings)
        if given.get("broker"):
            hide_broker_flag(broker_url, BROKER_ENV)  # its password out of `ps`
        # read: no process the worker starts (a `Match exec` command, pg_dump, a local
        # host's probe and what it runs) inherits the password with its environment
        os.environ.pop(BROKER_ENV, None)
        names = [q.strip() for q in str(values["queues"]).split(",") if q.strip()]
        for name in names:
            valid_queue(name, "--queues")
        if not names:
            raise UsageError("--queues: expected one or more queue names")
        visibility = values["visibility_timeout"]
        check_broker(make_app(broker_url, visibility_timeout=visibility), broker_url)
        code = start_worker(
            broker_url,
            concurrency=values["concurrency"],
            queues=names,
            visibility_timeout=visibility,
            settings=settings,
        )
    except ReadinessError as exc:
        raise _usage(exc) from None
    if code:
        raise Exit(code=code)


@readiness_task()
def workers(
    c: Context,
    broker: str | None = None,
    timeout: Any = None,
    format: str | None = None,
) -> None:
    """Show the workers that are up: their queues and the shards they are auditing.

    Asks every worker through the broker (Celery's inspect API) and waits --timeout seconds
    for answers. Exit codes: 0 at least one worker answered; 1 none did; 2 usage errors.
    """
    given = dict(locals())
    given.pop("c")
    from .engine.view import inspect_workers, render_workers

    try:
        values, settings = _typed(c, "workers", given)
        broker_url = _broker_or_exit(given, settings)
        found = inspect_workers(broker_url, timeout=values["timeout"])
        report_mod.emit(render_workers(found, broker_url, values["format"], values["timeout"]))
    except ReadinessError as exc:
        raise _usage(exc) from None
    if not found:
        raise Exit(code=1)


ns.add_task(worker)
ns.add_task(workers)
