"""Split a plan's hosts into shards: by ``readiness_queue`` host variable, then by size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InventoryError, UsageError
from .app import DEFAULT_QUEUE

__all__ = ["QUEUE_VAR", "Shard", "queue_of", "split", "valid_queue"]

QUEUE_VAR = "readiness_queue"
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


@dataclass(frozen=True)
class Shard:
    """Hosts ``indices`` (positions in the plan, inventory order) sent to ``queue``."""

    number: int
    queue: str
    indices: tuple[int, ...]


def valid_queue(name: str, where: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise UsageError(
            f"{where}: expected queue names of letters, digits, _ . : - (at most 100), got {name!r}"
        )
    return name


def queue_of(host: Any) -> str:
    """The host's ``readiness_queue`` (a host or group variable), else the default queue."""
    variables = getattr(host, "vars", None) or {}
    value = variables.get(QUEUE_VAR) if hasattr(variables, "get") else None
    if value is None or value == "":
        return DEFAULT_QUEUE
    if not isinstance(value, str) or not _QUEUE_NAME.match(value):
        raise InventoryError(
            f"host {host.name}: {QUEUE_VAR} must be a queue name (letters, digits, _ . : -), "
            f"got {value!r}"
        )
    return value


def split(hosts: Sequence[Any], shard_size: int) -> list[Shard]:
    """Shards of at most ``shard_size`` hosts; a queue's hosts keep their inventory order.

    Shards are numbered in order of their first host, so merging by index rebuilds the
    local run's order whatever order the shards finish in.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    by_queue: dict[str, list[int]] = {}
    for i, host in enumerate(hosts):
        by_queue.setdefault(queue_of(host), []).append(i)
    chunks = [
        (queue, tuple(indices[k : k + shard_size]))
        for queue, indices in by_queue.items()
        for k in range(0, len(indices), shard_size)
    ]
    chunks.sort(key=lambda c: c[1][0])
    return [Shard(n, queue, indices) for n, (queue, indices) in enumerate(chunks)]
