"""The documentation fixer (README sections, documents), through `readiness remediate`."""

from __future__ import annotations

import json
from pathlib import Path

from ...services.apps import write_app
from ...services.cli import local_inventory, run_cli

OPEN_FENCE = "# app\n\nExample:\n\n```sh\nmake run\n"


def test_sections_that_would_land_inside_an_open_code_block_are_refused(
    tmp_path: Path,
) -> None:
    """A README ending inside a code block whose closing ``` is missing: sections appended
    after it are code, not headings, so the re-audit still missed them and every --apply
    was reverted ("the check still reports: … has no 'Installation' section"), forever.
    Now the plan checks that what it appends reads as the sections, and refuses otherwise
    with the reason; the README is left as it is."""
    root = write_app(tmp_path / "app", files={"README.md": OPEN_FENCE})
    inv = local_inventory(tmp_path / "inv.yml", root, readme_sections=["Installation"])
    common = ["remediate", "-i", str(inv), "-c", "documentation", "--format", "json"]
    dry = run_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    host = json.loads(dry.stdout)["hosts"][0]
    diffs = "\n".join(f["diff"] for f in host["fixes"])
    assert "## Installation" not in diffs, diffs
    refused = host["refused"]["documentation"]
    assert [r for r in refused if "code block" in r and "README.md" in r], refused
    done = run_cli(*common, "--apply", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = [f["outcome"] for f in json.loads(done.stdout)["hosts"][0]["fixes"]]
    assert "reverted" not in outcomes, outcomes
    assert (root / "README.md").read_text() == OPEN_FENCE
