"""Remediate a fleet: audit, plan (dry run) or apply fix by fix, and report.

Per host, on one connection: the audit of the fixable checks, one ``read`` of the
files the fixers need, then (with ``apply``) one transaction per fix. A host that
cannot be reached is reported, never raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..api import plan
from ..errors import ReadinessError, TransportError, UsageError
from ..interrupt import exit_code_for
from ..inventory.secrets import hosts_secrets
from ..model import CheckResult, HostReport, Status
from ..profile import Profile
from ..progress import remediation_wording
from ..redact import Redactor
from ..registry import CheckSpec, resolve_names
from ..runner import (
    NOT_AUDITED,
    Connector,
    HostLike,
    LoopResult,
    RunOptions,
    audit_host,
    run_hosts,
    stop_reason,
    stop_requested,
    transaction,
)
from ..transport import Transport
from .apply import FixOutcome, apply_fix, read_files
from .audit_log import DEFAULT_AUDIT_LOG, AuditLog, AuditSink
from .fixers import FixerSpec, FixInput, all_fixers
from .plan import FileState, Fix, HostPlan, ancestors, parents_to_create, plan_hash, project
from .remaining import remaining

# How every refusal note of a fixer begins (fixers.link_refusal, the settings and cron ones).
REFUSED = "refused:"

__all__ = [
    "PLAN_CHANGED",
    "ConfirmationRefused",
    "Confirmed",
    "HostRemediation",
    "RemediationReport",
    "remediate",
    "remediate_hosts",
    "remediation_specs",
]

PLAN_CHANGED = "the plan changed since it was confirmed"

FAILING = (Status.DEGRADED, Status.NOT_READY, Status.ERROR)


class ConfirmationRefused(ReadinessError):
    """Applying to several hosts was not confirmed (exit 2)."""


@dataclass(frozen=True)
class HostRemediation:
    host: str
    plan: HostPlan
    outcomes: tuple[FixOutcome, ...] = ()
    unreachable: str = ""
    before: Mapping[str, Status] = field(default_factory=dict)
    # Why the host was not worked on: UNREACHABLE (connect, deadline) or INTERRUPTED.
    status: Status | None = None
    applied: bool = False  # --apply ran on it to the end: its refusals leave it unfixed

    @property
    def interrupted(self) -> bool:
        return self.status is Status.INTERRUPTED

    def progress_status(self) -> Status:
        if self.status is not None:
            return self.status
        return (
            Status.READY if self.ok and not (self.applied and self.refusals) else Status.NOT_READY
        )

    @property
    def ok(self) -> bool:
        return (
            not self.unreachable
            and not self.plan.error
            and all(o.outcome in ("planned", "applied", "noop") for o in self.outcomes)
        )

    @property
    def refusals(self) -> tuple[str, ...]:
        """What a fixer declined to change as unsafe or impossible as asked ("refused: …":
        a settings file that is not UTF-8 or is a link, a crontab spool file). A fix left
        for the operator's input (no backup_command or migration_command, no
        --run-migrations) is listed as remaining, but is no refusal."""
        return tuple(
            f"{check}: {note}"
            for check, notes in self.plan.refused.items()
            for note in notes
            if note.startswith(REFUSED)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "unreachable": None if self.interrupted else self.unreachable or None,
            "interrupted": self.unreachable if self.interrupted else None,
            "error": self.plan.error or None,
            "status_before": {k: v.value for k, v in self.before.items()},
            "fixes": [o.to_dict() for o in self.outcomes],
            "unfixable": {k: list(v) for k, v in self.plan.unfixable.items()},
            "refused": {k: list(v) for k, v in self.plan.refused.items()},
            "remaining": [r.to_dict() for r in remaining(self)],
            "status": self.status.value if self.status else None,
            "applied": self.applied,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostRemediation:
        """The host :meth:`to_dict` wrote (a Celery worker's report): its fixes keep their
        summaries and masked diffs, never the content they write."""
        host = str(data["host"])
        outcomes = tuple(FixOutcome.from_dict(o) for o in data.get("fixes") or ())

        def findings(key: str) -> dict[str, tuple[str, ...]]:
            return {str(k): tuple(str(x) for x in v) for k, v in (data.get(key) or {}).items()}

        plan = HostPlan(
            host,
            tuple(o.fix for o in outcomes),
            findings("unfixable"),
            error=str(data.get("error") or ""),
            refused=findings("refused"),
        )
        status = data.get("status")
        return cls(
            host,
            plan,
            outcomes,
            str(data.get("interrupted") or data.get("unreachable") or ""),
            {str(k): Status(v) for k, v in (data.get("status_before") or {}).items()},
            Status(status) if status else None,
            bool(data.get("applied")),
        )


@dataclass(frozen=True)
class RemediationReport:
    hosts: tuple[HostRemediation, ...]
    applied: bool
    checks: tuple[str, ...]
    interrupted_by: str = ""  # "SIGINT"/"SIGTERM": finished hosts are kept, the rest INTERRUPTED

    @property
    def exit_code(self) -> int:
        """0 every fix worked (or the dry run planned); 1 a fix failed/reverted, a host was
        unreachable, or (--apply) a fixer refused a fix it was asked for; 130/143 the run
        was interrupted (SIGINT/SIGTERM)."""
        if self.interrupted_by:
            return exit_code_for(self.interrupted_by)
        # A refused fix leaves its host unfixed as a failed one does: --apply must not say
        # success (exit 0) for it. The dry run shows the refusals and exits by the plan.
        refused = self.applied and any(h.refusals for h in self.hosts)
        return 0 if all(h.ok for h in self.hosts) and not refused else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "readiness.remediation/1",
            "mode": "apply" if self.applied else "dry-run",
            "checks": list(self.checks),
            "exit_code": self.exit_code,
            "interrupted_by": self.interrupted_by or None,
            "hosts": [h.to_dict() for h in self.hosts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemediationReport:
        return cls(
            tuple(HostRemediation.from_dict(h) for h in data.get("hosts") or ()),
            data.get("mode") == "apply",
            tuple(str(c) for c in data.get("checks") or ()),
            str(data.get("interrupted_by") or ""),
        )


@dataclass(frozen=True)
class Confirmed:
    """The plan confirmed for one host: its hash (:func:`.plan.plan_hash`) and its fixes'
    checks (to say what changed when the host's fresh plan differs)."""

    hash: str
    checks: tuple[str, ...] = ()


def _plan_changed(confirmed: Confirmed, fresh: HostPlan) -> str:
    was = ", ".join(confirmed.checks) or "no fix"
    now = ", ".join(f.check for f in fresh.fixes) or "no fix"
    what = (
        f"confirmed {was}, planned now {now}"
        if was != now
        else f"the fixes of {now} would now change the host differently"
    )
    return f"{PLAN_CHANGED}: {what}; nothing was changed on this host (review a new dry run)"


def unfixable_specs(checks: Iterable[str] | str | None) -> list[CheckSpec]:
    """Without a selection: the ``validate`` checks that have no fixer. They are audited
    too, so the report can list what remains on a host and why ("no fixer")."""
    if checks:
        return []
    fixers = all_fixers()
    return [s for s in resolve_names(None, suite="validate") if s.name not in fixers]


def fixable_specs(checks: Iterable[str] | str | None) -> list[CheckSpec]:
    """The selected checks that have a fixer (no selection: every check that has one)."""
    fixers = all_fixers()
    if not checks:
        return [s for s in resolve_names(None, suite=None) if s.name in fixers]
    chosen = resolve_names(checks, suite=None)
    without = [s.name for s in chosen if s.name not in fixers]
    if without:
        raise UsageError(
            f"no fixer for {', '.join(without)} (fixers exist for: {', '.join(sorted(fixers))})"
        )
    return chosen


class _Progress:
    """The fixes each host has made so far and the one it is making: when the fleet loop
    gives a host up (its deadline) in the middle of a fix, its result says what was done
    there and which fix was cut short, never "nothing was audited or changed"."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made: dict[str, list[FixOutcome]] = {}
        # the fix being made, its status before, and its backups once it is on the host
        self.making: dict[str, tuple[Fix, Status, tuple[str, ...] | None]] = {}
        self.given_up: set[str] = set()

    def begin(self, host: str, fix: Fix, before: Status) -> None:
        with self.lock:
            self.made.setdefault(host, [])
            self.making[host] = (fix, before, None)

    def applied(self, host: str, backups: tuple[str, ...]) -> None:
        with self.lock:
            if host in self.making:
                fix, before, _ = self.making[host]
                self.making[host] = (fix, before, backups)

    def end(self, host: str, outcome: FixOutcome) -> bool:
        """False when the loop gave the host up meanwhile (and logged the fix itself)."""
        with self.lock:
            self.making.pop(host, None)
            self.made.setdefault(host, []).append(outcome)
            return host not in self.given_up

    def give_up(self, host: str, reason: str) -> tuple[list[FixOutcome], FixOutcome | None]:
        """(the fixes made, the one cut short) of a host the loop gives up on now."""
        with self.lock:
            self.given_up.add(host)
            made = list(self.made.get(host, ()))
            making = self.making.get(host)
        if making is None:
            return made, None
        fix, before, backups = making
        if backups is None:
            why = (
                f"{reason} while the fix was being applied; the host was hung up. The applier "
                "undoes a fix it is stopped in, but that could not be confirmed: re-audit the "
                "host"
            )
        else:  # the applier had finished: only the controller's undo could take it back
            kept = f" (backups: {', '.join(backups)})" if backups else ""
            why = (
                f"{reason} after the fix was applied, before it was verified; the host was "
                f"hung up, so the change may stay on the host unverified{kept}: re-audit the "
                "host"
            )
        return made, FixOutcome(fix, "failed", why, before, backups=backups or ())


@dataclass
class _HostRun:
    host: HostLike
    specs: Sequence[CheckSpec]
    profile: Profile
    options: RunOptions
    apply: bool
    log: AuditSink | None
    run_migrations: bool = False
    others: Sequence[CheckSpec] = ()  # audited only to report what remains (no fixer)
    # Apply only if the fresh plan is this confirmed one (a distributed run's phase 2).
    confirmed: Confirmed | None = None
    salt: str = ""
    # One per host run: the secrets the audit registers also mask the plan's diffs.
    redactor: Redactor = field(default_factory=Redactor)
    # Asked before each fix: a reason not to change the host (a worker that cannot report
    # what it changes to its controller), or "" to go on.
    may_apply: Callable[[], str] | None = None
    progress: _Progress | None = None

    def audit(self, transport: Transport, specs: Sequence[CheckSpec]) -> HostReport:
        return audit_host(
            self.host, specs, self.profile, transport, options=self.options, redactor=self.redactor
        )

    def plan(self, transport: Transport, report: HostReport) -> HostPlan:
        fixers = all_fixers()
        failing = [r for r in report.results if r.status in FAILING and r.check_name in fixers]
        paths: list[str] = []
        for r in failing:
            spec = fixers[r.check_name]
            wanted = [
                *(spec.reads(self.profile) if spec.reads else []),
                *(spec.named(self.profile, r) if spec.named else []),
            ]
            paths += [p for p in wanted if p not in paths]
        files = read_files(
            transport, paths, timeout_s=self.options.command_timeout, sudo=self.options.sudo
        )
        as_read = dict(files)  # before the fixes below project their changes into it
        fixes: list[Fix] = []
        unfixable: dict[str, tuple[str, ...]] = {}
        notes: dict[str, tuple[str, ...]] = {}
        covered: set[str] = set()  # findings an earlier fix of this plan already clears
        for r in failing:
            fix = self._fix(fixers[r.check_name], r, files)
            if fix is not None and fix.changes:
                fix = replace(fix, mask=self.redactor.text)
                fixes.append(fix)
                for change in fix.changes:
                    project(files, change)
                if fix.notes and not fix.restart_needed:
                    # What this fix declined beside what it changes (the schedule of a fix
                    # that creates the backup directory): a refusal, never "no fixer". A
                    # restart_needed fix's notes say what comes after it, not a refusal.
                    notes[r.check_name] = fix.notes
            elif fix is not None:
                notes[r.check_name] = fix.notes
                covered.update(fix.addresses)
        fixes = self._with_new_parents(transport, fixes, as_read)
        # A finding another check's fix clears (the same setting, the same file) is not "left".
        addressed = covered | {p for f in fixes for p in f.addresses}
        for r in failing:
            left = tuple(p for p in _findings(r) if p not in addressed)
            if left:
                unfixable[r.check_name] = left
        for r in report.results:  # checks without a fixer: everything they report remains
            if r.status in FAILING and r.check_name not in fixers:
                unfixable[r.check_name] = tuple(_findings(r))
        refused = {k: v for k, v in notes.items() if v}
        return HostPlan(self.host.name, tuple(fixes), unfixable, refused=refused)

    def _with_new_parents(
        self, transport: Transport, fixes: list[Fix], files: Mapping[str, FileState]
    ) -> list[Fix]:
        """Name the missing directories the applier will create above new paths (one more
        read, only when a fix creates something), so the dry run shows every mkdir."""
        # Whatever exists on the host (as read) has every directory above it.
        known = {d for p, st in files.items() if st.exists for d in ancestors(p)}
        known |= {p for p, st in files.items() if st.exists and st.kind == "dir"}
        wanted: set[str] = set()
        for f in fixes:
            for c in f.changes:
                path = getattr(c, "path", None)
                if isinstance(path, str):
                    wanted.update(d for d in ancestors(path) if d not in known)
        if not wanted:
            return fixes
        seen = read_files(
            transport,
            sorted(wanted),
            timeout_s=self.options.command_timeout,
            sudo=self.options.sudo,
        )
        # A path the applier refused to read (a planted link above it) counts as existing:
        # the applier refuses that fix anyway, and no mkdir is promised for it.
        return parents_to_create(fixes, lambda d: d not in seen or seen[d].exists)

    def _fix(self, spec: FixerSpec, result: CheckResult, files: dict[str, FileState]) -> Fix | None:
        inp = FixInput(self.host.name, result, self.profile, dict(files), self.run_migrations)
        return spec.fn(inp)

    def run(self, transport: Transport) -> HostRemediation:
        report = self.audit(transport, [*self.specs, *self.others])
        before = {r.check_name: r.status for r in report.results}
        if report.reason:
            return HostRemediation(
                self.host.name, HostPlan(self.host.name), (), report.reason, before
            )
        plan = self.plan(transport, report)
        if not self.apply:
            outcomes = tuple(FixOutcome(f, "planned", "", before.get(f.check)) for f in plan.fixes)
            return HostRemediation(self.host.name, plan, outcomes, "", before)
        if self.confirmed is not None and plan_hash(plan, self.salt) != self.confirmed.hash:
            why = _plan_changed(self.confirmed, plan)
            if self.log is not None:
                self.log.record(self.host.name, "-", [], "refused", why)
            return HostRemediation(
                self.host.name, HostPlan(self.host.name, error=why), (), "", before
            )
        results = {r.check_name: r for r in report.results}
        outcomes_list: list[FixOutcome] = []
        fixes = list(plan.fixes)
        while len(outcomes_list) < len(fixes):
            fix = fixes[len(outcomes_list)]
            why = self.may_apply() if self.may_apply is not None else ""
            if why:
                outcome: FixOutcome | None = FixOutcome(
                    fix, "refused", why, results[fix.check].status
                )
                if self.log is not None:
                    changes = fix.summaries()
                    self.log.record(self.host.name, fix.check, changes, "refused", why)
            else:
                outcome = self._apply_one(transport, fix, results[fix.check])
            if outcome is None:  # the run is stopping: no further fix is started
                break
            outcomes_list.append(outcome)
            if outcome.outcome in ("failed", "reverted") and not stop_requested():
                rest = fixes[len(outcomes_list) :]
                fixes[len(outcomes_list) :] = self._replan(transport, report, outcomes_list, rest)
        stopped = stop_requested()
        left = len(fixes) - len(outcomes_list)
        if stopped and left:  # Ctrl-C/SIGTERM: the fixes made so far were finished or undone
            why = f"{NOT_AUDITED} ({stopped}): {left} of {len(fixes)} fix(es) not started"
            return HostRemediation(
                self.host.name,
                plan,
                tuple(outcomes_list),
                why,
                before,
                status=Status.INTERRUPTED,
            )
        if not plan.fixes and self.log is not None:
            left = sum(len(v) for v in plan.unfixable.values()) + sum(
                len(v) for v in plan.refused.values()
            )
            why = f"nothing a fixer could change; {left} finding(s) remain" if left else ""
            self.log.record(self.host.name, "-", [], "noop", why or "nothing to fix")
        return HostRemediation(self.host.name, plan, tuple(outcomes_list), "", before, applied=True)

    def _replan(
        self,
        transport: Transport,
        report: HostReport,
        done: Sequence[FixOutcome],
        planned: list[Fix],
    ) -> list[Fix]:
        """The fixes still to make, planned again on the host as it is now: a later fix may
        have been planned on what a failed or reverted one would have written (two edits of
        one settings file, or keys the failed one was to add), and would only fail
        "changed since the plan was made" - on every re-run - or leave them unmade.
        ``planned``: the rest as first planned, kept when the host cannot be read."""
        made = {o.fix.check for o in done}
        left = tuple(r for r in report.results if r.check_name not in made)
        try:
            return list(self.plan(transport, replace(report, results=left)).fixes)
        except TransportError:
            return planned

    def _apply_one(self, transport: Transport, fix: Fix, before: CheckResult) -> FixOutcome | None:
        """One fix as a transaction the fleet loop does not cut in the middle: a Ctrl-C
        during it waits (bounded) for the fix to be verified, or rolled back unverified,
        and logged. None: the run was stopping already, the fix was not started."""
        with transaction() as may_start:
            if not may_start:
                return None
            if self.progress is not None:
                self.progress.begin(self.host.name, fix, before.status)
            return self._transaction(transport, fix, before)

    def _applied(self, backups: tuple[str, ...]) -> None:
        if self.progress is not None:
            self.progress.applied(self.host.name, backups)

    def _transaction(self, transport: Transport, fix: Fix, before: CheckResult) -> FixOutcome:
        spec = [s for s in self.specs if s.name == fix.check]

        def recheck() -> CheckResult:
            result = self.audit(transport, spec).result(fix.check)
            if result is None:  # pragma: no cover - audit_host returns one result per spec
                raise TransportError("re-audit returned no result")
            return result

        try:
            outcome = apply_fix(
                transport,
                fix,
                before,
                recheck,
                timeout_s=self.options.command_timeout,
                sudo=self.options.sudo,
                keep_backups=keep_backups(self.profile),
                stopping=stop_reason,
                on_applied=self._applied,
            )
        except TransportError as exc:
            stopped = stop_reason()
            why = (
                f"{stopped} while the fix was being applied and the host was hung up "
                f"({exc}): the applier undoes a fix it is stopped in, but that could not "
                "be confirmed; re-audit it"
                if stopped
                else f"{exc}: the applier gave no answer; it undoes a fix it is stopped in, "
                "but that could not be confirmed: re-audit the host"
            )
            outcome = FixOutcome(fix, "failed", why, before.status)
        # What the host wrote (a command's output, the applier's error) may carry the
        # host's secrets: masked with this host's redactor before it reaches the audit
        # log, the report or a worker's result backend.
        mask = self.redactor.text
        outcome = replace(
            outcome,
            message=mask(outcome.message),
            output=mask(outcome.output),
            details=tuple(mask(d) for d in outcome.details),
            remaining=tuple(mask(r) for r in outcome.remaining),
        )
        mine = self.progress is None or self.progress.end(self.host.name, outcome)
        if self.log is not None and mine:
            self.log.record(
                self.host.name,
                fix.check,
                fix.summaries(),
                outcome.outcome,
                outcome.message,
            )
        return outcome


def keep_backups(profile: Profile) -> int:
    """``remediate_keep_backups``: backups of each rewritten file kept on the host (>= 1)."""
    value = profile.get("remediate_keep_backups", 5)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"remediate_keep_backups must be a whole number >= 1, got {value!r}")
    return value


def _findings(result: CheckResult) -> list[str]:
    d = result.details
    found = [str(p) for p in (*(d.get("problems") or ()), *(d.get("warnings") or ()))]
    return found or ([result.message] if result.status in FAILING else [])


Confirm = Callable[[list[str]], bool]


def remediate(
    hosts: str | Sequence[HostLike] = "local",
    checks: Iterable[str] | str | None = None,
    *,
    inventory: str | Sequence[str] | None = None,
    limit: str | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    apply: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
    run_migrations: bool = False,
    options: RunOptions | None = None,
    connector: Connector | None = None,
    audit_log: str | Path | None = DEFAULT_AUDIT_LOG,
    log_stream: Any = None,
    refuse_implicit_local: str | None = None,
) -> RemediationReport:
    """Audit the selected hosts, plan every available fix, and apply them when ``apply``.

    Applying to more than one host needs ``yes`` or a ``confirm`` callback that
    agrees; without either it is refused (:class:`ConfirmationRefused`), never prompted.
    """
    specs, others = remediation_specs(checks)
    planned = plan(
        hosts,
        inventory=inventory,
        limit=limit,
        profile=profile,
        profile_overrides=profile_overrides,
        specs=[*specs, *others],
        refuse_implicit_local=refuse_implicit_local,
    )
    selected, profiles = list(planned.hosts), planned.profiles
    names = [h.name for h in selected]
    options = options or RunOptions()
    asks = apply and len(selected) > 1 and not yes
    if asks and confirm is None:
        raise ConfirmationRefused(
            f"refusing to apply fixes to {len(selected)} hosts without confirmation: "
            "pass --yes (no terminal to ask on)"
        )
    for host_prof in profiles.values():
        keep_backups(host_prof)  # a bad value is a usage error before any host is touched
    log = AuditLog(audit_log, log_stream) if apply and audit_log else None
    if log is not None:
        log.check_writable()  # a fix is never made that its log cannot record
    if options.engine == "celery":
        from ..engine.remediation import remediate_distributed

        return remediate_distributed(
            selected,
            specs,
            others,
            profiles,
            options,
            apply=apply,
            confirm=confirm if asks else None,
            run_migrations=run_migrations,
            audit_log=log,
        )
    if asks and confirm is not None and not confirm(names):
        raise ConfirmationRefused(NOT_CONFIRMED)
    loop = remediate_hosts(
        selected,
        specs,
        others,
        profiles,
        options,
        apply=apply,
        log=log,
        run_migrations=run_migrations,
        connector=connector,
    )
    return RemediationReport(
        loop.results, apply, tuple(s.name for s in specs), interrupted_by=loop.interrupted_by
    )


NOT_CONFIRMED = "not confirmed: nothing was changed"


def remediation_specs(
    checks: Iterable[str] | str | None,
) -> tuple[list[CheckSpec], list[CheckSpec]]:
    """(the checks to fix, the checks audited only to report what remains)."""
    return fixable_specs(checks), unfixable_specs(checks)


def remediate_hosts(
    selected: Sequence[HostLike],
    specs: Sequence[CheckSpec],
    others: Sequence[CheckSpec],
    profiles: Mapping[str, Profile],
    options: RunOptions,
    *,
    apply: bool,
    log: AuditSink | None,
    run_migrations: bool = False,
    connector: Connector | None = None,
    on_host: Callable[[HostRemediation], None] | None = None,
    cancel: threading.Event | None = None,
    confirmed: Mapping[str, Confirmed] | None = None,
    salt: str = "",
    may_apply: Callable[[], str] | None = None,
) -> LoopResult[HostRemediation]:
    """Remediate ``selected`` on the one fleet loop (a local run, or a Celery worker's shard).

    ``on_host`` sees each host's result as it is made (not the interrupted ones);
    ``cancel`` stops the run like Ctrl-C; with ``confirmed`` a host is changed only when
    its fresh plan is the confirmed one (hash salted with ``salt``), and a host without
    an entry is refused. ``may_apply`` is asked before each fix: a non-empty answer
    records the fix as refused with that reason instead of applying it.
    """
    # An inventory secret can reach a reason (a ProxyCommand's sshpass -p): masked in every
    # host's texts, as the secrets each host's audit registers.
    inventory_secrets = hosts_secrets(selected)
    masked = Redactor(inventory_secrets).text
    progress = _Progress()

    def one(host: HostLike, transport: Transport) -> HostRemediation:
        expected = None
        if confirmed is not None:
            expected = confirmed.get(host.name) or Confirmed("-")
        run = _HostRun(
            host,
            specs,
            profiles[host.name],
            options,
            apply,
            log,
            run_migrations,
            others,
            confirmed=expected,
            salt=salt,
            may_apply=may_apply,
            redactor=Redactor(inventory_secrets),
            progress=progress,
        )
        try:
            result = run.run(transport)
        except TransportError as exc:
            result = HostRemediation(host.name, HostPlan(host.name, error=masked(str(exc))), (), "")
        if on_host is not None:
            on_host(result)
        return result

    def failed(host: HostLike, status: Status, reason: str, began: float) -> HostRemediation:
        made, cut = progress.give_up(host.name, reason)
        if cut is not None:
            cut = replace(cut, message=masked(cut.message))
            if log is not None:  # the worker, hung up, no longer logs it: the line is here
                log.record(host.name, cut.fix.check, cut.fix.summaries(), "failed", cut.message)
        outcomes = (*made, *([cut] if cut is not None else []))
        plan = HostPlan(host.name, tuple(o.fix for o in outcomes))
        result = HostRemediation(
            host.name, plan, outcomes, masked(reason), status=status, applied=bool(outcomes)
        )
        if on_host is not None and status is not Status.INTERRUPTED:
            on_host(result)
        return result

    # The same fleet loop as validate: forks, --host-deadline, Ctrl-C (finished hosts are
    # kept, the rest INTERRUPTED) and progress behave alike.
    return run_hosts(
        selected,
        one,
        failed,
        status_of=HostRemediation.progress_status,
        options=options,
        connector=connector,
        cancel=cancel,
        wording=remediation_wording(apply),
    )
