"""``database_migration``: create the migrations directory with a README and a first script
*template* (not a ``.sql`` file: an empty script would count as pending), and, only with
``--run-migrations``, run the app's own migration command (``migration_command``) on the host.

Remediate never guesses a migration tool: without ``migration_command`` in the profile,
pending migrations are reported with the key to set. A migration cannot be reverted by a
snapshot; the apply step reports a failing command as failed, never as reverted.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from ...profile import Profile
from ..plan import Change, CreateFile, EnsureDir, Fix, RunCommand
from . import FixInput, fixer
from ._templates import MIGRATION_TEMPLATE, facts_of, migrations_readme

PENDING = "pending migration"
EXAMPLE = '["alembic", "upgrade", "head"]'


def _argv(profile: Profile) -> tuple[str, ...] | str:
    """The migration argv, or why there is none (a note naming the profile key)."""
    value = profile.get("migration_command")
    if value is None or value == []:
        return (
            "set the profile key migration_command to the app's own migration command as an "
            f"argv list (e.g. {EXAMPLE}; migration_cwd is relative to app_root), then re-run "
            "with --run-migrations"
        )
    if isinstance(value, str) or not isinstance(value, Sequence):
        return (
            f"migration_command must be an argv list such as {EXAMPLE}, not a shell string: "
            "nothing is run through a shell"
        )
    argv = tuple(str(a) for a in value)
    if not all(argv):
        return "migration_command holds an empty argument: fix it in the profile"
    return argv


def _migrate(inp: FixInput) -> tuple[RunCommand | None, str]:
    argv = _argv(inp.profile)
    if isinstance(argv, str):
        return None, f"pending migrations were not run: {argv}"
    cwd = inp.profile.resolve(str(inp.profile.get("migration_cwd") or ".")) or inp.profile.app_root
    command = RunCommand(
        argv, cwd, float(inp.profile.threshold("migration_timeout_s")), "run the app's migrations"
    )
    if not inp.run_migrations:
        return None, (
            f"pending migrations are only run with --run-migrations: re-run with it to run "
            f"`{command.command_line()}` in {cwd} on the host (in a maintenance window)"
        )
    return command, ""


@fixer(
    "database_migration",
    summary=(
        "create the migrations directory; with --run-migrations, run the app's migration_command"
    ),
)
def fix(inp: FixInput) -> Fix | None:
    changes: list[Change] = []
    addresses: list[str] = []
    notes: list[str] = []
    containing: tuple[str, ...] = ()
    pending = inp.matching(PENDING)
    if pending:
        command, note = _migrate(inp)
        if command is not None:
            changes.append(command)
            addresses += pending
            containing = (PENDING,)
        if note:
            notes.append(note)
    path = inp.profile.path_of("migrations_dir")
    missing = inp.matching("migrations directory", "does not exist")
    if path and missing:
        k = facts_of(inp.profile, inp.host)
        changes += [
            EnsureDir(path, 0o755, owner_of=inp.profile.app_root),
            CreateFile(posixpath.join(path, "README.md"), migrations_readme(k)),
            CreateFile(posixpath.join(path, "0001_init.sql.template"), MIGRATION_TEMPLATE),
        ]
        addresses += missing
    if not changes:
        return Fix("database_migration", "", (), (), tuple(notes)) if notes else None
    what = "run the pending migrations" if containing else "create the migrations directory"
    return Fix(
        "database_migration",
        what,
        tuple(changes),
        tuple(addresses),
        tuple(notes),
        addresses_containing=containing,
    )
