"""The host-side applier of remediation: stdlib only, Python 3.8+, one run per request.

It travels exactly like the probe (``readiness.collect.bootstrap_argv``: a constant
command line, this source and a JSON request on stdin) and answers one JSON
document on stdout. Four operations:

``read``     the current bytes, mode and owner of some paths (the planner's input).
``apply``    snapshot everything the changes touch, then apply them; on any error
             the snapshot is restored before answering, so a fix is all or nothing.
``restore``  put a snapshot back byte for byte (the controller asks for it when the
             re-audit shows the fix did not make its check pass).
``prune``    once the re-audit verified a fix: drop the oldest backups of the files it
             backed up beyond ``keep_backups`` (never earlier, so a revert loses none).

One change is not a file: ``run_command`` runs the app's own command (its database
migrations) as an argv, never through a shell, with a timeout, in its own process
group, output captured and capped. What it changes cannot be snapshotted, so it
cannot be restored; the controller says so instead of claiming a revert.

Every change "ensures" a state, so applying twice changes nothing the second time.
Nothing is deleted except what this same fix created, and an existing file is only
rewritten after a ``<file>.readiness-bak.<stamp>`` copy of it was kept. Secrets
(``set_env``) are generated here with :mod:`secrets` and never leave the host.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

APPLIER_VERSION = 1
SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024
BACKUP_MARK = ".readiness-bak."
CRONTAB = "crontab:"  # snapshot key of a crontab: "crontab:" (own) or "crontab:<user>"
# A ``read`` path that asks how a cron line would be judged: CRON_JUDGEMENT + JSON
# {"user", "command"} (readiness.remediate.fixers.backup_restore.cron_judgement_key).
CRON_JUDGEMENT = "cron-runs:"
OUTPUT_MAX_BYTES = 64 * 1024  # the tail of a command's output that is kept
SECRET_FILE_NOT_FOR = 0o007  # a file a new secret is written into is not for others
KEEP_BACKUPS = 5  # backups of one file kept (the request's keep_backups overrides it)
# After an apply is stopped (its own deadline, a hang-up, SIGTERM): the time it has to put
# back what the fix changed before the bootstrap's deadline ends it (a crontab takes up to
# 10 s). The controller waits this long beyond ``work_s`` for the answer.
RESTORE_RESERVE_S = 15
# Process groups of running commands (own sessions): the bootstrap (readiness.collect)
# kills them before it exits on a hang-up, SIGTERM or its deadline.
CHILD_GROUPS = globals().setdefault("READINESS_CHILD_GROUPS", set())
# Not empty while a command is being started (see readiness.probe.SPAWNING).
SPAWNING = globals().setdefault("READINESS_SPAWNING", [])
# Not empty once the applier is a child subreaper (see readiness.probe.REAPER): what a
# command moves out of its group (`setsid`, a double fork) is re-parented to the applier,
# which ends it with the command; the bootstrap ends it before it exits on a stop.
REAPER = globals().setdefault("READINESS_REAPER", [])
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")

Snapshot = Dict[str, Dict[str, Any]]


class ApplyError(Exception):
    """A change that cannot be made safely; the whole fix is rolled back."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Stopped(BaseException):
    """The apply must stop now: its ``work_s`` passed, it was hung up, or terminated. A
    BaseException, so no ``except`` of a change swallows it: ``op_apply`` undoes the fix."""


# While not empty, a stop waits (``_PENDING``) for the section to end: between creating a
# path and recording it as created, and while a command is being started.
_CRITICAL: List[int] = []
_PENDING: List[str] = []
_WORKING: List[int] = []  # not empty while op_apply makes the changes: a stop may raise
_STOP_WHY: Dict[int, str] = {
    signal.SIGALRM: "its deadline%s passed",
    signal.SIGHUP: "it was hung up (the controller gave up or was interrupted)",
    signal.SIGTERM: "it was terminated (SIGTERM)",
}


class _critical:
    """A section a stop never cuts: the stop is raised when it ends (if it ends normally;
    an error leaving it is undone the same way)."""

    def __enter__(self) -> None:
        _CRITICAL.append(1)

    def __exit__(self, kind: Any, *_: Any) -> None:
        _CRITICAL.pop()
        if kind is None and _WORKING and not _CRITICAL and not SPAWNING and _PENDING:
            raise _Stopped(_PENDING[0])


class Refused(ApplyError):
    """A change readiness will not make on this host as it stands (a link, a path outside)."""

    def __init__(self, message: str) -> None:
        super().__init__("refused: " + message)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_MAX_LINK_HOPS = 40


def _split(path: str) -> Tuple[str, str]:
    """(parent, name) of an absolute path; a name of '.' or '..' is refused."""
    if not path.startswith("/"):
        raise ApplyError("%s is not an absolute path" % path)
    parent, name = os.path.split(os.path.normpath(path))
    if name in ("", ".", ".."):
        raise ApplyError("%s does not name a file" % path)
    return parent or "/", name


def _link_is_trusted(dir_fd: int, link: os.stat_result) -> bool:
    """A symlink only root could have put there: root's, in a root-owned directory that
    nobody else can write (or that is sticky, so nobody else can replace root's entry)."""
    if link.st_uid != 0:
        return False
    st = os.fstat(dir_fd)
    loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX
    return st.st_uid == 0 and not loose


def _open_dir(path: str, fix: "Optional[_Fix]" = None) -> int:
    """An fd of directory ``path``, opened component by component (openat-style).

    A symlink on the way is followed only if root controls it (``_link_is_trusted``):
    one the app user could have planted is refused, so no write lands where it points.
    With ``fix``, missing directories are created (owned like their parent, recorded).
    """
    todo = [c for c in os.path.normpath(path).split("/") if c]
    fd = os.open("/", _DIR_FLAGS)
    where = ""
    hops = 0
    try:
        while todo:
            name = todo.pop(0)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if fix is None:
                    raise
                st = fix.make_dir_at(fd, where + "/" + name, name, 0o755)
            if stat.S_ISLNK(st.st_mode):
                if not _link_is_trusted(fd, st):
                    raise Refused(
                        "%s/%s is a symlink that %s could have planted; readiness does not "
                        "follow it" % (where, name, _user_name(st.st_uid))
                    )
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise ApplyError("too many symlinks under %s" % path)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd, where = os.open("/", _DIR_FLAGS), ""
                todo = [c for c in target.split("/") if c] + todo
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise ApplyError("%s/%s is not a directory" % (where, name))
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            where = os.path.dirname(where) if name == ".." else where + "/" + name
        return fd
    except BaseException:
        os.close(fd)
        raise


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _read_state(path: str, max_bytes: int = SNAPSHOT_MAX_BYTES) -> Dict[str, Any]:
    """What is at ``path`` now, never following a link at its last component."""
    parent, name = _split(path)
    try:
        dfd = _open_dir(parent)
    except (FileNotFoundError, NotADirectoryError):
        return {"exists": False}
    except ApplyError as exc:
        if isinstance(exc, Refused):
            raise
        return {"exists": False}
    try:
        return _state_at(dfd, name, max_bytes)
    finally:
        os.close(dfd)


def _state_at(dfd: int, name: str, max_bytes: int) -> Dict[str, Any]:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return {"exists": False}
    out: Dict[str, Any] = {
        "exists": True,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "ino": st.st_ino,
        "nlink": st.st_nlink,
    }
    if stat.S_ISDIR(st.st_mode):
        out["type"] = "dir"
        return out
    if stat.S_ISLNK(st.st_mode):
        out["type"] = "link"
        out["target"] = os.readlink(name, dir_fd=dfd)
        return out
    if not stat.S_ISREG(st.st_mode):
        out["type"] = "other"
        return out
    out["type"] = "file"
    if st.st_size > max_bytes:
        out["too_large"] = True
        return out
    fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    try:
        fst = os.fstat(fd)
        if fst.st_ino != st.st_ino or not stat.S_ISREG(fst.st_mode):
            raise ApplyError("%s changed while it was read" % name)
        chunks = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        out["too_large"] = True
        return out
    out["sha256"] = _sha(data)
    out["content_b64"] = base64.b64encode(data).decode("ascii")
    return out


def _content(state: Dict[str, Any]) -> bytes:
    return base64.b64decode(state.get("content_b64") or "")


def _crontab_argv(user: Optional[str], *args: str) -> List[str]:
    """``crontab [-u USER] ARGS``; a user name that could be read as an option is refused."""
    if not user:
        return ["crontab", *args]
    if not _USER_NAME.match(user):
        raise ApplyError("invalid crontab user name %r" % user)
    return ["crontab", "-u", user, *args]


def _crontab_state(user: Optional[str] = None) -> Dict[str, Any]:
    try:
        proc = subprocess.run(
            _crontab_argv(user, "-l"), capture_output=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"exists": None, "error": str(exc)}
    if proc.returncode != 0:  # "no crontab for user" is exit 1
        return {"exists": False}
    return {"exists": True, "content_b64": base64.b64encode(proc.stdout).decode("ascii")}


def _set_crontab(data: Optional[bytes], user: Optional[str] = None) -> None:
    argv = _crontab_argv(user, "-r") if data is None else _crontab_argv(user, "-")
    try:
        proc = subprocess.run(argv, input=data or b"", capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        # an ApplyError, so the fix is undone (restore) and reported in one line
        raise ApplyError("`%s` did not finish within 10 s" % shlex.join(argv)) from None
    if proc.returncode != 0 and data is not None:
        raise ApplyError("crontab -: " + proc.stderr.decode("utf-8", "replace").strip()[:300])


def _write_atomic(path: str, data: bytes, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Write via a temporary file in the same directory and rename it over ``path``.

    Everything happens relative to the directory's fd, and the temporary file's metadata
    is set on its own fd (``fchmod``/``fchown``), created ``O_EXCL|O_NOFOLLOW``: a process
    that swaps names in the directory meanwhile cannot redirect any of it. As root, a file
    with no given owner gets its directory's owner (no root-owned leftovers in the app tree).
    """
    parent, name = _split(path)
    dfd = _open_dir(parent)
    try:
        _write_at(dfd, path, name, data, mode=mode, owner=(uid, gid))
    finally:
        os.close(dfd)


# The signals that end a host-side run at once (the bootstrap's hang-up, SIGTERM, deadline
# and SIGPIPE handlers exit without unwinding).
_ENDING = (signal.SIGHUP, signal.SIGTERM, signal.SIGALRM, signal.SIGPIPE)


def _whole(write: Callable[..., None]) -> Callable[..., None]:
    """``write`` with the ending signals held back while it runs (the applier runs no other
    thread): a hang-up or the deadline then acts the moment the file is written, or its
    temporary file removed, instead of leaving ``.readiness-tmp-*`` (the new content, a
    fresh secret for the environment fixer) in the app's directory."""

    def held(*args: Any, **kwargs: Any) -> None:
        try:
            before = signal.pthread_sigmask(signal.SIG_BLOCK, _ENDING)
        except (AttributeError, OSError, ValueError):  # no pthread_sigmask here
            return write(*args, **kwargs)
        try:
            return write(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    return held


@_whole
def _write_at(
    dfd: int, path: str, name: str, data: bytes, *, mode: int, owner: Tuple[int, int]
) -> None:
    uid, gid = owner
    tmp = ".readiness-tmp-%s" % secrets.token_hex(8)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if os.geteuid() == 0:
            if uid < 0:
                dst = os.fstat(dfd)
                uid, gid = dst.st_uid, dst.st_gid
            os.fchown(fd, uid, gid)
        elif uid >= 0:
            # Without root the new inode is this account's, in its own group: give it the
            # file's group back (one this account is in), or stop before the rename.
            made = os.fstat(fd)
            if (made.st_uid, made.st_gid) != (uid, gid):
                try:
                    os.fchown(fd, uid, gid)
                except PermissionError:
                    raise Refused(_owner_refusal(path, uid, gid)) from None
        os.fchmod(fd, mode)  # after the chown, which may clear set-id bits
        os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        mine = os.fstat(fd)
        now = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            raise Refused("%s was swapped while readiness wrote it (a race); stopped" % path)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)  # unlink never follows a link
        except OSError:
            pass
        raise
    finally:
        os.close(fd)


class _Fix:
    """One fix being applied: what was there before, what this run created."""

    def __init__(self, stamp: str, keep_backups: int = KEEP_BACKUPS) -> None:
        self.stamp = stamp
        self.keep_backups = max(1, keep_backups)
        self.snapshot: Snapshot = {}
        self.created: List[str] = []  # files and directories, in creation order
        self.backups: List[str] = []
        self.pruned: List[str] = []
        self.outputs: Dict[str, str] = {}  # change index -> the tail of a command's output
        # What this fix wrote: path (or crontab key) -> SHA-256 of the bytes, recorded before
        # the write. A revert puts back only what still holds them (``restore``).
        self.written: Dict[str, str] = {}

    def remember(self, path: str) -> Dict[str, Any]:
        if path not in self.snapshot:
            state = _read_state(path)
            if state.get("too_large"):
                raise ApplyError("%s is too large to snapshot; not touched" % path)
            self.snapshot[path] = state
        return self.snapshot[path]

    def remember_crontab(self, user: Optional[str] = None) -> Dict[str, Any]:
        key = CRONTAB + (user or "")
        if key not in self.snapshot:
            state = _crontab_state(user)
            if state.get("exists") is None:
                raise ApplyError("cannot read the crontab: %s" % state.get("error"))
            self.snapshot[key] = state
        return self.snapshot[key]

    def make_dir_at(self, dfd: int, path: str, name: str, mode: int) -> os.stat_result:
        """mkdir ``name`` in ``dfd``; as root it gets the parent's owner. Recorded as created."""
        self.snapshot.setdefault(path, {"exists": False})
        with _critical():  # made and recorded, or neither: a stop undoes what is recorded
            os.mkdir(name, mode, dir_fd=dfd)
            self.created.append(path)
        fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                parent = os.fstat(dfd)
                os.fchown(fd, parent.st_uid, parent.st_gid)
        finally:
            os.close(fd)
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)

    def make_parents(self, path: str) -> None:
        os.close(_open_dir(_split(path)[0], self))

    def backup(self, path: str, state: Dict[str, Any]) -> None:
        """Keep a private (0600) copy of ``path``, as snapshotted, before it is rewritten;
        older copies beyond ``keep_backups`` are pruned (they may hold old secrets)."""
        parent, name = _split(path)
        dfd = _open_dir(parent)
        try:
            target = "%s%s%s" % (name, BACKUP_MARK, self.stamp)
            tries = 1
            while _exists_at(dfd, target):
                # Taken (an earlier fix within the same second, or a planted name): a random
                # suffix cannot be guessed in advance, so a bounded number of tries suffices
                # however many copies a fast run or an attacker left behind.
                tries += 1
                if tries > 100:
                    raise Refused("%s: too many backup names are taken" % path)
                target = "%s%s%s.%s" % (name, BACKUP_MARK, self.stamp, os.urandom(4).hex())
            full = os.path.join(parent, target)
            self.snapshot.setdefault(full, {"exists": False})
            owner = (int(state["uid"]), int(state["gid"]))
            with _critical():
                self.written[full] = _sha(_content(state))
                _write_at(dfd, full, target, _content(state), mode=0o600, owner=owner)
                self.created.append(full)
                self.backups.append(full)
        finally:
            os.close(dfd)

    def prune_backups(self) -> None:
        """After a fix succeeded: of each file's backups keep the newest ``keep_backups``."""
        for path in sorted({b.split(BACKUP_MARK, 1)[0] for b in self.backups}):
            parent, name = _split(path)
            dfd = _open_dir(parent)
            try:
                self._prune(dfd, parent, name)
            finally:
                os.close(dfd)

    def _prune(self, dfd: int, parent: str, name: str) -> None:
        prefix = name + BACKUP_MARK
        copies = []
        for entry in os.listdir(dfd):
            if not entry.startswith(prefix):
                continue
            st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                copies.append((st.st_mtime, entry))
        copies.sort()
        mine = {os.path.basename(b) for b in self.backups}
        for _, entry in copies[: max(0, len(copies) - self.keep_backups)]:
            if entry in mine:
                continue
            os.unlink(entry, dir_fd=dfd)  # never follows: a planted link is removed, not its target
            self.pruned.append(os.path.join(parent, entry))


def _exists_at(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _refuse_links(path: str, state: Dict[str, Any], what: str) -> None:
    """Never act through a link (or on a FIFO, socket or device) at a path a fix touches."""
    if state.get("type") == "link":
        raise Refused(
            "%s is a symlink (to %s); readiness does not %s through links: point the "
            "setting at the file itself" % (path, state.get("target"), what)
        )
    if state.get("type") == "other":
        raise Refused(
            "%s is not a regular file or directory; readiness does not %s it" % (path, what)
        )


def _expect(state: Dict[str, Any], change: Dict[str, Any]) -> None:
    want = change.get("expect_sha256")
    if want and state.get("sha256") != want:
        raise ApplyError("%s changed since the plan was made; re-run remediate" % change["path"])


def _confine(path: str, change: Dict[str, Any]) -> None:
    """Paths that came from host data must stay under the tree named in ``confine_to``."""
    root = change.get("confine_to")
    if not root:
        return
    root = os.path.normpath(str(root))
    if os.path.commonpath([root, os.path.normpath(path)]) != root:
        raise Refused("%s is outside %s; readiness does not create it" % (path, root))


def ch_ensure_dir(fix: _Fix, change: Dict[str, Any]) -> str:
    path, mode = change["path"], int(change["mode"])
    _confine(path, change)
    state = fix.remember(path)
    _refuse_links(path, state, "create a directory")
    if state.get("exists") and state.get("type") != "dir":
        raise ApplyError("%s exists and is not a directory" % path)
    parent, name = _split(path)
    dfd = _open_dir(parent, fix)
    done = []
    try:
        if state.get("exists") or _exists_at(dfd, name):
            # An existing directory is left as it is: its owner may be deliberate (another
            # service's queue), and "create, append or tighten" never includes a chown.
            return ""
        fix.make_dir_at(dfd, path, name, mode)
        done.append("created")
        owner = _owner_of(change.get("owner_of"))
        if owner is not None and os.geteuid() == 0:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                st = os.fstat(fd)
                if (st.st_uid, st.st_gid) != owner:
                    os.fchown(fd, owner[0], owner[1])
                    done.append("owner set")
            finally:
                os.close(fd)
    finally:
        os.close(dfd)
    return ", ".join(done) if done else ""


def _owner_of(reference: Optional[str]) -> Optional[Tuple[int, int]]:
    if not reference:
        return None
    try:
        st = os.stat(reference)
    except OSError:
        return None
    return (st.st_uid, st.st_gid)


def ch_create_file(fix: _Fix, change: Dict[str, Any]) -> str:
    path = change["path"]
    data = change["content"].encode("utf-8")
    state = fix.remember(path)
    if state.get("exists"):
        if state.get("sha256") == _sha(data):
            return ""
        # Never overwrite: an existing file (even a different one) is left as it is.
        return "exists, left untouched"
    fix.make_parents(path)
    owner = _owner_of(change.get("owner_of")) or (-1, -1)
    with _critical():
        fix.written[path] = _sha(data)
        _write_atomic(path, data, int(change.get("mode", 0o644)), owner[0], owner[1])
        fix.created.append(path)
    return "created"


def _keeps_owner(uid: int, gid: int) -> bool:
    """Whether a new version of a file owned ``uid:gid`` can be given that owner."""
    return os.geteuid() == 0 or (uid == os.geteuid() and gid in (os.getegid(), *os.getgroups()))


def _hard_link_refusal(path: str, links: int) -> str:
    return (
        "%s has %d hard links; readiness does not rewrite a file that also lives elsewhere "
        "(its other names would keep the old text): edit it by hand" % (path, links)
    )


def _owner_refusal(path: str, uid: int, gid: int) -> str:
    return (
        "%s belongs to %s:%s; %s cannot give a new version that owner and group without "
        "root, so readiness does not rewrite it: re-run with --sudo or as its owner"
        % (path, _user_name(uid), _group_name(gid), _user_name(os.geteuid()))
    )


def _rewrite(
    fix: _Fix, path: str, state: Dict[str, Any], data: bytes, mode: Optional[int] = None
) -> None:
    uid, gid = int(state["uid"]), int(state["gid"])
    if int(state.get("nlink") or 1) > 1:
        # A new version is a new inode renamed over this name: the file's other names (a
        # hard link the service reads) would keep the old text while the fix said done.
        raise Refused(_hard_link_refusal(path, int(state["nlink"])))
    if not _keeps_owner(uid, gid):
        # A rename puts a new inode in place: it would be this account's, not the file's
        # owner's (a service reading its env file through the group would lose it).
        raise Refused(_owner_refusal(path, uid, gid))
    fix.backup(path, state)
    mode = int(state["mode"]) if mode is None else mode
    fix.written[path] = _sha(data)
    _write_atomic(path, data, mode, int(state["uid"]), int(state["gid"]))


def _refuse_root_running_foreign_code(change: Dict[str, Any]) -> None:
    """A cron line that root would run: the code it runs (``_shell_code_paths``: cron hands
    the line to ``sh`` in the user's home, so ``cd /srv/app && ./bin/x``, ``sh -c '...'``,
    ``make -C dir`` and ``$(...)`` run code too) and every directory above it must be
    root's and not writable by group or others, else whoever can change it gets root at
    the next run. A bare name (``pg_dump``) is found on cron's own PATH. A line whose code
    cannot be told from its text is refused. With ``backup_cron_user`` set to the app's
    user the line is accepted."""
    runs = change.get("cron_runs")
    if not runs:
        return
    user = runs.get("user")
    if not (user == "root" or (not user and os.geteuid() == 0)):
        return
    command = str(runs.get("command") or "")
    try:
        programs = _shell_code_paths(command, _home_of(user or "root"))
    except _Unfollowed as exc:
        raise Refused(
            "the backup command would run as root from cron, and what it runs cannot be told "
            "from the line (%s): set backup_cron_user to the user the backup should run as" % exc
        ) from None
    for program in dict.fromkeys(programs):
        for path in _with_parents(program) + _with_parents(os.path.realpath(program)):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # only what exists can have been planted; its parents are judged
            except OSError as exc:
                raise Refused(
                    "`%s` would run as root from cron, but %s cannot be judged (%s)"
                    % (program, path, exc)
                ) from None
            sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
            loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(st.st_mode)
            if st.st_uid != 0 or (loose and not sticky_dir):
                who = _user_name(st.st_uid) if st.st_uid != 0 else "group or others"
                raise Refused(
                    "`%s` would run as root from cron, but %s can change %s: set "
                    "backup_cron_user to the user the backup should run as" % (program, who, path)
                )


def _home_of(user: str) -> str:
    try:
        return pwd.getpwnam(user).pw_dir or "/"
    except KeyError:
        return "/"


def _with_parents(path: str) -> List[str]:
    """``/a/b/c`` -> ``["/a/b/c", "/a/b", "/a", "/"]``."""
    out = [os.path.normpath(path)]
    while out[-1] != "/":
        out.append(os.path.dirname(out[-1]))
    return out


def ch_append_lines(fix: _Fix, change: Dict[str, Any]) -> str:
    path = change["path"]
    _refuse_root_running_foreign_code(change)
    block = ("\n".join(change["lines"]) + "\n").encode("utf-8")
    state = fix.remember(path)
    _refuse_links(path, state, "append")
    if not state.get("exists"):
        fix.make_parents(path)
        with _critical():
            fix.written[path] = _sha(block)
            _write_atomic(path, block, int(change.get("mode", 0o644)))
            fix.created.append(path)
        return "created"
    if state.get("type") != "file":
        raise ApplyError("%s is not a regular file" % path)
    old = _content(state)
    if block.strip() in old:
        return ""
    _expect(state, change)
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    _rewrite(fix, path, state, old + sep + block)
    return "appended %d line(s)" % len(change["lines"])


def ch_edit_file(fix: _Fix, change: Dict[str, Any]) -> str:
    """Replace a file's content by the planned text (only if it is still what was planned on)."""
    path = change["path"]
    data = change["content"].encode("utf-8")
    state = fix.remember(path)
    _refuse_links(path, state, "edit")
    if state.get("type") != "file":
        raise ApplyError("%s is not a regular file" % path)
    if state.get("sha256") == _sha(data):
        return ""
    _expect(state, change)
    _rewrite(fix, path, state, data)
    return "rewritten (backup kept)"


def _fchmod_at(path: str, mode: int, ino: Optional[int] = None) -> None:
    """chmod through an ``O_NOFOLLOW`` fd of ``path`` (the very inode that was snapshotted)."""
    parent, name = _split(path)
    dfd = _open_dir(parent)
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        flags = _DIR_FLAGS if stat.S_ISDIR(st.st_mode) else _FILE_FLAGS
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise Refused("%s is not a regular file or directory; its mode is not changed" % path)
        fd = os.open(name, flags, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        if ino is not None and os.fstat(fd).st_ino != ino:
            raise ApplyError("%s was replaced since it was snapshotted" % path)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def ch_chmod(fix: _Fix, change: Dict[str, Any]) -> str:
    """Only ever removes permission bits: the new mode is ``current & mode``."""
    path = change["path"]
    state = fix.remember(path)
    if not state.get("exists"):
        raise ApplyError("%s does not exist" % path)
    _refuse_links(path, state, "chmod")
    if state.get("type") == "file" and int(state.get("nlink") or 1) > 1:
        # A mode belongs to the inode: a hard link (made where protected_hardlinks is off)
        # would change the file it shares with some other path too.
        raise Refused(
            "%s has %d hard links; readiness does not chmod a file that also lives elsewhere"
            % (path, int(state["nlink"]))
        )
    new = int(state["mode"]) & int(change["mode"])
    if new == int(state["mode"]):
        return ""
    _fchmod_at(path, new, state.get("ino"))
    return "mode %04o -> %04o" % (int(state["mode"]), new)


def ch_crontab(fix: _Fix, change: Dict[str, Any]) -> str:
    _refuse_root_running_foreign_code(change)
    line = change["line"].strip()
    user = change.get("user") or None
    state = fix.remember_crontab(user)
    old = _content(state) if state.get("exists") else b""
    if any(l.strip() == line for l in old.decode("utf-8", "replace").splitlines()):
        return ""
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    new = old + sep + line.encode("utf-8") + b"\n"
    fix.written[CRONTAB + (user or "")] = _sha(new)
    _set_crontab(new, user)
    return "crontab line added"


# Interpreters: the code they run is their script (or, for python -m/-c, the working
# directory), not the interpreter binary. The same rule as readiness/checks/_owned.py
# (``code_paths``); this file runs on the host alone, so it cannot import it.
_INTERPRETER = re.compile(r"(python|pypy)[0-9.]*|sh|bash|dash|zsh|ksh|node|nodejs|ruby|perl|php")


# ``_owned.MAX_WRAPPED_WORDS``
MAX_WRAPPED_WORDS = 256
# Programs that run a command given in their arguments: ``_owned._WRAPPERS``.
_WRAPPERS = frozenset(
    {
        "env",
        "nice",
        "ionice",
        "nohup",
        "setsid",
        "timeout",
        "stdbuf",
        "chrt",
        "taskset",
        "flock",
        "time",
        "exec",
        "command",
        "xargs",
    }
)


# Programs whose code is a file of their working directory: ``_owned._CWD_RUNNERS``.
_CWD_RUNNERS = {
    "make": ("Makefile", "makefile", "GNUmakefile"),
    "gmake": ("Makefile", "makefile", "GNUmakefile"),
    "npm": ("package.json",),
    "yarn": ("package.json",),
    "pnpm": ("package.json",),
    "just": ("justfile", "Justfile", ".justfile"),
    "rake": ("Rakefile", "rakefile"),
    "invoke": ("tasks.py",),
    "inv": ("tasks.py",),
}


def _env_command(argv: List[str]) -> Optional[List[str]]:
    """The command ``env [OPTION]... [NAME=VALUE]... COMMAND`` runs, or None when its options
    change what runs in ways not followed (``-C``, ``-S``): ``_owned.env_command``."""
    rest = list(argv[1:])
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            return rest[i + 1 :]
        if word.startswith("--"):
            if word.startswith(("--chdir", "--split-string")):
                return None
            i += 2 if word == "--unset" else 1
        elif word.startswith("-") and word != "-":
            if "C" in word or "S" in word:
                return None
            i += 2 if word.endswith("u") else 1
        elif "=" in word or word == "-":
            i += 1
        else:
            break
    return rest[i:]


def _code_paths(argv: List[str], cwd: str) -> List[str]:
    """The working directory and the paths whose owner ``argv`` runs the code of
    (``_run_paths``)."""
    return [cwd] + [p for p in _run_paths(argv, cwd) if p != cwd]


def _run_paths(
    argv: List[str], cwd: str, memo: Optional[Dict[Tuple[int, str], List[str]]] = None
) -> List[str]:
    """``_owned.code_paths``: an executable given as a path; for an interpreter
    (``python3 manage.py``, ``sh x.sh``) its script arguments, and for ``python -m``/``-c``
    the working directory; through a wrapper or ``env``, those of the command it runs
    (every word when its options cannot be followed); for ``make`` its directory and
    makefiles; for ``sh -c TEXT`` what TEXT runs (``_shell_code_paths``). ``memo``: each
    tail is answered once (a wrapper looks at every tail, and so does each wrapper in it:
    26 words of ``nice`` took minutes); every argv asked with one memo is a tail of the
    first one, in the same directory: its length names it."""
    if not argv:
        return []
    memo = {} if memo is None else memo
    key = (len(argv), cwd)
    if key not in memo:
        memo[key] = _run_paths_of(argv, cwd, memo)
    return list(memo[key])


def _run_paths_of(argv: List[str], cwd: str, memo: Dict[Tuple[int, str], List[str]]) -> List[str]:
    exe = argv[0]
    paths = [os.path.normpath(os.path.join(cwd, exe))] if "/" in exe else []
    name = os.path.basename(exe)
    if name in _WRAPPERS and name != "env":
        # The command may start at any word after the wrapper (`timeout 30 python3 x.py`).
        if len(argv) > MAX_WRAPPED_WORDS:
            # past any real command line: every word may be the code, as for `env -S`
            words = [str(w) for w in argv[1:] if str(w)[:1] != "-" and "=" not in str(w)]
            return paths + [cwd] + [os.path.normpath(os.path.join(cwd, w)) for w in words]
        # The last tail first: each one then finds the shorter ones answered (no deep
        # recursion); listed in the order the words come.
        found = [_run_paths(argv[i:], cwd, memo) for i in range(len(argv) - 1, 0, -1)]
        tails = [p for answer in reversed(found) for p in answer]
        return paths + [p for p in dict.fromkeys(tails) if p not in paths]
    if name == "env":
        inner = _env_command(argv)
        if inner is None:
            # Options may name a directory (env -C) or the command (env -S, flock -c): any
            # word, and any word under any other, may be code.
            words = [a for a in argv[1:] if "=" not in a]
            words = [t for w in words for t in w.split()]
            words = [w for w in words if w[:1] != "-"]
            bases = [cwd] + [os.path.join(cwd, w) for w in words]
            return (
                paths + [os.path.normpath(os.path.join(b, w)) for b in bases for w in words] + [cwd]
            )
        return paths + _run_paths(inner, cwd, memo)
    if name in ("make", "gmake"):
        return paths + _make_paths(argv[1:], cwd)
    if name in _CWD_RUNNERS:
        paths += [cwd] + [os.path.join(cwd, f) for f in _CWD_RUNNERS[name]]
    text = _shell_text(argv[1:]) if name in _SHELLS else None
    if text is not None:
        # `sh -c TEXT`: the code is what TEXT runs; when that cannot be told, every word
        # of it (under the working directory) may be code, as for `env -S`.
        try:
            return paths + _shell_code_paths(text, cwd)
        except _Unfollowed:
            words = [w for w in re.split(r"[\s;&|()<>]+", text) if w and w[:1] != "-"]
            return paths + [cwd] + [os.path.normpath(os.path.join(cwd, w)) for w in words]
    if _INTERPRETER.fullmatch(name):
        args = argv[1:]
        scripts = [a for a in args if a and a[:1] != "-" and not any(c.isspace() for c in a)]
        paths += [os.path.normpath(os.path.join(cwd, a)) for a in scripts]
        if name.startswith(("python", "pypy")) and {"-m", "-c"} & set(args):
            paths.append(cwd)
    return paths


# Shells: ``sh -c TEXT`` runs the code TEXT names: ``_owned._SHELLS``.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_MAKE_ARG = "CfIoW"  # make's options that take an argument
_MAX_SHELL_DEPTH = 4
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
# What a shell would expand in a path (a variable, a command, a glob, ~): not a path as given.
_EXPANDED = re.compile(r"[$`*?\[]|(^|/)~")


class _Unfollowed(ValueError):
    """A shell line whose code cannot be told from its text: ``_owned.Unfollowed``."""


def _make_paths(args: List[str], cwd: str) -> List[str]:
    """The directory make runs in (``-C dir``, ``--directory=dir``) and the makefiles it
    reads there: ``_owned._make_paths``."""
    where, files = cwd, []
    i = 0
    while i < len(args) and args[i] != "--":
        word = args[i]
        i += 1
        flag, value = "", ""
        if word.startswith("--"):
            key, eq, value = word.partition("=")
            flag = {"--directory": "C", "--file": "f", "--makefile": "f"}.get(key, "")
            if flag and not eq:
                value, i = (args[i] if i < len(args) else ""), i + 1
        elif word[:1] == "-":
            at = next((n for n, c in enumerate(word) if n and c in _MAKE_ARG), 0)
            flag, value = (word[at], word[at + 1 :]) if at else ("", "")
            if flag and not value:
                value, i = (args[i] if i < len(args) else ""), i + 1
        if flag == "C":
            where = os.path.normpath(os.path.join(where, value))
        elif flag == "f":
            files.append(value)
    names = files or ["Makefile", "makefile", "GNUmakefile"]
    return [where] + [os.path.normpath(os.path.join(where, f)) for f in names]


def _shell_text(args: List[str]) -> Optional[str]:
    """The TEXT of a shell's ``-c TEXT``: ``_owned._shell_text``."""
    i, command = 0, False
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            return (args[i] if i < len(args) else "") if command else None
        if word[:1] not in ("-", "+") or word in ("-", "+"):
            return word if command else None
        if word in ("-o", "+o", "-O", "+O"):  # `bash -o pipefail -c TEXT`: takes a name
            i += 1
        elif word[:2] != "--" and "c" in word[1:]:
            command = True
    return "" if command else None


def _shell_code_paths(line: str, cwd: str, depth: int = 0) -> List[str]:
    """The code a shell command line runs (``sh -c TEXT``, a cron line): each simple
    command's ``_run_paths`` relative to where the ``cd`` before it moved, and those of
    ``$(...)`` and backquotes: ``_owned.shell_code_paths``."""
    if depth > _MAX_SHELL_DEPTH:
        raise _Unfollowed("shell text nested too deep")
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # no closing quotation
        raise _Unfollowed(str(exc)) from None
    paths: List[str] = []
    where = [cwd]

    def command(words: List[str]) -> None:
        for word in words:
            for found in _SUBSTITUTION.findall(word):
                paths.extend(_shell_code_paths(found[0] or found[1], where[0], depth + 1))
        while words and _ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words:
            return
        name = words[0]
        if "$" in name or "`" in name or name == "eval":
            raise _Unfollowed("the command %r is only known when the shell runs it" % name)
        if name == "cd":
            target = next((w for w in words[1:] if w[:1] != "-"), None)
            if target is None or _EXPANDED.search(target):
                raise _Unfollowed(
                    "`cd %s` moves to a directory only the shell knows" % (target or "")
                )
            where[0] = os.path.normpath(os.path.join(where[0], target))
            return
        if name in (".", "source"):
            words = ["sh", *words[1:2]]  # the file it reads is code, as a shell's script is
        paths.extend(_run_paths(words, where[0]))

    words: List[str] = []
    redirect = False
    for token in tokens:
        if token and all(c in "();<>|&" for c in token):
            if "<" in token or ">" in token:
                if words and words[-1].isdigit():
                    words.pop()  # 2>&1: the descriptor, not a word of the command
                redirect = True
                continue
            command(words)
            words = []
            continue
        if redirect:
            redirect = False  # the file it redirects to or from is no code
            continue
        words.append(token)
    command(words)
    for path in paths:
        if _EXPANDED.search(path):
            raise _Unfollowed("%s is only known when the shell runs the line" % path)
    return paths


def _command_owner(argv: List[str], cwd: str) -> Tuple[int, int]:
    """(uid, gid) of the one non-root user whose code ``argv`` in ``cwd`` runs (0 for root):
    the probe's ``run_as_owner`` rule. The working directory, the executable when
    ``argv[0]`` is a path and an interpreter's script arguments (``_code_paths``) are
    looked at with lstat and stat; two non-root owners, or root-owned code that group or
    others could have changed, are refused."""
    paths = _code_paths(argv, cwd)
    owners: Dict[int, int] = {}  # uid -> gid of the first path it owns
    loose = []
    for path in paths:
        # Whoever can write a directory above the code can put other code at its name, also
        # between this judgement and the exec: the directories vote too (sticky ones protect
        # their entries), as in the probe's ``_code_owner``.
        for parent in _with_parents(os.path.abspath(path))[1:]:
            try:
                st = os.lstat(parent)
            except OSError:
                continue
            owners.setdefault(st.st_uid, st.st_gid)
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
                loose.append(parent)
        for look in (os.lstat, os.stat):
            try:
                st = look(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise Refused(
                    "`%s` was not run: cannot stat %s (%s)" % (argv[0], path, exc)
                ) from exc
            owners.setdefault(st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                loose.append(path)
    users = sorted(set(owners) - {0})
    if len(users) > 1:
        raise Refused(
            "`%s` was not run: its files belong to several users (%s)"
            % (argv[0], ", ".join(_user_name(u) for u in users))
        )
    if not users and loose:
        raise Refused(
            "`%s` was not run: %s is writable by group or others, so it cannot be run as root"
            % (argv[0], loose[0])
        )
    return (users[0], owners[users[0]]) if users else (0, 0)


def _owner_switch(argv: List[str], cwd: str) -> Optional[Tuple[Any, Dict[str, str]]]:
    """As root, for code a non-root user owns (the working directory, or the executable when
    ``argv[0]`` is a path: ``.venv/bin/alembic`` in a root-owned tree): (preexec dropping
    to that user, clean environment), so the app's own command (its migrations) never runs
    as root."""
    if os.geteuid() != 0:
        return None
    uid, owner_gid = _command_owner(argv, cwd)
    if uid == 0:
        return None
    try:
        pw = pwd.getpwuid(uid)
        gid, groups = pw.pw_gid, os.getgrouplist(pw.pw_name, pw.pw_gid)
        env = {"HOME": pw.pw_dir or "/", "USER": pw.pw_name, "LOGNAME": pw.pw_name}
    except KeyError:
        gid, groups, env = owner_gid, [], {"HOME": "/"}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def switch() -> None:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            os._exit(126)

    return switch, env


def _subreaper() -> None:
    """Become a child subreaper (Linux >= 3.4, PR_SET_CHILD_SUBREAPER through ctypes);
    elsewhere, or if the call fails, nothing changes (such a process escapes, as before).
    Only when the applier is the host-side program: imported (a test, a worker), every
    child of its process is not the command's, and ``_end_orphans`` would kill them all."""
    if REAPER or __name__ != "__main__":
        return
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0:
            REAPER.append(1)
    except Exception:  # no ctypes, no prctl (not Linux)
        pass


def _end_orphans() -> None:
    """SIGKILL and reap what the command left that was re-parented to the applier (bounded:
    1 s). Cheap when nothing was left: one ``waitpid`` says there is no child at all. The
    applier runs no other thread and its command is reaped, so every child is such one."""
    if not REAPER:
        return
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] != 0:
                continue  # one reaped; look again
        except OSError:  # no child left
            return
        killed = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                if int(fields[1]) == os.getpid() and fields[0] != b"Z":
                    os.kill(int(name), signal.SIGKILL)
                    killed += 1
                    os.killpg(int(name), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
        if not killed:  # none the applier may signal: leave them
            return
        time.sleep(0.005)


def _run_capped(
    argv: List[str], cwd: str, timeout: float, limit: int
) -> Tuple[int, bool, float, str]:
    """(exit code, timed out, seconds, last ``limit`` bytes of stdout+stderr)."""
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        drop = _owner_switch(argv, cwd)  # a refusal starts nothing
        _subreaper()
        SPAWNING.append(1)
        _CRITICAL.append(1)  # a stop waits until the command's group is known (CHILD_GROUPS)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=None if drop is None else drop[1],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a timeout kills the command's whole process group
                # 3.8 has no user=/group=; the applier runs no other thread.
                preexec_fn=None if drop is None else drop[0],  # noqa: PLW1509
            )
            CHILD_GROUPS.add(proc.pid)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ApplyError("cannot start %s: %s" % (argv[0], exc)) from exc
        finally:
            SPAWNING.pop()
            _CRITICAL.pop()
        timed_out = False
        try:
            if _PENDING and _WORKING and not _CRITICAL:
                raise _Stopped(_PENDING[0])  # the finally below ends the command's group
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        finally:
            # what the command left in its process group ends with it (docs/fleet.md)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            CHILD_GROUPS.discard(proc.pid)
            if proc.poll() is not None:  # and what it moved out of that group
                _end_orphans()
        seconds = time.monotonic() - started
        size = os.fstat(out.fileno()).st_size
        out.seek(max(0, size - limit))
        text = out.read(limit).decode("utf-8", "replace")
        if size > limit:
            text = "[... %d earlier bytes of output cut ...]\n%s" % (size - limit, text)
        return proc.returncode, timed_out, seconds, text


def ch_run_command(fix: _Fix, change: Dict[str, Any]) -> str:
    """Run an argv (never a shell string) in ``cwd``; a non-zero exit or a timeout fails the fix."""
    argv = change.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise ApplyError("run_command needs an argv list of non-empty strings")
    cwd = change["cwd"]
    if not os.path.isdir(cwd):
        raise ApplyError("working directory %s does not exist" % cwd)
    timeout = float(change.get("timeout_s", 300))
    limit = int(change.get("max_bytes", OUTPUT_MAX_BYTES))
    code, timed_out, seconds, output = _run_capped(argv, cwd, timeout, limit)
    fix.outputs[str(change.get("index", len(fix.outputs)))] = output
    shown = shlex.join(argv)
    if timed_out:
        raise ApplyError("`%s` timed out after %g s and was killed" % (shown, timeout))
    if code != 0:
        raise ApplyError("`%s` exited with %d after %.1f s" % (shown, code, seconds))
    return "exit 0 after %.1f s" % seconds


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def _env_value(raw: str) -> str:
    """The value as python-dotenv reads it (the planner's reading) for the usual forms:
    ``'v'`` or ``"v"`` (a comment may follow the closing quote) or ``v # comment``."""
    value = raw.strip()
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        if end > 0:
            return value[1:end]
    return re.sub(r"\s+#.*", "", value).strip()


def ch_set_env(fix: _Fix, change: Dict[str, Any]) -> str:
    """Give ``name`` a freshly generated secret, if its value is still the planned-on one."""
    path, name = change["path"], change["name"]
    length = max(32, int(change.get("length", 64)))
    state = fix.remember(path)
    _refuse_links(path, state, "write a secret")
    if state.get("exists") and state.get("type") != "file":
        raise ApplyError("%s is not a regular file" % path)
    lines = _content(state).decode("utf-8").splitlines(True) if state.get("exists") else []
    at, current, lead = None, None, ""
    for i, line in enumerate(lines):
        m = _ENV_LINE.match(line)
        if m and m.group(1) == name:
            # ``lead`` keeps an ``export `` prefix: a shell that sources the file must
            # still export the new value to the service.
            at, current, lead = i, _env_value(m.group(2)), line[: m.start(1)]
    want = change.get("expect_value_sha256")  # None: the variable was absent or empty
    actual = _sha(current.encode("utf-8")) if current else None
    if actual != want:
        return ""  # already changed by someone (or by a previous run): leave it
    value = secrets.token_urlsafe(length)[:length]
    new_line = "%s%s=%s\n" % (lead, name, value)
    if at is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(new_line)
    else:
        lines[at] = new_line
    data = "".join(lines).encode("utf-8")
    if not state.get("exists"):
        fix.make_parents(path)
        with _critical():
            fix.written[path] = _sha(data)
            _write_atomic(path, data, 0o600)
            fix.created.append(path)
        return "new secret written (%d chars)" % length
    # A secret generated now is never left readable by every local user: the file loses
    # its bits for others (the group may be how the service reads it, so it keeps them).
    was = int(state["mode"])
    _rewrite(fix, path, state, data, was & ~SECRET_FILE_NOT_FOR)
    if was & SECRET_FILE_NOT_FOR:
        return "new secret written (%d chars), mode %04o -> %04o" % (
            length,
            was,
            was & ~SECRET_FILE_NOT_FOR,
        )
    return "new secret written (%d chars)" % length


CHANGES = {
    "ensure_dir": ch_ensure_dir,
    "create_file": ch_create_file,
    "append_lines": ch_append_lines,
    "edit_file": ch_edit_file,
    "chmod": ch_chmod,
    "crontab": ch_crontab,
    "set_env": ch_set_env,
    "run_command": ch_run_command,
}


def restore(
    snapshot: Snapshot,
    created: List[str],
    done: Optional[List[str]] = None,
    written: Optional[Dict[str, str]] = None,
    kept_newer: Optional[List[str]] = None,
) -> List[str]:
    """Put every snapshotted path back; remove only what this fix created. Returns errors;
    ``done`` gets what was actually put back or removed ("removed /srv/app/backups");
    ``kept_newer`` (when given) gets each file left as it is because it changed since the
    fix, instead of the errors: not overwriting newer content is a choice, not a failure.

    With ``written`` (what the fix wrote, ``_Fix.written``), a file or crontab that no
    longer holds it was changed by someone else since (the app, an operator): it is left as
    it is, with its backup, and said so; a file whose content the fix never wrote gets only
    its mode back. Without it (an older controller), everything is put back."""
    errors: List[str] = []
    done = [] if done is None else done
    newer = errors if kept_newer is None else kept_newer
    kept = set()  # left as they are: changed since the fix, and their backups
    mine = written or {}
    for path, state in snapshot.items():
        if path in mine and _changed_since(path, state, mine[path]):
            backup = next((c for c in created if c.startswith(path + BACKUP_MARK)), None)
            shown = "the crontab of %s" % (path[len(CRONTAB) :] or "the remote user")
            newer.append(
                "%s changed since this fix wrote it; left as it is%s"
                % (
                    shown if path.startswith(CRONTAB) else path,
                    " (its version before the fix: %s)" % backup if backup else "",
                )
            )
            kept.update([path] + ([backup] if backup else []))
    for path in reversed(created):
        if path in kept or (path in snapshot and snapshot[path].get("exists")):
            continue
        try:
            if written is not None and path in written:
                now = _read_state(path)
                if now.get("type") == "file" and now.get("sha256") != written[path]:
                    newer.append("%s changed since this fix created it; left as it is" % path)
                    continue
            if _remove_created(path):
                done.append("removed %s" % path)
        except (OSError, ApplyError) as exc:
            errors.append("%s: %s" % (path, exc))
    for path, state in snapshot.items():
        if path in kept:
            continue
        mode_only = written is not None and path not in written
        if mode_only and path.startswith(CRONTAB):
            continue  # the fix did not write it: any change there is someone else's
        try:
            if _restore_one(path, state, mode_only):
                what = "the crontab of %s" % (path[len(CRONTAB) :] or "the remote user")
                done.append("put back %s" % (what if path.startswith(CRONTAB) else path))
        except (OSError, ApplyError) as exc:
            errors.append("%s: %s" % (path, exc))
    return errors


def _changed_since(path: str, state: Dict[str, Any], mine: str) -> bool:
    """Whether ``path`` holds neither what the fix wrote (``mine``) nor what it had before."""
    if path.startswith(CRONTAB):
        now = _crontab_state(path[len(CRONTAB) :] or None)
        if now.get("exists") is None:
            return False  # unreadable: the put-back says so
        current = _content(now) if now.get("exists") else None
        before = _content(state) if state.get("exists") else None
        return current != before and (current is None or _sha(current) != mine)
    if not state.get("exists") or state.get("type") != "file":
        return False
    now = _read_state(path)
    if now.get("type") != "file":
        return True  # replaced by something else: nothing of the fix's to put back over
    return now.get("sha256") not in (mine, state.get("sha256"))


def _remove_created(path: str) -> bool:
    parent, name = _split(path)
    try:
        dfd = _open_dir(parent)
    except FileNotFoundError:
        return False
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=dfd)  # only if empty: never removes anything else
        else:
            os.unlink(name, dir_fd=dfd)  # a link put in its place is removed, not followed
    except FileNotFoundError:
        return False
    finally:
        os.close(dfd)
    return True


def _restore_one(path: str, state: Dict[str, Any], mode_only: bool = False) -> bool:
    """Put ``path`` back as ``state`` says it was; True when something had to change.
    ``mode_only``: the fix never wrote its content (a chmod), so only the mode goes back."""
    if path.startswith(CRONTAB):
        user = path[len(CRONTAB) :] or None
        now = _crontab_state(user)
        before = _content(state) if state.get("exists") else None
        if (_content(now) if now.get("exists") else None) != before:
            _set_crontab(before, user)
            return True
        return False
    if not state.get("exists") or state.get("type") not in ("file", "dir"):
        return False  # links and special files are never changed: nothing to put back
    now = _read_state(path)
    if state.get("type") == "file" and mode_only:
        if now.get("type") == "file" and now.get("mode") != state["mode"]:
            _fchmod_at(path, int(state["mode"]), now.get("ino"))
            return True
        return False
    if state.get("type") == "file":
        data = _content(state)
        if now.get("sha256") != _sha(data) or now.get("mode") != state["mode"]:
            _write_atomic(path, data, int(state["mode"]), int(state["uid"]), int(state["gid"]))
            return True
        return False
    if now.get("type") != "dir":
        raise Refused("%s is no longer a directory; not restored" % path)
    parent, name = _split(path)
    dfd = _open_dir(parent)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    finally:
        os.close(dfd)
    changed = False
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != int(state["mode"]):
            os.fchmod(fd, int(state["mode"]))
            changed = True
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (state["uid"], state["gid"]):
            os.fchown(fd, int(state["uid"]), int(state["gid"]))
            changed = True
    finally:
        os.close(fd)
    return changed


def _stop(signum: int, _frame: Any) -> None:
    """The handler of the ending signals while an apply works (``_guard``): the first one
    stops it (now, or when the critical section it landed in ends); later ones are noted."""
    if _PENDING:
        return
    why = _STOP_WHY.get(signum, "signal %d" % signum)
    if signum == signal.SIGALRM:
        why = why % (" of %s s" % _GUARD_WORK_S[0] if _GUARD_WORK_S else "")
    _PENDING.append(why)
    if _WORKING and not _CRITICAL and not SPAWNING:
        raise _Stopped(why)


_GUARD_WORK_S: List[str] = []  # the request's work_s, as shown
_GUARDED = (signal.SIGALRM, signal.SIGHUP, signal.SIGTERM)


def _guard(work_s: Optional[float]) -> Dict[int, Any]:
    """While a fix is applied, the deadline (``work_s``, re-armed here), a hang-up and
    SIGTERM stop it through ``_Stopped`` instead of ending the process at once, so what it
    changed is put back first. Returns the handlers it replaced (the bootstrap's)."""
    saved: Dict[int, Any] = {s: signal.getsignal(s) for s in _GUARDED}
    for s in _GUARDED:
        signal.signal(s, _stop)
    if work_s:
        _GUARD_WORK_S[:] = ["%g" % work_s]
        signal.alarm(max(1, int(-(-work_s // 1))))
    return saved


def _unguard(saved: Optional[Dict[int, Any]], undoing: bool) -> None:
    """Leave the apply's work. The bootstrap's hard deadline comes back, re-armed for
    ``RESTORE_RESERVE_S``; while ``undoing``, a hang-up or SIGTERM no longer cuts the undo
    short (the deadline still bounds it)."""
    if saved is None:
        return
    signal.alarm(RESTORE_RESERVE_S)
    for s, handler in saved.items():
        ignored = undoing and s != signal.SIGALRM
        signal.signal(s, signal.SIG_IGN if ignored else handler)


def op_apply(request: Dict[str, Any], guard: bool = False) -> Dict[str, Any]:
    """``guard`` (the host-side run, never an in-process caller): the deadline, a hang-up
    or SIGTERM undo the fix before the process ends (``_guard``)."""
    fix = _Fix(
        str(request.get("stamp") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())),
        int(request.get("keep_backups") or KEEP_BACKUPS),
    )
    results: List[str] = []
    where: Dict[str, Any] = {"path": None, "index": None}  # the change being made
    failure: Optional[BaseException] = None
    saved = _guard(request.get("work_s")) if guard else None
    try:
        try:
            _WORKING.append(1)
            for index, change in enumerate(request.get("changes") or []):
                if _PENDING:  # a stop that came while no change could be cut
                    raise _Stopped(_PENDING[0])
                fn = CHANGES.get(change.get("kind"))
                if fn is None:
                    raise ApplyError("unknown change %r" % change.get("kind"))
                where["path"], where["index"] = change.get("path"), index
                results.append(fn(fix, dict(change, index=index)))
        except (ApplyError, OSError, ValueError, KeyError) as err:
            failure = err
        finally:
            del _WORKING[:]  # from here on a stop only waits in _PENDING
    except _Stopped as err:  # one at most: the handler raises only the first
        failure = err
    if failure is None and _PENDING:  # stopped as the last change ended: never verified
        failure = _Stopped(_PENDING[0])
        where["index"] = None
    if failure is None:
        _unguard(saved, undoing=False)
        return _applied(request, fix, results)
    _unguard(saved, undoing=True)
    undone: List[str] = []
    errors = restore(fix.snapshot, fix.created, undone, fix.written)
    if saved is not None:
        for s, handler in saved.items():
            signal.signal(s, handler)
    exc: BaseException = failure
    path = where["path"]
    why = str(exc) if isinstance(exc, Refused) else "%s: %s" % (type(exc).__name__, exc)
    if isinstance(exc, _Stopped):
        why = "the applier stopped: %s" % exc
    elif isinstance(exc, OSError) and exc.strerror and path:
        # the OS names what it was given: a temporary name or one relative to a
        # directory fd (".readiness-tmp-3f2c…", "dlq"), not the file the change is for
        why = "%s: %s: %s" % (type(exc).__name__, path, exc.strerror)
    return {
        "ok": False,
        "error": why,
        "refused": isinstance(exc, Refused),
        "stopped": isinstance(exc, _Stopped),
        "stopped_at": where["index"] if isinstance(exc, _Stopped) else None,
        "restore_errors": errors,
        "undone": undone,
        "outputs": fix.outputs,
    }


def _applied(request: Dict[str, Any], fix: _Fix, results: List[str]) -> Dict[str, Any]:
    prune_errors = []
    try:
        if request.get("prune", True):  # the controller asks for it (op_prune) once verified
            fix.prune_backups()
    except (ApplyError, OSError) as exc:  # the fix itself is done; say so, keep it
        prune_errors.append(str(exc))
    return {
        "ok": True,
        "results": results,
        "snapshot": fix.snapshot,
        "created": fix.created,
        "backups": fix.backups,
        "pruned_backups": fix.pruned,
        "prune_errors": prune_errors,
        "outputs": fix.outputs,
        "written": fix.written,
    }


def op_read(request: Dict[str, Any]) -> Dict[str, Any]:
    limit = int(request.get("max_bytes", SNAPSHOT_MAX_BYTES))
    files = {}
    for path in request.get("paths") or []:
        if path.startswith(CRON_JUDGEMENT):
            files[path] = _cron_judgement(path)
            continue
        try:
            state = _read_state(path, limit)
            if state.get("type") == "file" and not _keeps_owner(state["uid"], state["gid"]):
                # the planner says so in the dry run: the apply would refuse to rewrite it
                state["cannot_rewrite"] = _owner_refusal(path, state["uid"], state["gid"])
            if state.get("exists") and os.geteuid() not in (0, state.get("uid")):
                # only the owner (or root) may chmod it: the apply would fail EPERM
                state["cannot_chmod"] = "%s belongs to %s; %s cannot chmod it without root" % (
                    path,
                    _user_name(state["uid"]),
                    _user_name(os.geteuid()),
                )
            files[path] = state
        except (ApplyError, OSError) as exc:  # one path refused never hides the others
            files[path] = {"exists": True, "type": "refused", "error": str(exc)}
    return {"ok": True, "files": files}


def _cron_judgement(key: str) -> Dict[str, Any]:
    """For the plan: would the applier refuse this cron line (``_refuse_root_running_
    foreign_code``)? ``key`` is CRON_JUDGEMENT + JSON {"user", "command"}."""
    try:
        runs = json.loads(key[len(CRON_JUDGEMENT) :])
        _refuse_root_running_foreign_code({"cron_runs": runs})
    except Refused as exc:
        return {"exists": False, "type": "judgement", "error": str(exc)}
    except (ValueError, TypeError, AttributeError, ApplyError, OSError) as exc:
        return {"exists": False, "type": "judgement", "error": "refused: %s" % exc}
    return {"exists": False, "type": "judgement"}


def op_prune(request: Dict[str, Any]) -> Dict[str, Any]:
    """Once a fix is verified: of each file it backed up (``backups``, its own copies, kept)
    only the newest ``keep_backups`` copies stay. Never before: a fix that is then reverted
    must leave the older copies as they were."""
    fix = _Fix("", int(request.get("keep_backups") or KEEP_BACKUPS))
    fix.backups = [str(b) for b in request.get("backups") or ()]
    try:
        fix.prune_backups()
    except (ApplyError, OSError) as exc:
        return {"ok": False, "error": str(exc), "pruned_backups": fix.pruned}
    return {"ok": True, "pruned_backups": fix.pruned}


def op_restore(request: Dict[str, Any]) -> Dict[str, Any]:
    written = request.get("written")
    done: List[str] = []
    newer: List[str] = []
    errors = restore(
        request.get("snapshot") or {},
        list(request.get("created") or []),
        done,
        dict(written) if isinstance(written, dict) else None,
        newer,
    )
    return {"ok": not errors and not newer, "errors": errors, "kept_newer": newer, "undone": done}


OPS = {"read": op_read, "apply": op_apply, "restore": op_restore, "prune": op_prune}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    fn = OPS.get(request.get("op"))
    if fn is None:
        answer = {"ok": False, "error": "unknown op %r" % request.get("op")}
    elif fn is op_apply:
        answer = op_apply(request, guard=True)
    else:
        answer = fn(request)
    answer["applier_version"] = APPLIER_VERSION
    answer["uid"] = os.getuid()
    try:
        answer["user"] = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        answer["user"] = str(os.getuid())
    sys.stdout.write(json.dumps(answer, sort_keys=True))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
