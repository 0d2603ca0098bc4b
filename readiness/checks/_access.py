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

HTTP services (:func:`http_route`): only plain ``http`` URLs are tunnelled; ``https`` is
asked directly, because through a tunnel the certificate's name could not be verified.
A tunnelled request goes to ``http://127.0.0.1:<tunnel port>/...`` with the configured
``Host`` header, so name-based virtual hosts still answer.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import TransportError
from ..netaddr import endpoint, loopback_host, url_host
from ..registry import CheckContext

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT",
    "KEY",
    "MODES",
    "STRANDED_FIX",
    "HttpRoute",
    "Route",
    "access_mode",
    "host_local",
    "http_route",
    "http_session",
    "nothing_listens",
    "route",
    "unix_socket",
]

KEY = "service_access"
DEFAULT = "auto"
MODES = ("auto", "direct", "ssh")
STRANDED_FIX = (
    "Use an address of the service that is reachable from the controller, or (plain http) "
    "service_access: auto to reach it through the host's SSH connection"
)


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


def host_local(host: str) -> bool:
    """True when the address means "this machine" (loopback or a unix socket directory)."""
    # The checks ask about the same few addresses ~12 times per host (getaddrinfo parses
    # each in ~5 us): answered once per distinct address; hosts choose them, so a long
    # one is answered uncached.
    if len(host) > _CACHED_HOST_MAX_CHARS:
        return _host_local(host)
    return _host_local_cached(host)


def _host_local(host: str) -> bool:
    return loopback_host(host)  # every spelling the client's getaddrinfo reads as loopback


_CACHED_HOST_MAX_CHARS = 1024
_host_local_cached = functools.lru_cache(maxsize=1024)(_host_local)


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


# -- HTTP ---------------------------------------------------------------------


def http_session() -> requests.Session:
    """The HTTP session of every controller-side check (URLs the host names, tunnels).

    ``trust_env`` off: ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` would send tunnelled
    and host-named requests (with their tokens) through the controller's proxy, and
    ``~/.netrc`` would add the controller user's credentials for whatever host the app
    names. The operator's CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) is only
    trust, not a credential, so it is still honoured; TLS is always verified.

    Redirects are never followed: the answer comes from the audited host's service, and a
    ``307 Location: http://127.0.0.1:PORT/`` would send the request (method, body, a
    token header not named Authorization) from the controller to wherever it points,
    another host's tunnel or a service of the controller's. The 3xx is the answer.
    """
    session = _session_class()()
    session.hooks["response"].append(_bounded_body)
    session.trust_env = False
    session.proxies = {}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    session.verify = bundle or True
    return session


# A body the host's service sends is read up to this size and within the request's read
# timeout in total (at least _MIN_BODY_S): requests read it whole and for as long as bytes kept
# coming, so an endless answer grew the controller by ~250 MB/s until the host's deadline.
# Prometheus' targets list for ~10,000 targets is ~20 MB.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_MIN_BODY_S = 10.0
_BODY_CHUNK = 64 * 1024


def _bounded_body(resp: requests.Response, *args: object, **kwargs: object) -> requests.Response:
    """A response hook: reads the (decoded) body within the bounds above, before requests
    would read it unbounded; a body over them raises (the check reports it)."""
    import requests
    from urllib3.exceptions import HTTPError, ReadTimeoutError

    timeout = kwargs.get("timeout")
    read_s = timeout[1] if isinstance(timeout, tuple) else timeout
    allowed = max(float(read_s) if isinstance(read_s, int | float) else 0.0, _MIN_BODY_S)
    deadline = time.monotonic() + allowed
    chunks: list[bytes] = []
    size = 0
    while True:
        try:  # read1: what has come (one recv), so a trickle cannot hold one read for ever
            chunk = resp.raw.read1(_BODY_CHUNK, decode_content=True)
        except ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from None
        except (HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(exc) from None
        if not chunk:
            break
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
            resp.close()
            why = (
                f"larger than {MAX_RESPONSE_BYTES // 2**20} MiB"
                if size > MAX_RESPONSE_BYTES
                else f"still coming after {allowed:g}s"
            )
            raise _answer_refused()(
                f"answer from {_endpoint_of(resp.url)} not read: its body is {why}"
            )
    resp._content = b"".join(chunks)
    return resp


@functools.cache
def _session_class() -> type[requests.Session]:
    """A Session that never follows a redirect (built once: requests is imported lazily)."""
    import requests

    class NoRedirects(requests.Session):
        def get_redirect_target(self, resp: requests.Response) -> str | None:
            return None

    return NoRedirects


@functools.cache
def _answer_refused() -> type[requests.RequestException]:
    import requests

    class AnswerTooLarge(requests.RequestException):
        """A host's service answered more, or for longer, than the controller reads."""

    return AnswerTooLarge


def _endpoint_of(url: str) -> str:
    """``host:port`` of ``url`` (no path or query: those may carry a token)."""
    parts = urlsplit(url)
    return endpoint(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


def nothing_listens(url: str, timeout: float) -> str | None:
    """What the HTTP client would say when it cannot connect to ``url`` at all, found
    without importing it: ``"connection refused"`` when every address of the URL's host
    refuses, ``"no answer within …"`` when every connect times out; ``None`` otherwise
    (something listens, or a failure the client reports in its own words).

    Importing ``requests`` costs ~40 ms of start-up; on a deployment whose services are
    down (the bundled example) nothing needs it. Only for a URL asked directly (not
    through a tunnel: a test connection there would open an SSH channel on the host).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or not host.isascii():
        return None
    try:
        addresses = socket.getaddrinfo(
            host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return None
    failures: set[str] = set()
    for family, kind, proto, _, address in addresses[:8]:
        try:  # creating the socket fails too (no IPv6 on the controller, EMFILE)
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
        except ConnectionRefusedError:
            failures.add("connection refused")
            continue
        except TimeoutError:
            failures.add(f"no answer within {timeout:g}s")
            continue
        except OSError:
            return None  # the client reports it in its own words
        return None  # something listens: the client asks it
    return failures.pop() if len(failures) == 1 and len(addresses) <= 8 else None


@dataclass(frozen=True)
class HttpRoute:
    """Where requests for a configured ``url`` go.

    ``target`` is the URL to send them to (the tunnel's address, or ``url`` itself) with
    ``headers`` (the configured ``Host`` when tunnelled). ``access`` says how it is reached,
    for details (None when simply direct); ``error`` means it cannot be reached at all
    (``"connection refused"`` when nothing listens at the destination). ``stranded`` is a
    remote host's loopback URL that is not tunnelled (``service_access: direct``, https, a
    transport without tunnels): asked from the controller it would reach the controller.
    """

    url: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    access: str | None = None
    error: str | None = None
    via: str | None = None
    stranded: bool = False

    def to(self, url: str) -> str:
        """``url`` (same scheme and address as the configured one) sent where this route goes."""
        if self.via is None or self.target == self.url:
            return url
        return urlsplit(url)._replace(netloc=urlsplit(self.target).netloc).geturl()

    def why_stranded(self, host: str) -> str:
        """The "cannot determine" finding for a stranded URL, saying why it is not tunnelled."""
        why = f" ({self.access})" if self.access else ""
        return (
            f"{self.url} is a loopback address of host {host}; from the controller it would "
            f"reach the controller itself{why}"
        )


def http_route(ctx: CheckContext, url: str) -> HttpRoute:
    """Route an HTTP(S) ``url`` as the audited host sees it, per ``service_access``.

    A plain-http URL is rewritten to the host's SSH tunnel when :func:`wants_tunnel` says
    so; https stays direct (``access`` says why). Never raises: an invalid
    ``service_access`` or a failed tunnel is ``error``; a malformed URL is left to the
    HTTP client to report.
    """
    try:
        parts = urlsplit(url)
        host, port = url_host(parts.hostname or ""), parts.port
    except ValueError:
        return HttpRoute(url, url)
    local = bool(host) and host_local(host)
    stranded = local and not ctx.is_local
    try:
        tunnel = wants_tunnel(ctx, host, host_local=local)
    except ValueError as exc:
        return HttpRoute(url, url, error=str(exc))
    if not tunnel:
        return HttpRoute(url, url, stranded=stranded)
    if parts.scheme != "http":
        return HttpRoute(
            url,
            url,
            access=f"directly: {parts.scheme} is not tunnelled, because through an SSH tunnel "
            "the certificate's name could not be verified",
            stranded=stranded,
        )
    return _tunnelled(ctx, url, host, port or 80, stranded=stranded)


def http_destination(ctx: CheckContext, url: str) -> tuple[str, int] | None:
    """The destination :func:`http_route` would tunnel ``url`` to, or ``None`` when it
    would not tunnel it (the same decisions, without opening anything)."""
    try:
        parts = urlsplit(url)
        host, port = url_host(parts.hostname or ""), parts.port
    except ValueError:
        return None
    try:
        tunnel = wants_tunnel(ctx, host, host_local=bool(host) and host_local(host))
    except ValueError:
        return None
    if not tunnel or parts.scheme != "http" or unix_socket(host):
        return None
    return host, port or 80


def http_destinations(ctx: CheckContext, urls: Iterable[str]) -> list[tuple[str, int]]:
    """:func:`http_destination` of each of ``urls``, each destination once: what a check
    that routes these URLs declares as its ``destinations`` (the runner opens them
    together with the host's other tunnels)."""
    found = (http_destination(ctx, url) for url in urls)
    return list(dict.fromkeys(dest for dest in found if dest is not None))


def _tunnelled(ctx: CheckContext, url: str, host: str, port: int, *, stranded: bool) -> HttpRoute:
    try:
        hop = route(ctx, host, port)
    except AccessError as exc:
        return HttpRoute(
            url,
            url,
            access=f"through an SSH tunnel via {ctx.host} (failed)",
            error="connection refused" if exc.refused else str(exc),
        )
    if hop.via is None:  # a transport that cannot tunnel
        return HttpRoute(url, url, stranded=stranded)
    parts = urlsplit(url)
    auth, _, where = parts.netloc.rpartition("@")
    netloc = f"{auth}@{endpoint(hop.host, hop.port)}" if auth else endpoint(hop.host, hop.port)
    return HttpRoute(
        url,
        parts._replace(netloc=netloc).geturl(),
        headers={"Host": where},  # the name the service expects, not the tunnel's
        access=hop.note,
        via=hop.via,
    )
