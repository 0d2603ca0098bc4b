"""``backup_restore``: create the backup directory, install the backup schedule from the
profile's ``backup_command``, and write a backup/restore runbook."""

from __future__ import annotations

import json
import posixpath
import re

from ...profile import Profile
from ..plan import AppendLines, Change, CreateFile, CrontabEntry, EnsureDir, Fix
from . import FixInput, creation_refusal, fixer, link_refusal
from ._templates import backup_runbook, facts_of

SCHEDULE = "0 2 * * *"
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
RUNBOOK = "runbooks/backup-restore.md"


def _cron_file(profile: Profile) -> str | None:
    files = profile.get("backup_cron_files") or ()
    return profile.resolve(str(files[0])) if files else None


def _runbook(profile: Profile) -> str | None:
    docs_dir = profile.path_of("docs_dir")
    return posixpath.join(docs_dir, RUNBOOK) if docs_dir else None


def cron_judgement_key(profile: Profile) -> str | None:
    """The ``read`` path that asks the applier whether it would refuse the schedule's line
    as root running code another user can change (applier.CRON_JUDGEMENT), for the cron_runs
    the change will carry; None when it carries none."""
    command = profile.get("backup_command")
    if not command:
        return None
    user = profile.get("backup_cron_user")
    cron_file = _cron_file(profile)
    if cron_file is not None and not (cron_file_format(cron_file) == "system" and user):
        return None
    runs = {"user": str(user) if user else None, "command": str(command)}
    return "cron-runs:" + json.dumps(runs, sort_keys=True)


def _reads(profile: Profile) -> list[str]:
    paths = [_cron_file(profile), _runbook(profile), cron_judgement_key(profile)]
    return [p for p in paths if p]


@fixer(
    "backup_restore",
    summary="create the backup directory, schedule backup_command, write a backup/restore runbook",
    reads=_reads,
)
def fix(inp: FixInput) -> Fix | None:
    profile = inp.profile
    changes: list[Change] = []
    addresses: list[str] = []
    notes: list[str] = []
    backup_dir = profile.path_of("backup_dir")
    missing_dir = inp.matching("backup directory", "does not exist")
    if backup_dir and missing_dir:
        changes.append(EnsureDir(backup_dir, 0o750, owner_of=profile.app_root))
        addresses += missing_dir
    no_schedule = inp.matching("no backup schedule found")
    if no_schedule:
        change, refusal = _schedule(inp)
        key = cron_judgement_key(profile)
        judged = inp.file(key).error if key and change is not None else ""
        if judged.startswith("refused: "):  # the applier would refuse it: the dry run says so
            change, refusal = None, judged
        if refusal:
            notes.append(refusal)
        elif change is None:
            notes.append(
                "no backup_command in the profile: set it so the schedule can be installed"
            )
        else:
            changes.append(change)
            addresses += no_schedule
    no_docs = inp.matching("describing both backup and restore")
    runbook = _runbook(profile)
    refusal = creation_refusal(inp.file(runbook)) if runbook else None
    if no_docs and runbook and refusal:
        notes.append(refusal)
    elif no_docs and runbook:
        k = facts_of(profile, inp.host)
        changes.append(CreateFile(runbook, backup_runbook(k)))
        addresses += no_docs
    if not changes and not notes:
        return None
    return Fix("backup_restore", "set up backups", tuple(changes), tuple(addresses), tuple(notes))


def cron_file_format(path: str) -> str:
    """``system`` (a user field before the command: /etc/crontab, /etc/cron.d/*),
    ``spool`` (a user's crontab file, only ever edited through ``crontab``) or ``user``."""
    norm = posixpath.normpath(path)
    if norm == "/etc/crontab" or posixpath.dirname(norm) == "/etc/cron.d":
        return "system"
    if norm.startswith(("/var/spool/cron/", "/var/spool/cron/crontabs/")):
        return "spool"
    return "user"


def _schedule(inp: FixInput) -> tuple[Change | None, str | None]:
    """The change installing the schedule, or why it is refused."""
    command = inp.profile.get("backup_command")
    if not command:
        return None, None
    if "\n" in str(command) or "\r" in str(command):
        # in a crontab too, not only in a cron file: each further line is an entry of its own
        return None, "refused: backup_command spans several lines; a cron entry is one line"
    user = inp.profile.get("backup_cron_user")
    cron_file = _cron_file(inp.profile)
    # cron ends a command at an unescaped '%' (the rest becomes its input, crontab(5)):
    # `date +%F` in the command would leave a schedule that never makes a backup
    entry = str(command).replace("%", "\\%")
    if cron_file is None:
        who = str(user) if user else None
        return CrontabEntry(f"{SCHEDULE} {entry}", who, command=str(command)), None
    line, refusal = _cron_file_line(cron_file, entry, user)
    if line is None:
        return None, refusal
    state = inp.file(cron_file)
    link = link_refusal(state, "append")
    if link:
        return None, link
    runs = None
    if cron_file_format(cron_file) == "system" and user:
        runs = (str(user), str(command))
    change = AppendLines(
        cron_file,
        ("# backups (added by readiness remediate)", line),
        old_text=state.text,
        cron_runs=runs,
    )
    return change, None


def _cron_file_line(cron_file: str, command: str, user: object) -> tuple[str | None, str]:
    """The line in the format of ``cron_file`` (a user field in system cron files), or why not."""
    kind = cron_file_format(cron_file)
    if kind == "spool":
        return None, (
            f"refused: {cron_file} is a crontab spool file, edited only through crontab: "
            "leave backup_cron_files empty (and set backup_cron_user) to use crontab"
        )
    if kind == "user":
        return f"{SCHEDULE} {command}", ""
    if not user:
        return None, (
            f"refused: {cron_file} is a system cron file, whose lines need a user field: "
            "set backup_cron_user to the user the backup runs as"
        )
    if not _USER_NAME.match(str(user)):
        return None, f"refused: backup_cron_user {user!r} is not a user name"
    return f"{SCHEDULE} {user} {command}", ""
