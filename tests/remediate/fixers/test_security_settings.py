"""The security_settings fixer (chmod of secret-bearing files) through `readiness remediate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ...services.apps import write_app
from ...services.cli import local_inventory, run_cli


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_the_dry_run_shows_the_refusal_of_a_key_the_apply_would_refuse(
    kind: str, tmp_path: Path
) -> None:
    """A key the app user made a symlink (or a hard link) to a file outside its tree: the
    apply refuses to chmod it, so the dry run must not promise `chmod 0600` for it. Before,
    the dry run planned the chmod (exit 0, no refusal shown) and --apply then failed on it."""
    root = write_app(tmp_path / "app")
    outside = tmp_path / "elsewhere.pem"
    outside.write_text("-----BEGIN PRIVATE KEY-----\n")
    outside.chmod(0o644)
    key = root / "private_key.pem"
    if kind == "symlink":
        key.symlink_to(outside)
    else:
        os.link(outside, key)
    inv = local_inventory(tmp_path / "inventory.yml", root)
    log = tmp_path / "audit.jsonl"
    dry = run_cli("remediate", "-i", str(inv), "-c", "security_settings", "--format", "json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    host = json.loads(dry.stdout)["hosts"][0]
    planned = [c for f in host["fixes"] for c in f["changes"]]
    assert not [c for c in planned if str(key) in c], planned
    refused = host["refused"]["security_settings"]
    assert [r for r in refused if r.startswith(f"refused: {key} ")], refused
    apply = run_cli(
        "remediate", "-i", str(inv), "-c", "security_settings", "--apply", "--audit-log", str(log)
    )
    assert apply.returncode == 1, apply.stdout + apply.stderr
    assert "A fixer refused part of what it was asked on 1 host(s)" in apply.stdout
    assert outside.stat().st_mode & 0o777 == 0o644
