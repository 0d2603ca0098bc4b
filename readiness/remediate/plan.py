"""What a remediation would change: typed changes, fixes and per-host plans.

A change is a frozen dataclass that knows three things: the paths it touches (so the
applier can snapshot them), the request the host-side applier executes, and how it
looks in a dry run (a unified diff, or a one-line description). Secrets never
appear in any of them: a generated secret is described, never shown.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import posixpath
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

__all__ = [
    "AppendLines",
    "Change",
    "Chmod",
    "CreateFile",
    "CrontabEntry",
    "EditFile",
    "EnsureDir",
    "FileState",
    "Fix",
    "HostPlan",
    "ReportedChange",
    "RunCommand",
    "SetEnvVar",
    "plan_hash",
    "project",
    "sha256_text",
]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The mode bits a file loses when a new secret is written into it: applier.SECRET_FILE_NOT_FOR
# (the applier is host-side source, sent to the host, never imported here), for the dry run.
SECRET_FILE_NOT_FOR = 0o007


@dataclass(frozen=True)
class FileState:
    """A file as the applier's ``read`` saw it (content only for regular files)."""

    path: str
    exists: bool
    kind: str = ""
    mode: int | None = None
    text: str | None = None
    sha256: str | None = None
    # Why ``text`` is None although the file was read ("not UTF-8 text"), else "".
    unreadable: str = ""
    nlink: int = 1  # hard links of the inode (the applier never chmods one with several)
    # Why the applier would refuse to rewrite it (without root, an owner it cannot keep).
    cannot_rewrite: str = ""
    cannot_chmod: str = ""  # why the applier could not chmod it (without root, not its owner)
    error: str = ""  # why the applier could not read it (kind "refused": a planted link above)

    @classmethod
    def from_answer(cls, path: str, data: Mapping[str, Any]) -> FileState:
        import base64

        text = None
        unreadable = ""
        if data.get("content_b64") is not None:
            try:
                # Strict: a text decoded with replacement characters would be written back
                # as such, and its hash never matches the file's (the applier refuses it).
                text = base64.b64decode(str(data["content_b64"])).decode("utf-8")
            except UnicodeDecodeError:
                unreadable = "not UTF-8 text"
        mode = data.get("mode")
        return cls(
            path=path,
            exists=bool(data.get("exists")),
            kind=str(data.get("type") or ""),
            mode=int(mode) if mode is not None else None,
            text=text,
            sha256=data.get("sha256"),
            unreadable=unreadable,
            nlink=int(data.get("nlink") or 1),
            cannot_rewrite=str(data.get("cannot_rewrite") or ""),
            cannot_chmod=str(data.get("cannot_chmod") or ""),
            error=str(data.get("error") or ""),
        )


def _unified(path: str, old: str | None, new: str) -> str:
    a = "/dev/null" if old is None else f"a{path}"
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=a,
        tofile=f"b{path}",
    )
    out = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return out.rstrip("\n")


@dataclass(frozen=True)
class EnsureDir:
    """A directory exists with ``mode``; with ``owner_of``, owned like that reference path."""

    path: str
    mode: int = 0o750
    owner_of: str | None = None
    # A path that came from host data: the applier refuses it outside this tree.
    confine_to: str | None = None
    kind: str = "ensure_dir"

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "mode": self.mode,
            "owner_of": self.owner_of,
            "confine_to": self.confine_to,
        }

    def summary(self) -> str:
        owner = f", owned like {self.owner_of}" if self.owner_of else ""
        return f"create directory {self.path} (mode {self.mode:04o}{owner})"

    def diff(self) -> str:
        return f"+ mkdir -m {self.mode:04o} {self.path}"


@dataclass(frozen=True)
class CreateFile:
    """A new file; an existing file is never overwritten (the applier leaves it alone)."""

    path: str
    content: str
    mode: int = 0o644
    owner_of: str | None = None
    kind: str = "create_file"

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "content": self.content,
            "mode": self.mode,
            "owner_of": self.owner_of,
        }

    def summary(self) -> str:
        return f"create {self.path} ({len(self.content.splitlines())} lines, mode {self.mode:04o})"

    def diff(self) -> str:
        return _unified(self.path, None, self.content)


@dataclass(frozen=True)
class AppendLines:
    """Lines appended to a file unless the block is already in it (a backup copy is kept)."""

    path: str
    lines: tuple[str, ...]
    old_text: str | None = field(default=None, repr=False)
    kind: str = "append_lines"
    # A cron line: (the user it runs as, its command). The applier refuses to make root
    # run code someone else can change (applier._refuse_root_running_foreign_code).
    cron_runs: tuple[str, str] | None = None

    def request(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "path": self.path,
            "lines": list(self.lines),
            "expect_sha256": sha256_text(self.old_text) if self.old_text is not None else None,
        }
        if self.cron_runs is not None:
            out["cron_runs"] = {"user": self.cron_runs[0], "command": self.cron_runs[1]}
        return out

    def new_text(self) -> str:
        old = self.old_text or ""
        sep = "" if not old or old.endswith("\n") else "\n"
        return old + sep + "\n".join(self.lines) + "\n"

    def summary(self) -> str:
        return f"append {len(self.lines)} line(s) to {self.path}"

    def diff(self) -> str:
        return _unified(self.path, self.old_text, self.new_text())


@dataclass(frozen=True)
class EditFile:
    """Rewrite a file to ``content`` (planned from ``old_text``; a backup copy is kept)."""

    path: str
    old_text: str
    content: str
    what: str = "edit"
    kind: str = "edit_file"

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "content": self.content,
            "expect_sha256": sha256_text(self.old_text),
        }

    def summary(self) -> str:
        return f"{self.what} in {self.path}"

    def diff(self) -> str:
        return _unified(self.path, self.old_text, self.content)


@dataclass(frozen=True)
class Chmod:
    """Tighten a path's mode: permission bits outside ``mode`` are removed, none are added."""

    path: str
    mode: int
    current: int | None = None
    kind: str = "chmod"

    def request(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "mode": self.mode}

    def summary(self) -> str:
        was = f" (was {self.current:04o})" if self.current is not None else ""
        new = self.current & self.mode if self.current is not None else self.mode
        return f"chmod {new:04o} {self.path}{was}"

    def diff(self) -> str:
        return f"~ {self.summary()}"


@dataclass(frozen=True)
class CrontabEntry:
    """A line in a crontab (``crontab [-u USER] -l`` / ``-``), unless already present.

    ``user`` None is the remote user's own crontab; a name needs root on the host.
    """

    line: str
    user: str | None = None
    kind: str = "crontab"
    command: str | None = None  # what the line runs (judged like AppendLines.cron_runs)

    @property
    def path(self) -> str:
        return "crontab:" + (self.user or "")

    def request(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "line": self.line, "user": self.user}
        if self.command is not None:
            out["cron_runs"] = {"user": self.user, "command": self.command}
        return out

    def summary(self) -> str:
        whose = f"the crontab of {self.user}" if self.user else "the crontab"
        return f"add to {whose}: {self.line}"

    def diff(self) -> str:
        whose = f"user {self.user}" if self.user else "current user"
        return f"--- crontab ({whose})\n+++ crontab ({whose})\n+{self.line}"


@dataclass(frozen=True)
class RunCommand:
    """Run an argv on the host (never a shell string) with a timeout; output captured, capped.

    What the command changes (a database, for migrations) is outside any snapshot:
    it cannot be reverted, and the outcome of a fix holding one never claims it was.
    """

    argv: tuple[str, ...]
    cwd: str
    timeout_s: float
    what: str = "run"
    max_bytes: int = 64 * 1024
    kind: str = "run_command"

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "argv": list(self.argv),
            "cwd": self.cwd,
            "timeout_s": self.timeout_s,
            "max_bytes": self.max_bytes,
        }

    def command_line(self) -> str:
        return shlex.join(self.argv)

    def summary(self) -> str:
        return f"{self.what}: {self.command_line()} (in {self.cwd}, timeout {self.timeout_s:g} s)"

    def diff(self) -> str:
        return (
            f"$ cd {shlex.quote(self.cwd)} && {self.command_line()}"
            f"    # on the host, argv without a shell, timeout {self.timeout_s:g} s, not revertible"
        )


@dataclass(frozen=True)
class SetEnvVar:
    """``name`` in the env file gets a secret generated *on the host* (never shown, never sent)."""

    env_file: str
    name: str
    current_sha256: str | None  # of the value planned on; None when absent or empty
    length: int = 64
    kind: str = "set_env"
    current_mode: int | None = None  # of the env file planned on; None when it is absent

    @property
    def new_mode(self) -> int | None:
        """The env file's mode after the fix when it changes: the applier removes the bits
        for others (``applier.SECRET_FILE_NOT_FOR``) of a file a new secret goes into."""
        if self.current_mode is None or not self.current_mode & SECRET_FILE_NOT_FOR:
            return None
        return self.current_mode & ~SECRET_FILE_NOT_FOR

    @property
    def path(self) -> str:
        return self.env_file

    def request(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.env_file,
            "name": self.name,
            "length": self.length,
            "expect_value_sha256": self.current_sha256,
        }

    def summary(self) -> str:
        text = f"write a newly generated secret for {self.name} into {self.env_file}"
        if self.new_mode is not None and self.current_mode is not None:
            text += f" (mode {self.current_mode:04o} -> {self.new_mode:04o}: not for others)"
        return text

    def diff(self) -> str:
        old = "" if self.current_sha256 is None else f"-{self.name}=<current value hidden>\n"
        mode = ""
        if self.new_mode is not None and self.current_mode is not None:
            mode = f"~ chmod {self.new_mode:04o} {self.env_file} (was {self.current_mode:04o})\n"
        return (
            f"{mode}--- a{self.env_file}\n+++ b{self.env_file}\n{old}"
            f"+{self.name}=<generated on apply: {self.length} chars>"
        )


@dataclass(frozen=True)
class ReportedChange:
    """A change as a report carries it (read back from a worker's JSON): its summary only.

    The content it would write never travels, so it can be shown, never applied.
    """

    text: str
    kind: str = "reported"
    path: str = ""

    def request(self) -> dict[str, Any]:
        raise RuntimeError(f"a reported change cannot be applied: {self.text}")

    def summary(self) -> str:
        return self.text

    def diff(self) -> str:
        return ""


Change: TypeAlias = (
    EnsureDir
    | CreateFile
    | AppendLines
    | EditFile
    | Chmod
    | CrontabEntry
    | SetEnvVar
    | RunCommand
    | ReportedChange
)


@dataclass(frozen=True)
class Fix:
    """One check's repair on one host: its changes and the findings it is meant to clear.

    ``addresses`` are findings by their exact text; ``addresses_containing`` also counts
    any later finding containing one of its texts (a partly applied set of migrations
    reports a different count, yet is the same finding still there).
    """

    check: str
    description: str
    changes: tuple[Change, ...]
    addresses: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    restart_needed: bool = False
    addresses_containing: tuple[str, ...] = ()
    # Masks secret literals in the diff exactly as reports are masked: the audit's
    # redactor (secrets it registered from the settings/env, URL and DSN passwords).
    mask: Callable[[str], str] | None = field(default=None, compare=False, repr=False)
    # The masked diff as the planner rendered it, for a fix read back from a report
    # (its changes are ReportedChange summaries: the content itself never travels).
    shown_diff: str | None = field(default=None, compare=False, repr=False)
    # Missing directories above the paths this fix creates, which the applier creates
    # too (0755, owned like their parent): shown in the diff, so the dry run names them.
    new_parents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # one refusal per reason: five documents under one planted link are one refusal
        object.__setattr__(self, "notes", tuple(dict.fromkeys(self.notes)))

    @property
    def revertible(self) -> bool:
        """False when a change (a command run on the host) cannot be undone by a snapshot."""
        return not any(c.kind == "run_command" for c in self.changes)

    def still_reported(self, findings: list[str]) -> tuple[str, ...]:
        """The findings, after the fix, that it was meant to clear."""
        return tuple(
            p
            for p in findings
            if p in self.addresses or any(n in p for n in self.addresses_containing)
        )

    def summaries(self) -> list[str]:
        """Each change in one line, masked as the diff is (a crontab line or a command's
        argv may carry a password): what the report's ``changes`` and the audit log show."""
        texts = [c.summary() for c in self.changes]
        return [self.mask(t) for t in texts] if self.mask is not None else texts

    def diff(self) -> str:
        if self.shown_diff is not None:
            return self.shown_diff
        made = [
            f"+ mkdir -m 0755 {d}    # a missing parent, owned like its parent"
            for d in self.new_parents
        ]
        text = "\n".join([*made, *(c.diff() for c in self.changes)])
        return self.mask(text) if self.mask is not None else text


@dataclass(frozen=True)
class HostPlan:
    """One host's fixes; ``unfixable``: findings no fixer addresses (per check);
    ``refused``: a fixer's reasons for not changing something it could (per check)."""

    host: str
    fixes: tuple[Fix, ...] = ()
    unfixable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    error: str = ""
    refused: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def plan_hash(plan: HostPlan, salt: str = "") -> str:
    """A stable digest of what applying ``plan`` would do on its host (hex SHA-256).

    Made of each fix's check, description and the exact requests the applier would run
    (contents, expected file digests, modes, commands): two plans with the same hash
    change the host identically. ``salt`` (the run id) keeps a digest from being
    compared across runs. Only the digest leaves the worker, never the requests.
    """
    body = [
        {
            "check": f.check,
            "description": f.description,
            "restart_needed": f.restart_needed,
            "changes": [c.request() for c in f.changes],
        }
        for f in plan.fixes
    ]
    text = json.dumps({"salt": salt, "host": plan.host, "fixes": body}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_CREATES = ("ensure_dir", "create_file", "append_lines", "set_env", "edit_file")


def parents_to_create(fixes: Sequence[Fix], exists: Callable[[str], bool]) -> list[Fix]:
    """``fixes`` with ``new_parents`` set: the directories above their paths that do not
    exist yet (``exists``: the host as read) and that no earlier fix of the plan creates."""
    made: set[str] = set()
    out = []
    for f in fixes:
        mine: list[str] = []
        for c in f.changes:
            path = getattr(c, "path", None)
            if c.kind not in _CREATES or not isinstance(path, str):
                continue
            for d in ancestors(path):
                if d not in made and not exists(d):
                    made.add(d)
                    mine.append(d)
            if c.kind == "ensure_dir":
                made.add(posixpath.normpath(path))
        out.append(replace(f, new_parents=tuple(mine)) if mine else f)
    return out


def ancestors(path: str) -> list[str]:
    """The directories above an absolute ``path``, outermost first ("/" left out)."""
    parts = [p for p in posixpath.normpath(path).split("/") if p][:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def project(files: dict[str, FileState], change: Change) -> None:
    """Update the planner's view of the host as if ``change`` had been applied.

    Later fixes of the same plan then build on the earlier ones (two fixes adding
    keys to one settings file produce two consecutive edits, not two conflicting ones).
    """
    if isinstance(change, (CreateFile, EditFile)):
        files[change.path] = FileState(
            change.path, True, "file", None, change.content, sha256_text(change.content)
        )
    elif isinstance(change, AppendLines):
        text = change.new_text()
        files[change.path] = FileState(change.path, True, "file", None, text, sha256_text(text))
    elif isinstance(change, EnsureDir):
        files[change.path] = FileState(change.path, True, "dir", change.mode)
