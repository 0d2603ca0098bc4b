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
from .model import FleetReport, Status
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
        written = report_mod.save(text, path)
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
    **opts: Any,
) -> None:
    fmt = "json" if json else format
    try:
        if fmt not in report_mod.FORMATS:
            raise ReadinessError(f"unknown format {fmt!r} (valid: {', '.join(report_mod.FORMATS)})")
        threshold = Status.parse(fail_on)
        inv = _inventory(c, inventory)
        # Ctrl-C/SIGTERM during the run: the fleet loop returns the partial report, which is
        # rendered and saved; a second one while saving leaves the previous file intact.
        with handle_signals():
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
            _emit(run.report, fmt, save, threshold, group_by)
    except KeyboardInterrupt as exc:
        raise Exit("readiness: interrupted", code=exit_code_for(signal_name(exc))) from None
    except ReadinessError as exc:
        raise Exit(f"readiness: {exc}", code=exc.exit_code) from None
    except ValueError as exc:
        raise Exit(f"readiness: {exc}", code=2) from None
    code = run.exit_code
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
            )
            print(text)
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
