"""Errors a caller can act on. Anything else a check raises becomes ERROR in the report."""

from __future__ import annotations

__all__ = [
    "HostKeyError",
    "InventoryError",
    "ProfileError",
    "ReadinessError",
    "TransportError",
    "TunnelError",
    "UsageError",
]


class ReadinessError(Exception):
    """Base class: a problem the user can fix, reported in one line without a traceback."""

    exit_code = 2


class UsageError(ReadinessError):
    """Bad flags or arguments (unknown check, bad format, ...)."""


class InventoryError(ReadinessError):
    """An inventory that cannot be read or a pattern that cannot be resolved.

    ``source`` and ``line`` point at the offending file and line when known.
    """

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        super().__init__(f"{where}{message}")


class ProfileError(ReadinessError):
    """A profile file that cannot be read or merged."""


class TransportError(ReadinessError):
    """A host could not be reached or a command could not be run on it."""

    exit_code = 1


class HostKeyError(TransportError):
    """The host's key is unknown or changed: we never trust it silently."""


class TunnelError(TransportError):
    """A service could not be reached through the host's SSH connection.

    ``refused`` is true when the host could not connect to the destination (nothing
    listening), so callers can word it as they word a refused direct connection.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
