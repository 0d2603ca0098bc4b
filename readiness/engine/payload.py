"""What travels through the broker: JSON only, and never a key, password or host variable.

A shard carries the hosts' connection coordinates (name, address, port, user, the
inventory's key *path*), each host's merged profile, the check names and the run's
timing options. Known_hosts, ssh_config, identity and host-key trust are the worker's
own (its ``~/.ssh`` and its configuration): they never travel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..profile import Profile
from ..registry import CheckSpec, all_checks

__all__ = [
    "CONTROLLER_OPTIONS",
    "WORKER_OPTIONS",
    "ShardHost",
    "host_to_dict",
    "profile_to_dict",
    "shard_payload",
    "specs_named",
]

# Run options the controller decides (the same as a local run of the same command).
CONTROLLER_OPTIONS = (
    "forks",
    "connect_timeout",
    "command_timeout",
    "host_deadline",
    "sudo",
    "max_output",
)
# Options each worker takes from its own configuration (its machine's ~/.ssh).
WORKER_OPTIONS = ("known_hosts", "ssh_config", "identity_file", "accept_new_host_keys")


@dataclass(frozen=True)
class ShardHost:
    """A host as a worker sees it: what the transport needs, nothing more."""

    name: str
    address: str
    port: int
    user: str | None
    key_file: str | None
    groups: tuple[str, ...]
    local: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardHost:
        return cls(
            name=str(data["name"]),
            address=str(data["address"]),
            port=int(data["port"]),
            user=None if data.get("user") is None else str(data["user"]),
            key_file=None if data.get("key_file") is None else str(data["key_file"]),
            groups=tuple(str(g) for g in data.get("groups") or ()),
        )


def host_to_dict(host: Any) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "port": int(host.port),
        "user": host.user,
        "key_file": host.key_file,
        "groups": list(host.groups),
    }


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The merged profile as JSON data (a value JSON cannot carry is a clear error)."""
    data = {k: profile[k] for k in profile}
    try:
        return dict(json.loads(json.dumps(data)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"profile is not JSON data: {exc}") from None


def shard_payload(
    run_id: str,
    *,
    number: int,
    hosts: Sequence[Any],
    profiles: Mapping[str, Profile],
    checks: Sequence[str],
    options: Mapping[str, Any],
    budget_s: float = 600.0,
) -> dict[str, Any]:
    return {
        "budget_s": budget_s,  # how long a live execution of this shard may take
        "version": __version__,
        "run": run_id,
        "shard": number,
        "hosts": [host_to_dict(h) for h in hosts],
        "profiles": {h.name: profile_to_dict(profiles[h.name]) for h in hosts},
        "checks": list(checks),
        "options": {k: options[k] for k in CONTROLLER_OPTIONS},
    }


def specs_named(names: Sequence[str]) -> list[CheckSpec]:
    """The worker's registered checks of these names, in the controller's order."""
    known = {s.name: s for s in all_checks()}
    missing = [n for n in names if n not in known]
    if missing:
        raise LookupError(
            f"this worker has no check named {', '.join(missing)} (readiness {__version__})"
        )
    return [known[n] for n in names]
