"""Helpers shared by the remediation tests: a content hash of a whole directory tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_hash(root: Path) -> str:
    """Every path under ``root`` with its type, mode and bytes (mtimes left out)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            p = Path(dirpath) / name
            st = p.lstat()
            h.update(f"{p.relative_to(root)}\0{st.st_mode:o}\0".encode())
            if p.is_symlink():
                h.update(str(p.readlink()).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}
