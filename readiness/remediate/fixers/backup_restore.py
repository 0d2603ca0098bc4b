"""``backup_restore``: create the backup directory, install the backup schedule from the
profile's ``backup_command``, and write a backup/restore runbook."""

from __future__ import annotations

import posixpath

from ...profile import Profile
from ..plan import AppendLines, Change, CreateFile, CrontabEntry, EnsureDir, Fix
from . import FixInput, fixer
from ._templates import backup_runbook, facts_of

SCHEDULE = "0 2 * * *"
RUNBOOK = "runbooks/backup-restore.md"


def _cron_file(profile: Profile) -> str | None:
    files = profile.get("backup_cron_files") or ()
    return profile.resolve(str(files[0])) if files else None


def _reads(profile: Profile) -> list[str]:
    path = _cron_file(profile)
    return [path] if path else []


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
        change = _schedule(inp)
        if change is None:
            notes.append(
                "no backup_command in the profile: set it so the schedule can be installed"
            )
        else:
            changes.append(change)
            addresses += no_schedule
    no_docs = inp.matching("describing both backup and restore")
    docs_dir = profile.path_of("docs_dir")
    if no_docs and docs_dir:
        k = facts_of(profile, inp.host)
        changes.append(CreateFile(posixpath.join(docs_dir, RUNBOOK), backup_runbook(k)))
        addresses += no_docs
    if not changes:
        return None
    return Fix("backup_restore", "set up backups", tuple(changes), tuple(addresses), tuple(notes))


def _schedule(inp: FixInput) -> Change | None:
    command = inp.profile.get("backup_command")
    if not command:
        return None
    line = f"{SCHEDULE} {command}"
    cron_file = _cron_file(inp.profile)
    if cron_file is None:
        user = inp.profile.get("backup_cron_user")
        return CrontabEntry(line, str(user) if user else None)
    state = inp.file(cron_file)
    return AppendLines(
        cron_file, ("# backups (added by readiness remediate)", line), old_text=state.text
    )
