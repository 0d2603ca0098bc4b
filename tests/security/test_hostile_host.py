"""The hostile-host suite: readiness as root against an app tree owned by ``nobody``.

Every test plays an attack the app user can mount (docs/security.md, "Host side") and
asserts both that it fails (the hook never ran as root, the victim file is byte-identical
with the same mode and owner) and that the check or fixer says what it refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.model import Status
from readiness.probe import op_run_as_owner
from tests.services.apps import audit_local, one, write_app
from tests.services.gitrepos import git, make_repo

from .hostile import ATTACKER, attacker_uid, chown_tree, hook_script, recorded_uids

# ---------------------------------------------------------------------------------------------
# 1. App-controlled code (git config hooks, the app's interpreter) never runs as root.


def _booby_trapped_repo(root: Path, record: Path) -> Path:
    """A nobody-owned repo whose config runs a hook from core.fsmonitor and a clean filter."""
    repo = make_repo(root / "repos" / "trapped", 1, {"data.txt": "one\n"})
    hook = hook_script(root / "hook.sh", record)
    git(repo, "config", "core.fsmonitor", str(hook))
    git(repo, "config", "filter.evil.clean", str(hook))
    (repo / ".gitattributes").write_text("* filter=evil\n")
    (repo / "data.txt").write_text("two\n")  # a changed file goes through the clean filter
    return repo


def _repos_app(shared_root: Path, repos: list[str]) -> Path:
    return write_app(shared_root / "app", files={"repos.yaml": yaml.safe_dump(repos)})


def test_git_hooks_in_an_app_owned_repository_run_as_its_owner_not_root(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    _booby_trapped_repo(root, record)
    chown_tree(root)
    r = one(audit_local(root, "repository_access"))
    uids = recorded_uids(record)
    assert uids, "the hooks did not run at all: the test would prove nothing"
    assert set(uids) == {attacker_uid()}, f"a hook ran as uid {uids}"
    repo = r.details["repositories"]["trapped"]
    assert repo["git_run_as"] == ATTACKER
    assert repo["git"]["dirty"] is True, "the check still judges the repository"
    assert r.status is Status.NOT_READY


def test_a_repository_whose_config_belongs_to_another_user_is_refused_not_run(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    repo = _booby_trapped_repo(root, record)
    chown_tree(root)
    os.chown(repo / ".git" / "config", 1, 1)  # daemon: a second non-root owner
    r = one(audit_local(root, "repository_access"))
    assert recorded_uids(record) == []
    assert r.status is Status.DEGRADED, r.message
    refused = r.details["repositories"]["trapped"]["git_refused"]
    assert "several users" in refused and ATTACKER in refused
    assert "git status was not run" in r.message


def test_a_root_owned_repository_with_a_group_writable_config_is_refused(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    repo = _booby_trapped_repo(root, record)
    (repo / ".git" / "config").chmod(0o664)
    r = one(audit_local(root, "repository_access"))
    assert recorded_uids(record) == []
    assert "writable by group or others" in r.details["repositories"]["trapped"]["git_refused"]
    assert r.status is Status.DEGRADED
    assert any("chmod -R go-w" in rec for rec in r.recommendations)


def test_a_root_owned_repository_still_runs_git_as_root() -> None:
    """Root's own code is not an attack: nothing to drop, and the answer says who ran it."""
    res = op_run_as_owner({"owned_by": ["/"], "argv": ["id", "-u"], "timeout": 5})
    assert res["run_as"] == "root"
    assert res["stdout"].strip() == "0"


def test_the_owner_switch_gives_a_clean_environment_and_no_root_groups(
    shared_root: Path,
) -> None:
    owned = shared_root / "owned"
    owned.mkdir()
    chown_tree(owned)
    os.environ["READINESS_LEAK_PROBE"] = "root-env-secret"
    try:
        res = op_run_as_owner(
            {"owned_by": [str(owned)], "argv": ["sh", "-c", "id -u; id -G; env"], "timeout": 5}
        )
    finally:
        del os.environ["READINESS_LEAK_PROBE"]
    uid, groups, *env = res["stdout"].splitlines()
    assert int(uid) == attacker_uid()
    assert "0" not in groups.split()
    assert not any("root-env-secret" in line for line in env)
    assert "HOME=/nonexistent" in env


def _hostile_interpreter(root: Path, record: Path) -> Path:
    """The app's "python": a nobody-owned venv whose interpreter records its uid."""
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    python = venv / "python"
    python.write_text(f'#!/bin/sh\nid -u >> {record}\nexec /usr/bin/python3 "$@"\n')
    python.chmod(0o755)
    record.write_text("")
    record.chmod(0o666)
    return python


def test_the_apps_interpreter_runs_imports_as_the_app_user_not_root(shared_root: Path) -> None:
    record = shared_root / "uids"
    root = write_app(shared_root / "app")
    python = _hostile_interpreter(root, record)
    chown_tree(root)
    profile = {
        "adapter_python": ".venv/bin/python",
        "adapter_health": {"llamaindex": {"python_modules": ["json"]}},
    }
    r = one(audit_local(root, "adapter_health", profile))
    uids = recorded_uids(record)
    assert uids and set(uids) == {attacker_uid()}, uids
    assert r.details["adapters"]["llamaindex"]["modules"] == {"json": "importable"}
    assert r.details["adapters"]["llamaindex"]["python"] == str(python)


def test_an_interpreter_outside_the_app_owned_by_someone_else_is_refused(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    root = write_app(shared_root / "app")
    chown_tree(root)
    other = shared_root / "other"
    python = _hostile_interpreter(other, record)
    chown_tree(other, "daemon")
    profile = {
        "adapter_python": str(python),
        "adapter_health": {"llamaindex": {"python_modules": ["json"]}},
    }
    r = one(audit_local(root, "adapter_health", profile))
    assert recorded_uids(record) == []
    assert r.details["adapters"]["llamaindex"]["modules"] == {"json": "refused"}
    refusal = [w for w in r.details["warnings"] if "was not tried" in w]
    assert refusal and "several users" in refusal[0], r.details["warnings"]


@pytest.mark.ssh
def test_over_ssh_as_root_git_hooks_and_the_interpreter_never_run_as_root(
    ssh_fleet: Any, ssh_options: Callable[..., Any], shared_root: Path
) -> None:
    from readiness import validate
    from tests.services.sshd import host_entry, write_inventory

    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    _booby_trapped_repo(root, record)
    _hostile_interpreter(root, shared_root / "uids-python")
    chown_tree(root)
    host = ssh_fleet.hosts[3]
    entry = host_entry(ssh_fleet, host)
    entry["readiness"] = {
        "app_root": str(root),
        "adapter_python": ".venv/bin/python",
        "adapter_health": {"llamaindex": {"python_modules": ["json"]}},
    }
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    report = validate(
        "h",
        ["repository_access", "adapter_health"],
        inventory=str(inventory),
        options=ssh_options(),
    )
    by = {r.check_name: r for r in report.results}
    assert report.hosts[0].address != "local"
    git_uids = recorded_uids(record)
    python_uids = recorded_uids(shared_root / "uids-python")
    assert git_uids and set(git_uids) == {attacker_uid()}, git_uids
    assert python_uids and set(python_uids) == {attacker_uid()}, python_uids
    assert by["repository_access"].details["repositories"]["trapped"]["git_run_as"] == ATTACKER


@pytest.mark.ssh
def test_over_ssh_as_a_non_root_user_git_in_a_foreign_repository_is_refused(
    ssh_fleet: Any, ssh_options: Callable[..., Any], shared_root: Path
) -> None:
    """Without root the probe cannot become the owner, so it does not run the owner's code."""
    from readiness import validate
    from tests.services.sshd import NOPW_USER, host_entry, write_inventory

    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    _booby_trapped_repo(root, record)
    chown_tree(root)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3], ansible_user=NOPW_USER)
    entry["readiness"] = {"app_root": str(root)}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    report = validate("h", ["repository_access"], inventory=str(inventory), options=ssh_options())
    r = report.results[0]
    assert recorded_uids(record) == []
    refused = r.details["repositories"]["trapped"]["git_refused"]
    assert f"belongs to {ATTACKER}" in refused and NOPW_USER in refused
    assert any(f"run git as {ATTACKER}" in rec for rec in r.recommendations)
