"""Invoke entry point: the tasks live in ``readiness.tasks`` (the same collection the
``readiness`` console script runs), so this file stays thin."""

import sys

# invoke turns bytecode caching off for the whole process (its --write-pyc, off by default,
# is meant for tasks files like this one, which is already loaded by now). readiness is a
# package: cache its compiled modules as Python and the `readiness` console script do, so
# `invoke validate` does not compile ~0.8 MB of source on every run. PYTHONDONTWRITEBYTECODE
# and -B are still honoured.
sys.dont_write_bytecode = sys.dont_write_bytecode and bool(sys.flags.dont_write_bytecode)

from readiness.tasks import ns  # noqa: E402

__all__ = ["ns"]
