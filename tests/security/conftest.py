"""Fixtures of the hostile-host tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A 0755 directory under /tmp (pytest's tmp_path has root-only parents nobody cannot cross)."""
    assert os.geteuid() == 0, "the hostile-host tests run as root, like readiness under --sudo"
    path = Path(tempfile.mkdtemp(prefix="readiness-hostile-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
