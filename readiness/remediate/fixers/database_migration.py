"""``database_migration``: create the migrations directory with a README and a first
script *template* (not a ``.sql`` file: an empty script would count as pending).
Migrations themselves are never run by remediate."""

from __future__ import annotations

import posixpath

from ..plan import Change, CreateFile, EnsureDir, Fix
from . import FixInput, fixer
from ._templates import MIGRATION_TEMPLATE, facts_of, migrations_readme


@fixer(
    "database_migration",
    summary="create the migrations directory with a README and a first template",
)
def fix(inp: FixInput) -> Fix | None:
    path = inp.profile.path_of("migrations_dir")
    missing = inp.matching("migrations directory", "does not exist")
    notes: list[str] = []
    if inp.matching("pending migration"):
        notes.append(
            "pending migrations are never applied by remediate: run the app's own migration "
            "command (e.g. `alembic upgrade head`) in a maintenance window"
        )
    if not path or not missing:
        return Fix("database_migration", "", (), (), tuple(notes)) if notes else None
    k = facts_of(inp.profile, inp.host)
    changes: list[Change] = [
        EnsureDir(path, 0o755, owner_of=inp.profile.app_root),
        CreateFile(posixpath.join(path, "README.md"), migrations_readme(k)),
        CreateFile(posixpath.join(path, "0001_init.sql.template"), MIGRATION_TEMPLATE),
    ]
    return Fix(
        "database_migration",
        "create the migrations directory",
        tuple(changes),
        tuple(missing),
        tuple(notes),
    )
