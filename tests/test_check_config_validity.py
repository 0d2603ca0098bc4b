"""config_validity: required/typed settings, the repository manifest and its repositories on
the host, and resource limits, judged on real app trees audited locally."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness.model import CheckResult, Status
from readiness.probe import op_file_refs
from readiness.registry import get
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, validate_check
from tests.services.gitrepos import make_repo as make_git_repo

AppTree = Callable[..., Path]
RETRY = {"resilience": {"retry": {"max_attempts": 3}}}


def make_app(
    tmp_path: Path,
    app_tree: AppTree,
    *,
    manifest: str | None = None,
    repos: tuple[str, ...] = ("alpha", "beta"),
    **kwargs: Any,
) -> Path:
    """An app whose repos.yaml lists real repository directories under tmp_path/srv."""
    for name in repos:
        (tmp_path / "srv" / name).mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = "repos:\n" + "".join(
            f"  - path: {tmp_path / 'srv' / n}\n    name: {n}\n" for n in repos
        )
    kwargs["settings"] = {**RETRY, **kwargs.get("settings", {})}
    return app_tree(files={"repos.yaml": manifest, **kwargs.pop("files", {})}, **kwargs)


def audit(root: Path, profile: dict[str, Any] | None = None) -> CheckResult:
    return one(audit_local(root, ["config_validity"], profile))


def test_complete_typed_settings_with_accessible_repositories_are_ready(
    tmp_path: Path, app_tree: AppTree
) -> None:
    result = audit(make_app(tmp_path, app_tree))
    assert result.status is Status.READY, result.message
    repos = result.details["repositories"]["repositories"]
    assert [r["name"] for r in repos] == ["alpha", "beta"]
    assert all(r["status"] == "ok" for r in repos)


def test_a_missing_required_setting_is_not_ready_and_named(
    tmp_path: Path, app_tree: AppTree
) -> None:
    root = make_app(tmp_path, app_tree, settings={"server_name": None})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "required setting server_name is missing" in result.message
    assert any("MAHAVISHNU_SERVER_NAME" in r for r in result.recommendations)


def test_required_settings_come_from_the_profile(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree)
    result = audit(root, {"required_settings": ["server_name", "database.url"]})
    assert result.status is Status.NOT_READY
    assert result.details["required"]["missing"] == ["database.url"]


def test_a_value_of_the_wrong_type_is_not_ready(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree, settings={"pools": {"max_workers": "eight"}})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "setting pools.max_workers must be an integer (got str)" in result.message


def test_an_environment_string_satisfies_a_str_setting(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree, env={"MAHAVISHNU_SERVER_NAME": "12345"})
    result = audit(root)
    assert result.status is Status.READY, result.message
    assert result.details["types"]["server_name"] == "ok"


def test_an_unknown_type_name_in_the_profile_is_refused(tmp_path: Path, app_tree: AppTree) -> None:
    """Refused with the profile, before any host is contacted (it was a NOT_READY finding
    of each host); readiness.profile.WORDS names the types."""
    from readiness.errors import ProfileError

    with pytest.raises(ProfileError, match=r"'setting_types\.server_name' must be one of int, "):
        audit(make_app(tmp_path, app_tree), {"setting_types": {"server_name": "string"}})


def test_a_missing_manifest_is_not_ready(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree, env={"MAHAVISHNU_REPOS_PATH": "missing.yaml"})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"repository manifest {root}/missing.yaml (repos_path) does not exist" in result.message


def test_a_repository_that_does_not_exist_on_the_host_is_not_ready(
    tmp_path: Path, app_tree: AppTree
) -> None:
    gone = tmp_path / "srv" / "gone"
    manifest = f"repos:\n  - path: {tmp_path / 'srv' / 'alpha'}\n  - path: {gone}\n    name: gone\n"
    result = audit(make_app(tmp_path, app_tree, manifest=manifest))
    assert result.status is Status.NOT_READY
    assert f"repository gone path {gone} does not exist" in result.message
    assert any(f"Clone or create {gone}" in r for r in result.recommendations)


def test_a_repository_path_that_is_a_file_is_not_accessible(
    tmp_path: Path, app_tree: AppTree
) -> None:
    manifest = "- notes.txt\n"
    root = make_app(tmp_path, app_tree, manifest=manifest, files={"notes.txt": "hi"})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "is not accessible (a file, not a directory)" in result.message


def test_a_list_of_paths_relative_to_the_manifest_is_accepted(
    tmp_path: Path, app_tree: AppTree
) -> None:
    root = tmp_path / "app"
    (root / "repos" / "one").mkdir(parents=True)
    (root / "repos" / "two words").mkdir(parents=True)
    manifest = "- repos/one\n- 'repos/two words'\n"
    result = audit(make_app(tmp_path, app_tree, manifest=manifest))
    assert result.status is Status.READY, result.message
    paths = [r["path"] for r in result.details["repositories"]["repositories"]]
    assert paths == [f"{root}/repos/one", f"{root}/repos/two words"]


def test_a_flow_style_manifest_is_understood(tmp_path: Path, app_tree: AppTree) -> None:
    srv = tmp_path / "srv"
    manifest = f"repos: [{{path: {srv / 'alpha'}, name: a}}, {{path: {srv / 'beta'}, name: b}}]\n"
    result = audit(make_app(tmp_path, app_tree, manifest=manifest))
    assert result.status is Status.READY, result.message


def test_an_empty_manifest_is_degraded(tmp_path: Path, app_tree: AppTree) -> None:
    result = audit(make_app(tmp_path, app_tree, manifest="repos: []\n"))
    assert result.status is Status.DEGRADED
    assert "lists no repositories" in result.message


def test_an_unparseable_manifest_names_its_file_and_line(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree, manifest="repos:\n  - path: [a\n  - b\n")
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"{root}/repos.yaml:" in result.message
    assert "invalid YAML" in result.message


def test_a_manifest_path_that_is_a_directory_is_not_ready(
    tmp_path: Path, app_tree: AppTree
) -> None:
    root = make_app(tmp_path, app_tree, env={"MAHAVISHNU_REPOS_PATH": "repos.d"})
    (root / "repos.d").mkdir()
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"repository manifest {root}/repos.d is a dir, not a YAML file" in result.message


def test_out_of_range_limits_reuse_the_resource_limits_ranges(
    tmp_path: Path, app_tree: AppTree
) -> None:
    root = make_app(tmp_path, app_tree, settings={"workflow_timeout": 7200})
    result = audit(root)
    assert result.status is Status.DEGRADED
    assert "workflow_timeout = 7200s is outside the recommended range 300-1800s" in result.message
    tuned = audit(root, {"resource_ranges": {"workflow_timeout": {"max": 7200}}})
    assert tuned.status is Status.READY, tuned.message


def test_a_missing_limit_is_reported_once(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree, settings={"workflow_timeout": None})
    result = audit(root)
    assert result.status is Status.NOT_READY
    problems = result.details["problems"]
    assert [p for p in problems if "workflow_timeout" in p] == [
        "required setting workflow_timeout is missing"
    ]


def test_unparseable_settings_are_not_ready_with_file_and_line(
    tmp_path: Path, app_tree: AppTree
) -> None:
    root = app_tree(settings_text="server_name: x\nauth:\n  enabled: true\n bad: [\n")
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert f"{root}/settings/mahavishnu.yaml:4: invalid YAML" in result.message


def test_a_missing_settings_file_is_not_ready(tmp_path: Path, app_tree: AppTree) -> None:
    root = make_app(tmp_path, app_tree)
    (root / "settings" / "mahavishnu.yaml").unlink()
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "settings/mahavishnu.yaml does not exist" in result.message


def test_the_file_refs_probe_op_stats_each_listed_path(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    manifest = tmp_path / "m.yaml"
    manifest.write_text("repos:\n  - path: r1  # first\n  - path: /nonexistent/r2\n")
    fact = op_file_refs({"path": str(manifest)})
    assert fact["refs"]["r1"]["type"] == "dir"
    assert fact["refs"]["r1"]["path"] == str(tmp_path / "r1")
    assert fact["refs"]["/nonexistent/r2"]["exists"] is False
    assert "repos:" not in fact["refs"]


def test_it_belongs_to_the_production_suite_as_configuration() -> None:
    spec = get("config_validity")
    assert spec.suites == ("production",)
    assert spec.categories == ("configuration",)
    assert spec.order == 110


def test_a_required_setting_of_only_whitespace_is_missing(
    tmp_path: Path, app_tree: AppTree
) -> None:
    """``server_name: "   "`` counted as present: a name of spaces is no name."""
    root = make_app(tmp_path, app_tree, settings={"server_name": "   "})
    result = audit(root)
    assert result.status is Status.NOT_READY
    assert "required setting server_name is missing" in result.message
    assert result.details["required"]["missing"] == ["server_name"]


def test_values_written_as_the_app_reads_them_have_the_right_type(
    tmp_path: Path, app_tree: AppTree
) -> None:
    """`workflow_timeout: "600"` (quoted), `max_concurrent_workflows: 10.0`, `auth.enabled:
    y` (a string in YAML, true to pydantic), and MAHAVISHNU_POOLS__MAX_WORKERS=8.0 from the
    environment are the numbers and switch the app reads: validate said NOT_READY "setting
    workflow_timeout must be a number (got str)" and the like, while resource_limits judged
    the same 600 within range. A word, a fraction of a worker and "maybe" are still refused."""
    settings = {
        "workflow_timeout": "600",
        "max_concurrent_workflows": 10.0,
        "auth": {"enabled": "y"},
        "pools": {"min_workers": "2"},
    }
    env = {"MAHAVISHNU_POOLS__MAX_WORKERS": "8.0"}
    root = make_app(tmp_path, app_tree, settings=settings, env=env)
    inv = local_inventory(tmp_path / "inv.yml", root)

    result = validate_check(inv, "config_validity")
    assert result["status"] == "ready", result["message"]
    assert set(result["details"]["types"].values()) == {"ok"}
    wrong = {
        "workflow_timeout": "ten",
        "max_concurrent_workflows": 10.5,
        "auth": {"enabled": "maybe"},
    }
    make_app(tmp_path, app_tree, settings=wrong, env=env)
    result = validate_check(inv, "config_validity")
    assert result["status"] == "not_ready"
    types = result["details"]["types"]
    assert [k for k, v in types.items() if v != "ok"] == [
        "auth.enabled",
        "max_concurrent_workflows",
        "workflow_timeout",
    ]


def test_a_home_relative_repository_path_is_undetermined_not_the_audit_accounts_home(
    tmp_path: Path, app_tree: AppTree
) -> None:
    """`~/repos/one` is in the home of whatever user the app runs as: the probe expanded it in
    the audit account's home (/root), so validate said NOT_READY "repository one path
    /root/repos/one does not exist" (and READY had /root/repos/one existed), while
    repository_access says it cannot tell."""
    root = make_app(tmp_path, app_tree, manifest="repos:\n  - {path: ~/repos/one, name: one}\n")
    result = validate_check(local_inventory(tmp_path / "inv.yml", root), "config_validity")
    assert result["status"] == "degraded", result["message"]
    assert "cannot tell where repository one (~/repos/one) is" in result["message"]
    assert result["details"]["repositories"]["repositories"][0]["status"] == "unknown"
    assert "/root" not in result["message"]


@pytest.mark.ssh
def test_a_non_root_audit_that_cannot_look_is_undetermined_not_inaccessible(
    tmp_path: Path,
) -> None:
    """Audited as readiness-nopw (no --sudo), the app user's 0700 repositories and its 0600
    manifest cannot be seen by the audit account; the app user reads them. validate said
    NOT_READY "is not accessible (PermissionError ...)" / "(not readable)" / "manifest ...
    cannot be read", as if the service could not; repository_access said it cannot tell."""
    from readiness.loopback import start_fleet
    from tests.services.apps import write_app
    from tests.services.cli import run_cli
    from tests.services.sshd import NOPW_USER

    def write(index: int, root: Path) -> None:
        write_app(
            root,
            settings=RETRY,
            files={"repos.yaml": "repos: [srv/hidden/one, srv/closed]\n"},
        )
        (root / ".env").chmod(0o644)  # the settings readable: only the repositories are hidden
        for rel, mode in (("srv/hidden/one", 0o755), ("srv/hidden", 0o700), ("srv/closed", 0o700)):
            (root / rel).mkdir(parents=True, exist_ok=True)
            subprocess.run(["chown", "nobody", str(root / rel)], check=True, timeout=10)
            (root / rel).chmod(mode)

    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {"app_root": str(h.app_root)},
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", "config_validity"]
        argv += ["--known-hosts", str(fleet.known_hosts), "--format", "json"]
        first = json.loads(run_cli(*argv).stdout)["hosts"][0]["checks"][0]
        manifest = fleet.hosts[0].app_root / "repos.yaml"
        subprocess.run(["chown", "nobody", str(manifest)], check=True, timeout=10)
        manifest.chmod(0o600)
        second = json.loads(run_cli(*argv).stdout)["hosts"][0]["checks"][0]
    assert first["status"] == "degraded", first["message"]
    repos = {
        r["path"].rsplit("srv/", 1)[1]: r for r in first["details"]["repositories"]["repositories"]
    }
    assert {k: r["status"] for k, r in repos.items()} == {
        "hidden/one": "unknown",
        "closed": "unknown",
    }
    assert "cannot tell whether repository" in first["message"]
    assert "not accessible" not in json.dumps(first)
    assert second["status"] == "degraded", second["message"]
    assert "cannot read repository manifest" in second["message"]


def test_relative_repository_paths_are_under_app_root_wherever_the_manifest_is(
    tmp_path: Path, app_tree: AppTree
) -> None:
    """repos_path: config/repos.yaml listing repos/one: config_validity looked for
    <app_root>/config/repos/one (NOT_READY "does not exist") while repository_access, in the
    same suite, found <app_root>/repos/one, where the app (working in app_root) finds it."""
    root = tmp_path / "app"
    make_git_repo(root / "repos" / "one", 1)
    make_app(
        tmp_path,
        app_tree,
        repos=(),
        manifest="",
        env={"MAHAVISHNU_REPOS_PATH": "config/repos.yaml"},
        files={"config/repos.yaml": "repos: [repos/one]\n"},
    )
    inventory = local_inventory(
        tmp_path / "inv.yml", root, repository_manifest_paths=["config/repos.yaml"]
    )
    result = validate_check(inventory, "config_validity")
    assert result["status"] == "ready", result["message"]
    assert result["details"]["repositories"]["repositories"][0]["path"] == f"{root}/repos/one"
    assert validate_check(inventory, "repository_access")["status"] == "ready"
