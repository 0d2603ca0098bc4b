"""The remediation audit log: one JSON line per applied, reverted, failed or no-op fix.

Who (the controller user), when, host, check, what changed (summaries, never a
secret value) and the outcome. Appended locally; a human line goes to stderr too.
"""

from __future__ import annotations

import getpass
import json
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ..model import utcnow

__all__ = ["DEFAULT_AUDIT_LOG", "AuditLog"]

DEFAULT_AUDIT_LOG = Path("reports") / "remediation-audit.jsonl"


class AuditLog:
    def __init__(self, path: str | Path = DEFAULT_AUDIT_LOG, stream: IO[str] | None = None) -> None:
        self.path = Path(path)
        self.stream = stream
        self.user = _user()
        self._lock = threading.Lock()

    def record(
        self, host: str, check: str, changes: list[str], outcome: str, message: str = ""
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": utcnow().isoformat().replace("+00:00", "Z"),
            "user": self.user,
            "host": host,
            "check": check,
            "changes": changes,
            "outcome": outcome,
        }
        if message:
            entry["message"] = message
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(
                f"[remediate] {entry['ts']} {self.user} {host} {check}: {outcome}"
                + (f" ({message})" if message else "")
                + "\n"
            )
            stream.flush()
        return entry


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
