"""Invoke entry point: the tasks live in ``readiness.tasks`` (the same collection the
``readiness`` console script runs), so this file stays thin."""

from readiness.tasks import ns

__all__ = ["ns"]
