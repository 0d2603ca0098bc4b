"""security_settings: auth, RBAC, file modes, plain-text secrets on real app trees, and TLS
against real TLS servers on 127.0.0.1 with certificates generated at test time."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from readiness.model import CheckResult, Status
from readiness.registry import default_profile, get
from readiness.report import render
from tests.services.apps import audit_local, one, write_app
from tests.services.cli import local_inventory, run_cli

AppTree = Callable[..., Path]
SECURE = {"rbac": {"enabled": True, "roles": ["admin", "operator", "viewer"]}}
LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    cn: str,
    *,
    days: tuple[float, float],
    issuer: Issued | None = None,
    ca: bool = False,
) -> Issued:
    """A certificate valid from now+days[0] to now+days[1], signed by ``issuer`` (else self)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
        )
        builder = builder.add_extension(san, critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def write_pair(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    cert = directory / f"{stem}.crt"
    key = directory / f"{stem}.pem"
    cert.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


# ---------------------------------------------------------------- TLS servers


# How long the check waits for each step of a handshake (its default
# thresholds.tls_connect_timeout_s): the server waits as long, never less. With a 2 s guess
# the server gave up first on a loaded machine (a ClientHello through the SSH tunnel late)
# and a handshake the check would have completed failed.
CLIENT_STEP_S = float(default_profile()["thresholds"]["tls_connect_timeout_s"])


class TlsServer:
    """A threaded TLS server on 127.0.0.1:<free port>: handshakes, then closes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.accepted = self.settled = 0
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.changed:
                self.accepted += 1
            conn.settimeout(CLIENT_STEP_S)
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                self.context.wrap_socket(conn, server_side=True),
            ):
                self.handshakes += 1
            conn.close()
            with self.changed:
                self.settled += 1
                self.changed.notify_all()

    def wait_settled(self) -> None:
        """Until every connection accepted so far is handled. The client may be done (and
        its process gone) before this thread has read its last handshake message; the
        server's own bound: two reads (ClientHello, the client's Finished) of at most
        CLIENT_STEP_S each, and the accept poll."""
        with self.changed:
            done = self.changed.wait_for(
                lambda: self.settled == self.accepted, timeout=2 * CLIENT_STEP_S + 1
            )
        assert done, f"{self.accepted - self.settled} TLS connection(s) never ended"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    valid: str
    expiring: str
    self_signed: str
    expired: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """A test CA and four TLS servers: valid 90 days, expiring in 5, self-signed, expired."""
    d = tmp_path_factory.mktemp("pki")
    ca = issue("readiness test CA", days=(-1, 365), ca=True)
    ca_file, _ = write_pair(ca, d, "ca")
    certs = {
        "valid": issue(LOOPBACK, days=(-1, 90), issuer=ca),
        "expiring": issue(LOOPBACK, days=(-1, 5), issuer=ca),
        "self_signed": issue(LOOPBACK, days=(-1, 90)),
        "expired": issue(LOOPBACK, days=(-60, -1), issuer=ca),
    }
    servers = {name: TlsServer(*write_pair(c, d, name)) for name, c in certs.items()}
    try:
        yield Pki(ca_file, **{name: s.url for name, s in servers.items()})
    finally:
        for s in servers.values():
            s.close()


# ---------------------------------------------------------------- helpers


def audit(root: Path, profile: dict[str, Any] | None = None) -> CheckResult:
    return one(audit_local(root, ["security_settings"], profile))


def tls_profile(pki: Pki, *urls: str) -> dict[str, Any]:
    return {"tls_endpoints": list(urls), "tls_ca_file": str(pki.ca_file)}


# ---------------------------------------------------------------- settings and files


def test_auth_rbac_and_private_env_file_are_ready(app_tree: AppTree) -> None:
    root = app_tree(settings=SECURE)
    result = audit(root)
    assert result.status is Status.READY, result.message
    assert result.details["access_control"] == {"enabled": True, "roles": 3}
    assert result.details["file_modes"] == [{"path": f"{root}/.env", "mode": "0600"}]


def test_disabled_authentication_is_not_ready(app_tree: AppTree) -> None:
    result = audit(app_tree(settings={**SECURE, "auth": {"enabled": False}}))
    assert result.status is Status.NOT_READY
    assert "authentication is disabled (auth.enabled)" in result.message


def test_authentication_can_be_enabled_from_the_environment(app_tree: AppTree) -> None:
    root = app_tree(
        settings={**SECURE, "auth": {"enabled": False}}, env={"MAHAVISHNU_AUTH__ENABLED": "true"}
    )
    result = audit(root)
    assert result.status is Status.READY, result.message
    assert result.details["authentication"]["source"] == "env file"


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        (None, "auth is enabled but no auth secret is set"),
        ("short-secret-xyz", "auth secret is too short (16 < 32 characters)"),
        ('"' + " " * 40 + '"', "auth is enabled but the auth secret is only whitespace"),
    ],
)
def test_authentication_without_a_strong_secret_is_not_ready(
    app_tree: AppTree, secret: str | None, says: str
) -> None:
    """The production suite judged only auth.enabled: authentication on with no secret, or a
    short one, was READY. The guide: strong secrets, at least 32 characters."""
    root = app_tree(settings=SECURE, env={"MAHAVISHNU_AUTH__SECRET": secret})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert says in result.message
    assert any("a strong secret (32+ characters)" in r for r in result.recommendations)
    assert "short-secret-xyz" not in repr(result.to_dict())


def test_missing_access_control_is_not_ready(app_tree: AppTree) -> None:
    result = audit(app_tree())
    assert result.status is Status.NOT_READY
    assert "access control is not enabled (rbac.enabled)" in result.message


def test_rbac_without_roles_is_not_ready(app_tree: AppTree) -> None:
    result = audit(app_tree(settings={"rbac": {"enabled": True, "roles": []}}))
    assert result.status is Status.NOT_READY
    assert "no roles are defined (rbac.roles)" in result.message


def test_security_setting_paths_can_be_remapped_by_the_profile(app_tree: AppTree) -> None:
    root = app_tree(settings={"access": {"on": True, "roles": {"admin": ["*"]}}})
    profile = {
        "security_setting_paths": {"rbac_enabled": "access.on", "rbac_roles": "access.roles"}
    }
    result = audit(root, profile)
    assert result.status is Status.READY, result.message
    assert result.details["access_control"]["roles"] == 1


def test_a_group_readable_env_file_is_not_ready_with_chmod_600(app_tree: AppTree) -> None:
    root = app_tree(settings=SECURE)
    (root / ".env").chmod(0o644)
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "(mode 0644)" in result.message
    assert f"chmod 600 {root}/.env" in result.recommendations


def test_an_env_file_with_mode_600_passes(app_tree: AppTree) -> None:
    root = app_tree(settings=SECURE)
    (root / ".env").chmod(0o600)
    result = audit(root)
    assert result.status is Status.READY, result.message
    assert {"path": f"{root}/.env", "mode": "0600"} in result.details["file_modes"]


def test_a_world_readable_private_key_under_app_root_is_not_ready(app_tree: AppTree) -> None:
    root = app_tree(settings=SECURE, files={"certs/server.key": "-----BEGIN PRIVATE KEY-----\n"})
    (root / "certs" / "server.key").chmod(0o644)
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"chmod 600 {root}/certs/server.key" in result.recommendations
    (root / "certs" / "server.key").chmod(0o600)
    assert audit(root).status is Status.READY


def test_a_literal_secret_in_settings_is_not_ready_and_never_rendered(app_tree: AppTree) -> None:
    literal = "Hunter2-plain-text-committed-secret-value"
    root = app_tree(settings={**SECURE, "auth": {"enabled": True, "secret": literal}})
    (root / "settings" / "mahavishnu.yaml").chmod(0o600)
    report = audit_local(root, ["security_settings"])
    result = one(report)
    assert result.status is Status.NOT_READY
    assert "holds a plain-text value for auth.secret" in result.message
    assert any("MAHAVISHNU_AUTH__SECRET" in r for r in result.recommendations)
    for fmt in ("text", "json", "markdown", "table"):
        assert literal not in render(report, fmt), fmt


def test_a_settings_file_with_secrets_must_itself_be_private(app_tree: AppTree) -> None:
    root = app_tree(settings={**SECURE, "database": {"password": "s3cr3t-db-password"}})
    profile = {"require_env_secrets": False}
    result = audit(root, profile)
    assert result.status is Status.NOT_READY
    assert f"chmod 600 {root}/settings/mahavishnu.yaml" in result.recommendations
    (root / "settings" / "mahavishnu.yaml").chmod(0o600)
    assert audit(root, profile).status is Status.READY


def test_placeholders_numbers_and_file_references_are_not_literal_secrets(
    app_tree: AppTree,
) -> None:
    settings = {
        **SECURE,
        "auth": {"enabled": True, "secret": "${MAHAVISHNU_AUTH__SECRET}"},
        "llm": {"max_tokens": 4096, "api_key_env": "OPENAI_API_KEY"},
        "tls": {"private_key_file": "/etc/ssl/private/app.key"},
    }
    result = audit(app_tree(settings=settings))
    assert result.status is Status.READY, result.message
    assert result.details["settings_literals"] == []


def test_unparseable_settings_name_the_file_and_line(app_tree: AppTree) -> None:
    root = app_tree(settings_text="auth:\n  enabled: true\n  secret: 'unterminated\n")
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"{root}/settings/mahavishnu.yaml:" in result.message


# ---------------------------------------------------------------- TLS


def test_a_certificate_from_the_profile_ca_valid_for_90_days_is_ready(
    app_tree: AppTree, pki: Pki
) -> None:
    result = audit(app_tree(settings=SECURE), tls_profile(pki, pki.valid))
    assert result.status is Status.READY, result.message
    endpoint = result.details["tls"][pki.valid]
    assert endpoint["status"] == "ok"
    assert 88 <= endpoint["days_left"] <= 90
    assert endpoint["protocol"] in ("TLSv1.2", "TLSv1.3")


def test_a_certificate_expiring_in_5_days_is_degraded(app_tree: AppTree, pki: Pki) -> None:
    result = audit(app_tree(settings=SECURE), tls_profile(pki, pki.valid, pki.expiring))
    assert result.status is Status.DEGRADED
    assert f"{pki.expiring}: certificate expires in" in result.message
    assert any(
        r.startswith(f"Renew the certificate for {LOOPBACK} before") for r in result.recommendations
    )


def test_the_expiry_warning_follows_the_threshold(app_tree: AppTree, pki: Pki) -> None:
    profile = {**tls_profile(pki, pki.expiring), "thresholds": {"tls_min_days_left": 3}}
    result = audit(app_tree(settings=SECURE), profile)
    assert result.status is Status.READY, result.message


def test_an_untrusted_self_signed_certificate_is_not_ready(app_tree: AppTree, pki: Pki) -> None:
    result = audit(app_tree(settings=SECURE), tls_profile(pki, pki.self_signed))
    assert result.status is Status.NOT_READY
    assert f"{pki.self_signed}: certificate does not verify (self-signed" in result.message


def test_an_expired_certificate_is_not_ready(app_tree: AppTree, pki: Pki) -> None:
    result = audit(app_tree(settings=SECURE), tls_profile(pki, pki.expired))
    assert result.status is Status.NOT_READY
    assert "certificate does not verify (certificate has expired)" in result.message


def test_without_the_private_ca_a_valid_certificate_does_not_verify(
    app_tree: AppTree, pki: Pki
) -> None:
    result = audit(app_tree(settings=SECURE), {"tls_endpoints": [pki.valid]})
    assert result.status is Status.NOT_READY
    assert "unable to get local issuer certificate" in result.message


def test_an_endpoint_nobody_listens_on_is_undetermined_not_ready(
    app_tree: AppTree, pki: Pki
) -> None:
    with socket.create_server((LOOPBACK, 0)) as placeholder:
        port = placeholder.getsockname()[1]
    url = f"https://{LOOPBACK}:{port}/"
    result = audit(app_tree(settings=SECURE), tls_profile(pki, url))
    assert result.status is Status.DEGRADED
    assert f"{url}: cannot connect from the controller" in result.message


def test_a_plain_http_endpoint_is_not_ready(app_tree: AppTree, pki: Pki) -> None:
    result = audit(app_tree(settings=SECURE), tls_profile(pki, f"http://{LOOPBACK}:8080/"))
    assert result.status is Status.NOT_READY
    assert "is not an https:// endpoint" in result.message


def test_an_unloadable_ca_file_is_not_ready(app_tree: AppTree, tmp_path: Path, pki: Pki) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("nope\n")
    profile = {"tls_endpoints": [pki.valid], "tls_ca_file": str(bogus)}
    result = audit(app_tree(settings=SECURE), profile)
    assert result.status is Status.NOT_READY
    assert f"tls_ca_file {bogus} cannot be loaded" in result.message


def test_it_belongs_to_the_production_suite_as_security() -> None:
    spec = get("security_settings")
    assert spec.suites == ("production",)
    assert spec.categories == ("security",)
    assert spec.order == 120


def _validate_security(root: Path, tmp_path: Path) -> dict[str, Any]:
    """A real ``readiness validate -c security_settings --format json`` of the local app."""
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli("validate", "-i", str(inv), "-c", "security_settings", "--format", "json")
    assert res.returncode in (0, 1), res.stderr
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    return result


def test_roles_given_as_json_in_the_environment_are_roles(
    app_tree: AppTree, tmp_path: Path
) -> None:
    """pydantic-settings reads a list field from the environment as JSON:
    MAHAVISHNU_RBAC__ROLES='["admin", "viewer"]' is two roles. validate said NOT_READY
    "access control is enabled but no roles are defined"; an empty JSON list still fails."""
    roles = {"MAHAVISHNU_RBAC__ROLES": '["admin", "viewer"]'}
    root = app_tree(settings={"rbac": {"enabled": True}}, env=roles)
    result = _validate_security(root, tmp_path)
    assert result["status"] == "ready", result["message"]
    assert result["details"]["access_control"] == {"enabled": True, "roles": 2}
    (root / ".env").write_text((root / ".env").read_text().replace('"admin", "viewer"', ""))
    result = _validate_security(root, tmp_path)
    assert result["status"] == "not_ready"
    assert "no roles are defined (rbac.roles)" in result["message"]


def test_a_public_key_readable_by_all_is_no_finding(app_tree: AppTree, tmp_path: Path) -> None:
    """An RS256 app's verification key (keys/jwt_public_key.pem, 0644) matches `*/*key*.pem`:
    validate said NOT_READY "holds secrets but is accessible to group/others". A public key
    is meant to be read; the private key beside it, at 0644, still fails."""
    pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
    root = app_tree(settings=SECURE, files={"keys/jwt_public_key.pem": pem, "rsa-pub.pem": pem})
    for name in ("keys/jwt_public_key.pem", "rsa-pub.pem"):
        (root / name).chmod(0o644)
    result = _validate_security(root, tmp_path)
    assert result["status"] == "ready", result["message"]
    private = root / "keys" / "jwt_private_key.pem"
    private.write_text("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n")
    private.chmod(0o644)
    result = _validate_security(root, tmp_path)
    assert result["status"] == "not_ready"
    assert f"{private} holds secrets but is accessible to group/others" in result["message"]


def test_settings_about_a_secret_are_not_plain_text_secrets(
    app_tree: AppTree, tmp_path: Path
) -> None:
    """An OAuth token endpoint, a token lifetime, the header an API key travels in, a
    secrets backend: ordinary settings whose names mention a secret. validate said
    NOT_READY with nine "holds a plain-text value for auth.token_url …" findings. A real
    literal beside them (adapters.prefect.api_key) still fails."""
    auth = {
        "enabled": True,
        "algorithm": "HS256",
        "token_url": "https://idp.example.com/oauth/token",
        "token_expiry": "1h",
        "token_audience": "mahavishnu",
        "token_issuer": "https://idp.example.com/",
        "secret_backend": "vault",
        "secret_ttl": "24h",
        "password_policy": "strong",
        "api_key_header": "X-API-Key",
    }
    root = app_tree(settings={**SECURE, "auth": auth})
    result = _validate_security(root, tmp_path)
    assert result["status"] == "ready", result["message"]
    assert result["details"]["settings_literals"] == []
    app_tree(settings={**SECURE, "auth": auth, "adapters": {"prefect": {"api_key": "pnu_x1y2z3"}}})
    result = _validate_security(root, tmp_path)
    assert result["status"] == "not_ready"
    assert result["details"]["settings_literals"] == ["adapters.prefect.api_key"]
    assert "holds a plain-text value for adapters.prefect.api_key" in result["message"]


@pytest.mark.ssh
def test_a_remote_hosts_loopback_tls_endpoint_is_checked_through_its_ssh_connection(
    tmp_path: Path,
) -> None:
    """`tls_endpoints: [https://127.0.0.1:PORT/]` of a remote host names the host's own
    service. The check connected from the controller to the controller's 127.0.0.1 and
    judged whatever certificate answered there (READY with service_access: direct). Now the
    handshake goes through the host's SSH tunnel (the name still verified), or, when that is
    not allowed, it is "cannot determine" and the controller's port is never touched."""
    from readiness.loopback import start_fleet

    ca = issue("readiness test CA", days=(-1, 365), ca=True)
    ca_file, _ = write_pair(ca, tmp_path, "ca")
    server = TlsServer(*write_pair(issue(LOOPBACK, days=(-1, 90), issuer=ca), tmp_path, "srv"))

    def write(index: int, root: Path) -> None:
        write_app(root, settings=SECURE)

    def run(access: str) -> dict[str, Any]:
        inventory = fleet.write_inventory(
            tmp_path / f"inventory-{access}.yml",
            host_vars=lambda h: {
                "readiness": {
                    "app_root": str(h.app_root),
                    "tls_endpoints": [server.url],
                    "tls_ca_file": str(ca_file),
                    "service_access": access,
                }
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", "security_settings"]
        res = run_cli(*argv, "--known-hosts", str(fleet.known_hosts), "--format", "json")
        assert res.returncode in (0, 1), res.stderr
        result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
        return result

    try:
        with start_fleet(1, app_writer=write) as fleet:
            direct = run("direct")
            server.wait_settled()
            handshakes = server.handshakes
            tunnelled = run("auto")
            server.wait_settled()
            name = fleet.hosts[0].name
    finally:
        server.close()
    assert direct["status"] == "degraded", direct["message"]
    assert f"{server.url} is a loopback address of host {name}" in direct["message"]
    assert handshakes == 0, "the controller's own 127.0.0.1 was asked"
    assert tunnelled["status"] == "ready", tunnelled["message"]
    assert tunnelled["details"]["tls"][server.url]["via"] == name
    assert server.handshakes == 1


def test_a_certificate_whose_name_contains_key_is_public_and_no_finding(
    app_tree: AppTree, tmp_path: Path
) -> None:
    """`config/keycloak.pem`, the identity provider's CA certificate, matches the key glob
    `*/*key*.pem`: at 0644 validate said NOT_READY "holds secrets but is accessible to
    group/others". Its first line says it is a certificate; a private key with the same
    kind of name and mode still fails."""
    cert = issue("keycloak CA", days=(-1, 365), ca=True).cert
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    root = app_tree(settings=SECURE, files={"config/keycloak.pem": pem})
    (root / "config" / "keycloak.pem").chmod(0o644)
    result = _validate_security(root, tmp_path)
    assert result["status"] == "ready", result["message"]
    private = root / "config" / "keycloak-client-key.pem"
    private.write_text("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n")
    private.chmod(0o644)
    result = _validate_security(root, tmp_path)
    assert result["status"] == "not_ready"
    assert f"{private} holds secrets" in result["message"]
    assert "keycloak.pem holds" not in json.dumps(result)
