"""``error_handling``: retry, circuit breaker, dead letter queue (real dirs, real sockets), categories."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from readiness.loopback import start_fleet
from readiness.model import Status
from tests.services.apps import audit_local, one, write_app
from tests.services.cli import local_inventory, run_cli, validate_check
from tests.services.ports import closed_port
from tests.services.sshd import NOPW_USER, _ensure_user, _share

RESILIENCE: dict[str, Any] = {
    "retry": {"max_attempts": 3, "backoff_base_s": 1.0, "backoff_max_s": 30},
    "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
    "dead_letter_queue": {"enabled": True, "path": "data/dlq"},
    "error_categories": ["transient", "permanent", "validation", "timeout"],
}


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port: int = sock.getsockname()[1]
    yield port
    sock.close()


def _audit(
    app_tree: Callable[..., Path],
    resilience: dict[str, Any] | None = None,
    *,
    dlq_dir: bool = True,
    profile: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    root = app_tree(
        settings={"resilience": resilience if resilience is not None else RESILIENCE}, **kwargs
    )
    if dlq_dir:
        (root / "data" / "dlq").mkdir(parents=True, exist_ok=True)
    return one(audit_local(root, "error_handling", profile))


def _with(section: str, **changes: Any) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in RESILIENCE.items()}
    out[section] = {**RESILIENCE[section], **changes}
    return out


def test_complete_resilience_settings_with_a_writable_dlq_are_ready(
    app_tree: Callable[..., Path],
) -> None:
    r = _audit(app_tree)
    assert r.status is Status.READY, r.message
    assert r.details["dead_letter_queue"]["path"]["writable"] is True
    assert r.details["dead_letter_queue"]["path"]["path"].endswith("/app/data/dlq")
    assert r.details["retry"]["max_attempts"] == 3


def test_a_missing_resilience_section_is_not_ready(app_tree: Callable[..., Path]) -> None:
    root = app_tree()
    r = one(audit_local(root, "error_handling"))
    assert r.status is Status.NOT_READY
    assert "no resilience section" in r.message


@pytest.mark.parametrize("attempts", [0, 11])
def test_retry_attempts_outside_one_to_ten_degrade(
    app_tree: Callable[..., Path], attempts: int
) -> None:
    r = _audit(app_tree, _with("retry", max_attempts=attempts))
    assert r.status is Status.DEGRADED
    assert f"max_attempts is {attempts}, outside 1-10" in r.message


def test_the_retry_bounds_come_from_the_profile(app_tree: Callable[..., Path]) -> None:
    r = _audit(
        app_tree,
        _with("retry", max_attempts=15),
        profile={"thresholds": {"retry_max_attempts": 20}},
    )
    assert r.status is Status.READY, r.message


def test_a_missing_retry_setting_is_not_ready(app_tree: Callable[..., Path]) -> None:
    res = _with("retry")
    del res["retry"]["max_attempts"]
    r = _audit(app_tree, res)
    assert r.status is Status.NOT_READY
    assert "resilience.retry.max_attempts is not set" in r.message
    assert "MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS" in r.recommendations[0]


def test_a_non_numeric_retry_setting_is_not_ready(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, _with("retry", max_attempts="many"))
    assert r.status is Status.NOT_READY
    assert "must be an integer" in r.message


def test_an_environment_override_is_what_gets_judged(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, env={"MAHAVISHNU_RESILIENCE__RETRY__MAX_ATTEMPTS": "50"})
    assert r.status is Status.DEGRADED
    assert r.details["retry"]["max_attempts"] == 50


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"backoff_base_s": 0}, "would hammer"),
        ({"backoff_base_s": 10, "backoff_max_s": 5}, "below backoff_base_s"),
    ],
)
def test_insane_backoff_degrades(
    app_tree: Callable[..., Path], changes: dict[str, Any], needle: str
) -> None:
    r = _audit(app_tree, _with("retry", **changes))
    assert r.status is Status.DEGRADED
    assert needle in r.message


def test_a_non_positive_circuit_breaker_threshold_degrades(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, _with("circuit_breaker", failure_threshold=0))
    assert r.status is Status.DEGRADED
    assert "circuit breaker cannot work" in r.message


def test_a_missing_circuit_breaker_is_not_ready(app_tree: Callable[..., Path]) -> None:
    res = dict(RESILIENCE)
    del res["circuit_breaker"]
    r = _audit(app_tree, res)
    assert r.status is Status.NOT_READY
    assert len(r.details["problems"]) == 2


def test_a_missing_dlq_directory_is_not_ready(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, dlq_dir=False)
    assert r.status is Status.NOT_READY
    assert "does not exist" in r.message
    assert "mkdir -p" in r.recommendations[0]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Marks directories immutable (even root cannot write in them); undone at teardown."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_unwritable_dlq_directory_is_not_ready(
    app_tree: Callable[..., Path], immutable: Callable[[Path], None]
) -> None:
    root = app_tree(settings={"resilience": RESILIENCE})
    dlq = root / "data" / "dlq"
    dlq.mkdir(parents=True)
    immutable(dlq)
    r = one(audit_local(root, "error_handling"))
    assert r.status is Status.NOT_READY
    assert "is not writable" in r.message
    assert "Operation not permitted" in r.details["dead_letter_queue"]["path"]["error"]


def test_a_reachable_dlq_endpoint_is_ready(
    app_tree: Callable[..., Path], listening_port: int
) -> None:
    dlq = {"enabled": True, "path": None, "endpoint": f"127.0.0.1:{listening_port}"}
    r = _audit(app_tree, {**RESILIENCE, "dead_letter_queue": dlq})
    assert r.status is Status.READY, r.message
    assert r.details["dead_letter_queue"]["endpoint"]["reachable"] is True


def test_an_unreachable_dlq_endpoint_is_not_ready(app_tree: Callable[..., Path]) -> None:
    dlq = {"enabled": True, "endpoint": f"amqp://127.0.0.1:{closed_port()}"}
    r = _audit(app_tree, {**RESILIENCE, "dead_letter_queue": dlq})
    assert r.status is Status.NOT_READY
    assert "not reachable from the host" in r.message
    assert r.details["dead_letter_queue"]["endpoint"]["reachable"] is False


def test_a_dlq_without_path_or_endpoint_is_not_ready(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, {**RESILIENCE, "dead_letter_queue": {"enabled": True}})
    assert r.status is Status.NOT_READY
    assert "neither a path nor an endpoint" in r.message


def test_a_disabled_dlq_degrades(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    r = _audit(app_tree, {**RESILIENCE, "dead_letter_queue": {"enabled": False}})
    assert r.status is Status.DEGRADED
    settings = tmp_path / "app" / "settings" / "mahavishnu.yaml"
    assert f"Set resilience.dead_letter_queue.enabled to true in settings file {settings}" in (
        r.recommendations
    )
    assert r.details["warnings"][0].endswith(
        f"(from resilience.dead_letter_queue.enabled in settings file {settings})"
    )


def test_missing_error_categories_are_not_ready(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, {**RESILIENCE, "error_categories": []})
    assert r.status is Status.NOT_READY
    assert r.recommendations[0].startswith("Ensure error categories are properly defined")


def test_duplicate_error_categories_degrade(app_tree: Callable[..., Path]) -> None:
    r = _audit(app_tree, {**RESILIENCE, "error_categories": ["transient", "Transient", "timeout"]})
    assert r.status is Status.DEGRADED
    assert r.details["error_categories"]["duplicates"] == ["transient"]


def test_the_settings_path_can_be_remapped_by_the_profile(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings={"platform": {"errors": RESILIENCE}})
    (root / "data" / "dlq").mkdir(parents=True)
    r = one(audit_local(root, "error_handling", {"resilience_settings": "platform.errors"}))
    assert r.status is Status.READY, r.message
    assert r.details["settings"] == "platform.errors"


class _RecoveryManager:
    circuit_breakers: ClassVar[dict[str, object]] = {"prefect": object(), "llamaindex": object()}


class _App:
    recovery_manager = _RecoveryManager()


def test_an_app_objects_circuit_breakers_are_reported(app_tree: Callable[..., Path]) -> None:
    root = app_tree(settings={"resilience": RESILIENCE})
    (root / "data" / "dlq").mkdir(parents=True)
    r = one(audit_local(root, "error_handling", app_object=_App()))
    assert r.status is Status.READY, r.message
    assert r.details["circuit_breakers"] == {"configured": True, "count": 2}


def test_the_example_deployment_handles_errors_ready() -> None:
    root = Path(__file__).resolve().parents[1] / "examples" / "mahavishnu"
    r = one(audit_local(root, "error_handling"))
    assert r.status is Status.READY, r.message


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("retry", "backoff_base_s", float("nan")),
        ("retry", "backoff_max_s", float("nan")),
        ("circuit_breaker", "recovery_timeout_s", float("nan")),
        ("circuit_breaker", "recovery_timeout_s", float("inf")),
    ],
)
def test_a_non_finite_number_is_not_ready(
    app_tree: Callable[..., Path], section: str, key: str, value: float
) -> None:
    """Was READY: NaN passed every comparison (``b <= 0``, ``max < base``), and an infinite
    recovery timeout is a breaker that never closes again."""
    r = _audit(app_tree, _with(section, **{key: value}))
    assert r.status is Status.NOT_READY
    assert f"resilience.{section}.{key} must be a finite number, got {value!r}" in r.message
    assert any("a finite number" in x for x in r.recommendations)


def test_a_blank_dead_letter_queue_path_is_no_path(app_tree: Callable[..., Path]) -> None:
    """Was DEGRADED "… was not tested", recommending a rerun that could never help."""
    r = _audit(app_tree, _with("dead_letter_queue", path="   "))
    assert r.status is Status.NOT_READY
    assert "dead_letter_queue is enabled but has neither a path nor an endpoint" in r.message


def test_error_categories_given_as_json_in_the_environment_are_a_list(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """pydantic-settings reads a list field from the environment as JSON, so
    MAHAVISHNU_RESILIENCE__ERROR_CATEGORIES='["transient", ...]' defines four categories;
    validate said NOT_READY "must be a list, got str"."""
    resilience = {k: v for k, v in RESILIENCE.items() if k != "error_categories"}
    env = {"MAHAVISHNU_RESILIENCE__ERROR_CATEGORIES": json.dumps(RESILIENCE["error_categories"])}
    root = app_tree(settings={"resilience": resilience}, env=env)
    (root / "data" / "dlq").mkdir(parents=True)
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli("validate", "-i", str(inv), "-c", "error_handling", "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "ready", result["message"]
    assert res.returncode == 0, res.stderr
    assert result["details"]["error_categories"]["categories"] == RESILIENCE["error_categories"]


def test_quoted_and_integral_numbers_are_read_as_the_app_reads_them(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """`max_attempts: "3"`, `backoff_base_s: "1.5"` (quoted YAML) and `failure_threshold:
    5.0` are numbers to the app (pydantic): each was NOT_READY "must be an integer/a
    number". 2.5 attempts is still no integer."""
    resilience = {
        **RESILIENCE,
        "retry": {"max_attempts": "3", "backoff_base_s": "1.5", "backoff_max_s": 30},
        "circuit_breaker": {"failure_threshold": 5.0, "recovery_timeout_s": " 60 "},
    }
    root = app_tree(settings={"resilience": resilience})
    (root / "data" / "dlq").mkdir(parents=True)
    inv = local_inventory(tmp_path / "inv.yml", root)
    result = validate_check(inv, "error_handling")
    assert result["status"] == "ready", result["message"]
    assert result["details"]["retry"]["max_attempts"] == 3
    assert result["details"]["retry"]["backoff_base_s"] == 1.5
    resilience["retry"] = {**resilience["retry"], "max_attempts": "2.5"}
    app_tree(settings={"resilience": resilience})
    result = validate_check(inv, "error_handling")
    assert result["status"] == "not_ready"
    assert "resilience.retry.max_attempts must be an integer, got 2.5" in result["message"]


def test_a_directory_the_audit_account_may_not_write_is_undetermined(
    tmp_path: Path,
) -> None:
    """Audited over SSH as a non-root account that is not the service's (no --sudo), the
    write test in the service's own 0750 directories is refused: validate said NOT_READY
    "dead letter queue directory … is not writable (PermissionError …)" and, in
    backup_restore, "backup directory … is not writable", recommending to make writable
    what the service writes. Whether the service can write there is undetermined
    (DEGRADED, rerun with --sudo), never "not writable"."""
    _ensure_user(NOPW_USER)

    def write(_index: int, root: Path) -> None:
        write_app(
            root,
            settings={"resilience": RESILIENCE},
            files={"docs/runbooks/backup-restore.md": "# Backup and restore\n"},
        )
        for rel in ("data/dlq", "backups"):
            (root / rel).mkdir(parents=True)
        _share(root)
        for rel in ("data/dlq", "backups"):
            (root / rel).chmod(0o750)  # root's, as the service's would be its own
        (root / ".env").chmod(0o644)  # its settings readable: only the writes are in question

    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {"app_root": str(h.app_root), "backup_schedule": "cron, daily"},
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet"]
        argv += ["--known-hosts", str(fleet.known_hosts), "--format", "json"]
        res = run_cli(*argv, "-c", "error_handling,backup_restore")
        checks = {c["check_name"]: c for c in json.loads(res.stdout)["hosts"][0]["checks"]}
    dlq = checks["error_handling"]
    assert dlq["status"] == "degraded", dlq["message"]
    assert (
        "cannot tell whether the service can write dead letter queue directory" in (dlq["message"])
    )
    assert dlq["details"]["dead_letter_queue"]["path"]["writable"] is None
    assert any("--sudo" in r for r in dlq["recommendations"])
    backup = checks["backup_restore"]
    assert "is not writable" not in backup["message"]
    assert "cannot tell whether backups can be written to" in backup["message"]
    assert backup["status"] == "degraded", backup["message"]


def test_a_dlq_url_without_a_port_is_probed_on_its_schemes_port(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """dead_letter_queue.endpoint: nats://127.0.0.1 (no port, as broker URLs are written)
    was probed on 4317, OTLP's port, and validate said NOT_READY "dead letter queue
    endpoint … is not reachable from the host" with the broker listening on 4222."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", 4222))
    except OSError:
        sock.close()
        pytest.skip("port 4222 (NATS) is taken on this machine")
    sock.listen(8)
    try:
        dlq = {"enabled": True, "endpoint": "nats://127.0.0.1"}
        root = app_tree(settings={"resilience": _with("dead_letter_queue", **dlq)})
        inv = local_inventory(tmp_path / "inv.yml", root)
        (root / "data" / "dlq").mkdir(parents=True)
        res = run_cli("validate", "-i", str(inv), "-c", "error_handling", "--format", "json")
    finally:
        sock.close()
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "ready", result["message"]
    assert result["details"]["dead_letter_queue"]["endpoint"]["reachable"] is True
