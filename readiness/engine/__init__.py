"""Where a plan's hosts are audited: in this process (``local``) or by Celery workers.

``readiness validate --engine celery`` keeps the one fleet loop: the controller plans
(inventory, pattern, profiles) exactly as a local run, splits the hosts into shards
(:mod:`.shards`), sends each shard to a Celery queue, and every ``readiness worker``
audits its shard with :func:`readiness.runner.run_fleet` — the same runner, deadlines
and probe. The controller merges the host reports back in inventory order into one
FleetReport (:mod:`.controller`). docs/distributed.md is the operator's page.
"""

from __future__ import annotations

__all__ = ["ENGINES"]

ENGINES = ("local", "celery")
