"""``backup_restore``: backups can be written, are scheduled, are recent, and restoring is documented.

Everything is judged on facts gathered on the host (write test, directory
listing, cron lines, systemd timers, docs files), and backup ages on the
host's clock, so the check works unchanged over SSH.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import write_denied_to_another

DEFAULTS: dict[str, Any] = {
    # fnmatch patterns of backup files inside backup_dir (searched recursively): SQL and
    # pg_dump custom-format dumps (.backup is pgAdmin's name for them) and archives, plain
    # or compressed as backup jobs compress them (gzip, bzip2, xz, zstd).
    "backup_patterns": [
        "*.sql",
        "*.sql.gz",
        "*.sql.bz2",
        "*.sql.xz",
        "*.sql.zst",
        "*.dump",
        "*.dump.gz",
        "*.dump.zst",
        "*.backup",
        "*.tar.gz",
        "*.tgz",
        "*.tar.bz2",
        "*.tar.xz",
        "*.tar.zst",
        "*.bak",
    ],
    # The command that makes backups; cron lines / timers mentioning it count as a schedule.
    "backup_command": None,
    # Case-insensitive regular expression; cron lines / timers matching it count as a schedule:
    # the word, and the tools that make backups without saying so (a nightly pg_dump line).
    "backup_schedule_pattern": (
        r"backup|\bpg_dump(all)?\b|\b(restic|borg|borgmatic|wal-g|barman|duplicity"
        r"|rsnapshot|velero|mysqldump|mongodump)\b"
    ),
    # A schedule managed elsewhere (e.g. "Velero, daily 02:00"): declaring it counts as a schedule.
    "backup_schedule": None,
    # Extra crontab-format files to search (e.g. a deployment's own cron file).
    "backup_cron_files": [],
    # Whose crontab `invoke remediate` adds the schedule to when no backup_cron_files is named:
    # null is the remote (SSH) user's own; a user name means `crontab -u USER` (needs root).
    "backup_cron_user": None,
    # Which files under docs_dir may document backup/restore (fnmatch on the file name).
    "backup_doc_patterns": ["*.md", "*.rst", "*.txt", "*.adoc"],
    "thresholds": {
        "backup_max_age_hours": 24,
        "backup_list_limit": 10,
        "backup_doc_max_files": 20,
        "backup_doc_max_bytes": 65536,
    },
}

DIR_FACT = "backup_restore:dir"
FILES_FACT = "backup_restore:files"
CRON_FACT = "backup_restore:crontab"
TIMERS_FACT = "backup_restore:timers"
DOCS_FACT = "backup_restore:docs"
DOC_PREFIX = "backup_restore:doc:"
MAX_SHOWN_MATCHES = 10


def facts(profile: Profile) -> FactSpecs:
    out: FactSpecs = {
        CRON_FACT: {
            "op": "crontab",
            "extra_files": [
                profile.resolve(str(p)) for p in profile.get("backup_cron_files") or ()
            ],
        },
        TIMERS_FACT: {"op": "systemd_timers"},
    }
    backup_dir = profile.path_of("backup_dir")
    if backup_dir:
        out[DIR_FACT] = {"op": "write_test", "path": backup_dir}
        out[FILES_FACT] = {
            "op": "list",
            "path": backup_dir,
            "patterns": [str(p) for p in profile.get("backup_patterns") or ()],
            "recursive": True,
            # The most recent ones: a directory of more than 500 backups (600 hourly dumps)
            # was listed by name, its newest left out, and called "100 h old".
            "newest": True,
        }
    docs_dir = profile.path_of("docs_dir")
    if docs_dir:
        out[DOCS_FACT] = {
            "op": "list",
            "path": docs_dir,
            "patterns": [str(p) for p in profile.get("backup_doc_patterns") or ()],
            "recursive": True,
            "max_entries": 200,
        }
    return out


def followup(profile: Profile, app: AppConfig, gathered: Mapping[str, Any]) -> FactSpecs:
    """Read the contents of docs whose names alone do not mention both backup and restore."""
    listing = gathered.get(DOCS_FACT) or {}
    entries = [e for e in listing.get("entries") or () if e.get("type") == "file"]
    if any(_mentions_both(str(e.get("name", ""))) for e in entries):
        return {}
    # Files whose names hint at the topic first, so the bounded reads find it early.
    entries.sort(key=lambda e: (not _mentions_any(str(e.get("name", ""))), str(e.get("name"))))
    limit = int(profile.threshold("backup_doc_max_files"))
    max_bytes = int(profile.threshold("backup_doc_max_bytes"))
    return {
        f"{DOC_PREFIX}{e['name']}": {"op": "file", "path": e["path"], "max_bytes": max_bytes}
        for e in entries[:limit]
    }


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    f.details["backup_dir"] = _directory(ctx, f)
    f.details["schedule"] = _schedule(ctx, f)
    f.details["backups"] = _backups(ctx, f)
    f.details["documentation"] = _documentation(ctx, f)
    sources = [str(x) for x in f.details["schedule"].get("sources") or ()]
    # A schedule only declared in the profile was "scheduled" like one found on the host.
    seen = [x for x in sources if x != "profile"]
    how = f"by {' and '.join(seen)}" if seen else "as declared in the profile, not seen on the host"
    return f.outcome(
        f"Backups are writable, scheduled ({how}), recent and documented",
        subject="Backup/restore",
    )


def _directory(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    path = ctx.profile.path_of("backup_dir")
    if not path:
        f.fail(
            "no backup directory configured",
            "Set backup_dir in the profile to the directory backups are written to",
        )
        return {"path": None}
    fact = ctx.fact(DIR_FACT)
    out: dict[str, Any] = {"path": path, "exists": fact.get("exists")}
    if fact.get("exists") is None:
        f.unknown(
            f"cannot inspect backup directory {path} ({fact.get('error')})",
            "Rerun with --sudo so the probe can inspect the backup directory",
        )
    elif not fact.get("exists"):
        f.fail(
            f"backup directory {path} does not exist",
            f"Create the backup directory: mkdir -p {path} (owned by the service user)",
        )
    elif fact.get("type") != "dir":
        f.fail(
            f"backup directory {path} is not a directory (it is a {fact.get('type')})",
            f"Point backup_dir at a directory, or replace {path} with one",
        )
    elif write_denied_to_another(fact, ctx.meta):
        out["writable"] = None
        f.unknown(
            f"cannot tell whether backups can be written to {path}: it is "
            f"{fact.get('owner')}'s and the audit account {ctx.meta.get('user')} may not "
            f"({fact.get('write_error')})",
            "Rerun with --sudo (or as the backup job's user) so the write test runs as one "
            "who may write there",
        )
    elif not fact.get("write_ok"):
        out["write_error"] = fact.get("write_error")
        f.fail(
            f"backup directory {path} is not writable ({fact.get('write_error')})",
            f"Ensure backup directory has write permissions: chown/chmod {path} for the backup user",
        )
    else:
        mode = fact.get("mode")
        out.update(
            {"writable": True, "owner": fact.get("owner"), "mode": oct(mode) if mode else None}
        )
    return out


def _schedule(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    profile = ctx.profile
    out: dict[str, Any] = {"sources": []}
    declared = profile.get("backup_schedule")
    if declared:
        out["sources"].append("profile")
        out["declared"] = str(declared)
    matcher = _schedule_matcher(profile, f)
    if matcher is None:
        return out
    cut = _cron_schedule(
        ctx.fact(CRON_FACT), matcher, str(profile.get("backup_command") or ""), out
    )
    timers = ctx.fact(TIMERS_FACT)
    if timers.get("available"):
        timer_hits = [ln for ln in timers.get("lines") or () if matcher.search(str(ln))]
        if timer_hits:
            out["sources"].append("systemd timer")
            out["timers"] = timer_hits[:MAX_SHOWN_MATCHES]
    else:
        out["systemd"] = f"not available ({timers.get('error') or 'unknown reason'})"
    if not out["sources"] and cut:
        runs = cron_runs(str(cut[0].get("line", "")))[0]
        f.warn(
            f"the backup's cron line stops at an unescaped '%': cron runs only {runs.strip()!r} "
            "and passes the rest to it as input, so no backup runs",
            "Escape every % of the backup command in the cron line as \\% "
            "(e.g. date +\\%F), or move the command into a script",
        )
        return out
    if not out["sources"]:
        command = profile.get("backup_command") or "/usr/local/bin/mahavishnu-backup"
        f.warn(
            "no backup schedule found (cron, systemd timers, or the profile's backup_schedule)",
            f"Schedule regular backups using cron or similar, e.g. `crontab -e`: "
            f"`0 2 * * * {command}` (or declare backup_schedule in the profile if managed elsewhere)",
        )
    return out


def _cron_schedule(
    cron: dict[str, Any], matcher: re.Pattern[str], command: str, out: dict[str, Any]
) -> list[dict[str, Any]]:
    """Cron lines that run the backup into ``out``; returned: the lines that would, but for
    an unescaped ``%`` that ends their command early. Such a line counts only when what cron
    runs still holds the whole ``backup_command`` (the rest is then just its input): a name
    the pattern finds before the ``%`` (`backup.sh > /var/log/backup-$(date +`) is no backup."""
    hits, cut = [], []
    for entry in cron.get("entries") or ():
        line = str(entry.get("line", ""))
        runs, was_cut = cron_runs(line)
        if (not was_cut and matcher.search(runs)) or (was_cut and command and command in runs):
            hits.append(entry)
        elif was_cut and matcher.search(line.replace("\\%", "%")):
            cut.append(entry)
    if hits:
        out["sources"].append("cron")
        out["cron"] = hits[:MAX_SHOWN_MATCHES]
    if cut:
        out["cron_cut_at_percent"] = cut[:MAX_SHOWN_MATCHES]
    if cron.get("errors"):
        out["cron_notes"] = list(cron["errors"])
    return cut


def cron_runs(line: str) -> tuple[str, bool]:
    """What cron runs of a cron line: the text up to its first unescaped ``%`` (cron turns it
    into a newline and passes the rest as standard input, crontab(5)), ``\\%`` read as
    ``%``; and whether a ``%`` cut it there."""
    runs: list[str] = []
    rest = line
    while rest:
        head, sep, rest = rest.partition("%")
        if not sep:
            runs.append(head)
            break
        if head.endswith("\\"):
            runs.append(head[:-1] + "%")
            continue
        runs.append(head)
        return "".join(runs), True
    return "".join(runs), False


def _schedule_matcher(profile: Profile, f: Findings) -> re.Pattern[str] | None:
    alternatives = []
    command = profile.get("backup_command")
    if command:
        alternatives.append(re.escape(str(command)))
    pattern = profile.get("backup_schedule_pattern")
    if pattern:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            f.fail(
                f"profile backup_schedule_pattern {pattern!r} is not a valid regular expression ({exc})",
                "Fix backup_schedule_pattern in the profile (a Python regular expression)",
            )
            return None
        alternatives.append(f"(?:{pattern})")
    if not alternatives:
        return None
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _backups(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    path = ctx.profile.path_of("backup_dir")
    listing = ctx.fact(FILES_FACT)
    if not path or listing.get("type") != "dir":
        if ctx.fact(DIR_FACT).get("type") == "dir":
            # The directory is there (and judged above) but its listing failed (a
            # write-only drop box, a listing the probe could not make): the backups'
            # presence and age cannot be determined, which is never READY.
            f.unknown(
                f"cannot list backup directory {path} "
                f"({listing.get('error') or 'the probe returned no listing'}), "
                "so whether recent backups exist cannot be determined",
                "Rerun with --sudo (or as a user that may list the backup directory)",
            )
        return {"found": 0, "note": "backup directory unavailable; no backups to judge"}
    files = [e for e in listing.get("entries") or () if e.get("type") == "file"]
    files.sort(key=lambda e: float(e.get("mtime") or 0), reverse=True)
    now = ctx.host_now
    limit = int(ctx.profile.threshold("backup_list_limit"))
    matched = listing.get("matched")
    out: dict[str, Any] = {
        "found": matched if isinstance(matched, int) and matched > len(files) else len(files),
        "patterns": list(ctx.profile.get("backup_patterns") or ()),
        "recent": [_describe(e, now) for e in files[:limit]],
    }
    if listing.get("truncated"):
        out["truncated"] = True
    if listing.get("scan_cut"):
        out["scan_cut"] = True
    if not files:
        f.fail(
            f"no backups in {path} matching {', '.join(out['patterns'])}",
            "Create initial backup before production deployment (run the backup job once "
            f"and check a file appears in {path})",
        )
        return out
    _judge_newest(ctx, f, files, now, out)
    return out


def _judge_newest(
    ctx: CheckContext,
    f: Findings,
    files: list[dict[str, Any]],
    now: float | None,
    out: dict[str, Any],
) -> None:
    newest = files[0]
    if not newest.get("size"):
        f.fail(
            f"newest backup {newest.get('name')} is empty (0 bytes): the last backup run failed",
            "Check the backup job's logs, rerun it, and verify the new file is non-empty",
        )
    limit = int(ctx.profile.threshold("backup_list_limit"))
    empty_older = [str(e.get("name")) for e in files[1:limit] if not e.get("size")]
    if empty_older:
        f.warn(
            f"{len(empty_older)} recent backup(s) are empty: {', '.join(empty_older)}",
            "Investigate why some backup runs produce empty files; remove them once understood",
        )
    usable = [e for e in files if e.get("size")]
    if not usable:
        return
    if now is None:
        f.unknown(
            "the host's clock was not reported, so backup age cannot be judged",
            "Rerun the audit; the probe reports the host's time",
        )
        return
    age_h = (now - float(usable[0].get("mtime") or 0)) / 3600
    max_h = float(ctx.profile.threshold("backup_max_age_hours"))
    out["newest"] = {"name": usable[0].get("name"), "age_hours": round(age_h, 2)}
    out["max_age_hours"] = max_h
    if age_h < -0.1:
        f.warn(
            f"newest backup {usable[0].get('name')} has a modification time in the future "
            f"({-age_h:.1f} h ahead of the host's clock)",
            "Check the host's clock (NTP) and the backup job's timestamps",
        )
    elif age_h > max_h and ctx.fact(FILES_FACT).get("scan_cut"):
        f.unknown(
            f"{ctx.profile.path_of('backup_dir')} holds more backup files than the audit reads; the newest of those "
            f"read, {usable[0].get('name')}, is {age_h:.1f} h old, and a newer one may be "
            "among the rest",
            "Prune old backups (a retention policy), or narrow backup_patterns in the profile",
        )
    elif age_h > max_h:
        f.warn(
            f"newest non-empty backup {usable[0].get('name')} is {age_h:.1f} h old "
            f"(more than {max_h:g} h)",
            "Check the backup schedule is running (cron logs / systemctl list-timers) "
            "and take a fresh backup now",
        )


def _describe(entry: Mapping[str, Any], now: float | None) -> dict[str, Any]:
    mtime = float(entry.get("mtime") or 0)
    out: dict[str, Any] = {
        "name": entry.get("name"),
        "size": entry.get("size"),
        "modified": datetime.fromtimestamp(mtime, timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    if now is not None:
        out["age_hours"] = round((now - mtime) / 3600, 2)
    return out


def _documentation(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    docs_dir = ctx.profile.path_of("docs_dir")
    listing = ctx.fact(DOCS_FACT)
    out: dict[str, Any] = {"docs_dir": docs_dir}
    files = [e for e in listing.get("entries") or () if e.get("type") == "file"]
    found = [str(e["name"]) for e in files if _mentions_both(str(e.get("name", "")))]
    if not found:
        for key in sorted(ctx.facts):
            if not key.startswith(DOC_PREFIX):
                continue
            doc = ctx.fact(key)
            name = key[len(DOC_PREFIX) :]
            if _mentions_both(f"{name}\n{doc.get('text') or ''}"):
                found.append(name)
    out["searched"] = len(files)
    if found:
        out["found"] = found[:MAX_SHOWN_MATCHES]
        return out
    where = "does not exist" if listing.get("exists") is False else "has no document"
    f.warn(
        f"docs directory {docs_dir} {where} describing both backup and restore",
        f"Document the backup and restore procedure (commands, where backups live, how to "
        f"verify a restore) in {docs_dir}/runbooks/backup-restore.md",
    )
    return out


_BACKUP_WORD = re.compile(r"back[\s_-]?ups?", re.IGNORECASE)
# Recovering from a backup is restoring it: a disaster-recovery runbook ("recover the
# database from last night's backup") documents the procedure the seed asks for.
_RESTORE_WORD = re.compile(r"restor(e|es|ed|ing|ation)|recover(y|ies|s|ed|ing)?", re.IGNORECASE)


def _mentions_both(text: str) -> bool:
    return bool(_BACKUP_WORD.search(text) and _RESTORE_WORD.search(text))


def _mentions_any(text: str) -> bool:
    return bool(_BACKUP_WORD.search(text) or _RESTORE_WORD.search(text))


register(
    "backup_restore",
    title="Backup/restore procedures",
    description=(
        "The backup directory is writable (proved by a write test on the host), a backup "
        "schedule exists (cron, systemd timer or declared), recent non-empty backups exist "
        "(age judged on the host's clock), and backup/restore is documented."
    ),
    categories=("operations",),
    suites=("validate",),
    facts=facts,
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "backup_dir",
        "docs_dir",
        "backup_patterns",
        "backup_command",
        "backup_schedule_pattern",
        "backup_schedule",
        "backup_cron_files",
        "backup_cron_user",
        "backup_doc_patterns",
        "thresholds.backup_max_age_hours",
        "thresholds.backup_list_limit",
        "thresholds.backup_doc_max_files",
        "thresholds.backup_doc_max_bytes",
    ),
    aliases=("backup",),
    order=40,
)(evaluate)
