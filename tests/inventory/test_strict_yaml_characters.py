"""A character YAML forbids (DEL, C0 controls) is a located "invalid YAML", not a crash.

PyYAML's Reader rejects such characters when the loader is built, before parsing: that
construction sat outside the error handling, so one DEL in an inventory was a traceback
(exit 0 from ``readiness inventory``) and one in the app's settings file turned every
check of the host into "internal error: ReaderError"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.cli import local_inventory, run_cli, validate_check


@pytest.mark.parametrize("char", ["\x7f", "\x01", "\x1b"])
def test_a_forbidden_character_in_an_inventory_is_one_line_with_its_line_and_exit_2(
    tmp_path: Path, char: str
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(f"all:\n  hosts:\n    web{char}1: {{}}\n", encoding="utf-8")
    res = run_cli("inventory", "-i", str(inventory), "--hosts", "all")
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"{inventory}:3: invalid YAML: character U+{ord(char):04X}" in lines[0], lines
    assert "Traceback" not in res.stderr


def test_a_del_in_the_settings_file_is_a_located_finding_not_an_internal_error(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "settings.yaml").write_text("server_name: x\nmode: \x7f\n", encoding="utf-8")
    inventory = local_inventory(tmp_path / "inv.yml", app, settings_file="settings.yaml")
    result = validate_check(inventory, "configuration")
    assert result["status"] == "not_ready", result
    assert "internal error" not in result["message"], result
    assert "settings.yaml:2: invalid YAML: character U+007F" in result["message"], result
