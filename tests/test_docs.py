"""The docs stay true: the API examples run, and every profile key and check is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.registry import all_checks, default_profile

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``argv`` from the checkout, as a user runs it: no stdin, its output kept."""
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("index", [0, 1])
def test_the_api_examples_run(index: int) -> None:
    code = _python_blocks(DOCS / "api.md")[index]
    res = _run([sys.executable, "-c", code])
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.strip()


def test_every_top_level_profile_key_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    missing = [k for k in default_profile() if f"`{k}`" not in text]
    assert missing == []


def test_every_threshold_is_documented() -> None:
    text = (DOCS / "profiles.md").read_text()
    missing = [k for k in default_profile()["thresholds"] if f"`{k}`" not in text]
    assert missing == []


def test_every_check_has_a_section_in_checks_md() -> None:
    text = (DOCS / "checks.md").read_text()
    missing = [s.name for s in all_checks() if f"`{s.name}`" not in text]
    assert missing == []


@pytest.mark.parametrize("tool", ["build_checks_doc.py", "build_profiles_doc.py"])
def test_generated_reference_docs_are_up_to_date(tool: str) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_the_json_schema_sample_has_the_keys_of_a_real_report() -> None:
    """docs/reports.md's `readiness.report/1` sample names every key a real
    `readiness validate --json` writes (top level, summary, host, check) and no other."""
    import json

    section = (DOCS / "reports.md").read_text().split("## JSON schema `readiness.report/1`")[1]
    sample = json.loads(re.findall(r"```json\n(.*?)```", section, flags=re.S)[0])
    argv = ["validate", "--json", "-q", "-i", "inventories/local.yml", "-c", "environment"]
    res = _run([str(Path(sys.executable).parent / "readiness"), *argv, "--store", "none"])
    assert res.returncode in (0, 1), res.stderr
    real = json.loads(res.stdout)
    assert set(sample) == set(real)
    assert set(sample["summary"]) == set(real["summary"])
    host, real_host = sample["hosts"][0], real["hosts"][0]
    assert set(host) - {"reason"} == set(real_host)  # reason: only for unaudited hosts
    assert set(host["checks"][0]) == set(real_host["checks"][0])
