"""The attacker's side of the hostile-host tests: an app tree owned by ``nobody``.

readiness runs as root (locally, or over loopback SSH as root); everything under the
app tree belongs to the unprivileged ``nobody``, who plants hooks, interpreters,
symlinks and racing processes. Hooks append their uid to a record file, so a test can
assert they never ran as root.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ATTACKER",
    "Victim",
    "chown_tree",
    "hook_script",
    "recorded_uids",
    "victim",
]

ATTACKER = "nobody"


def attacker_uid() -> int:
    return pwd.getpwnam(ATTACKER).pw_uid


def chown_tree(root: Path, user: str = ATTACKER) -> None:
    subprocess.run(["chown", "-R", "--no-dereference", user, str(root)], check=True, timeout=30)


def hook_script(path: Path, record: Path) -> Path:
    """An executable that appends the uid it runs as to ``record`` (a world-writable file)."""
    if not record.exists():
        record.write_text("")
    record.chmod(0o666)
    path.write_text(f"#!/bin/sh\nid -u >> {record}\ncat\n")
    path.chmod(0o755)
    return path


def recorded_uids(record: Path) -> list[int]:
    if not record.exists():
        return []
    return [int(line) for line in record.read_text().split()]


@dataclass(frozen=True)
class Victim:
    """A root-owned file outside the app tree; the attack wants it changed."""

    path: Path
    content: bytes
    mode: int
    uid: int
    gid: int

    def assert_untouched(self) -> None:
        st = os.lstat(self.path)
        assert stat.S_ISREG(st.st_mode), f"{self.path} is no longer a regular file"
        assert self.path.read_bytes() == self.content, f"{self.path} content changed"
        assert stat.S_IMODE(st.st_mode) == self.mode, f"{self.path} mode {st.st_mode:o}"
        assert (st.st_uid, st.st_gid) == (self.uid, self.gid), f"{self.path} owner changed"


def victim(directory: Path, name: str = "victim.key", mode: int = 0o640) -> Victim:
    """A root-owned file holding a root secret, outside every app tree."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    content = b"ROOT-ONLY-SECRET=do-not-leak-4c1f\n"
    path.write_bytes(content)
    path.chmod(mode)
    os.chown(path, 0, 0)
    return Victim(path, content, mode, 0, 0)
