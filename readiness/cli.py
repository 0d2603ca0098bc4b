"""The ``readiness`` console script: invoke's Program over the same task collection."""

from __future__ import annotations

from invoke.program import Program

from . import __version__
from .tasks import ns

__all__ = ["main", "program"]

program = Program(name="readiness", binary="readiness", namespace=ns, version=__version__)


def main() -> None:
    program.run()
