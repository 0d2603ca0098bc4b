"""The remediation audit log: one JSON line per applied, reverted, failed or no-op fix.

Who (the controller user: the process's real uid and its passwd name, never
``$LOGNAME``/``$USER``, which anyone can set), when, host, check, what changed
(summaries, never a secret value) and the outcome. Appended locally, by default to
``$XDG_STATE_HOME/readiness/remediation-audit.jsonl`` (``~/.local/state/...`` when
``XDG_STATE_HOME`` is unset), whatever the current directory; a human line goes to
stderr too.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
import threading
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import refuse_unless_writable
from ..model import utcnow

__all__ = ["DEFAULT_AUDIT_LOG", "AuditLog", "AuditSink", "default_audit_log"]


class AuditSink(Protocol):
    """Where a host run records what it did: the log file, or (on a Celery worker) the
    stream of entries back to the controller that writes it."""

    def record(
        self, host: str, check: str, changes: list[str], outcome: str, message: str = ""
    ) -> Any: ...


def default_audit_log() -> Path:
    """The fixed per-user location (XDG state directory), independent of the cwd."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "readiness" / "remediation-audit.jsonl"


DEFAULT_AUDIT_LOG = default_audit_log()


class AuditLog:
    def __init__(self, path: str | Path = DEFAULT_AUDIT_LOG, stream: IO[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self.stream = stream
        self.uid = os.getuid()
        self.user = _user(self.uid)
        self._lock = threading.Lock()

    def check_writable(self) -> None:
        """Before any host is touched: the log can be appended to (an existing regular file
        that opens for appending, or a writable directory above it, probed with a temporary
        file that is removed: a refused run leaves no log behind); else a usage error (exit
        2). A log that failed at the first record reported a host that had just been changed
        as unreachable, "nothing was audited or changed", with no entry."""
        refuse_unless_writable(self.path, f"--audit-log {self.path}", append=True)

    def record(
        self,
        host: str,
        check: str,
        changes: list[str],
        outcome: str,
        message: str = "",
        *,
        at: str | None = None,
        worker: str | None = None,
    ) -> dict[str, Any]:
        """Append one entry. ``at``/``worker``: when and by which Celery worker the fix was
        made (a distributed remediation; the controller writes the log)."""
        entry: dict[str, Any] = {
            "ts": at or utcnow().isoformat().replace("+00:00", "Z"),
            "user": self.user,
            "uid": self.uid,
            "host": host,
            "check": check,
            "changes": changes,
            "outcome": outcome,
        }
        if message:
            entry["message"] = message
        if worker:
            entry["worker"] = worker
        with self._lock:
            # Private like the results store (0600, directory 0700): even masked, what was
            # fixed and what still fails on which host describes the fleet's weak spots.
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(
                f"[remediate] {entry['ts']} {self.user} {host} {check}: {outcome}"
                + (f" ({message})" if message else "")
                + "\n"
            )
            stream.flush()
        return entry


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
