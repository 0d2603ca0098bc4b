"""The error_handling fixer (resilience settings, the dead letter queue directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from ...services.apps import BASE_SETTINGS, write_app
from ...services.cli import local_inventory, run_cli


def test_a_dead_letter_queue_under_a_planted_link_is_refused_in_the_plan(
    tmp_path: Path,
) -> None:
    """`data` in the app tree is a symlink its user planted. The dry run promised
    `mkdir data/dlq`; --apply then refused it ("a symlink that nobody could have planted")
    and undid the whole fix, the settings edit with it. Now the plan refuses the directory
    up front (the dry run says so), the settings are edited, --apply exits 1 for the
    refusal and nothing is created through the link."""
    settings = {k: v for k, v in BASE_SETTINGS.items() if k != "resilience"}
    root = write_app(tmp_path / "app", settings_text=yaml.safe_dump(settings))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "data").symlink_to(elsewhere)
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 65534, 65534)
    inv = local_inventory(tmp_path / "inv.yml", root)
    common = ["remediate", "-i", str(inv), "-c", "error_handling", "--format", "json"]
    dry = run_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    host = json.loads(dry.stdout)["hosts"][0]
    [fix] = host["fixes"]
    assert "mkdir" not in fix["diff"], fix["diff"]
    refused = host["refused"]["error_handling"]
    assert [r for r in refused if f"{root}/data is a symlink" in r], refused
    done = run_cli(*common, "--apply", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    [fix] = json.loads(done.stdout)["hosts"][0]["fixes"]
    assert fix["outcome"] == "applied", fix
    assert "dead_letter_queue" in (root / "settings" / "mahavishnu.yaml").read_text()
    assert list(elsewhere.iterdir()) == []
