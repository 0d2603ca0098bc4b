"""How controller-side checks reach a service: directly, or through the host's SSH connection.

Profile key ``service_access`` (declared by ``database_migration``, read by every check
that talks to a service from the controller):

* ``auto`` (default): tunnel through the host's SSH connection when the host is remote and
  the service's address is local to the host (``localhost``, ``127.0.0.0/8``, ``::1``);
  connect directly otherwise.
* ``direct``: never tunnel. A host-local address of a remote host cannot be judged from the
  controller (DEGRADED "cannot determine").
* ``ssh``: always tunnel on a remote host; the address is resolved and connected to by the
  host.

A unix socket directory cannot be tunnelled with a TCP forward: it stays "cannot determine".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TransportError
from ..registry import CheckContext

__all__ = ["DEFAULT", "KEY", "MODES", "Route", "access_mode", "route", "unix_socket"]

KEY = "service_access"
DEFAULT = "auto"
MODES = ("auto", "direct", "ssh")


@dataclass(frozen=True)
class Route:
    """Where the controller connects; ``via`` names the host when it goes through SSH."""

    host: str
    port: int
    via: str | None = None

    @property
    def note(self) -> str:
        return f"through an SSH tunnel via {self.via}" if self.via else "directly"


class AccessError(Exception):
    """The service cannot be reached from the controller; ``refused`` as for a direct refusal."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def access_mode(ctx: CheckContext) -> str:
    """The profile's ``service_access``; raises ``ValueError`` naming the valid values."""
    mode = str(ctx.profile.get(KEY) or DEFAULT).strip().lower()
    if mode not in MODES:
        raise ValueError(f"service_access must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def unix_socket(host: str) -> bool:
    return host.startswith("/") or host.lower().startswith("%2f")


def wants_tunnel(ctx: CheckContext, host: str, *, host_local: bool) -> bool:
    """Whether ``host`` (as the audited host sees it) should be reached through SSH."""
    mode = access_mode(ctx)
    if not ctx.can_tunnel:
        return False
    return mode == "ssh" or (mode == "auto" and host_local)


def route(ctx: CheckContext, host: str, port: int) -> Route:
    """Open (or reuse) the host's tunnel to ``host:port``; :class:`AccessError` if it fails."""
    if unix_socket(host):
        raise AccessError(
            f"{host} is a unix socket on host {ctx.host}, which an SSH TCP tunnel cannot reach"
        )
    try:
        local_host, local_port = ctx.reach(host, port)
    except TransportError as exc:
        raise AccessError(str(exc), refused=bool(getattr(exc, "refused", False))) from None
    if (local_host, local_port) == (host, port):  # a transport that cannot tunnel
        return Route(host, port)
    return Route(local_host, local_port, via=ctx.host)
