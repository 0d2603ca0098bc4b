"""Progress of a fleet run on stderr: a live line on a terminal, a plain line for CI logs.

On a terminal the line is redrawn in place (at most five times a second): hosts done of
total, not ready, unreachable, elapsed, an ETA and the slowest host still running.
Without a terminal the same line is printed on its own every ``progress_interval``
seconds, so a CI log shows a long run is alive (one host's too; on a terminal a run of one
host has no live line). ``quiet`` turns both off. The final
summary line is printed for every fleet run of more than one host (and for any
interrupted run), quiet or not: it is the one line a CI log needs. A run inside another
(``RunOptions(progress=False)``: bench's measured runs, a worker's shard) prints neither:
its caller reports it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .model import Status

if TYPE_CHECKING:
    from .runner import RunOptions

__all__ = ["Progress", "Wording", "remediation_wording"]

_REDRAW_S = 0.2


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s"


@dataclass(frozen=True)
class Wording:
    """What the progress and summary lines call a run and its results: an audit's hosts are
    ready or not ready; a remediation's hosts are not (a fix that succeeded does not make
    a host ready), so its lines say what happened to them."""

    subject: str = "{n} hosts"  # the summary's "N hosts in 12s"
    words: Mapping[Status, str] = field(default_factory=dict)  # default: the status's name

    def word(self, status: Status) -> str:
        return self.words.get(status) or status.value.replace("_", " ")


def remediation_wording(apply: bool) -> Wording:
    """``remediation of 3 hosts in 2s: 2 succeeded, 1 failed`` (``--apply``);
    ``remediation plan for 3 hosts in 1s: 3 planned`` (the dry run)."""
    if apply:
        return Wording(
            "remediation of {n} hosts", {Status.READY: "succeeded", Status.NOT_READY: "failed"}
        )
    return Wording(
        "remediation plan for {n} hosts",
        {Status.READY: "planned", Status.NOT_READY: "could not be planned"},
    )


class Progress:
    """Counts hosts as they finish and reports on ``stream`` (thread-safe)."""

    def __init__(
        self,
        names: Sequence[str],
        stream: IO[str],
        *,
        mode: str = "off",  # "tty", "plain" or "off"
        interval: float = 10.0,
        summary: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wording: Wording | None = None,
    ) -> None:
        self.names, self.stream, self.mode = list(names), stream, mode
        self.wording = wording or Wording()
        self.interval, self.show_summary, self.clock = interval, summary, clock
        self.t0 = clock()
        self.running: dict[int, float] = {}
        self.done = self.not_ready = self.unreachable = 0
        self.last_line = self.t0
        self.drawn = False
        self.lock = threading.Lock()
        # what the run waits on beyond its hosts (the celery engine: a silent worker, a
        # shard no worker took yet), and when it gives up: shown at the end of the line
        self.note = ""

    @classmethod
    def for_run(
        cls,
        hosts: Sequence[Any],
        options: RunOptions,
        stream: IO[str],
        wording: Wording | None = None,
    ) -> Progress:
        tty = _isatty(stream)
        wanted = options.progress if options.progress is not None else True
        # One host: no live line on a terminal (the one result follows at once), but a CI
        # log still gets its plain line every interval: before, a one-host run whose
        # workflow took minutes printed nothing at all until it ended.
        if options.quiet or not wanted or (tty and len(hosts) <= 1) or not hosts:
            mode = "off"
        else:
            mode = "tty" if tty else "plain"
        return cls(
            [h.name for h in hosts],
            stream,
            mode=mode,
            interval=max(0.1, float(options.progress_interval)),
            summary=len(hosts) > 1 and options.progress is not False,
            wording=wording,
        )

    def started(self, i: int) -> None:
        with self.lock:
            self.running[i] = self.clock()

    def finished(self, i: int, status: Status) -> None:
        with self.lock:
            self.running.pop(i, None)
            self.done += 1
            if status is Status.UNREACHABLE:
                self.unreachable += 1
            elif status in (Status.NOT_READY, Status.ERROR):
                self.not_ready += 1
        self.tick(force=self.mode == "tty")

    def line(self) -> str:
        """``17/31 done, 2 not ready, 1 unreachable, 12s elapsed, ETA 9s, waiting on h7 (11s)``."""
        now = self.clock()
        with self.lock:
            done, total = self.done, len(self.names)
            elapsed = now - self.t0
            parts = [
                f"{done}/{total} done",
                f"{self.not_ready} {self.wording.word(Status.NOT_READY)}",
                f"{self.unreachable} unreachable",
                f"{_span(elapsed)} elapsed",
            ]
            if 0 < done < total:
                parts.append(f"ETA {_span(elapsed / done * (total - done))}")
            if self.running:
                i, began = min(self.running.items(), key=lambda item: item[1])
                parts.append(f"waiting on {self.names[i]} ({_span(now - began)})")
            if self.note:
                parts.append(self.note)
        return "[readiness] " + ", ".join(parts)

    def tick(self, *, force: bool = False) -> None:
        """Called by the fleet loop about 20 times a second: redraw or print when due."""
        if self.mode == "off":
            return
        now = self.clock()
        due = _REDRAW_S if self.mode == "tty" else self.interval
        if not force and now - self.last_line < due:
            return
        if force and self.mode == "tty" and now - self.last_line < _REDRAW_S / 4:
            return
        self.last_line = now
        text = self.line()
        try:
            if self.mode == "tty":
                self.stream.write("\r" + text + "\x1b[K")
                self.drawn = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr must not stop the audit
            self.mode = "off"

    def close(self) -> None:
        """End the live line (the terminal's next output starts on a fresh line)."""
        if self.mode == "tty" and self.drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def summary(self, statuses: Sequence[Status], interrupted_by: str = "") -> None:
        """One line: how many hosts ended in which state, and how long the run took."""
        if not (self.show_summary or interrupted_by):
            return
        counts = dict.fromkeys(Status, 0)
        for status in statuses:
            counts[status] += 1
        parts = [f"{n} {self.wording.word(s)}" for s, n in counts.items() if n]
        how = f" (interrupted by {interrupted_by})" if interrupted_by else ""
        subject = self.wording.subject.format(n=len(statuses))
        text = f"[readiness] {subject} in {_span(self.clock() - self.t0)}{how}: " + ", ".join(parts)
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
