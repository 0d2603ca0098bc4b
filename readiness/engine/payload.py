"""What travels through the broker: JSON only, and never a key, password or host variable
other than the login settings.

A shard carries the hosts' connection coordinates (name, address, port, user, the
inventory's key *path*, and the variables the ssh login is resolved from: the connection
kind, the ``ansible_ssh_*_args``, the ``readiness_*`` spellings), each host's merged profile without its credentials, the check
names and the run's timing options. Known_hosts, ssh_config, identity and host-key trust
are the worker's own (its ``~/.ssh`` and its configuration): they never travel, and
neither does a password: a profile DSN goes without it, and the worker's libpq finds it
where libpq always looks on the worker's machine (``~/.pgpass``, ``PGPASSFILE``,
``PGPASSWORD``, a service file). A credential no worker can look up that way (a token in
a URL, userinfo of an http URL, a value under a secret-named key) refuses the run before
anything is queued (:func:`wire_profiles`): the broker and its result backend are stores.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import __version__
from ..errors import TransportError, UsageError
from ..profile import Profile
from ..redact import MASK, is_secret_name, redact_url_password
from ..registry import CheckSpec, all_checks

__all__ = [
    "CONTROLLER_OPTIONS",
    "WORKER_OPTIONS",
    "ShardHost",
    "code_digest",
    "host_to_dict",
    "profile_to_dict",
    "shard_payload",
    "specs_named",
    "wire_hosts",
    "wire_profiles",
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
    # the host's login variables (ssh.LOGIN_VARS): the worker resolves the login from them
    vars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardHost:
        return cls(
            name=str(data["name"]),
            address=str(data["address"]),
            port=int(data["port"]),
            user=None if data.get("user") is None else str(data["user"]),
            key_file=None if data.get("key_file") is None else str(data["key_file"]),
            groups=tuple(str(g) for g in data.get("groups") or ()),
            vars=MappingProxyType(dict(data.get("vars") or {})),
        )


def host_to_dict(host: Any) -> dict[str, Any]:
    from ..ssh import LOGIN_VARS

    variables = getattr(host, "vars", None) or {}
    return {
        "name": host.name,
        "address": host.address,
        "port": int(host.port),
        "user": host.user,
        "key_file": host.key_file,
        "groups": list(host.groups),
        # without them a worker logged in over ssh to a docker host, and past the jump
        # host, port and user of ansible_ssh_common_args, where a local run does not
        # masked: a credential in them can only sit in a ProxyCommand, which no one runs
        # (wire_hosts refused the run before any other)
        "vars": {
            var: _login_value(variables[var])
            for var in LOGIN_VARS
            if variables.get(var) is not None
        },
    }


def _login_value(value: Any) -> Any:
    if isinstance(value, int | float | bool):
        return value
    return redact_url_password(str(value))


def wire_hosts(hosts: Sequence[Any]) -> None:
    """Refuse (:class:`UsageError`, naming host and variable, never the value) a host whose
    login variables hold a credential where the login would use it.

    ``ansible_ssh_common_args: -o 'ProxyCommand=sshpass -p SECRET ssh -W %h:%p bastion'``
    travelled in clear. readiness never runs a ProxyCommand (the host is refused, on the
    worker as locally, with the command masked), so its text travels masked
    (:func:`host_to_dict`) and the worker's row is the local one. Anywhere else (a
    password in a ``ProxyJump`` URL, a ``User``) the masked value would log in elsewhere
    than a local run: the run is refused, as for a profile credential.
    """
    from ..ssh import LOGIN_VARS, _options_in_vars

    def used(hvars: Mapping[str, Any], var: str) -> list[tuple[str, str]]:
        try:
            options = _options_in_vars(hvars, "", (var,))
            return [(o, v) for _, o, v in options if o != "proxycommand"]
        except TransportError:  # an unreadable value: compared as it is
            return [("", str(hvars.get(var)))]

    for host in hosts:
        variables = getattr(host, "vars", None) or {}
        for var in LOGIN_VARS:
            value = variables.get(var)
            if value is None or isinstance(value, int | float | bool):
                continue
            masked = _login_value(value)
            if masked == str(value):
                continue
            if not var.startswith("ansible_ssh_") or used({var: value}, var) != used(
                {var: masked}, var
            ):
                raise UsageError(
                    f"inventory variable {var} of host {host.name} holds a password or token "
                    "that --engine celery never sends through the broker: take it out of the "
                    "value (a key file or the worker's ssh agent), or audit these hosts with "
                    "--engine local (docs/distributed.md)"
                )


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The merged profile as JSON data (a value JSON cannot carry is a clear error)."""
    data = {k: profile[k] for k in profile}
    try:
        return dict(json.loads(json.dumps(data)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"profile is not JSON data: {exc}") from None


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of this readiness's own source (every ``.py`` file of the package, by
    relative path): two installs that judge hosts alike have the same digest.

    The version string alone let a worker whose checks, probe or profile defaults differ
    (an older checkout, a patched install, both still "0.1.0") return rows that the
    controller merged as if it had made them."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def shard_payload(
    run_id: str,
    *,
    number: int,
    hosts: Sequence[Any],
    profiles: Mapping[str, Mapping[str, Any]],
    checks: Sequence[str],
    options: Mapping[str, Any],
    budget_s: float = 600.0,
) -> dict[str, Any]:
    return {
        "budget_s": budget_s,  # how long a live execution of this shard may take
        "version": __version__,
        "code": code_digest(),  # a worker running other code refuses the shard
        "run": run_id,
        "shard": number,
        "hosts": [host_to_dict(h) for h in hosts],
        "profiles": {h.name: dict(profiles[h.name]) for h in hosts},  # from wire_profiles
        "checks": list(checks),
        "options": {k: options[k] for k in CONTROLLER_OPTIONS},
    }


# Profile keys whose value libpq reads: their password is removed, not refused (the worker's
# libpq looks it up in its own ~/.pgpass, PGPASSFILE, PGPASSWORD or service file).
DSN_KEYS = ("database_dsn", "backup_roundtrip.admin_dsn")
# A libpq key=value pair `password=...` (a quoted value may hold spaces and \' escapes).
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?:'(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)")


def wire_profiles(
    hosts: Sequence[Any],
    profiles: Mapping[str, Profile],
    checks: Sequence[CheckSpec] | None = None,
) -> dict[str, Any]:
    """Each host's merged profile as it may travel: JSON data with no credential in it.

    A DSN's password is removed (never masked: a worker would try ``***`` as the
    password). A section of the profile that only checks outside ``checks`` read (their
    ``profile_keys``) and that holds a credential does not travel: this run never reads
    it. Any other value the report redactor would mask (a password or token in a URL or
    command line, a value under a secret-named key) is a usage error naming the profile
    key and the hosts that hold it, never the value: nothing has been queued yet.
    """
    unread = _unread_sections(checks)
    sent: dict[str, Any] = {}
    refused: dict[str, list[str]] = {}  # profile key -> hosts, in inventory order
    for host in hosts:
        data = profile_to_dict(profiles[host.name])
        stripped = [k for k in DSN_KEYS if _strip_dsn_password(data, k, host.name)]
        for section in [k for k in data if k in unread]:
            if any(_credential(n, v) for _, v, n in _strings(data[section], section, section)):
                del data[section]  # another check's webhook token: not this run's business
        if "database_dsn" in stripped and _tunnelled(data):
            # through the host's tunnel libpq is pinned to the DSN's own password (no
            # ~/.pgpass: checks/_postgres.py CLEAN_PINS), so the worker could only fail
            raise UsageError(
                f"profile key database_dsn of host {host.name} holds a password, which "
                "--engine celery never sends through the broker, and with service_access: "
                "ssh a worker connects with the DSN's own password only (never its "
                "~/.pgpass): set service_access: auto or direct and give the workers the "
                "password in ~/.pgpass, or audit these hosts with --engine local"
            )
        for dotted, value, name in _strings(data):
            if _credential(name, value):
                refused.setdefault(dotted, []).append(host.name)
        sent[host.name] = data
    if refused:
        key, holders = next(iter(refused.items()))
        others = len(refused) - 1
        raise UsageError(
            f"profile key {key} of {_hosts_named(holders, len(hosts))} holds a password or "
            "token that --engine celery never sends through the broker and a worker cannot "
            "look up on its own machine"
            + (f" (and {others} more key(s): {', '.join(list(refused)[1:4])})" if others else "")
            + ": take it out of the value, or audit these hosts with --engine local "
            "(docs/distributed.md)"
        )
    return sent


def _hosts_named(names: Sequence[str], total: int) -> str:
    """``host web-1``, ``hosts web-1, web-2`` or ``all 40 hosts (web-1, web-2, ...)``."""
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    if len(names) == 1:
        return f"host {names[0]}"
    if len(names) == total:
        return f"all {total} hosts ({shown})"
    return f"{len(names)} of {total} hosts ({shown})"


def _unread_sections(checks: Sequence[CheckSpec] | None) -> frozenset[str]:
    """The profile sections named after a check outside ``checks`` (``alert_delivery:``,
    ``workflow_state:``) that no check of the run declares in its ``profile_keys``:
    nothing of the run reads them. Shared keys (``database_dsn``, ``thresholds``,
    ``service_access``) are never among them. Nothing when the run's checks are unknown."""
    if checks is None:
        return frozenset()
    from ..profile import CORE_DEFAULTS

    chosen = {spec.name for spec in checks}
    read = set(CORE_DEFAULTS).union(*({k.split(".")[0] for k in s.profile_keys} for s in checks))
    return frozenset(s.name for s in all_checks() if s.name not in chosen) - read


def _strings(node: Any, dotted: str = "", name: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, string, the key it sits under directly or "" in a list) of ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{dotted}.{key}" if dotted else str(key), str(key))
    elif isinstance(node, list):
        if node and all(isinstance(v, str) for v in node):  # an argv: `--password`, `X`
            yield dotted, " ".join(node), ""
        for value in node:
            yield from _strings(value, dotted, "")
    elif isinstance(node, str):
        yield dotted, node, name


def _credential(name: str, value: str) -> bool:
    """Whether the report redactor would mask ``value`` (under key ``name``): the same
    definition of a secret as every report, log and saved file. A key ending in ``_env``
    names an environment variable (``rbac.token_env``), which is the point: not a secret."""
    if value and name and not name.endswith("_env") and is_secret_name(name):
        return value.strip() not in ("", MASK, "set", "missing", "not set", "empty")
    return redact_url_password(value) != value


def _tunnelled(data: Mapping[str, Any]) -> bool:
    return str(data.get("service_access") or "").strip().lower() == "ssh"


def _strip_dsn_password(data: dict[str, Any], dotted: str, host: str) -> bool:
    """Remove the password of the DSN at ``dotted`` in place (URL userinfo, ``?password=``,
    key=value ``password=``), keeping every other part as libpq reads it; whether there
    was one."""
    *path, last = dotted.split(".")
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    raw = node.get(last) if isinstance(node, dict) else None
    if not isinstance(raw, str) or not raw.strip():
        return False
    from ..checks._conninfo import available, conninfo_to_dict

    if not available():
        return False  # the check below refuses a DSN that still holds a password
    try:
        before = dict(conninfo_to_dict(raw))
    except ValueError:
        return False  # libpq cannot read it: refused below if it may hold a password
    if "password" not in before:
        return False
    stripped = _without_password(raw)
    try:
        after = dict(conninfo_to_dict(stripped))
    except ValueError:
        after = {}
    if {k: v for k, v in before.items() if k != "password"} != after:
        raise UsageError(
            f"profile key {dotted} of host {host}: its password cannot be taken out safely "
            "for --engine celery (percent-encode '@', '/' and ':' in the user and password, "
            "or use the key=value form), or audit these hosts with --engine local"
        )
    node[last] = stripped
    return True


def _without_password(raw: str) -> str:
    text = raw.strip()
    if "://" not in text:
        return " ".join(_KV_PASSWORD.sub(" ", text).split())
    scheme, rest = text.split("://", 1)
    end = min(
        [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)]
    )
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, hosts = authority.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        authority = f"{user}@{hosts}" if user else hosts
    path, sep, query = tail.partition("?")
    if sep:
        kept = [p for p in query.split("&") if p.split("=", 1)[0].lower() != "password"]
        tail = path + ("?" + "&".join(kept) if kept else "")
    return f"{scheme}://{authority}{tail}"


def specs_named(names: Sequence[str]) -> list[CheckSpec]:
    """The worker's registered checks of these names, in the controller's order."""
    known = {s.name: s for s in all_checks()}
    missing = [n for n in names if n not in known]
    if missing:
        raise LookupError(
            f"this worker has no check named {', '.join(missing)} (readiness {__version__})"
        )
    return [known[n] for n in names]
