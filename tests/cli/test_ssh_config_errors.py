"""An ssh_config readiness cannot use is one line and exit 2 where nothing was audited.

``readiness inventory`` exited 1 (a host's transport error) for an ssh_config ssh refuses
(``Port abc``) and a traceback-free but wrong 1 for a named file that does not exist;
``validate`` audited every ssh host as UNREACHABLE naming the missing file, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.cli import run_cli


def _setup(tmp_path: Path, ssh_config: str, inventory: str) -> tuple[Path, Path]:
    config = tmp_path / "readiness.yaml"
    config.write_text(f"readiness:\n  ssh_config: {ssh_config}\n", encoding="utf-8")
    inv = tmp_path / "inventory.ini"
    inv.write_text(inventory, encoding="utf-8")
    return config, inv


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Host web1\n  Port abc\n", "Bad port 'abc'"),
        (None, "ssh config not found"),
    ],
    ids=["refused-by-ssh", "missing"],
)
def test_readiness_inventory_with_an_unusable_ssh_config_is_one_line_exit_2(
    tmp_path: Path, text: str | None, said: str
) -> None:
    path = tmp_path / "ssh_config"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    config, inv = _setup(tmp_path, str(path), "[g]\nweb1 ansible_host=127.0.0.1\n")
    res = run_cli("-f", str(config), "inventory", "-i", str(inv), "--hosts", "all")
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and said in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_validate_with_a_missing_ssh_config_stops_before_any_host(tmp_path: Path) -> None:
    config, inv = _setup(
        tmp_path, str(tmp_path / "nope"), "[g]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n"
    )
    res = run_cli(
        "-f", str(config), "validate", "-i", str(inv), "--hosts", "all", "--store", "none"
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == "", res.stdout
    assert res.stderr.strip() == f"readiness: ssh config not found: {tmp_path / 'nope'}"


def test_a_local_run_never_reads_the_ssh_config(tmp_path: Path) -> None:
    config, inv = _setup(tmp_path, str(tmp_path / "nope"), "[g]\nh ansible_connection=local\n")
    res = run_cli(
        "-f",
        str(config),
        "validate",
        "-i",
        str(inv),
        "--hosts",
        "all",
        "--store",
        "none",
        "-c",
        "documentation",
        "--format",
        "json",
    )
    assert res.returncode in (0, 1), res.stderr
    assert "ssh config" not in res.stderr
