"""A small accumulator that turns a check's sub-validations into one Outcome."""

from __future__ import annotations

from typing import Any

from .model import Outcome, Status

__all__ = ["Findings"]


class Findings:
    """Collect problems (blocking) and warnings (degrading) with their recommendations.

    >>> f = Findings()
    >>> f.fail("MAHAVISHNU_AUTH__SECRET is not set", "Set MAHAVISHNU_AUTH__SECRET in .env")
    >>> f.outcome("All good").status
    <Status.NOT_READY: 'not_ready'>
    """

    def __init__(self) -> None:
        self.details: dict[str, Any] = {}
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.recommendations: list[str] = []
        self._undetermined: list[str] = []

    def fail(self, problem: str, recommendation: str | None = None) -> None:
        self.problems.append(problem)
        self._recommend(recommendation)

    def warn(self, problem: str, recommendation: str | None = None) -> None:
        self.warnings.append(problem)
        self._recommend(recommendation)

    def unknown(self, problem: str, recommendation: str | None = None) -> None:
        """Something could not be determined: never guessed READY, reported as DEGRADED."""
        self._undetermined.append(problem)
        self.warnings.append(problem)
        self._recommend(recommendation)

    def _recommend(self, recommendation: str | None) -> None:
        if recommendation and recommendation not in self.recommendations:
            self.recommendations.append(recommendation)

    @property
    def status(self) -> Status:
        if self.problems:
            return Status.NOT_READY
        if self.warnings:
            return Status.DEGRADED
        return Status.READY

    def outcome(self, ready_message: str, *, subject: str = "Check") -> Outcome:
        details = dict(self.details)
        if self.problems:
            details["problems"] = list(self.problems)
        if self.warnings:
            details["warnings"] = list(self.warnings)
        status = self.status
        if status is Status.NOT_READY:
            first = self.problems[0]
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            message = f"{subject} has {len(self.problems)} critical issue(s): {first}{more}"
        elif status is Status.DEGRADED:
            message = (
                f"{subject} has {len(self.warnings)} issue(s) that should be addressed: "
                f"{self.warnings[0]}"
            )
        else:
            message = ready_message
        return Outcome(status, message, details, tuple(self.recommendations))
