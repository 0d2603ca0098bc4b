"""The ``readiness`` console script: invoke's Program over the same task collection."""

from __future__ import annotations

from invoke.exceptions import Exit, ParseError
from invoke.program import Program

from . import __version__
from .tasks import ns

__all__ = ["main", "program"]


class ReadinessProgram(Program):
    """invoke's Program, except that a command-line parse error is a usage error (exit 2)."""

    def parse_core(self, argv: list[str] | None) -> None:
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(f"readiness: {exc}", code=2) from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(f"readiness: {exc}", code=2) from None


program = ReadinessProgram(name="readiness", binary="readiness", namespace=ns, version=__version__)


def main() -> None:
    program.run()
