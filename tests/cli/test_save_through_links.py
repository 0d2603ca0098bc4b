"""--save, --report and baseline-export --output through a symbolic link (docs/cli.md,
docs/history.md): a link to an open descriptor (/dev/stdout, /proc/self/fd/N) is refused,
exit 2; a link to a report file keeps the link and rewrites the file it names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from readiness.errors import UsageError
from readiness.report import save
from tests.security.hostile import attacker_uid
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


def _shared_dir(tmp_path: Path) -> Path:
    """A directory like /tmp: sticky and world-writable, owned by root."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("flag", ["--save", "--report"])
def test_another_users_link_in_a_shared_directory_is_refused(
    tmp_path: Path, flag: str, dangling: bool
) -> None:
    """`nobody` plants /tmp-like shared/r.json -> a root-owned file (or a path that does not
    exist yet). readiness resolved the link itself and renamed the report over its target:
    the root file was replaced (mode 0600, the report in it), or a new file was made where
    the dangling link pointed. The kernel does not follow such a link (fs.protected_symlinks),
    and neither does readiness now: exit 2, one line, nothing written."""
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    victim = victim_dir / ("new.json" if dangling else "owned.json")
    if not dangling:
        victim.write_text("root's own file\n")
    link = _shared_dir(tmp_path) / "r.json"
    link.symlink_to(victim)
    os.lchown(link, attacker_uid(), -1)
    value = str(link) if flag == "--save" else f"json:{link}"
    code, out, err = _validate_to_file(tmp_path, flag, value)
    assert code == 2, err
    assert err.splitlines() == [
        f"readiness: {flag} {value}: cannot write: {link} is a symbolic link of another user "
        f"(uid {attacker_uid()}) in the shared directory {link.parent}: not followed"
    ]
    assert out == ""
    assert link.is_symlink()
    if dangling:
        assert not victim.exists()
    else:
        assert victim.read_text() == "root's own file\n"
    assert sorted(p.name for p in victim_dir.iterdir()) == ([] if dangling else ["owned.json"])


def test_a_link_planted_after_the_check_is_not_followed_by_save(tmp_path: Path) -> None:
    """The check runs before the audit; a link planted during it is refused at the write."""
    victim = tmp_path / "owned.json"
    victim.write_text("root's own file\n")
    link = _shared_dir(tmp_path) / "r.json"
    link.symlink_to(victim)
    os.lchown(link, attacker_uid(), -1)
    with pytest.raises(UsageError, match="symbolic link of another user"):
        save("{}", link)
    assert victim.read_text() == "root's own file\n"
    assert [p.name for p in link.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_my_own_link_in_a_shared_directory_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "r1.json"
    real.write_text("{}\n")
    link = _shared_dir(tmp_path) / "latest.json"
    link.symlink_to(real)
    code, _, err = _validate_to_file(tmp_path, "--save", str(link))
    assert code in (0, 1), err
    assert link.is_symlink() and '"schema": "readiness.report/1"' in real.read_text()


def test_another_users_link_for_a_directory_on_the_way_is_refused(tmp_path: Path) -> None:
    """shared/d -> nobody's own directory, holding r.json -> a root file: the last link is
    in a private directory, but the way there went through a foreign link in /tmp."""
    victim = tmp_path / "owned.json"
    victim.write_text("root's own file\n")
    own = tmp_path / "nobodys"
    own.mkdir()
    (own / "r.json").symlink_to(victim)
    os.lchown(own / "r.json", attacker_uid(), -1)
    os.chown(own, attacker_uid(), -1)
    link = _shared_dir(tmp_path) / "d"
    link.symlink_to(own)
    os.lchown(link, attacker_uid(), -1)
    code, out, err = _validate_to_file(tmp_path, "--save", f"{link}/r.json")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"readiness: --save {link}/r.json: cannot write: {link} is a symbolic link of another "
        f"user (uid {attacker_uid()}) in the shared directory {link.parent}: not followed"
    ]
    assert victim.read_text() == "root's own file\n"
