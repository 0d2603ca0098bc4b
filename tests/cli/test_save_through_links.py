"""--save, --report and baseline-export --output through a symbolic link (docs/cli.md,
docs/history.md): a link to an open descriptor (/dev/stdout, /proc/self/fd/N) is refused,
exit 2; a link to a report file keeps the link and rewrites the file it names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.services.apps import write_app
from tests.services.cli import BIN, local_inventory


def _validate_to_file(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """readiness validate with stdout redirected to a regular file, as a CI job's log is."""
    inv = local_inventory(tmp_path / "inv.yml", write_app(tmp_path / "app"))
    out, err = tmp_path / "job-stdout.log", tmp_path / "job-stderr.log"
    with out.open("w") as fo, err.open("w") as fe:
        code = subprocess.run(
            [str(BIN / "readiness"), "validate", "-i", str(inv), "-q", "--store", "none", *args],
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            timeout=120,
            check=False,
        ).returncode
    return code, out.read_text(), err.read_text()


@pytest.mark.parametrize("flag", ["--save", "--report"])
def test_a_link_to_this_process_stdout_is_refused_not_replaced(tmp_path: Path, flag: str) -> None:
    """/dev/stdout is such a link: when a job's stdout is a file it resolved to a regular
    file, passed the check, and the rename replaced /dev/stdout itself with a file (as root,
    for the whole machine). Here a link of the test's own stands in for /dev/stdout."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    value = str(link) if flag == "--save" else f"json:{link}"
    code, out, err = _validate_to_file(tmp_path, flag, value)
    assert code == 2
    assert err.splitlines() == [
        f"readiness: {flag} {value}: cannot write: {link} is a file descriptor, not a regular file"
    ]
    assert out == ""
    assert link.is_symlink()


def test_a_link_to_a_report_file_is_kept_and_the_file_it_names_is_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "r1.json"
    real.write_text("{}\n")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    code, _, err = _validate_to_file(tmp_path, "--save", str(link))
    assert code in (0, 1), err
    assert link.is_symlink() and link.resolve() == real
    assert '"schema": "readiness.report/1"' in real.read_text()
