"""``repository_access``: real git repositories (clean, dirty, detached, missing, foreign-owned)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.checks.repository_access import parse_status
from readiness.model import Status
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, validate_check
from tests.services.gitrepos import git
from tests.services.gitrepos import make_repo as make_git_repo

STRUCTURE = {"repository_structure": [".git", "pyproject.toml"]}


def make_repo(path: Path, commits: int = 2) -> Path:
    return make_git_repo(path, commits, {"pyproject.toml": "[project]\nname = 'x'\n"})


def app_with_repos(app_tree: Callable[..., Path], repos: Any) -> Path:
    return app_tree(files={"repos.yaml": yaml.safe_dump(repos)})


def test_clean_repositories_with_the_expected_structure_are_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    absolute = make_repo(tmp_path / "elsewhere" / "crackerjack")
    root = app_with_repos(
        app_tree,
        {
            "repos": [
                {"name": "session-buddy", "path": "repos/session-buddy"},
                {"name": "crackerjack", "path": str(absolute)},
            ]
        },
    )
    make_repo(root / "repos" / "session-buddy")
    r = one(audit_local(root, "repository_access", STRUCTURE))
    assert r.status is Status.READY, r.message
    repos = r.details["repositories"]
    assert repos["session-buddy"]["path"] == str(root / "repos" / "session-buddy")
    assert repos["session-buddy"]["git"]["branch"] == "main"
    assert repos["crackerjack"]["git"]["dirty"] is False
    assert repos["crackerjack"]["verdict"] == "ok"


def test_a_plain_list_of_paths_is_an_accepted_manifest(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "one")
    root = app_with_repos(app_tree, [str(repo)])
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.READY, r.message
    assert list(r.details["repositories"]) == ["one"]


def test_a_dirty_working_tree_is_not_ready_by_default(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "dirty")
    (repo / "README.md").write_text("local edit\n")
    (repo / "scratch.txt").write_text("untracked\n")
    root = app_with_repos(app_tree, {"repos": [{"name": "dirty", "path": str(repo)}]})
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.NOT_READY
    assert "dirty working tree (1 changed, 1 untracked, 0 unmerged)" in r.message
    assert any("git -C" in rec and "status" in rec for rec in r.recommendations)
    index_before = (repo / ".git" / "index").stat().st_mtime_ns
    one(audit_local(root, "repository_access"))
    assert (repo / ".git" / "index").stat().st_mtime_ns == index_before, "audit wrote the index"


def test_a_dirty_tree_only_degrades_when_the_profile_says_warn(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "dirty")
    (repo / "README.md").write_text("local edit\n")
    root = app_with_repos(app_tree, {"repos": [str(repo)]})
    r = one(audit_local(root, "repository_access", {"repository_forbid_dirty": "warn"}))
    assert r.status is Status.DEGRADED
    assert "dirty" in r.message
    allowed = one(audit_local(root, "repository_access", {"repository_forbid_dirty": False}))
    assert allowed.status is Status.READY
    assert allowed.details["repositories"]["dirty"]["git"]["dirty"] is True


def test_a_detached_head_is_not_ready_by_default_and_degraded_when_warned(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "detached")
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    git(repo, "checkout", "-q", "--detach", first)
    root = app_with_repos(app_tree, {"repos": [str(repo)]})
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.NOT_READY
    assert f"detached HEAD ({first[:12]})" in r.message
    assert r.details["repositories"]["detached"]["git"]["detached"] is True
    warned = one(audit_local(root, "repository_access", {"repository_forbid_detached": "warn"}))
    assert warned.status is Status.DEGRADED


def test_a_missing_repository_is_not_ready_and_says_how_to_clone_it(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    present = make_repo(tmp_path / "present")
    root = app_with_repos(
        app_tree,
        {"repos": [str(present), {"name": "gone", "path": str(tmp_path / "gone")}]},
    )
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.NOT_READY
    assert "repository gone" in r.message and "does not exist" in r.message
    assert r.details["repositories"]["gone"]["verdict"] == "missing"
    assert r.details["repositories"]["present"]["verdict"] == "ok"
    assert any(f"git clone <url> {tmp_path / 'gone'}" in rec for rec in r.recommendations)


def test_a_repository_missing_its_expected_structure_is_not_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "thin")
    git(repo, "rm", "-q", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "drop pyproject")
    root = app_with_repos(app_tree, {"repos": [str(repo)]})
    r = one(audit_local(root, "repository_access", STRUCTURE))
    assert r.status is Status.NOT_READY
    assert "lacks the expected structure: pyproject.toml" in r.message
    assert r.details["repositories"]["thin"]["missing_structure"] == ["pyproject.toml"]


def test_a_directory_that_is_not_a_git_repository_is_not_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    root = app_with_repos(app_tree, {"repos": [str(plain)]})
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.NOT_READY
    assert "is not a git repository" in r.message


def test_a_missing_manifest_and_an_unset_repos_path_are_not_ready(
    app_tree: Callable[..., Path],
) -> None:
    root = app_tree()
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.NOT_READY
    assert f"{root / 'repos.yaml'} does not exist" in r.message
    unset = app_tree(settings={"repos_path": None}, env={"MAHAVISHNU_REPOS_PATH": None})
    r2 = one(audit_local(unset, "repository_access"))
    assert r2.status is Status.NOT_READY
    assert "repos_path is not set" in r2.message


def test_an_empty_manifest_degrades(app_tree: Callable[..., Path]) -> None:
    root = app_with_repos(app_tree, {"repos": []})
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.DEGRADED
    assert "lists no repositories" in r.message


def test_a_manifest_outside_the_candidate_paths_is_reported_not_guessed(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """The settings are parsed after the first probe round: an unexpected path costs a run."""
    repo = make_repo(tmp_path / "r")
    root = app_tree(
        env={"MAHAVISHNU_REPOS_PATH": "conf/my-repos.yaml"},
        files={"conf/my-repos.yaml": yaml.safe_dump({"repos": [str(repo)]})},
    )
    r = one(audit_local(root, "repository_access"))
    assert r.status is Status.DEGRADED
    assert r.details["repositories"] == {"r": {"path": str(repo), "inspected": False}}
    assert any("repository_manifest_paths" in rec for rec in r.recommendations)
    fixed = {"repository_manifest_paths": ["conf/my-repos.yaml"]}
    assert one(audit_local(root, "repository_access", fixed)).status is Status.READY


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can traverse (pytest's tmp_path has root-only parents)."""
    path = Path(tempfile.mkdtemp(prefix="readiness-repos-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_readability_is_tested_as_the_service_user(
    app_tree: Callable[..., Path], shared_dir: Path
) -> None:
    """As root, runuser tests access as `nobody`; a nobody-owned repo is still git-readable."""
    assert os.geteuid() == 0, "this machine runs the tests as root"
    open_repo = make_repo(shared_dir / "open")
    subprocess.run(["chown", "-R", "nobody", str(open_repo)], check=True, timeout=30)
    closed = make_repo(shared_dir / "closed")
    closed.chmod(0o700)
    root = app_with_repos(app_tree, {"repos": [str(open_repo), str(closed)]})
    r = one(audit_local(root, "repository_access", {"service_user": "nobody"}))
    assert r.status is Status.NOT_READY
    repos = r.details["repositories"]
    assert repos["open"]["verdict"] == "ok", repos["open"]
    assert repos["open"]["readable_by"] == "nobody"
    assert repos["closed"]["verdict"] == "unreadable"
    assert "not readable by the service user nobody" in r.message
    assert any("chown -R nobody" in rec for rec in r.recommendations)


def test_a_service_user_that_does_not_exist_is_not_ready(
    app_tree: Callable[..., Path], shared_dir: Path
) -> None:
    repo = make_repo(shared_dir / "r")
    root = app_with_repos(app_tree, {"repos": [str(repo)]})
    r = one(audit_local(root, "repository_access", {"service_user": "no-such-user-xyz"}))
    assert r.status is Status.NOT_READY
    assert "service user no-such-user-xyz does not exist" in r.message


def test_porcelain_v2_status_is_parsed_into_branch_and_counts() -> None:
    out = parse_status(
        "# branch.oid abc123\n# branch.head (detached)\n"
        "1 .M N... 100644 100644 100644 a b README.md\n"
        "u UU N... 1 2 3 4 a b c conflict.txt\n? new.txt\n"
    )
    assert out == {
        "branch": None,
        "head": "abc123",
        "detached": True,
        "changed": 1,
        "untracked": 1,
        "unmerged": 1,
        "dirty": True,
    }


@pytest.mark.ssh
def test_the_integration_checks_judge_the_same_way_over_real_ssh(
    ssh_fleet: Any, ssh_options: Callable[..., Any], tmp_path: Path, http_server: Callable[[], Any]
) -> None:
    """Repositories, adapter health and the smoke workflow are all gathered by the remote probe."""
    from readiness import validate
    from tests.services.apps import write_app
    from tests.services.sshd import host_entry, write_inventory

    root = write_app(tmp_path / "app", files={"repos.yaml": yaml.safe_dump(["repos/clean"])})
    make_repo(root / "repos" / "clean")
    (root / "models").mkdir()
    srv = http_server().route("/api/health", json=True)
    (root / ".env").write_text(
        (root / ".env").read_text() + f"MAHAVISHNU_ADAPTERS__PREFECT__API_URL={srv.url}/api\n"
    )
    host = ssh_fleet.hosts[3]
    inventory = write_inventory(tmp_path / "inv.yml", {"spare": host_entry(ssh_fleet, host)})
    smoke = [
        "python3",
        "-c",
        "import json, socket; print(json.dumps({'state': 'completed', 'host': socket.gethostname()}))",
    ]
    overrides = {
        "app_root": str(root),
        "adapter_health": {"llamaindex": {"python_modules": ["json"], "paths": ["models"]}},
        "smoke_workflow": {"command": smoke, "timeout_s": 10},
    }
    report = validate(
        "spare",
        ["adapter_health", "repository_access", "workflow_execution"],
        inventory=str(inventory),
        options=ssh_options(),
        profile_overrides=overrides,
    )
    statuses = {r.check_name: r.status for r in report.results}
    assert statuses == dict.fromkeys(statuses, Status.READY), [r.message for r in report.results]
    assert report.hosts[0].address != "local"
    assert len(srv.requests_to("/api/health")) == 1


def test_a_checkout_pinned_to_a_release_tag_is_not_a_stray_detached_head(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """`git checkout v1.0.0` (or Ansible's git module with version: v1.0.0) pins a reviewed
    release and leaves HEAD detached by design: validate said NOT_READY "is on a detached
    HEAD". At a tag it is READY (the tag in details); detached at an untagged commit is
    still judged as repository_forbid_detached says."""
    repo = make_repo(tmp_path / "pinned", commits=3)
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    git(repo, "tag", "-a", "v1.0.0", "-m", "release 1.0.0", first)
    git(repo, "checkout", "-q", "v1.0.0")
    root = app_with_repos(app_tree, {"repos": [str(repo)]})
    inv = local_inventory(tmp_path / "inv.yml", root)

    result = validate_check(inv, "repository_access")
    assert result["status"] == "ready", result["message"]
    status = result["details"]["repositories"]["pinned"]["git"]
    assert (status["detached"], status["tags"]) == (True, ["v1.0.0"])
    git(repo, "checkout", "-q", "--detach", "main~1")
    result = validate_check(inv, "repository_access")
    assert result["status"] == "not_ready"
    assert "is on a detached HEAD" in result["message"]


def test_a_home_relative_repository_path_is_undetermined_not_missing(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """repos.yaml listing ~/repos/session-buddy: whose home that is depends on the user
    the app runs as (and on whether it expands '~'); validate said NOT_READY "… does not
    exist", "Clone session-buddy to ~/repos/session-buddy". Now it cannot be told
    (DEGRADED), with the fix: write the path absolute."""
    root = app_with_repos(
        app_tree, {"repos": [{"name": "session-buddy", "path": "~/repos/session-buddy"}]}
    )
    inv = local_inventory(tmp_path / "inv.yml", root)
    result = validate_check(inv, "repository_access")
    assert result["status"] == "degraded", result["message"]
    assert "its path starts with '~'" in result["message"]
    assert "does not exist" not in result["message"]
    assert result["details"]["repositories"]["session-buddy"]["verdict"] == "unknown"


@pytest.mark.ssh
def test_a_repository_the_non_root_audit_account_may_not_read_is_undetermined(
    tmp_path: Path,
) -> None:
    """No service_user in the profile, audited as readiness-nopw without --sudo: the app
    user's 0750 checkout is not readable by the audit account, which says nothing of the
    app. validate said NOT_READY "... is not readable by readiness-nopw", "Fix the
    permissions"."""
    import json

    from readiness.loopback import start_fleet
    from tests.services.apps import write_app
    from tests.services.cli import run_cli
    from tests.services.sshd import NOPW_USER

    def write(index: int, root: Path) -> None:
        write_app(root, files={"repos.yaml": yaml.safe_dump(["repos/one"])})
        (root / ".env").chmod(0o644)
        repo = make_repo(root / "repos" / "one")
        subprocess.run(["chown", "-R", "nobody", str(repo)], check=True, timeout=10)
        repo.chmod(0o750)

    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {"app_root": str(h.app_root)},
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", "repository_access"]
        res = run_cli(*argv, "--known-hosts", str(fleet.known_hosts), "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "degraded", result["message"]
    assert "cannot tell whether the service can read repository one" in result["message"]
    assert result["details"]["repositories"]["one"]["verdict"] == "unknown"
    assert any("service_user" in r and "--sudo" in r for r in result["recommendations"])
