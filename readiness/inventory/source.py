"""Where inventory text came from: file:line positions for errors, and the file a value came from.

A value's origin fills in ``{{ inventory_dir }}`` and ``{{ inventory_file }}``; every other
``{{ ... }}`` is kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from readiness.errors import InventoryError

__all__ = ["Origin", "Where", "plain", "read_text"]


@dataclass(frozen=True)
class Where:
    """A place in an inventory source: its path and, when known, a 1-based line."""

    path: str
    line: int | None = None

    @property
    def text(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def at(self, line: int | None) -> Where:
        return Where(self.path, line)

    def error(self, message: str) -> InventoryError:
        return InventoryError(message, source=self.path, line=self.line)


@dataclass(frozen=True)
class Origin:
    """What ``{{ inventory_dir }}`` and ``{{ inventory_file }}`` mean for values from one file."""

    directory: Path
    file: Path


_INVENTORY_REF = re.compile(r"\{\{\s*inventory_(dir|file)\s*\}\}")


def plain(value: Any, origin: Origin) -> Any:
    """A plain copy of a loaded value with the inventory_dir/inventory_file references filled in."""
    if isinstance(value, str):
        return _INVENTORY_REF.sub(lambda m: str(_origin_part(origin, m.group(1))), value)
    if isinstance(value, Mapping):
        return {str(key): plain(item, origin) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, origin) for item in value]
    return value


def _origin_part(origin: Origin, part: str) -> Path:
    return origin.directory if part == "dir" else origin.file


def read_text(path: Path, *, comments: bool = False) -> str:
    """A file's text; a byte that is not UTF-8 is an error naming its line.

    With ``comments`` (INI), a ``#``/``;`` comment line that is not UTF-8 reads as empty, as
    Ansible reads it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryError(
            f"cannot read inventory: {exc.strerror or exc}", source=str(path)
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            if comments and line[:1] in (b"#", b";"):
                lines.append("")
                continue
            raise InventoryError(
                f"not valid UTF-8: byte 0x{line[exc.start]:02x} at column {exc.start + 1}",
                source=str(path),
                line=number,
            ) from None
    return "\n".join(lines)
