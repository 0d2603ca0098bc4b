"""The write test never makes a root audit write where only the app user pointed.

``backup_restore`` and ``error_handling`` prove a directory writable by creating and
removing a file in it. The probe often runs as root, and the app user (``nobody`` here)
names those directories: a ``backups`` link in its tree, the dead letter queue path in its
own settings file. Before, root created and removed ``.readiness-write-test-*`` wherever
they pointed (/etc/cron.d, a directory a systemd path unit watches), on every audit and
every remediate dry run. Now the file is made only where the app user could make it
(docs/security.md, "6. Reads of app-controlled paths")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.services.apps import write_app
from tests.services.cli import local_inventory, run_cli

from .hostile import chown_tree


def _victim(shared_root: Path) -> Path:
    """A root-owned 0755 directory: nobody may not write there."""
    victim = shared_root / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    return victim


def _check(inventory: Path, check: str) -> dict[str, Any]:
    res = run_cli("validate", "-i", str(inventory), "-c", check, "--format", "json")
    assert res.returncode in (0, 1), res.stdout + res.stderr
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    return result


def test_a_backups_link_to_a_directory_the_app_user_cannot_write_gets_no_root_write(
    shared_root: Path,
) -> None:
    victim = _victim(shared_root)
    root = write_app(shared_root / "app")
    (root / "backups").symlink_to(victim)
    chown_tree(root)
    before = victim.stat().st_mtime_ns
    result = _check(local_inventory(shared_root / "inv.yml", root), "backup_restore")
    assert victim.stat().st_mtime_ns == before, "root wrote in the directory the link names"
    assert list(victim.iterdir()) == []
    assert result["status"] == "not_ready", result
    assert "not writable (refused" in result["message"], result
    assert "cannot write" in result["message"], result


def test_a_dlq_path_in_the_app_users_settings_gets_no_root_write_where_it_may_not(
    shared_root: Path,
) -> None:
    victim = _victim(shared_root)
    dlq = {"enabled": True, "path": str(victim)}
    root = write_app(shared_root / "app", settings={"resilience": {"dead_letter_queue": dlq}})
    chown_tree(root)
    before = victim.stat().st_mtime_ns
    result = _check(local_inventory(shared_root / "inv.yml", root), "error_handling")
    assert victim.stat().st_mtime_ns == before, "root wrote where the app's settings said"
    path = result["details"]["dead_letter_queue"]["path"]
    assert path["writable"] is False, result
    assert "nobody, whose file names it, may not write there" in path["error"], result
    assert result["status"] == "not_ready", result


def test_directories_the_app_user_may_write_or_root_named_are_still_tested(
    shared_root: Path,
) -> None:
    """The rule bounds the write by whoever named the directory, nothing more."""
    own = {"enabled": True, "path": "data/dlq"}
    root = write_app(
        shared_root / "app",
        settings={"resilience": {"dead_letter_queue": own}},
        files={"data/dlq/.keep": "", "backups/.keep": ""},
    )
    chown_tree(root)
    result = _check(local_inventory(shared_root / "inv.yml", root), "error_handling")
    assert result["details"]["dead_letter_queue"]["path"]["writable"] is True, result
    backups = _check(local_inventory(shared_root / "inv.yml", root), "backup_restore")
    assert backups["details"]["backup_dir"]["writable"] is True, backups
    # root's own settings naming a root directory: root's word, tested as before
    victim = _victim(shared_root)
    (root / "settings" / "mahavishnu.yaml").unlink()
    write_app(
        root, settings={"resilience": {"dead_letter_queue": {"enabled": True, "path": str(victim)}}}
    )
    result = _check(local_inventory(shared_root / "inv.yml", root), "error_handling")
    assert result["details"]["dead_letter_queue"]["path"]["writable"] is True, result
