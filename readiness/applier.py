"""The host-side applier of remediation: stdlib only, Python 3.8+, one run per request.

It travels exactly like the probe (``readiness.collect.bootstrap_argv``: a constant
command line, this source and a JSON request on stdin) and answers one JSON
document on stdout. Three operations:

``read``     the current bytes, mode and owner of some paths (the planner's input).
``apply``    snapshot everything the changes touch, then apply them; on any error
             the snapshot is restored before answering, so a fix is all or nothing.
``restore``  put a snapshot back byte for byte (the controller asks for it when the
             re-audit shows the fix did not make its check pass).

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
from typing import Any, Dict, List, Optional, Tuple

APPLIER_VERSION = 1
SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024
BACKUP_MARK = ".readiness-bak."
CRONTAB = "crontab:"  # snapshot key of a crontab: "crontab:" (own) or "crontab:<user>"
OUTPUT_MAX_BYTES = 64 * 1024  # the tail of a command's output that is kept
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")

Snapshot = Dict[str, Dict[str, Any]]


class ApplyError(Exception):
    """A change that cannot be made safely; the whole fix is rolled back."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_state(path: str, max_bytes: int = SNAPSHOT_MAX_BYTES) -> Dict[str, Any]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    out: Dict[str, Any] = {
        "exists": True,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    if stat.S_ISDIR(st.st_mode):
        out["type"] = "dir"
        return out
    if not stat.S_ISREG(st.st_mode):
        out["type"] = "other"
        return out
    out["type"] = "file"
    if st.st_size > max_bytes:
        out["too_large"] = True
        return out
    with open(path, "rb") as fh:
        data = fh.read()
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
    proc = subprocess.run(argv, input=data or b"", capture_output=True, timeout=10)
    if proc.returncode != 0 and data is not None:
        raise ApplyError("crontab -: " + proc.stderr.decode("utf-8", "replace").strip()[:300])


def _write_atomic(path: str, data: bytes, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Write via a temporary file in the same directory and rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=".readiness-tmp-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if os.getuid() == 0 and uid >= 0:
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Fix:
    """One fix being applied: what was there before, what this run created."""

    def __init__(self, stamp: str) -> None:
        self.stamp = stamp
        self.snapshot: Snapshot = {}
        self.created: List[str] = []  # files and directories, in creation order
        self.backups: List[str] = []
        self.outputs: Dict[str, str] = {}  # change index -> the tail of a command's output

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

    def make_parents(self, path: str) -> None:
        missing = []
        parent = os.path.dirname(path)
        while parent and not os.path.isdir(parent):
            if os.path.lexists(parent):
                raise ApplyError("%s exists and is not a directory" % parent)
            missing.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(missing):
            self.remember(d)
            os.mkdir(d, 0o755)
            self.created.append(d)

    def backup(self, path: str) -> None:
        """Keep a private copy of ``path`` before it is rewritten."""
        target = "%s%s%s" % (path, BACKUP_MARK, self.stamp)
        n = 1
        while os.path.lexists(target):
            n += 1
            target = "%s%s%s.%d" % (path, BACKUP_MARK, self.stamp, n)
        with open(path, "rb") as fh:
            data = fh.read()
        _write_atomic(target, data, 0o600)
        self.created.append(target)
        self.backups.append(target)


def _expect(state: Dict[str, Any], change: Dict[str, Any]) -> None:
    want = change.get("expect_sha256")
    if want and state.get("sha256") != want:
        raise ApplyError("%s changed since the plan was made; re-run remediate" % change["path"])


def ch_ensure_dir(fix: _Fix, change: Dict[str, Any]) -> str:
    path, mode = change["path"], int(change["mode"])
    state = fix.remember(path)
    if state.get("exists") and state.get("type") != "dir":
        raise ApplyError("%s exists and is not a directory" % path)
    done = []
    if not state.get("exists"):
        fix.make_parents(path)
        os.mkdir(path, mode)
        fix.created.append(path)
        os.chmod(path, mode)
        done.append("created")
    owner = _owner_of(change.get("owner_of"))
    if owner is not None and os.getuid() == 0:
        st = os.stat(path)
        if (st.st_uid, st.st_gid) != owner:
            os.chown(path, owner[0], owner[1])
            done.append("owner set")
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
    _write_atomic(path, data, int(change.get("mode", 0o644)), owner[0], owner[1])
    fix.created.append(path)
    return "created"


def _rewrite(fix: _Fix, path: str, state: Dict[str, Any], data: bytes) -> None:
    fix.backup(path)
    _write_atomic(path, data, int(state["mode"]), int(state["uid"]), int(state["gid"]))


def ch_append_lines(fix: _Fix, change: Dict[str, Any]) -> str:
    path = change["path"]
    block = ("\n".join(change["lines"]) + "\n").encode("utf-8")
    state = fix.remember(path)
    if not state.get("exists"):
        fix.make_parents(path)
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
    if state.get("type") != "file":
        raise ApplyError("%s is not a regular file" % path)
    if state.get("sha256") == _sha(data):
        return ""
    _expect(state, change)
    _rewrite(fix, path, state, data)
    return "rewritten (backup kept)"


def ch_chmod(fix: _Fix, change: Dict[str, Any]) -> str:
    """Only ever removes permission bits: the new mode is ``current & mode``."""
    path = change["path"]
    state = fix.remember(path)
    if not state.get("exists"):
        raise ApplyError("%s does not exist" % path)
    new = int(state["mode"]) & int(change["mode"])
    if new == int(state["mode"]):
        return ""
    os.chmod(path, new)
    return "mode %04o -> %04o" % (int(state["mode"]), new)


def ch_crontab(fix: _Fix, change: Dict[str, Any]) -> str:
    line = change["line"].strip()
    user = change.get("user") or None
    state = fix.remember_crontab(user)
    old = _content(state) if state.get("exists") else b""
    if any(l.strip() == line for l in old.decode("utf-8", "replace").splitlines()):
        return ""
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    _set_crontab(old + sep + line.encode("utf-8") + b"\n", user)
    return "crontab line added"


def _run_capped(
    argv: List[str], cwd: str, timeout: float, limit: int
) -> Tuple[int, bool, float, str]:
    """(exit code, timed out, seconds, last ``limit`` bytes of stdout+stderr)."""
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a timeout kills the command's whole process group
            )
        except OSError as exc:
            raise ApplyError("cannot start %s: %s" % (argv[0], exc)) from exc
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
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].strip()


def ch_set_env(fix: _Fix, change: Dict[str, Any]) -> str:
    """Give ``name`` a freshly generated secret, if its value is still the planned-on one."""
    path, name = change["path"], change["name"]
    length = max(32, int(change.get("length", 64)))
    state = fix.remember(path)
    lines = _content(state).decode("utf-8").splitlines(True) if state.get("exists") else []
    at, current = None, None
    for i, line in enumerate(lines):
        m = _ENV_LINE.match(line)
        if m and m.group(1) == name:
            at, current = i, _env_value(m.group(2))
    want = change.get("expect_value_sha256")  # None: the variable was absent or empty
    actual = _sha(current.encode("utf-8")) if current else None
    if actual != want:
        return ""  # already changed by someone (or by a previous run): leave it
    value = secrets.token_urlsafe(length)[:length]
    new_line = "%s=%s\n" % (name, value)
    if at is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(new_line)
    else:
        lines[at] = new_line
    data = "".join(lines).encode("utf-8")
    if state.get("exists"):
        _rewrite(fix, path, state, data)
    else:
        fix.make_parents(path)
        _write_atomic(path, data, 0o600)
        fix.created.append(path)
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


def restore(snapshot: Snapshot, created: List[str]) -> List[str]:
    """Put every snapshotted path back; remove only what this fix created. Returns errors."""
    errors = []
    for path in reversed(created):
        if path in snapshot and snapshot[path].get("exists"):
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)  # only if empty: never removes anything else
            elif os.path.lexists(path):
                os.unlink(path)
        except OSError as exc:
            errors.append("%s: %s" % (path, exc))
    for path, state in snapshot.items():
        try:
            _restore_one(path, state)
        except (OSError, ApplyError) as exc:
            errors.append("%s: %s" % (path, exc))
    return errors


def _restore_one(path: str, state: Dict[str, Any]) -> None:
    if path.startswith(CRONTAB):
        user = path[len(CRONTAB) :] or None
        now = _crontab_state(user)
        before = _content(state) if state.get("exists") else None
        if (_content(now) if now.get("exists") else None) != before:
            _set_crontab(before, user)
        return
    if not state.get("exists"):
        return
    if state.get("type") == "file":
        data = _content(state)
        now = _read_state(path)
        if now.get("sha256") != _sha(data) or now.get("mode") != state["mode"]:
            _write_atomic(path, data, int(state["mode"]), int(state["uid"]), int(state["gid"]))
    elif os.path.lexists(path):
        os.chmod(path, int(state["mode"]))
        if os.getuid() == 0:
            os.lchown(path, int(state["uid"]), int(state["gid"]))


def op_apply(request: Dict[str, Any]) -> Dict[str, Any]:
    fix = _Fix(str(request.get("stamp") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    results = []
    try:
        for index, change in enumerate(request.get("changes") or []):
            fn = CHANGES.get(change.get("kind"))
            if fn is None:
                raise ApplyError("unknown change %r" % change.get("kind"))
            results.append(fn(fix, dict(change, index=index)))
    except (ApplyError, OSError, ValueError, KeyError) as exc:
        errors = restore(fix.snapshot, fix.created)
        return {
            "ok": False,
            "error": "%s: %s" % (type(exc).__name__, exc),
            "restore_errors": errors,
            "outputs": fix.outputs,
        }
    return {
        "ok": True,
        "results": results,
        "snapshot": fix.snapshot,
        "created": fix.created,
        "backups": fix.backups,
        "outputs": fix.outputs,
    }


def op_read(request: Dict[str, Any]) -> Dict[str, Any]:
    limit = int(request.get("max_bytes", SNAPSHOT_MAX_BYTES))
    return {"ok": True, "files": {p: _read_state(p, limit) for p in request.get("paths") or []}}


def op_restore(request: Dict[str, Any]) -> Dict[str, Any]:
    errors = restore(request.get("snapshot") or {}, list(request.get("created") or []))
    return {"ok": not errors, "errors": errors}


OPS = {"read": op_read, "apply": op_apply, "restore": op_restore}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    fn = OPS.get(request.get("op"))
    answer = (
        {"ok": False, "error": "unknown op %r" % request.get("op")} if fn is None else fn(request)
    )
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
