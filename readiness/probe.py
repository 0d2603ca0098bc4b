"""The host-side fact collector: stdlib only, Python 3.8+, one run per host.

The controller sends this file's source (pruned to the ops a run needs) and a marshal
request on stdin (see
``readiness.collect``); the probe answers with one JSON document on stdout.
Every fact is a small, bounded primitive (read a file, stat a path, list a
directory, read a process's signal masks, connect to a TCP port, run an argv
with a timeout). Judging the facts is the controller's job.

Nothing in a request is ever handed to a shell: ``run`` takes an argv list.
"""

# Start-up is paid on every host, so only cheap modules are imported here: the request
# arrives as marshal data (a builtin), the answer is written by a small JSON encoder
# (json and re cost ~6 ms of CPU to import), and glob, socket, subprocess, urllib,
# json and fnmatch are imported inside the few ops that need them. Signal numbers come from
# the C module ``_signal``: ``signal`` imports enum (~7 ms of CPU on every host). ``os``
# is the C module ``posix`` too: under ``-I -S`` nothing has imported os.py yet, and it
# costs ~1.1 ms of CPU (``_collections_abc``, ``posixpath``); paths are joined and
# normalised by ``_join``/``_normpath`` below, and the few functions that need os.py's
# own names (``os.path``, ``os.environ``, ``os.SEEK_SET``) import it themselves
# (tests/test_probe_posix.py checks every other ``os.<name>`` is posix's).
import _signal as signal
import _thread
import marshal
import posix as os
import pwd
import sys
import time

try:
    import _stat as stat  # stat.py only wraps it (~0.15 ms of CPU to import)
except ImportError:  # an interpreter without it
    import stat

PROBE_VERSION = 1
# Process groups of the commands ``run`` has started and not yet reaped. They run in their
# own sessions, so a hang-up does not reach them: the bootstrap (readiness.collect) kills
# these groups before it exits on a hang-up, SIGTERM or its deadline.
CHILD_GROUPS = globals().setdefault("READINESS_CHILD_GROUPS", set())
# Not empty while a command is being started: forked, but Popen has not returned its PID
# for CHILD_GROUPS yet (it waits for the exec). A signal then makes the bootstrap kill every
# child of the probe, so the one being started cannot escape into its own session.
SPAWNING = globals().setdefault("READINESS_SPAWNING", [])
# Not empty once the probe is a child subreaper (``_subreaper``): a process a command moves
# out of its group (``setsid``, a daemon's double fork) is re-parented to the probe when
# its parent exits, not to init, so it is found and ends with the command; the bootstrap
# also ends such processes before it exits on a hang-up, SIGTERM or its deadline.
REAPER = globals().setdefault("READINESS_REAPER", [])
_PRCTL = []
# Held while a command is started (until its group is in CHILD_GROUPS) and while the
# orphans are ended: `repeat` runs commands from several threads at once.
_SPAWN_LOCK = _thread.allocate_lock()
DEFAULT_MAX_BYTES = 256 * 1024
MAX_ENTRIES = 500
NEWEST_SCAN = 100000


def _join(a, *parts):
    """``os.path.join`` for str paths."""
    path = a
    for part in parts:
        if part.startswith("/"):
            path = part
        elif not path or path.endswith("/"):
            path += part
        else:
            path += "/" + part
    return path


def _normpath(path):
    """``os.path.normpath`` for str paths (POSIX: a leading "//" is kept, "///" is "/")."""
    if not path:
        return "."
    initial = 1 if path.startswith("/") else 0
    if initial and path.startswith("//") and not path.startswith("///"):
        initial = 2
    parts = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp != ".." or (not initial and not parts) or (parts and parts[-1] == ".."):
            parts.append(comp)
        elif parts:
            parts.pop()
    return "/" * initial + "/".join(parts) or "."


def _abspath(path):
    """``os.path.abspath`` for str paths."""
    path = os.fspath(path)
    if not path.startswith("/"):
        path = _join(os.getcwd(), path)
    return _normpath(path)


def _isdir(path):
    """``os.path.isdir``: a directory, links followed; False on any error."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISDIR(st.st_mode)


def _stat_info(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"exists": False, "path": path}
    except OSError as exc:
        return {"exists": None, "path": path, "error": _err(exc)}
    return _info_of(path, st)


def _info_of(path, st):
    if stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    else:
        kind = "other"
    return {
        "exists": True,
        "path": path,
        "type": kind,
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "owner": _user_name(st.st_uid),
        "mtime": st.st_mtime,
        "readable": os.access(path, os.R_OK),
        "writable": os.access(path, os.W_OK),
    }


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _err(exc):
    return "%s: %s" % (type(exc).__name__, getattr(exc, "strerror", None) or exc)


# Reading app-controlled paths. The probe often runs as root, and the app user can make
# any file in its tree a symlink (settings.yaml -> /etc/shadow). A path is therefore
# opened component by component from "/" with O_NOFOLLOW (openat-style), and a symlink
# that someone other than root (or the probe's own user) could have planted is followed
# only as far as that user could follow it: every directory after it must be searchable
# and the file readable *by that user* (mode bits against its uid and groups). Otherwise
# the read is refused and nothing of the target is returned.
_WALK_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# A walk that only passes through directories (the write test): O_PATH needs no read
# permission, as a plain path lookup needs none (a 0733 drop box can be written, not read).
_WALK_THROUGH = (
    getattr(os, "O_PATH", 0) | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    if getattr(os, "O_PATH", 0)
    else _WALK_DIR
)
_WALK_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_MAX_LINK_HOPS = 40
_GROUPS = {}


# A read an untrusted symlink would turn into more than its owner could read. (An
# assignment, not a class statement: the pruner ships module-level assignments as is.)
_Refused = type("_Refused", (OSError,), {})


def _groups_of(uid):
    if uid not in _GROUPS:
        try:
            pw = pwd.getpwuid(uid)
            _GROUPS[uid] = set(os.getgrouplist(pw.pw_name, pw.pw_gid))
        except (KeyError, OSError):
            _GROUPS[uid] = set()
    return _GROUPS[uid]


def _may(st, uid, want):
    """Whether ``uid`` (-1: any other user) has the ``want`` bits (4 read, 1 search)."""
    mode = st.st_mode
    if uid == -1:
        bits = mode
    elif st.st_uid == uid:
        bits = mode >> 6
    elif st.st_gid in _groups_of(uid):
        bits = mode >> 3
    else:
        bits = mode
    return bits & want == want


def _check_suspects(st, suspects, want):
    for uid in suspects:
        if not _may(st, uid, want):
            who = "anyone" if uid == -1 else _user_name(uid)
            if want & 2:
                raise _Refused(13, "symlink to a directory the app user (%s) cannot write" % who)
            raise _Refused(13, "symlink to a file the app user (%s) cannot read" % who)


def _link_suspect(dir_fd, link, me):
    """None when only root (or the probe's own user) could have put this link here: its
    owner, in a directory nobody else can write (or sticky). Otherwise the uid whose
    permissions bound the read: the link's owner, else the directory's (-1: anyone)."""
    st = os.fstat(dir_fd)
    loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX
    trusted = (0, me)
    if link.st_uid in trusted and st.st_uid in trusted and not loose:
        return None
    for uid in (link.st_uid, st.st_uid):
        if uid not in trusted:
            return uid
    return -1


def _open_walk(path, directory=False, suspects=None, want_last=None, dir_flags=_WALK_DIR):
    """An fd of ``path`` (a regular file, or with ``directory`` a directory), opened from "/"
    one component at a time without following links except as ``_link_suspect`` allows.

    Returns (fd, stat), fd -1 when the last component is not a regular file (nothing is
    opened then); raises FileNotFoundError, ``_Refused`` or another OSError. ``suspects``:
    a list that gets the uids (-1: anyone) who could have planted a link on the way.
    ``want_last``: the bits such a planter must have on the last component (default: read,
    and search for a directory)."""
    me = os.geteuid()
    todo = [c for c in _abspath(path).split("/") if c]
    fd = os.open("/", dir_flags)
    suspects = [] if suspects is None else suspects
    hops = 0
    try:
        while todo:
            name = todo.pop(0)
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise OSError("too many levels of symbolic links")
                suspect = _link_suspect(fd, st, me)
                if suspect is not None and suspect not in suspects:
                    suspects.append(suspect)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd = -1
                    fd = os.open("/", dir_flags)
                todo = [c for c in target.split("/") if c] + todo
                continue
            last = not todo
            if last and not directory and not stat.S_ISREG(st.st_mode):
                _check_suspects(st, suspects, 4)
                os.close(fd)
                return -1, st
            if (directory or not last) and not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, "Not a directory", name)
            child = os.open(name, _WALK_FILE if last and not directory else dir_flags, dir_fd=fd)
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            _check_suspects(st, suspects, (want_last or (5 if directory else 4)) if last else 1)
        return fd, os.fstat(fd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


def op_stat(spec):
    return _stat_info(spec["path"])


def _walked(path, directory=False):
    """(fd, info) of an app-controlled path read through ``_open_walk``; fd is -1 when there
    is nothing to read (missing, refused, not a regular file/directory) and info says why."""
    try:
        fd, st = _open_walk(path, directory)
    except FileNotFoundError:
        return -1, {"exists": False, "path": path}
    except _Refused as exc:
        why = "%s: %s" % (path, exc.strerror)
        return -1, {"exists": None, "path": path, "read_refused": why, "error": "refused: " + why}
    except OSError as exc:
        return -1, {"exists": None, "path": path, "error": _err(exc)}
    return fd, _info_of(path, st)


def _read_fd(fd, limit):
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def op_file(spec):
    fd, info = _walked(spec["path"])
    if fd < 0:
        return info
    limit = int(spec.get("max_bytes", DEFAULT_MAX_BYTES))
    try:
        data = _read_fd(fd, limit)
    except OSError as exc:
        info["error"] = _err(exc)
        return info
    finally:
        os.close(fd)
    info["truncated"] = len(data) > limit
    info["text"] = data[:limit].decode("utf-8", "replace")
    return info


def _match(name, pattern):
    """fnmatch for the common shapes (``*.sql``, ``backup-*``, exact) without importing re."""
    if pattern == "*":
        return True
    if "?" in pattern or "[" in pattern or pattern.count("*") > 1:
        import fnmatch

        return fnmatch.fnmatchcase(name, pattern)
    if "*" not in pattern:
        return name == pattern
    head, tail = pattern.split("*")
    return len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)


def op_list(spec):
    """List a directory (optionally recursive), filtered by fnmatch patterns."""
    root = spec["path"]
    fd, info = _walked(root, directory=True)
    if fd < 0:
        if isinstance(info.get("error"), str) and "NotADirectory" in info["error"]:
            return _stat_info(root)
        return info
    patterns = spec.get("patterns") or ["*"]
    recursive = bool(spec.get("recursive", False))
    limit = int(spec.get("max_entries", MAX_ENTRIES))
    # newest: keep the `limit` most recently modified entries of the whole listing, not the
    # first by name (a backup directory of 600 hourly dumps: its newest sort last), reading
    # at most NEWEST_SCAN entries (past that: "scan_cut", the newest may be unread).
    newest = bool(spec.get("newest", False))
    entries = []
    truncated = False
    matched = 0
    # Walked from the fd just opened, so a directory swapped for a link meanwhile is not
    # followed; subdirectories that are links are listed, never descended (as os.walk).
    walk = _fwalk(fd)
    try:
        for dirpath, dirnames, filenames, dir_fd in walk:
            dirnames.sort()
            for name in sorted(filenames) + ([] if recursive else sorted(dirnames)):
                if not any(_match(name, p) for p in patterns):
                    continue
                if newest and matched >= NEWEST_SCAN:
                    info["scan_cut"] = True
                    truncated = True
                    break
                if len(entries) >= (2 * limit if newest else limit):
                    truncated = True
                    if not newest:
                        break
                    entries = _newest(entries, limit)
                matched += 1
                rel = _normpath(_join(dirpath, name))
                full = _join(root, rel)
                try:
                    st = _info_of(full, os.stat(name, dir_fd=dir_fd))
                except FileNotFoundError:
                    st = {"exists": False, "path": full}
                except OSError as exc:
                    st = {"exists": None, "path": full, "error": _err(exc)}
                st["name"] = rel
                entries.append(st)
            if not recursive or (truncated and not newest) or info.get("scan_cut"):
                break
    finally:
        walk.close()
        os.close(fd)
    if newest:
        truncated = truncated or len(entries) > limit
        entries = _newest(entries, limit)
        info["matched"] = matched
    info["entries"] = entries
    info["truncated"] = truncated
    return info


def _newest(entries, limit):
    return sorted(entries, key=lambda e: -(e.get("mtime") or 0))[:limit]


def _fwalk(dir_fd):
    """``os.fwalk(".", dir_fd=dir_fd)`` (top-down, links never descended, a directory that
    cannot be opened skipped) without importing os.py. Directories are opened as the
    path walk opens them (O_DIRECTORY, O_NOFOLLOW) and O_NONBLOCK: a link or anything
    else swapped in for a directory fails to open (skipped, as os.fwalk skips it after
    opening it), and cannot hang the walk."""
    orig = os.stat(".", follow_symlinks=False, dir_fd=dir_fd)
    topfd = os.open(".", _WALK_DIR | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        if stat.S_ISDIR(orig.st_mode) and _same_file(orig, os.stat(topfd)):
            yield from _fwalk_fd(topfd, ".")
    finally:
        os.close(topfd)


def _fwalk_fd(topfd, toppath):
    dirs = []
    nondirs = []
    for entry in os.scandir(topfd):
        try:
            if entry.is_dir():
                dirs.append(entry.name)
            else:
                nondirs.append(entry.name)
        except OSError:
            try:
                if entry.is_symlink():
                    nondirs.append(entry.name)
            except OSError:
                pass
    yield toppath, dirs, nondirs, topfd
    for name in dirs:  # as the caller left them (sorted)
        try:
            orig = os.stat(name, dir_fd=topfd, follow_symlinks=False)
            dirfd = os.open(name, _WALK_DIR | os.O_NONBLOCK, dir_fd=topfd)
        except OSError:
            continue
        try:
            if _same_file(orig, os.stat(dirfd)):
                yield from _fwalk_fd(dirfd, _join(toppath, name))
        finally:
            os.close(dirfd)


def _same_file(a, b):
    return a.st_ino == b.st_ino and a.st_dev == b.st_dev


def op_glob(spec):
    import glob

    limit = int(spec.get("max_entries", MAX_ENTRIES))
    paths = sorted(glob.glob(spec["pattern"]))[:limit]
    return {"pattern": spec["pattern"], "matches": [_stat_info(p) for p in paths]}


def op_write_test(spec):
    """Prove a directory is writable without changing it: an unnamed file (``O_TMPFILE``)
    is opened in it and closed, which never links a name into the directory, so neither its
    mtime nor its entries change and no watcher (a path unit, inotify) sees a file. Where
    the file system has no ``O_TMPFILE`` (NFS, old kernels), ``faccessat`` with the
    effective ids answers instead (permissions, ACLs, a read-only mount, an immutable
    directory; ``write_method`` says which was used). Before, a named file was created and
    removed: an audit and a dry run changed the directory's times and showed it a file.

    The probe often runs as root, and the app names this directory (its settings, a link in
    its tree). So the directory is opened as app paths are read (``_open_walk``: a link is
    followed only where its planter could write), ``spec["writer"]`` (the uid whose file
    named the path) must be able to write there too, and the test is made on the opened
    directory, never through a path."""
    path = spec["path"]
    info = _stat_info(path)
    if not info.get("exists"):
        info["write_ok"] = False
        return info
    info["write_ok"] = False
    try:
        fd, st = _open_walk(path, True, None, 3, _WALK_THROUGH)
    except _Refused as exc:
        info["write_error"] = "refused: %s: %s" % (path, exc.strerror)
        return info
    except OSError as exc:
        info["write_error"] = _err(exc)
        return info
    try:
        writer = spec.get("writer")
        if writer is not None and writer not in (0, os.geteuid()) and not _may(st, writer, 3):
            info["write_error"] = "refused: %s: %s, whose file names it, may not write there" % (
                path,
                _user_name(writer),
            )
            return info
        info["write_ok"], info["write_method"], error = _write_probe(fd)
        if error is not None:
            info["write_error"] = error
    finally:
        os.close(fd)
    return info


def _write_probe(fd):
    """(writable, method, error) of the directory open as ``fd``, leaving it unchanged."""
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        # O_EXCL: the unnamed inode can never be linked into the directory afterwards.
        flags = tmpfile | os.O_WRONLY | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            os.close(os.open(".", flags, 0o600, dir_fd=fd))
            return True, "O_TMPFILE", None
        except OSError as exc:
            # EOPNOTSUPP, EISDIR (a kernel before 3.11 reads O_DIRECTORY), EINVAL, ENOSYS:
            # the file system cannot make one; anything else is the directory's answer.
            if exc.errno not in (95, 21, 22, 38):
                return False, "O_TMPFILE", _err(exc)
    # "." of the opened directory (no link to follow), judged with the effective ids.
    try:
        if os.access(".", os.W_OK | os.X_OK, dir_fd=fd, effective_ids=True):
            return True, "faccessat", None
        return False, "faccessat", "PermissionError: %s" % os.strerror(13)
    except (OSError, NotImplementedError) as exc:
        return False, "faccessat", _err(exc)


def _pidfile(pidfile):
    """(pid, the uids whose word it is) of a pidfile, read like ``file`` (a link its owner
    could not follow is refused). Those are the file's owner and whoever could have planted
    a link on the way: a link of the app user's to a root daemon's own pidfile
    (``/run/sshd.pid``, root's and world-readable) is the app user's word, not root's.
    Raises FileNotFoundError, ``_Refused``, OSError, ValueError."""
    suspects = []
    try:
        fd, st = _open_walk(pidfile, suspects=suspects)
    except _Refused as exc:
        raise _Refused(13, "%s: %s" % (pidfile, exc.strerror)) from None
    if fd < 0:
        raise OSError("%s is not a regular file" % pidfile)
    try:
        text = _read_fd(fd, 4096).decode("ascii", "replace")
    finally:
        os.close(fd)
    return int(text.strip().split()[0]), suspects + [st.st_uid]


def _foreign_pid(pid, writers):
    """Why the process a pidfile names is not its writers', or None. A pidfile the app user
    wrote (or linked) may name any process (sshd, pid 1): root must not read that process's
    environment or signal it on the app user's word. Each writer (``_pidfile``) must own
    the process (real, effective and saved uid), unless it is root or the probe's own user."""
    me = os.geteuid()
    writers = [w for w in writers if w not in (0, me)]
    if not writers:
        return None
    try:
        with open("/proc/%d/status" % pid) as fh:
            uids = next((ln.split()[1:4] for ln in fh if ln.startswith("Uid:")), None)
    except OSError:
        return None
    if not uids:
        return None
    for writer in writers:
        if not all(int(u) == writer for u in uids):
            return "the pidfile belongs to %s, but process %d runs as %s" % (
                "anyone" if writer == -1 else _user_name(writer),
                pid,
                _user_name(int(uids[0])),
            )
    return None


def _find_pid(match):
    me = os.getpid()
    for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        if cmd and match in cmd and "readiness-probe" not in cmd:
            return int(name)
    return None


def op_process(spec):
    """Find the service (pidfile or cmdline match) and read its status and environment."""
    out = {"found": False}
    pid = None
    foreign = None
    if spec.get("pidfile"):
        out["pidfile"] = spec["pidfile"]
        try:
            pid, writers = _pidfile(spec["pidfile"])
            out["source"] = "pidfile"
            foreign = _foreign_pid(pid, writers)
        except FileNotFoundError:
            out["pidfile_error"] = "pidfile does not exist"
        except _Refused as exc:
            out["pidfile_error"] = "refused: " + exc.strerror
            out["read_refused"] = exc.strerror
        except (OSError, ValueError, IndexError) as exc:
            out["pidfile_error"] = _err(exc)
    if pid is None and spec.get("match"):
        pid = _find_pid(spec["match"])
        if pid is not None:
            out["source"] = "match"
    if pid is None:
        return out
    out["pid"] = pid
    base = "/proc/%d" % pid
    try:
        with open(base + "/status") as fh:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError as exc:
        out["running"] = False
        out["status_error"] = _err(exc)
        return out
    out["found"] = True
    out["running"] = status.get("State", "").split(" ")[0] not in ("Z", "X")
    for key in ("Name", "State", "SigCgt", "SigIgn", "SigBlk", "Uid"):
        out[key.lower()] = status.get(key, "").strip()
    try:
        with open(base + "/cmdline", "rb") as fh:
            out["cmdline"] = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        out["cmdline"] = []
    out.update(_process_started(base))
    prefixes = spec.get("env_prefixes")
    if foreign is not None:
        why = "%s: %s; its environment is not read" % (spec["pidfile"], foreign)
        out.update({"environ": None, "environ_error": "refused: " + why, "read_refused": why})
    elif prefixes is not None:
        out.update(_environ(base, prefixes))
    return out


def _process_started(base):
    """When the process started, as a Unix time: ``/proc/<pid>/stat`` field 22 (clock ticks
    since boot) plus the boot time. The boot time comes from CLOCK_BOOTTIME (sub-second);
    /proc/stat's ``btime`` (whole seconds) is the fallback."""
    try:
        with open(base + "/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError) as exc:
        return {"started_error": _err(exc)}
    boot = _boot_time()
    if boot is None:
        return {"started_error": "boot time unknown"}
    return {"started_at": round(boot + ticks / float(hz), 3)}


def _boot_time():
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is not None:
        try:
            return time.time() - time.clock_gettime(clock)
        except OSError:
            pass
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _environ(base, prefixes):
    try:
        with open(base + "/environ", "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return {"environ": None, "environ_error": _err(exc)}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep and any(key.startswith(p) for p in prefixes):
            env[key] = value
    return {"environ": env}


def op_tcp(spec):
    started = time.monotonic()
    try:
        _connect_tcp(spec["host"], int(spec["port"]), float(spec.get("timeout", 2)))
        return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 2)}
    except OSError as exc:
        return {"ok": False, "error": _err(exc)}


def _connect_tcp(host, port, timeout):
    """``socket.create_connection`` + close on the C module ``_socket``: ``socket`` imports
    enum and selectors, and a str host name imports the idna codec (~5 ms of CPU)."""
    import _socket

    try:
        name = host.encode("ascii")
    except UnicodeEncodeError:
        name = host  # getaddrinfo encodes it with idna, as socket does
    err = None
    for family, kind, proto, _canon, address in _socket.getaddrinfo(
        name, port, 0, _socket.SOCK_STREAM
    ):
        sock = None
        try:
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(timeout)
            sock.connect(address)
            sock.close()
            return
        except OSError as exc:
            err = exc
            if sock is not None:
                sock.close()
    raise err if err is not None else OSError("getaddrinfo returns an empty list")


def _http_once(url, method, body, headers, *, timeout, limit):
    """One request with urllib, direct (no proxy); 4xx/5xx answers are results, not errors.

    A redirect is never followed: the 3xx is the answer (a health URL that sends the
    caller to a login page elsewhere is not healthy, and headers never go to its target)."""
    import urllib.error
    import urllib.request

    if not str(url).lower().startswith(("http://", "https://")):
        return {"ok": False, "error": "only http:// and https:// URLs are allowed: %r" % url}
    no_redirect = urllib.request.HTTPRedirectHandler()
    no_redirect.redirect_request = lambda *args: None  # urllib raises HTTPError: the 3xx itself
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), no_redirect)
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - scheme checked above
    started = time.monotonic()
    try:
        resp = opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        resp = exc
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None)
        error = _err(reason) if isinstance(reason, OSError) else _err(exc)
        return {
            "ok": False,
            "error": error,
            "latency_ms": round((time.monotonic() - started) * 1000, 2),
        }
    try:
        data = resp.read(limit + 1)
    except OSError as exc:
        return {"ok": False, "status": resp.getcode(), "error": _err(exc)}
    finally:
        resp.close()
    out = {
        "ok": True,
        "status": resp.getcode(),
        "body": data[:limit].decode("utf-8", "replace"),
        "truncated": len(data) > limit,
        "latency_ms": round((time.monotonic() - started) * 1000, 2),
    }
    code = resp.getcode() or 0
    if 300 <= code < 400:
        # where the redirect points (the report says so; never followed), bounded
        out["location"] = str(resp.headers.get("Location") or "")[:300]
    return out


def _json_key(text, dotted):
    import json

    try:
        node = json.loads(text)
    except (ValueError, RecursionError):  # a hostile answer nested past the stack
        return None
    for part in str(dotted).split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def op_http(spec):
    """An HTTP request from the host; with ``poll``, GET a status URL until a final state.

    ``poll``: {url (``{id}`` = ``id_key`` of the first answer), state_key, final,
    interval, deadline}. Every request has ``timeout``; polling stops at ``deadline``.
    """
    timeout = float(spec.get("timeout", 5))
    limit = int(spec.get("max_bytes", 16 * 1024))
    headers = dict(spec.get("headers") or {})
    body = spec.get("body")
    if spec.get("json") is not None:
        import json

        body = json.dumps(spec["json"])
        headers.setdefault("Content-Type", "application/json")
    data = body.encode("utf-8") if isinstance(body, str) else None
    method = str(spec.get("method") or ("POST" if data is not None else "GET")).upper()
    started = time.monotonic()
    out = _http_once(spec["url"], method, data, headers, timeout=timeout, limit=limit)
    poll = spec.get("poll")
    if poll and out.get("ok"):
        out["poll"] = _poll(poll, out, timeout, limit, started)
    out["duration_s"] = round(time.monotonic() - started, 4)
    return out


def _poll(poll, first, timeout, limit, started):
    url = str(poll["url"])
    if "{id}" in url:
        run_id = _json_key(first.get("body", ""), poll.get("id_key", "id"))
        if run_id is None:
            return {"error": "first answer has no %r" % poll.get("id_key", "id")}
        url = url.replace("{id}", str(run_id))
    final = [str(s) for s in poll.get("final") or []]
    deadline = started + float(poll.get("deadline", 60))
    interval = float(poll.get("interval", 1))
    polls, last = 0, {}
    while polls < int(poll.get("max_polls", 1000)):
        polls += 1
        last = _http_once(url, "GET", None, {}, timeout=timeout, limit=limit)
        state = _json_key(last.get("body", ""), poll.get("state_key", "state"))
        last["state"] = state
        if state is not None and str(state) in final:
            break
        if time.monotonic() + interval > deadline:
            last["timed_out"] = True
            break
        time.sleep(interval)
    last["url"] = url
    last["polls"] = polls
    return last


def op_run(spec, as_user=None):
    """Run an argv (never a shell string) with a timeout and capped output.

    ``as_user`` (from ``op_run_as_owner`` only): a pwd-like (uid, gid, groups, env) the
    child switches to before exec, with exactly that environment. ``keep: tail`` keeps the
    last ``max_bytes`` of each stream instead of the first (where a command prints its
    result after its log lines)."""
    import os  # os.environ (subprocess imports os anyway)
    import subprocess

    timeout = float(spec.get("timeout", 10))
    limit = int(spec.get("max_bytes", 64 * 1024))
    env = None
    if spec.get("env") or as_user is not None:
        env = dict(os.environ) if as_user is None else dict(as_user[3])
        env.update(spec.get("env") or {})
    started = time.monotonic()
    with _SPAWN_LOCK:
        _subreaper(True)
        SPAWNING.append(1)
        try:
            proc = subprocess.Popen(
                spec["argv"],
                cwd=spec.get("cwd") or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **_drop_kwargs(as_user),
            )
            CHILD_GROUPS.add(proc.pid)
        except (OSError, subprocess.SubprocessError) as exc:
            return {"started": False, "error": _err(exc)}
        finally:
            SPAWNING.pop()
    try:
        out, err, timed_out = _output_of(proc, started + timeout)
    finally:
        # What the command left in its process group (a `cmd &` child) ends with it, as at
        # a timeout or a hang-up: nothing of ours stays on the host (docs/fleet.md)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        CHILD_GROUPS.discard(proc.pid)
        # ... and so does what it moved out of that group (`setsid`, a double fork)
        if proc.poll() is not None:
            _end_orphans()
    cut = slice(-limit, None) if spec.get("keep") == "tail" else slice(limit)
    return {
        "started": True,
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "duration_s": round(time.monotonic() - started, 4),
        "stdout": out[cut].decode("utf-8", "replace"),
        "stderr": err[cut].decode("utf-8", "replace"),
        "truncated": len(out) > limit or len(err) > limit,
    }


def _subreaper(on):
    """Make the probe a child subreaper (``on``) or stop being one: Linux >= 3.4's
    PR_SET_CHILD_SUBREAPER through ctypes, imported on the first command only (~2 ms of
    CPU). Elsewhere, or when the call fails, nothing changes and such a process escapes, as
    before (docs/fleet.md)."""
    if bool(REAPER) == on or __name__ != "__main__":
        # Imported (a test, a worker): the process's other children are not the command's,
        # and _end_orphans would kill every one of them (a test session's sshd fleet).
        return
    if not _PRCTL:
        try:
            import ctypes

            _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
        except Exception:  # no ctypes, no libc with prctl (not Linux)
            _PRCTL.append(None)
    if _PRCTL[0] is None:
        return
    try:
        done = _PRCTL[0](36, 1 if on else 0, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:
        done = False
    if done and on:
        REAPER.append(1)
    elif done:
        del REAPER[:]


def _kill_children():
    """SIGKILL every live child of the probe, and the group it leads; how many there were."""
    me, killed = os.getpid(), 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) != me or fields[0] == b"Z":
                continue
            os.kill(int(name), signal.SIGKILL)
            killed += 1
            os.killpg(int(name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
    return killed


def _end_orphans():
    """End what the commands left that was re-parented to the probe (it is their subreaper),
    and reap it: bounded (1 s), and cheap when nothing was left: one ``waitpid`` that says
    the probe has no child, before any look at /proc. Only while no other command runs
    (``repeat`` runs several at once: the last one to end does it): every child then is
    such a process, and ``waitpid(-1)`` takes none from a Popen."""
    with _SPAWN_LOCK:
        if not REAPER or CHILD_GROUPS or SPAWNING:
            return
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                pid = os.waitpid(-1, os.WNOHANG)[0]
            except OSError:  # no child left
                return
            if pid == 0:  # children, none of them ended yet
                if not _kill_children():  # none the probe may kill: leave them
                    return
                time.sleep(0.005)


def _output_of(proc, end):
    """(stdout, stderr, timed out) of ``proc``, read until it exits or ``end`` passes (then
    its group is killed). A process that left the group (``setsid``, a daemon's double
    fork) may hold the pipes open long after: once the command itself has exited (or been
    killed), its output is taken as it stands a moment later instead of waiting for that
    process's end of output (before: until the probe's own deadline)."""
    import subprocess

    timed_out = False
    while True:
        left = end - time.monotonic()
        try:
            out, err = proc.communicate(timeout=max(0.0, min(left, 0.25)))
            return out, err, timed_out
        except subprocess.TimeoutExpired:
            if proc.poll() is None and left > 0.25:
                continue
            if proc.poll() is None:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
            try:
                out, err = proc.communicate(timeout=0.5)
            except subprocess.TimeoutExpired as exc:  # still held: what was read so far
                out, err = exc.output or b"", exc.stderr or b""
            return out, err, timed_out


# A path whose owner decides who may run code from it: writable by others than that owner
# (group or world) means someone else could have put code there.
_FOREIGN_WRITE = stat.S_IWGRP | stat.S_IWOTH
_CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _code_owner(paths):
    """(uid, None) of the one user whose code ``paths`` hold, or (None, why it is refused).

    Every path is looked at with lstat and stat (a link's owner chose its target), and
    every directory above it with lstat. Root
    counts as nobody's attacker, so root-owned paths do not vote; two different non-root
    owners are refused. Code that would run as root must not be writable by group/others.
    """
    owners = set()
    loose = []
    for path in paths:
        # Whoever can write a directory above the code can put other code at its name
        # (rename), also between this judgement and the run (the drill's restart runs
        # seconds later): the directories vote too. A sticky one (/tmp) protects its
        # entries from everyone but their owners.
        parent = _abspath(path)
        while parent != "/":
            parent = _normpath(_join(parent, ".."))
            try:
                st = os.lstat(parent)
            except OSError:
                continue
            owners.add(st.st_uid)
            if st.st_mode & _FOREIGN_WRITE and not st.st_mode & stat.S_ISVTX:
                loose.append(parent)
        for look in (os.lstat, os.stat):
            try:
                st = look(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                return None, "cannot stat %s (%s)" % (path, _err(exc))
            owners.add(st.st_uid)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & _FOREIGN_WRITE:
                loose.append(path)
    users = sorted(owners - {0})
    if len(users) > 1:
        names = ", ".join(_user_name(u) for u in users)
        return None, "its files belong to several users (%s)" % names
    owner = users[0] if users else 0
    if owner == 0 and loose:
        return None, "%s is writable by group or others, so it cannot be run as root" % loose[0]
    return owner, None


_OVERFLOW_GID = 65534  # the kernel's overflowgid ("nogroup"): a group that grants nothing


def _identity(uid, gid_fallback):
    """(uid, gid, groups, clean environment) to run as ``uid``."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return (uid, gid_fallback, [], {"PATH": _CLEAN_PATH, "HOME": "/", "LC_ALL": "C"})
    try:
        groups = os.getgrouplist(pw.pw_name, pw.pw_gid)
    except OSError:
        groups = [pw.pw_gid]
    env = {
        "PATH": _CLEAN_PATH,
        "HOME": pw.pw_dir or "/",
        "USER": pw.pw_name,
        "LOGNAME": pw.pw_name,
        "LC_ALL": "C",
    }
    return (uid, pw.pw_gid, groups, env)


# Resolves argv[0] on PATH *before* dropping: after setuid the interpreter may no longer
# read its own lazily imported modules (os.execvp imports warnings).
_DROP_AND_EXEC = (
    "import os,sys\n"
    "u,g,a=int(sys.argv[1]),int(sys.argv[2]),sys.argv[4:]\n"
    "p=a[0]\n"
    "if '/' not in p:\n"
    "    for d in os.environ.get('PATH','').split(':'):\n"
    "        c=os.path.join(d or '.',p)\n"
    "        if os.access(c,os.X_OK) and not os.path.isdir(c):\n"
    "            p=c\n"
    "            break\n"
    "os.setgroups([int(x) for x in sys.argv[3].split(',') if x])\n"
    "os.setgid(g)\nos.setuid(u)\n"
    "if os.getuid()!=u or os.geteuid()!=u or os.getegid()!=g:\n    os._exit(126)\n"
    "os.execv(p,a)\n"
)


def _drop_kwargs(identity):
    """Popen arguments making the child ``identity`` before exec: ``user=``/``group=``/
    ``extra_groups=`` on 3.9+ (done in C, safe with threads), a preexec function on 3.8."""
    if identity is None or identity[0] == 0:
        return {}
    if sys.version_info >= (3, 9):
        return {"user": identity[0], "group": identity[1], "extra_groups": list(identity[2])}
    return {"preexec_fn": _switcher(identity)}


def _switcher(identity):
    """A preexec function (3.8: runs in the forked child, before exec) that drops to
    ``identity``. Only used when no other thread runs (see ``_run_wrapped``)."""
    uid, gid, groups = identity[0], identity[1], list(identity[2])

    def switch():
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
            os._exit(126)

    return switch


def _run_wrapped(spec, identity):
    """3.8 with other threads (op_repeat) running: no Python code in the forked child; a
    tiny exec wrapper drops the privileges instead, then execs the argv."""
    groups = ",".join(str(g) for g in identity[2])
    wrapper = [sys.executable, "-S", "-c", _DROP_AND_EXEC, str(identity[0]), str(identity[1])]
    spec = dict(spec, argv=[*wrapper, groups, *spec["argv"]])
    return op_run(spec, as_user=(0, 0, [], identity[3]))


def _owner_identity(paths):
    """Who may run the code ``paths`` hold, by ``_code_owner``'s rule. (identity, None, None):
    run it as ``identity`` (``_identity``; None: as the probe's own user, who owns it or is
    root running root's code); (None, why, None): refused by the rule; (None, None, owner):
    another user's code and the probe is not root, so it cannot switch to that owner."""
    owner, why = _code_owner(paths)
    if why is not None:
        return None, why, None
    me = os.geteuid()
    if owner in (0, me):
        return None, None, None
    if me != 0:
        return None, None, owner
    # The group for an owner with no passwd entry (a container volume's uid): the owner's
    # own entry's group, never a link's target's (os.stat followed a link the owner made to
    # a root:shadow file, and the child ran in group shadow), nor the uid read as a gid.
    try:
        st = os.lstat(paths[0])
        gid = st.st_gid if st.st_uid == owner else _OVERFLOW_GID
    except (OSError, IndexError):
        gid = _OVERFLOW_GID
    return _identity(owner, gid), None, None


def op_run_as_owner(spec):
    """``run`` for code the app controls (its git repos, its interpreter): never with more
    privilege than the owner of ``owned_by``. As root, the child drops to that owner
    (setgroups/setgid/setuid, clean environment); as another user it runs only if it owns
    the code (or root does); otherwise the answer is ``refused`` and nothing runs."""
    identity, why, other = _owner_identity(list(spec.get("owned_by") or ()))
    me = os.geteuid()
    if why is not None:
        return {"started": False, "refused": why, "error": "refused: " + why}
    if other is not None:
        why = "it belongs to %s, and the probe runs as %s, not root, so it cannot run it as %s" % (
            _user_name(other),
            _user_name(me),
            _user_name(other),
        )
        return {
            "started": False,
            "refused": why,
            "error": "refused: " + why,
            "owner": _user_name(other),
        }
    if identity is None:
        res = op_run(spec)
        res["run_as"] = _user_name(me)
        return res
    threads = "threading" in sys.modules and sys.modules["threading"].active_count() > 1
    if threads and sys.version_info < (3, 9):
        res = _run_wrapped(spec, identity)
    else:
        res = op_run(spec, as_user=identity)
    res["run_as"] = _user_name(identity[0])
    if res.get("exit_code") == 126 and not res.get("stdout"):
        res["error"] = "could not switch to %s" % _user_name(identity[0])
    return res


def _star(directory):
    """``sorted(glob.glob(directory + "/*"))`` without importing glob (re, fnmatch, enum:
    ~4 ms of CPU): every name not starting with a dot; nothing when unreadable."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(_join(directory, n) for n in names if not n.startswith("."))


def op_crontab(spec):
    """Every cron line we can see: the user's crontab, /etc/crontab, /etc/cron.d, spools."""
    lines = []
    errors = []
    refused = []
    spool = "/var/spool/cron/crontabs"
    if os.geteuid() == 0 and _isdir(spool):
        # root reads every user's crontab from the spool below; `crontab -l` adds nothing.
        res = {"started": True, "exit_code": 0, "stdout": ""}
    else:
        res = op_run({"argv": ["crontab", "-l"], "timeout": 5})
    if res.get("started") and res.get("exit_code") == 0:
        lines += [("crontab -l", line) for line in res["stdout"].splitlines()]
    elif res.get("started"):
        errors.append("crontab -l: " + (res.get("stderr") or "").strip()[:200])
    else:
        errors.append("crontab -l: " + res.get("error", "not available"))
    files = ["/etc/crontab"] + _star("/etc/cron.d")
    files += _star("/var/spool/cron/crontabs") + _star("/var/spool/cron")
    for path in files + list(spec.get("extra_files") or []):
        # The system's cron files are root's; an extra file may be the app's (a link
        # in its tree must not show a root-only file), so all are read like ``file``.
        fact = op_file({"path": path, "max_bytes": 1024 * 1024})
        if fact.get("read_refused"):
            errors.append(fact["error"])
            refused.append(fact["read_refused"])
        for line in (fact.get("text") or "").splitlines():
            lines.append((path, line))
    entries = [
        {"source": src, "line": line.strip()}
        for src, line in lines
        if line.strip() and not line.strip().startswith("#")
    ]
    out = {"entries": entries, "errors": errors}
    if refused:
        out["read_refused"] = "; ".join(refused)
    return out


def _no_systemd():
    """sd_booted(): systemd manages this host only if /run/systemd/system exists."""
    if _isdir("/run/systemd/system"):
        return None
    return {"available": False, "error": "systemd is not running on this host"}


def op_systemd(spec):
    """`systemctl show` properties of a unit, and the timers known to systemd."""
    missing = _no_systemd()
    if missing:
        return missing
    argv = ["systemctl", "show", spec["unit"], "--no-pager"]
    for prop in spec.get("properties") or []:
        argv += ["-p", prop]
    res = op_run({"argv": argv, "timeout": 5})
    if not res.get("started") or res.get("exit_code") != 0:
        return {
            "available": False,
            "error": res.get("error") or res.get("stderr", "").strip()[:300],
        }
    props = {}
    for line in res["stdout"].splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    return {"available": True, "properties": props}


def op_systemd_timers(spec):
    missing = _no_systemd()
    if missing:
        return missing
    res = op_run(
        {"argv": ["systemctl", "list-timers", "--all", "--no-pager", "--no-legend"], "timeout": 5}
    )
    if not res.get("started") or res.get("exit_code") != 0:
        return {
            "available": False,
            "error": res.get("error") or res.get("stderr", "").strip()[:300],
        }
    return {
        "available": True,
        "lines": [ln.strip() for ln in res["stdout"].splitlines() if ln.strip()],
    }


def op_file_refs(spec):
    """Read a file (as ``file``) and stat every word of it that could name a path.

    Lets a manifest's entries be checked in the round trip that reads it: the
    controller parses the file properly and picks the stats it needs from ``refs``
    (keyed by the word as written). Words are whitespace/YAML-punctuation separated,
    plus the whole value after ``key:`` or ``-`` on each line (paths with spaces).
    Relative words are resolved against ``base`` (default: the file's directory).
    """
    import os  # os.path

    info = op_file(spec)
    if info.get("text") is None:
        return info
    base = spec.get("base") or os.path.dirname(spec["path"])
    limit = int(spec.get("max_entries", MAX_ENTRIES))
    words = []
    for raw in info["text"].splitlines():
        line = raw.split(" #", 1)[0].strip().lstrip("-").strip()
        _, sep, rest = line.partition(": ")
        words.append((rest if sep else line).strip().strip("\"'"))
        words += line.translate({ord(c): " " for c in ",[]{}\"'"}).split()
    refs = {}
    for word in words:
        if not word or word in refs or word.endswith(":") or len(word) > 4096:
            continue
        if len(refs) >= limit:
            info["refs_truncated"] = True
            break
        refs[word] = _stat_info(os.path.normpath(os.path.join(base, os.path.expanduser(word))))
    info["refs"] = refs
    return info


def op_repeat(spec):
    """Time an inner ``run`` or ``http`` op: ``runs`` times, ``concurrency`` at once, until
    ``time_cap`` (whichever ends first). Each inner timeout is cut to the time left; a run
    cut that way is marked ``cut`` (the cap ended it, not the thing being timed)."""
    import threading

    inner = dict(spec["spec"])
    fn = {"run": op_run, "http": op_http, "run_as_owner": op_run_as_owner}.get(inner.get("op"))
    if fn is None:
        return {
            "error": "repeat: inner op must be run, run_as_owner or http, not %r" % inner.get("op")
        }
    runs = max(0, min(int(spec.get("runs", 1)), 10000))
    workers = max(1, min(int(spec.get("concurrency", 1)), runs or 1, 64))
    started = time.monotonic()
    deadline = started + float(spec.get("time_cap", 30))
    full = float(inner.get("timeout", 10))
    results, lock, taken = [], threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                if taken[0] >= runs or time.monotonic() >= deadline:
                    return
                taken[0] += 1
            left = max(0.1, deadline - time.monotonic())
            one = dict(inner, timeout=min(full, left))
            poll = one.get("poll")
            if isinstance(poll, dict):
                one["poll"] = dict(poll, deadline=min(float(poll.get("deadline", 60)), left))
            try:
                res = fn(one)
            except Exception as exc:
                res = {"error": _err(exc)}
            late = res.get("timed_out") or "timed out" in str(res.get("error", ""))
            late = late or (res.get("poll") or {}).get("timed_out")
            res["cut"] = bool(late and time.monotonic() >= deadline - 0.05)
            for key in ("stdout", "stderr", "body"):
                res[key] = (res.get(key) or "")[-int(spec.get("keep_bytes", 2048)) :]
            with lock:
                results.append(res)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "requested": runs,
        "concurrency": workers,
        "not_started": runs - taken[0],
        "duration_s": round(time.monotonic() - started, 4),
        "results": results,
    }


def op_file_wait(spec):
    """Stat a file and return its last lines; with ``needle``, wait until a line contains it.

    Reads only the last ``tail_bytes`` each time (a partial first line is dropped);
    waits at most ``timeout`` seconds, polling every ``interval``.
    """
    import os  # os.SEEK_SET

    path, needle = spec["path"], spec.get("needle")
    tail, max_lines = int(spec.get("tail_bytes", 64 * 1024)), int(spec.get("max_lines", 200))
    interval = float(spec.get("interval", 0.2))
    started = time.monotonic()
    deadline = started + float(spec.get("timeout", 0))
    while True:
        fd, info = _walked(path)
        lines = []
        if fd >= 0:
            try:
                os.lseek(fd, max(0, info["size"] - tail), os.SEEK_SET)
                data = _read_fd(fd, tail)[:tail]
            except OSError as exc:
                info["error"] = _err(exc)
                data = b""
            finally:
                os.close(fd)
            info["complete_last_line"] = data.endswith(b"\n")
            lines = data.decode("utf-8", "replace").splitlines()
            if info["size"] > tail and lines:
                lines = lines[1:]
            if needle is not None:
                hit = [ln for ln in lines if needle in ln]
                if hit:
                    info["found"], info["line"] = True, hit[-1]
                    break
        if needle is None or time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    if needle is not None:
        info.setdefault("found", False)
        info["needle"] = needle
    info["lines"] = lines[-max_lines:]
    info["waited_s"] = round(time.monotonic() - started, 4)
    return info


def _pid_of(spec, writers=None):
    """The pid a pidfile (else ``match``) names; ``writers``, a list, gets the pidfile's
    writers (``_pidfile``) from the very read that gave the pid."""
    if spec.get("pidfile"):
        try:
            pid, who = _pidfile(spec["pidfile"])
        except (OSError, ValueError, IndexError):
            pass
        else:
            if writers is not None:
                writers.extend(who)
            return pid
    return _find_pid(spec["match"]) if spec.get("match") else None


def _proc_identity(pid):
    """(start time, state) of a pid from /proc/<pid>/stat, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19], fields[0]


def _alive(pid, start=None):
    ident = _proc_identity(pid)
    if ident is None or ident[1] in ("Z", "X"):
        return False
    return start is None or ident[0] == start


def _wait_gone(pid, start, seconds):
    deadline = time.monotonic() + seconds
    while _alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _restart_identity(spec):
    """(identity, None) to run a restart argv as the owner of its executable (``owned_by``;
    identity None: as the probe's user), or (None, why) when it must not run: root never
    runs an executable another user could have changed (``run_as_owner``'s rule)."""
    paths = list(spec.get("owned_by") or ())
    identity, why, other = _owner_identity(paths)
    if why is not None:
        return None, "the restart command was not run: " + why
    if other is not None:
        return None, "the restart command %s belongs to %s, and the probe runs as %s, not root" % (
            paths[0],
            _user_name(other),
            _user_name(os.geteuid()),
        )
    return identity, None


def _run_detached(spec, as_user=None):
    """Run a restart argv; output goes to a file so a daemon it leaves behind cannot hold a pipe.
    ``as_user``: the identity (``_identity``) the child switches to before exec."""
    import os  # os.environ (subprocess imports os anyway)

    timeout = float(spec.get("timeout", 30))
    env = None
    if spec.get("env") or as_user is not None:
        env = dict(os.environ) if as_user is None else dict(as_user[3])
        env.update(spec.get("env") or {})
    started = time.monotonic()
    # The restart is meant to outlive the probe (it starts the app again): what it leaves
    # goes to init, not to the probe, which is no subreaper while it runs.
    reaping = bool(REAPER)
    _subreaper(False)
    try:
        return _restart(spec, env, timeout, started, as_user)
    finally:
        if reaping:
            _subreaper(True)


def _restart(spec, env, timeout, started, as_user):
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                spec["argv"],
                cwd=spec.get("cwd") or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_drop_kwargs(as_user),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return {"started": False, "error": _err(exc)}
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        out.seek(0)
        text = out.read(8192).decode("utf-8", "replace")
    return {
        "started": True,
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "duration_s": round(time.monotonic() - started, 4),
        "output": text,
    }


def _signal(pid, signum):
    """Send ``signum`` to ``pid``; None, or why the kernel refused (another user's process,
    and the probe is not root: nothing was signalled)."""
    try:
        os.kill(pid, signum)
    except PermissionError:
        try:
            owner = _user_name(os.stat("/proc/%d" % pid).st_uid)
        except OSError:
            owner = "another user"
        return "process %d runs as %s, and the probe runs as %s, not root" % (
            pid,
            owner,
            _user_name(os.geteuid()),
        )
    return None


def op_terminate(spec):
    """Shutdown drill: signal one instance, time its exit, kill it after ``grace``, restart it.

    Refuses (``refused``) unless at least ``min_others`` of ``others`` are running, so
    the drill never takes the last instance down. ``restart`` is an argv spec (as
    ``run``); the new instance is found with ``ready`` (pidfile/match, default the
    target) within ``restart_wait`` seconds.
    """
    target = spec.get("target") or {}
    # The writers are judged from the same read as the pid: a second read could name
    # another process (the app user rewrites its pidfile between the two).
    writers = []
    pid = _pid_of(target, writers)
    out = {"found": pid is not None and _alive(pid), "pid": pid, "signalled": False}
    if not out["found"]:
        return out
    others = [_pid_of(o) for o in spec.get("others") or []]
    running = sorted({p for p in others if p is not None and p != pid and _alive(p)})
    out["others_running"] = running
    if len(running) < int(spec.get("min_others", 1)):
        out["refused"] = "no other instance of the service is running"
        return out
    foreign = _foreign_pid(pid, writers)
    if foreign is not None:
        out["refused"] = foreign
        out["foreign_pidfile"] = target["pidfile"]
        return out
    as_user = None
    if spec.get("restart"):
        # Judged before anything is signalled: a restart that must not run would leave the
        # canary down.
        as_user, why = _restart_identity(spec["restart"])
        if why is not None:
            out["restart_refused"] = why
            return out
    start = _proc_identity(pid)[0] if _proc_identity(pid) else None
    grace = float(spec.get("grace", 30))
    began = time.monotonic()
    denied = _signal(pid, int(spec.get("signal", signal.SIGTERM)))
    if denied is not None:
        out["signal_denied"] = denied
        return out
    out["signalled"] = True
    out["exited"] = _wait_gone(pid, start, grace)
    out["exit_s"] = round(time.monotonic() - began, 4)
    if not out["exited"] and spec.get("kill_after", True):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        out["killed"] = _wait_gone(pid, start, 5)
    if spec.get("restart") and (out["exited"] or out.get("killed")):
        began = time.monotonic()
        out["restart"] = _run_detached(spec["restart"], as_user)
        ready = spec.get("ready") or target
        deadline = began + float(spec.get("restart_wait", 30))
        new = None
        restarted = out["restart"].get("exit_code") == 0
        while restarted and time.monotonic() < deadline:
            new = _pid_of(ready)
            if new is not None and new != pid and _alive(new):
                break
            new = None
            time.sleep(0.1)
        out["new_pid"] = new
        out["restart_s"] = round(time.monotonic() - began, 4)
    return out


def _dists_env(spec, out):
    """The site directories of the app's environment (see ``op_dists``), into ``out``."""
    pythons = None
    for root in [r for r in spec.get("roots") or [] if isinstance(r, str)][:8]:
        fd, info = _walked(root + "/lib", directory=True)
        if fd >= 0:
            os.close(fd)
            out["root"] = root
            break
        if info.get("exists") is None:
            out["errors"].append(info.get("error"))
    if out["root"] is not None:
        chosen = [out["root"]]
        fd, _info = _walked(out["root"] + "/pyvenv.cfg")
        if fd >= 0:
            try:
                cfg = _read_fd(fd, 4096)[:4096].decode("utf-8", "replace")
            finally:
                os.close(fd)
            out["venv"] = True
            for line in cfg.splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() in ("version", "version_info") and not out["python"]:
                    out["python"] = value.strip()[:40]
    elif spec.get("system"):
        chosen = [sys.prefix] + (["/usr/local"] if sys.prefix == "/usr" else [])
        pythons = ("python%d.%d" % sys.version_info[:2], "python3")
        out["root"] = sys.prefix
        out["python"] = "%d.%d.%d" % sys.version_info[:3]
    else:
        chosen = []
    for root in chosen:
        fd, _info = _walked(root + "/lib", directory=True)
        if fd < 0:
            continue
        names = []
        try:
            with os.scandir(fd) as entries:
                for seen, entry in enumerate(entries):
                    if seen >= 1000:
                        break
                    if entry.name.startswith("python"):
                        names.append(entry.name)
        finally:
            os.close(fd)
        names.sort()
        for name in names[:16]:
            if pythons is None or name in pythons:
                for sub in ("site-packages", "dist-packages"):
                    out["site_dirs"].append("%s/lib/%s/%s" % (root, name, sub))


def _dists_header_version(path, max_bytes):
    """``Version:`` from the header of a METADATA/PKG-INFO file (read through the walker)."""
    fd, _info = _walked(path)
    if fd < 0:
        return ""
    try:
        head = _read_fd(fd, max_bytes)[:max_bytes]
    except OSError:
        return ""
    finally:
        os.close(fd)
    for line in head.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # the header ends at the first blank line
        if line.lower().startswith("version:"):
            return line[8:].strip()
    return ""


def op_dists(spec):
    """Versions of the Python distributions in the app's environment, for drift.

    Read from the ``*.dist-info``/``*.egg-info`` names in its site-packages, and only
    where a name has no version from the ``Version:`` header of its METADATA/PKG-INFO
    (bounded read). Nothing of the app's is imported or run (its user controls these
    files): directories are opened through the no-follow walker, a dist-info that is a
    symlink is never opened, at most ``max_names`` names are looked at per directory,
    ``max_dists`` kept, ``max_reads`` headers read of at most ``max_bytes`` each.
    ``roots``: candidate environments (venvs); the first with a ``lib`` directory is
    read, its ``pyvenv.cfg`` giving the interpreter version. With none and ``system``,
    the site directories of the interpreter running the probe are read instead.
    """
    max_names = int(spec.get("max_names", 20000))
    max_dists = int(spec.get("max_dists", 2000))
    max_reads = int(spec.get("max_reads", 50))
    max_bytes = int(spec.get("max_bytes", 64 * 1024))
    out = {"root": None, "venv": False, "python": None, "site_dirs": [], "dists": {}}
    out.update(truncated=False, metadata_reads=0, errors=[])
    _dists_env(spec, out)
    dists = out["dists"]
    for site in out["site_dirs"]:
        fd, info = _walked(site, directory=True)
        if fd < 0:
            if info.get("exists") is None:
                out["errors"].append(info.get("error"))
            continue
        found = []
        try:
            with os.scandir(fd) as entries:
                for seen, entry in enumerate(entries):
                    if seen >= max_names:
                        out["truncated"] = True
                        break
                    if entry.name.endswith((".dist-info", ".egg-info")):
                        found.append(
                            (entry.name, entry.is_symlink(), entry.is_dir(follow_symlinks=False))
                        )
        finally:
            os.close(fd)
        for name, link, is_dir in sorted(found):
            dist_info = name.endswith(".dist-info")
            parts = name[: -10 if dist_info else -9].split("-")
            words = parts[0].lower().replace("_", "-").replace(".", "-").split("-")
            key = "-".join(w for w in words if w)[:100]  # PEP 503 normalised
            if not key or key in dists:
                continue  # the first site directory wins, as on sys.path
            if len(dists) >= max_dists:
                out["truncated"] = True
                break
            version = parts[1] if len(parts) > 1 else ""
            if not version and not link and out["metadata_reads"] < max_reads:
                out["metadata_reads"] += 1
                path = "%s/%s" % (site, name)
                if is_dir:
                    path += "/METADATA" if dist_info else "/PKG-INFO"
                version = _dists_header_version(path, max_bytes)
            dists[key] = version[:64] or None
    del out["errors"][5:]
    return out


OPS = {
    "stat": op_stat,
    "file": op_file,
    "file_refs": op_file_refs,
    "list": op_list,
    "glob": op_glob,
    "write_test": op_write_test,
    "process": op_process,
    "tcp": op_tcp,
    "http": op_http,
    "run": op_run,
    "run_as_owner": op_run_as_owner,
    "repeat": op_repeat,
    "crontab": op_crontab,
    "systemd": op_systemd,
    "systemd_timers": op_systemd_timers,
    "file_wait": op_file_wait,
    "terminate": op_terminate,
    "dists": op_dists,
}


def collect(request):
    facts = {}
    for key, spec in sorted(request.get("facts", {}).items()):
        fn = OPS.get(spec.get("op"))
        if fn is None:
            facts[key] = {"error": "unknown op %r" % spec.get("op")}
            continue
        started = time.monotonic()
        try:
            facts[key] = fn(spec)
        except Exception as exc:  # one bad fact never loses the others
            facts[key] = {"error": _err(exc)}
        facts[key]["_elapsed_s"] = round(time.monotonic() - started, 5)
    return {
        "probe_version": PROBE_VERSION,
        "facts": facts,
        "meta": {
            "hostname": os.uname()[1],
            "uid": os.getuid(),
            "user": _user_name(os.getuid()),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "now": time.time(),
        },
    }


_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"})


def _encode(obj, out):
    """JSON for the answer's plain data; anything else becomes its str()."""
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        # The usual escapes by str.replace (C scans); only a string that still holds
        # something else unprintable goes through translate (a per-character lookup once
        # a string has a newline: a file's text): 0.37 -> 0.21 ms for the example's answer.
        text = (
            obj.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\t", "\\t")
            .replace("\r", "\\r")
        )
        out.append('"' + (text if text.isprintable() else obj.translate(_ESCAPES)) + '"')
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        finite = obj - obj == 0.0  # False for nan and ±inf, which JSON cannot carry
        out.append(repr(obj) if finite else "null")
    elif isinstance(obj, dict):
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if i:
                out.append(",")
            _encode(str(key), out)
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, out)
        out.append("]")
    else:
        _encode(str(obj), out)


def dumps(obj):
    """UTF-8 JSON bytes; lone surrogates (undecodable file names) become \\uXXXX escapes."""
    out = []
    _encode(obj, out)
    return "".join(out).encode("utf-8", "backslashreplace")


def main():
    # The bootstrap has armed the deadline already (see readiness.collect).
    request = marshal.loads(sys.stdin.buffer.read())  # noqa: S302 - the controller's own request
    sys.stdout.buffer.write(dumps(collect(request)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
