"""docs/inventories.md stays true: every inventory example loads, and the "Unlike Ansible" table
lists exactly the differences the differential test asserts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .differences import DIFFERENCES
from .helpers import load_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "inventories.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```(yaml|ini)\n(.*?)```", TEXT, flags=re.S)


def test_the_doc_has_yaml_and_ini_examples() -> None:
    assert {kind for kind, _ in EXAMPLES} == {"yaml", "ini"}
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(
    ("kind", "body"), EXAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(EXAMPLES)]
)
def test_every_inventory_example_in_the_doc_loads(kind: str, body: str, tmp_path: Path) -> None:
    inventory = load_text(tmp_path, f"example.{'yml' if kind == 'yaml' else 'ini'}", body)
    assert inventory.hosts
    assert inventory.select("all")


def test_the_unlike_ansible_table_lists_every_documented_difference() -> None:
    table = TEXT.split("## Unlike Ansible", 1)[1]
    rows = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M)
    assert sorted(rows) == sorted(DIFFERENCES)
