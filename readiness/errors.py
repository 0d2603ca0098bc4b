"""Errors a caller can act on. Anything else a check raises becomes ERROR in the report."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = [
    "HostKeyError",
    "InventoryError",
    "ProfileError",
    "ReadinessError",
    "SshConfigUnusable",
    "TransportError",
    "TunnelError",
    "UsageError",
    "refuse_foreign_link",
    "refuse_unless_creatable",
    "refuse_unless_writable",
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


class SshConfigUnusable(TransportError):
    """An ssh_config that ssh itself would refuse: every ssh host of the run is UNREACHABLE
    with it (as ssh fails before connecting), and a command that only reads the
    configuration (``readiness inventory``) exits 2, as for any other bad value."""

    exit_code = 2


class TunnelError(TransportError):
    """A service could not be reached through the host's SSH connection.

    ``refused`` is true when the host could not connect to the destination (nothing
    listening), so callers can word it as they word a refused direct connection.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def refuse_unless_creatable(directory: Path, what: str) -> None:
    """A :class:`UsageError` naming ``what`` unless a file can be created in ``directory``
    (or, when it does not exist yet, in its nearest existing ancestor, where it would be
    made): probed with a temporary file that is removed, so a refused run leaves nothing.
    Checked before any work, so a report or log that cannot be written never costs a run."""
    import tempfile  # only when a file is to be written: start-up does not pay for it

    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what}: cannot write: {probe} is not a directory")
    # An unnamed O_TMPFILE inode first: the directory never gets a name, so neither a
    # Ctrl-C nor a watcher of the directory can see a probe file (signals_held below blocks
    # only this thread: a process-directed SIGINT may run its handler from another
    # thread's delivery, as CI's threads showed).
    o_tmpfile = getattr(os, "O_TMPFILE", 0)
    if o_tmpfile:
        try:
            os.close(os.open(probe, o_tmpfile | os.O_WRONLY, 0o600))
            return
        except OSError as exc:
            if exc.errno not in _NO_TMPFILE:
                raise UsageError(f"{what}: cannot write in {probe}: {exc.strerror}") from None
    from .interrupt import signals_held

    # held: a Ctrl-C between the creation and the removal left the file in the user's
    # directory; it now comes right after the removal (and the removal is in a finally)
    with signals_held():
        try:
            fd, tmp = tempfile.mkstemp(prefix=".readiness-write-check.", dir=probe)
        except OSError as exc:
            raise UsageError(f"{what}: cannot write in {probe}: {exc.strerror}") from None
        try:
            os.close(fd)
        finally:
            Path(tmp).unlink(missing_ok=True)


# A file system without O_TMPFILE (an old kernel, some network file systems) says so
# with one of these; the named probe file is used there.
_NO_TMPFILE = frozenset((errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL))


def refuse_unless_writable(path: Path, what: str, *, append: bool = False) -> None:
    """A :class:`UsageError` naming ``what`` unless the file ``path`` can be written: an
    existing one must be a regular file that opens for writing (opened for appending, which
    changes nothing); then, unless it is only appended to in place (``append``), its
    directory must let a file be created (:func:`refuse_unless_creatable`), since reports
    are written to a temporary file there and renamed over it. The one check behind
    ``--save``, ``--report`` and ``--audit-log``."""
    refuse_foreign_link(path, what)
    if not append and _names_a_descriptor(path):
        # /dev/stdout of a job whose output goes to a file resolves to a regular file, and
        # the rename replaced the /dev/stdout link itself (as root: for the whole machine)
        raise UsageError(f"{what}: cannot write: {path} is a file descriptor, not a regular file")
    if path.exists():
        if path.is_dir():
            raise UsageError(f"{what}: cannot write: {path} is a directory")
        if not path.is_file():
            raise UsageError(f"{what}: cannot write: {path} is not a regular file")
        try:
            with path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise UsageError(f"{what}: cannot write: {exc.strerror}") from None
        if append:
            return
    # save() renames over the file a symlink names (the link stays): that directory counts
    refuse_unless_creatable(Path(os.path.realpath(path)).parent, what)


def refuse_foreign_link(path: Path, what: str) -> None:
    """A :class:`UsageError` when a symbolic link on the way to the file ``path`` names (any
    component, any hop) sits in a shared directory (sticky and world-writable, as /tmp) and
    belongs to neither this user nor that directory's owner: another user's link, which the
    kernel does not follow either (fs.protected_symlinks). save() resolves links itself
    (realpath, then a rename at the target), which no such setting guards: ``--save
    /tmp/r.json`` through a link ``nobody`` planted there replaced the root-owned file it
    named, or created one wherever a dangling link pointed; a link for a directory on the
    way (``/tmp/d -> /home/nobody/d``, holding ``r.json -> /etc/...``) did the same."""
    pending = list(Path(os.path.normpath(Path.cwd() / path)).parts[1:])
    current = Path("/")  # resolved: no link in it
    hops = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        try:
            link = candidate.lstat()
            if not stat.S_ISLNK(link.st_mode):
                current = candidate
                continue
            where = current.stat()
            target = candidate.readlink()
        except OSError:
            return  # nothing there (yet), or unreadable: the checks after this one say so
        shared = where.st_mode & stat.S_ISVTX and where.st_mode & stat.S_IWOTH
        if shared and link.st_uid not in (os.geteuid(), where.st_uid):
            raise UsageError(
                f"{what}: cannot write: {candidate} is a symbolic link of another user "
                f"(uid {link.st_uid}) in the shared directory {current}: not followed"
            )
        hops += 1
        if hops > 40:  # the kernel's own limit on symlink hops: ELOOP, said by the next check
            return
        if target.is_absolute():
            current = Path("/")
        pending = [*target.parts[1 if target.is_absolute() else 0 :], *pending]


def _names_a_descriptor(path: Path) -> bool:
    """Whether ``path`` is, or links (in any hop) to, /proc/<pid>/fd/N or /dev/fd/N: an open
    descriptor of this process (/dev/stdout, /dev/stderr), never a file to replace."""
    current = Path(os.path.normpath(Path.cwd() / path))  # no link resolved yet
    for _ in range(40):  # the kernel's own limit on symlink hops
        parts = current.parts
        if (parts[1:2] == ("proc",) and parts[3:4] == ("fd",)) or parts[1:3] == ("dev", "fd"):
            return True
        if not current.is_symlink():
            return False
        current = Path(os.path.normpath(current.parent / current.readlink()))
    return False
