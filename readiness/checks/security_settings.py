"""``security_settings``: authentication on, TLS endpoints verify and are not about to
expire, access control (RBAC) configured, secret-bearing files private, and no secret
committed in plain text in the settings file."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..redact import is_secret_name
from ..registry import CheckContext, FactSpecs, register
from . import _access
from ._common import (
    about_a_secret,
    json_collection,
    judge_auth_secret,
    origin,
    settings_problem,
    truthy,
)

if TYPE_CHECKING:
    import ssl

DEFAULTS: dict[str, Any] = {
    # https:// URLs of the app's endpoints, verified from the controller.
    "tls_endpoints": [],
    # Extra CA bundle (a controller-side path) for private CAs; system CAs stay trusted.
    "tls_ca_file": None,
    # Private keys under app_root (relative globs; absolute ones are used as they are).
    "private_key_globs": ["*.key", "*/*.key", "*key*.pem", "*/*key*.pem"],
    # Secrets must come from the environment, never from literals in the settings file.
    "require_env_secrets": True,
    # Where the app keeps its security switches (dotted settings paths).
    "security_setting_paths": {
        "auth_enabled": "auth.enabled",
        "rbac_enabled": "rbac.enabled",
        "rbac_roles": "rbac.roles",
    },
    "thresholds": {"tls_min_days_left": 14, "tls_connect_timeout_s": 5.0},
}

KEY_FACT = "security_settings:private_keys:"
HEAD_FACT = "security_settings:pem_head:"
# What a PEM file holds, from its first line: these are meant to be read by anyone (a CA
# certificate named keycloak.pem matches `*key*.pem`). 40 bytes: the header, no key material.
_PUBLIC_PEM = (
    "-----BEGIN CERTIFICATE",
    "-----BEGIN TRUSTED CERTIFICATE",
    "-----BEGIN PUBLIC KEY",
    "-----BEGIN RSA PUBLIC KEY",
    "-----BEGIN X509 CRL",
)
_PEM_HEAD_BYTES = 40
_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


def facts(profile: Profile) -> FactSpecs:
    """Private keys matching ``private_key_globs`` (their modes are judged on the host's stat)."""
    out: FactSpecs = {}
    for i, pattern in enumerate(profile.get("private_key_globs") or ()):
        resolved = profile.resolve(str(pattern))
        if resolved:
            out[f"{KEY_FACT}{i}"] = {"op": "glob", "pattern": resolved}
    return out


def _loose_pem_files(facts: Mapping[str, Any]) -> list[str]:
    """Key-glob matches that would be findings (group/other bits) and are PEM files."""
    out = []
    for key in sorted(k for k in facts if k.startswith(KEY_FACT)):
        fact = facts[key] if isinstance(facts[key], Mapping) else {}
        for m in fact.get("matches") or []:
            path = str(m.get("path") or "")
            loose = int(m.get("mode") or 0) & 0o077
            if m.get("type") == "file" and loose and path.endswith(".pem") and not _public_key(m):
                out.append(path)
    return out


def followup(profile: Profile, app: Any, facts: Mapping[str, Any]) -> FactSpecs:
    """The first line of each readable-by-others ``*.pem`` match: a certificate is public."""
    return {
        HEAD_FACT + path: {"op": "file", "path": path, "max_bytes": _PEM_HEAD_BYTES}
        for path in _loose_pem_files(facts)
    }


def _public_pem(ctx: CheckContext, path: str) -> bool:
    head = ctx.fact(HEAD_FACT + path).get("text")
    return isinstance(head, str) and head.lstrip().startswith(_PUBLIC_PEM)


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    if ctx.app.settings_error:
        settings_problem(f, ctx.app)
    else:
        f.details["authentication"] = _authentication(ctx, f)
        f.details["access_control"] = _access_control(ctx, f)
    literals = [] if ctx.app.settings_error else _literal_secrets(ctx)
    f.details["settings_literals"] = _judge_literals(ctx, f, literals)
    f.details["file_modes"] = _file_modes(ctx, f, has_secrets=bool(literals))
    f.details["tls"] = _tls(ctx, f)
    return f.outcome(
        "Authentication, TLS, access control and secret handling are production-ready",
        subject="Security settings",
    )


def _path(ctx: CheckContext, key: str) -> str:
    paths: Mapping[str, Any] = ctx.profile.get("security_setting_paths") or {}
    return str(paths.get(key) or DEFAULTS["security_setting_paths"][key])


def _authentication(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    dotted = _path(ctx, "auth_enabled")
    value, source = ctx.app.lookup(dotted)
    enabled = source is not None and truthy(value)
    where = origin(ctx, dotted)
    if not enabled:
        state = "not configured" if source is None else "disabled"
        f.fail(
            f"authentication is {state} ({dotted}){where.where if source else ''}",
            "Enable authentication in production: "
            + where.set_to("true").replace("Set ", "set ", 1),
        )
    out: dict[str, Any] = {
        "setting": dotted,
        "enabled": enabled,
        "source": source,
        "from": where.label,
    }
    if enabled:
        # Authentication on with no secret, a blank one or a short one is not authentication
        # a production host can rely on (the guide: strong secrets, at least 32 characters).
        out["secret"] = judge_auth_secret(ctx, f)
    return out


def _access_control(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    on_key, roles_key = _path(ctx, "rbac_enabled"), _path(ctx, "rbac_roles")
    enabled = truthy(ctx.app.get(on_key))
    roles = json_collection(*ctx.app.lookup(roles_key))
    count = len(roles) if isinstance(roles, (list, Mapping)) else 0
    if not enabled:
        f.fail(
            f"access control is not enabled ({on_key})",
            f"Configure access controls: set {on_key}: true and define roles under {roles_key}",
        )
    elif count == 0:
        f.fail(
            f"access control is enabled but no roles are defined ({roles_key})",
            f"Define at least one role under {roles_key} (e.g. admin, operator, viewer)",
        )
    return {"enabled": enabled, "roles": count}


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted path, last key, value) of every leaf in the settings."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node)
    for key, value in items:
        here = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, (Mapping, list)):
            yield from _walk(value, here)
        else:
            yield here, str(key), value


def _literal_secrets(ctx: CheckContext) -> list[str]:
    """Dotted paths of secret-named settings holding a literal string in the settings file."""
    patterns = [str(p) for p in ctx.profile.get("secret_env") or ()]
    found = []
    for dotted, key, value in _walk(ctx.app.settings):
        if not isinstance(value, str) or not value.strip() or value.strip().startswith("${"):
            continue
        if about_a_secret(key) or not is_secret_name(key, patterns):
            continue
        ctx.secret(value)
        found.append(dotted)
    return found


def _judge_literals(ctx: CheckContext, f: Findings, literals: list[str]) -> list[str]:
    if not literals or not truthy(ctx.profile.get("require_env_secrets")):
        return literals
    where = ctx.app.settings_path
    for dotted in literals:
        f.fail(
            f"settings file {where} holds a plain-text value for {dotted}",
            f"Remove {dotted} from {where} and inject it as {ctx.app.env_name(dotted)} "
            "(env file with mode 600, or the unit's Environment=)",
        )
    return literals


# A public key (RS256/ES256 verification key, ssh .pub) matches `*key*.pem` but is meant to be
# read by anyone: mode 0644 on jwt_public_key.pem is no finding.
_PUBLIC_KEY_NAME = re.compile(r"(?:^|[^a-z])pub(?:lic)?(?:[^a-z]|key|$)")


def _public_key(st: Mapping[str, Any]) -> bool:
    name = str(st.get("path") or "").rsplit("/", 1)[-1].lower()
    return bool(_PUBLIC_KEY_NAME.search(name))


def _file_modes(ctx: CheckContext, f: Findings, *, has_secrets: bool) -> list[dict[str, str]]:
    files: list[Mapping[str, Any]] = [ctx.fact("app:env_file")]
    if has_secrets:
        files.append(ctx.fact("app:settings"))
    for key in sorted(k for k in ctx.facts if k.startswith(KEY_FACT)):
        files += [
            m
            for m in ctx.fact(key).get("matches") or []
            if not _public_key(m) and not _public_pem(ctx, str(m.get("path") or ""))
        ]
    # A list, not {path: mode}: a path naming a secret would make the redactor mask its mode.
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for st in files:
        if not st.get("exists") or st.get("type") != "file" or st.get("path") in seen:
            continue
        seen.add(str(st["path"]))
        mode = int(st.get("mode") or 0)
        out.append({"path": str(st["path"]), "mode": f"{mode:04o}"})
        if mode & 0o077:
            f.fail(
                f"{st['path']} holds secrets but is accessible to group/others (mode {mode:04o})",
                f"chmod 600 {st['path']}",
            )
    return out


def _tls(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    urls = [str(u) for u in ctx.profile.get("tls_endpoints") or ()]
    if not urls:
        return {"endpoints": 0}
    import ssl  # only with tls_endpoints: ~4 ms of every start-up otherwise

    context = ssl.create_default_context()
    ca_file = ctx.profile.get("tls_ca_file")
    if ca_file:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            f.fail(
                f"tls_ca_file {ca_file} cannot be loaded ({exc})",
                "Point tls_ca_file at a readable PEM CA bundle on the controller",
            )
            return {"ca_file": str(ca_file), "error": "cannot be loaded"}
    timeout = float(ctx.profile.threshold("tls_connect_timeout_s"))
    min_days = float(ctx.profile.threshold("tls_min_days_left"))
    return {
        url: _endpoint(ctx, url, context=context, timeout=timeout, min_days=min_days, f=f)
        for url in urls
    }


def _through_host(
    ctx: CheckContext, url: str, host: str, port: int, f: Findings
) -> tuple[tuple[str, int] | None, dict[str, Any]]:
    """Where to connect for a remote host's loopback endpoint: its SSH tunnel (the name
    is still verified against ``host``), or None (the reason in ``f``) when it is not
    tunnelled: from the controller, that address is the controller itself."""
    try:
        tunnel = _access.wants_tunnel(ctx, host, host_local=True)
    except ValueError as exc:
        f.fail(str(exc), "Set service_access to auto, direct or ssh")
        return None, {"status": "not checked"}
    if not tunnel:
        f.unknown(
            f"{url} is a loopback address of host {ctx.host}; from the controller it would "
            "reach the controller itself",
            "Use an address of the endpoint that is reachable from the controller, or "
            "service_access: auto to reach it through the host's SSH connection",
        )
        return None, {"status": "not checked"}
    try:
        hop = _access.route(ctx, host, port)
    except _access.AccessError as exc:
        f.unknown(
            f"{url}: cannot connect through host {ctx.host}'s SSH connection ({exc})",
            f"Check that the service listens on {host}:{port} on host {ctx.host}",
        )
        return None, {"status": "unreachable"}
    return (hop.host, hop.port), ({"via": hop.via} if hop.via else {})


def _endpoint(
    ctx: CheckContext,
    url: str,
    *,
    context: ssl.SSLContext,
    timeout: float,
    min_days: float,
    f: Findings,
) -> dict[str, Any]:
    import ssl

    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        host, port = None, 0
    if parts.scheme != "https" or not host:
        f.fail(f"{url} is not an https:// endpoint", f"Serve {url} over HTTPS (TLS)")
        return {"status": "not https"}
    where: tuple[str, int] = (host, port)
    via: dict[str, Any] = {}
    if _access.host_local(host) and not ctx.is_local:
        routed, via = _through_host(ctx, url, host, port, f)
        if routed is None:
            return via
        where = routed
    try:
        with (
            socket.create_connection(where, timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert, protocol = tls.getpeercert() or {}, tls.version()
    except ssl.SSLCertVerificationError as exc:
        why = "certificate has expired" if exc.verify_code == _EXPIRED else exc.verify_message
        f.fail(
            f"{url}: certificate does not verify ({why})",
            f"Install a certificate for {host} issued by a trusted CA and valid today "
            "(or add the private CA with tls_ca_file)",
        )
        return {"status": "unverified", "reason": str(why)}
    except ssl.SSLError as exc:
        f.fail(f"{url}: TLS handshake failed ({exc.reason})", f"Fix TLS on {host}:{port}")
        return {"status": "handshake failed", "reason": str(exc.reason)}
    except OSError as exc:
        f.unknown(
            f"{url}: cannot connect from the controller ({exc})",
            f"Make {host}:{port} reachable from the controller, or fix tls_endpoints",
        )
        return {"status": "unreachable"}
    expires = ssl.cert_time_to_seconds(str(cert.get("notAfter")))
    days = (expires - time.time()) / 86400
    date = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d")
    if days < min_days:
        f.warn(
            f"{url}: certificate expires in {days:.0f} day(s) ({date})",
            f"Renew the certificate for {host} before {date}",
        )
    return {
        "status": "ok",
        "expires": date,
        "days_left": int(days),
        "protocol": protocol,
        **via,
    }


register(
    "security_settings",
    title="Security settings",
    description=(
        "Authentication enabled with a strong secret; every TLS endpoint verifies and is not about to expire; RBAC "
        "enabled with roles; env file, secret-bearing settings and private keys are mode 600; "
        "no plain-text secret in the settings file."
    ),
    categories=("security",),
    suites=("production",),
    facts=facts,
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        "tls_endpoints",
        "tls_ca_file",
        "private_key_globs",
        "require_env_secrets",
        "security_setting_paths",
        "secret_env",
        "env_file",
        "settings_file",
        "thresholds.tls_min_days_left",
        "thresholds.tls_connect_timeout_s",
        "thresholds.secret_min_length",
        "thresholds.secret_min_distinct_chars",
    ),
    aliases=("security",),
    order=120,
)(evaluate)
