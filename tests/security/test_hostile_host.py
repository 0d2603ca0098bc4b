"""The hostile-host suite: readiness as root against an app tree owned by ``nobody``.

Every test plays an attack the app user can mount (docs/security.md, "Host side") and
asserts both that it fails (the hook never ran as root, the victim file is byte-identical
with the same mode and owner) and that the check or fixer says what it refused.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness import applier
from readiness.model import Status
from readiness.probe import op_run_as_owner
from tests.services.apps import audit_local, one, write_app
from tests.services.cli import local_inventory, run_cli
from tests.services.gitrepos import git, make_repo

from .hostile import (
    ATTACKER,
    Victim,
    attacker_uid,
    chown_tree,
    hook_script,
    recorded_uids,
    victim,
)

# ---------------------------------------------------------------------------------------------
# 1. App-controlled code (git config hooks, the app's interpreter) never runs as root.


def _trapped_app(shared_root: Path) -> tuple[Path, Path, Path]:
    """(app root, its booby-trapped repository, the file its hooks append uids to)."""
    record = shared_root / "uids"
    root = _repos_app(shared_root, ["repos/trapped"])
    return root, _booby_trapped_repo(root, record), record


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
    root, _, record = _trapped_app(shared_root)
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
    root, repo, record = _trapped_app(shared_root)
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
    root, repo, record = _trapped_app(shared_root)
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


def test_a_root_import_never_takes_a_module_from_the_directory_readiness_was_started_in(
    shared_root: Path,
) -> None:
    """A root-owned app tree (root's interpreter, root's code: the import runs as root), and
    `readiness validate` started by root in a directory nobody can write (``/tmp``, an app
    directory). ``python3 -c`` puts its working directory first on ``sys.path``, and the
    import ran in the directory readiness was started in: nobody's ``json.py`` there ran
    as root. It runs in ``app_root`` now, whose owner decides who runs it."""
    record = shared_root / "uids"
    record.write_text("")
    record.chmod(0o666)
    root = write_app(shared_root / "app")  # root's
    work = shared_root / "work"
    work.mkdir()
    (work / "json.py").write_text(
        f"import os\nopen({str(record)!r}, 'a').write('%d\\n' % os.getuid())\n"
    )
    chown_tree(work)
    profile = {"adapter_health": {"llamaindex": {"python_modules": ["json"]}}}
    inventory = local_inventory(shared_root / "inv.yml", root, **profile)
    res = run_cli(
        "validate", "-i", str(inventory), "-c", "adapter_health", "--format", "json", cwd=work
    )
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert recorded_uids(record) == [], "nobody's json.py was imported by root"
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["details"]["adapters"]["llamaindex"]["modules"] == {"json": "importable"}


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
@pytest.mark.parametrize("sudo", [False, True], ids=["root-login", "sudo"])
def test_over_ssh_as_root_git_hooks_and_the_interpreter_never_run_as_root(
    ssh_fleet: Any, ssh_options: Callable[..., Any], shared_root: Path, sudo: bool
) -> None:
    from readiness import validate
    from tests.services.sshd import host_entry, write_inventory

    root, _, record = _trapped_app(shared_root)
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
        options=ssh_options(sudo=sudo),
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

    root, _, record = _trapped_app(shared_root)
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


def test_the_git_benchmark_runs_git_as_the_repository_owner_in_its_worker_threads(
    shared_root: Path,
) -> None:
    """repository_benchmark repeats git in op_repeat's threads: the exec-wrapper path."""
    root, _, record = _trapped_app(shared_root)
    chown_tree(root)
    profile = {
        "repository_benchmark": {"repetitions": 2, "operations": ["status"]},
        # no baseline: the default (reports/benchmarks, relative to the working directory)
        # left local-repository_benchmark-trapped_status.json in the checkout
        "benchmark_baseline_dir": None,
    }
    r = one(audit_local(root, "repository_benchmark", profile))
    uids = recorded_uids(record)
    assert uids and set(uids) == {attacker_uid()}, uids
    assert r.status is not Status.ERROR, r.message


def test_run_as_owner_inside_concurrent_repeats_drops_in_every_thread(shared_root: Path) -> None:
    from readiness.probe import op_repeat

    owned = shared_root / "owned"
    owned.mkdir()
    chown_tree(owned)
    inner = {"op": "run_as_owner", "owned_by": [str(owned)], "argv": ["id", "-u"], "timeout": 5}
    res = op_repeat({"spec": inner, "runs": 6, "concurrency": 3, "time_cap": 20})
    assert len(res["results"]) == 6
    assert {r["stdout"].strip() for r in res["results"]} == {str(attacker_uid())}
    assert {r["run_as"] for r in res["results"]} == {ATTACKER}


def test_the_python_3_8_ways_to_drop_privileges_work_too(shared_root: Path) -> None:
    """Hosts on 3.8 have no Popen(user=...): a preexec function, or (with threads) an exec
    wrapper. Both are exercised here on this interpreter."""
    from readiness.probe import _identity, _run_wrapped, _switcher

    nobody = pwd.getpwnam(ATTACKER)
    identity = _identity(nobody.pw_uid, nobody.pw_gid)
    argv = ["sh", "-c", "id -u; id -G"]
    wrapped = _run_wrapped({"argv": argv, "timeout": 10}, identity)
    forked = subprocess.run(
        argv,
        preexec_fn=_switcher(identity),  # no other thread runs in this test
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    for out in (wrapped["stdout"], forked.stdout):
        uid, groups = out.split("\n")[:2]
        assert int(uid) == nobody.pw_uid
        assert "0" not in groups.split()


def test_a_smoke_workflow_in_an_app_owned_tree_runs_as_the_app_user(shared_root: Path) -> None:
    record = shared_root / "uids"
    root = write_app(shared_root / "app")
    python = _hostile_interpreter(root, record)
    chown_tree(root)
    smoke = {
        "command": [
            ".venv/bin/python",
            "-c",
            "import json; print(json.dumps({'state': 'completed'}))",
        ],
        "timeout_s": 10,
    }
    r = one(audit_local(root, "workflow_execution", {"smoke_workflow": smoke}))
    uids = recorded_uids(record)
    assert uids and set(uids) == {attacker_uid()}, (uids, r.message)
    assert python.exists()


# ---------------------------------------------------------------------------------------------
# 2. The applier never follows a link it did not mean to, and a race cannot redirect it.


def _apply(*changes: dict[str, Any], **request: Any) -> dict[str, Any]:
    """The host-side applier, in-process as root (the same code the remote run executes)."""
    return applier.op_apply({"op": "apply", "stamp": "T1", "changes": list(changes), **request})


def _planted(shared_root: Path, name: str, target: Path) -> Path:
    """``app/<name>`` is a nobody-owned symlink to ``target``."""
    app = shared_root / "app"
    app.mkdir(exist_ok=True)
    link = app / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    chown_tree(app)
    return link


CHANGES_THROUGH_A_LINK: dict[str, Callable[[Path], dict[str, Any]]] = {
    "chmod": lambda p: {"kind": "chmod", "path": str(p), "mode": 0o600},
    "edit_file": lambda p: {"kind": "edit_file", "path": str(p), "content": "pwned\n"},
    "append_lines": lambda p: {"kind": "append_lines", "path": str(p), "lines": ["pwned"]},
    "set_env": lambda p: {
        "kind": "set_env",
        "path": str(p),
        "name": "ROOT-ONLY-SECRET",
        "expect_value_sha256": None,
    },
    "ensure_dir": lambda p: {"kind": "ensure_dir", "path": str(p), "mode": 0o777},
}


@pytest.mark.parametrize("kind", sorted(CHANGES_THROUGH_A_LINK))
def test_no_change_is_made_through_a_symlink_to_a_root_file(kind: str, shared_root: Path) -> None:
    target = victim(shared_root / "root-only")
    link = _planted(shared_root, "conf/app.key", target.path)
    answer = _apply(CHANGES_THROUGH_A_LINK[kind](link))
    target.assert_untouched()
    assert answer["ok"] is False and answer["refused"] is True, answer
    assert answer["error"].startswith(f"refused: {link} is a")
    assert link.is_symlink() and link.readlink() == target.path


def test_create_file_never_writes_through_an_existing_symlink(shared_root: Path) -> None:
    target = victim(shared_root / "root-only")
    link = _planted(shared_root, "docs/RUNBOOK.md", target.path)
    answer = _apply({"kind": "create_file", "path": str(link), "content": "pwned\n"})
    target.assert_untouched()
    assert answer["results"] == ["exists, left untouched"]


def test_a_symlinked_0444_key_is_refused_not_widened_to_0600(shared_root: Path) -> None:
    """No attacker needed: chmod through a link used to *add* bits to its target."""
    target = victim(shared_root / "keys", mode=0o444)
    link = _planted(shared_root, "conf/app.key", target.path)
    answer = _apply({"kind": "chmod", "path": str(link), "mode": 0o600})
    target.assert_untouched()
    assert "readiness does not chmod through links" in answer["error"]


def test_a_hard_link_to_a_root_file_is_not_chmodded(shared_root: Path) -> None:
    """Where fs.protected_hardlinks is off the app user can hard-link a root file."""
    target = victim(shared_root / "root-only", mode=0o644)
    app = shared_root / "app"
    (app / "conf").mkdir(parents=True)
    os.link(target.path, app / "conf" / "app.key")  # what the attacker could do there
    answer = _apply({"kind": "chmod", "path": str(app / "conf" / "app.key"), "mode": 0o600})
    target.assert_untouched()
    assert answer["refused"] is True and "has 2 hard links" in answer["error"]


def test_a_parent_directory_swapped_for_a_symlink_is_not_followed(shared_root: Path) -> None:
    victim_dir = shared_root / "etc-like"
    target = victim(victim_dir, "mahavishnu.yaml")
    link = _planted(shared_root, "settings", victim_dir)
    answer = _apply({"kind": "edit_file", "path": str(link / "mahavishnu.yaml"), "content": "x\n"})
    target.assert_untouched()
    assert answer["refused"] is True
    assert "is a symlink that nobody could have planted" in answer["error"]


def test_a_root_owned_symlink_in_a_root_only_directory_is_followed(shared_root: Path) -> None:
    """Root's own layout (``/srv/app -> /srv/releases/3``) keeps working."""
    real = shared_root / "releases" / "3"
    real.mkdir(parents=True)
    (shared_root / "current").symlink_to(real)
    answer = _apply(
        {"kind": "create_file", "path": str(shared_root / "current" / "x.md"), "content": "x\n"}
    )
    assert answer["ok"] is True, answer
    assert (real / "x.md").read_text() == "x\n"


def test_a_dead_letter_queue_path_outside_app_root_is_refused(shared_root: Path) -> None:
    app = shared_root / "app"
    app.mkdir()
    outside = shared_root / "elsewhere" / "dlq"
    answer = _apply(
        {"kind": "ensure_dir", "path": str(outside), "mode": 0o750, "confine_to": str(app)}
    )
    assert answer["refused"] is True and "is outside" in answer["error"]
    assert not (shared_root / "elsewhere").exists()


def test_remediate_refuses_a_dead_letter_queue_the_host_points_outside_app_root(
    shared_root: Path,
) -> None:
    """The app user sets resilience.dead_letter_queue.path to a root directory's child."""
    from readiness.remediate import remediate, render
    from tests.services.apps import LocalTestHost

    outside = shared_root / "etc-like" / "dlq"
    (shared_root / "etc-like").mkdir()
    resilience = {
        "retry": {"max_attempts": 3, "backoff_base_s": 1.0, "backoff_max_s": 30.0},
        "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_s": 60},
        "dead_letter_queue": {"enabled": True, "path": str(outside)},
        "error_categories": ["transient", "permanent", "validation", "timeout"],
    }
    root = write_app(shared_root / "app", settings={"resilience": resilience})
    chown_tree(root)
    kw: dict[str, Any] = {
        "profile_overrides": {"app_root": str(root)},
        "audit_log": shared_root / "audit.jsonl",
        "log_stream": io.StringIO(),
    }
    report = remediate([LocalTestHost()], ["error_handling"], apply=True, **kw)
    assert not outside.exists(), "a directory was created where the host's settings pointed"
    text = render(report)
    assert f"refused: the dead letter queue directory {outside}" in text
    assert "is outside app_root" in text


def test_new_files_and_directories_in_the_app_tree_get_its_owner_not_root(
    shared_root: Path,
) -> None:
    app = shared_root / "app"
    app.mkdir()
    chown_tree(app)
    answer = _apply(
        {"kind": "create_file", "path": str(app / "docs" / "runbooks" / "a.md"), "content": "a\n"},
        {"kind": "ensure_dir", "path": str(app / "data" / "dlq"), "mode": 0o750},
    )
    assert answer["ok"] is True, answer
    for p in [app / "docs", app / "docs" / "runbooks", app / "docs" / "runbooks" / "a.md"]:
        assert p.stat().st_uid == attacker_uid(), p
    assert (app / "data" / "dlq").stat().st_uid == attacker_uid()
    assert stat.S_IMODE((app / "data" / "dlq").stat().st_mode) == 0o750


def test_backups_of_secrets_are_private_and_pruned_to_the_retention(shared_root: Path) -> None:
    app = shared_root / "app"
    app.mkdir()
    env = app / ".env"
    env.write_text("A=1\n")
    env.chmod(0o640)
    chown_tree(app)
    for i in range(4):
        change = {"kind": "edit_file", "path": str(env), "content": f"A={i + 2}\n"}
        answer = applier.op_apply(
            {"op": "apply", "stamp": f"T{i}", "changes": [change], "keep_backups": 2}
        )
        assert answer["ok"] is True, answer
        os.utime(answer["backups"][0], (1000 + i, 1000 + i))
    backups = sorted(app.glob(".env.readiness-bak.*"))
    assert [b.name for b in backups] == [".env.readiness-bak.T2", ".env.readiness-bak.T3"]
    for b in backups:
        st = b.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == attacker_uid()
    assert stat.S_IMODE(env.stat().st_mode) == 0o640 and env.stat().st_uid == attacker_uid()


def test_planted_or_same_second_backup_names_never_block_a_fix(shared_root: Path) -> None:
    """150 copies already named like this second's backups (planted by the app user, or left
    by a fast series of refused fixes) neither block the fix nor get overwritten."""
    app = shared_root / "app"
    app.mkdir()
    env = app / ".env"
    env.write_text("A=1\n")
    planted = [app / ".env.readiness-bak.T0"]
    planted += [app / f".env.readiness-bak.T0.{n}" for n in range(2, 152)]
    for p in planted:
        p.write_text("planted\n")
    chown_tree(app)
    change = {"kind": "edit_file", "path": str(env), "content": "A=2\n"}
    answer = applier.op_apply(
        {"op": "apply", "stamp": "T0", "changes": [change], "keep_backups": 500}
    )
    assert answer["ok"] is True, answer
    backup = Path(answer["backups"][0])
    assert backup not in planted and backup.read_text() == "A=1\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert all(p.read_text() == "planted\n" for p in planted)
    assert env.read_text() == "A=2\n"


def test_the_profile_sets_the_backup_retention_of_remediate(tmp_path: Path) -> None:
    """remediate_keep_backups reaches the applier: two fixes of the README keep one copy."""
    from readiness.errors import ReadinessError
    from readiness.remediate import remediate
    from tests.services.apps import LocalTestHost

    root = write_app(tmp_path / "app", files={"README.md": "# app\n"})
    kw: dict[str, Any] = {"audit_log": tmp_path / "audit.jsonl", "log_stream": io.StringIO()}
    for extra in ("Overview", "Operations"):
        profile = {"app_root": str(root), "remediate_keep_backups": 1}
        profile["readme_sections"] = ["Overview"] if extra == "Overview" else ["Operations"]
        report = remediate(
            [LocalTestHost()], ["documentation"], profile_overrides=profile, apply=True, **kw
        )
        outcome = report.hosts[0].outcomes[0]
        assert outcome.outcome == "applied" and outcome.backups, outcome
    backups = list((root).glob("README.md.readiness-bak.*"))
    assert len(backups) == 1, backups
    with pytest.raises(ReadinessError, match=r"remediate_keep_backups'? must be a whole number"):
        remediate(
            [LocalTestHost()],
            ["documentation"],
            profile_overrides={"app_root": str(root), "remediate_keep_backups": 0},
            **kw,
        )


def test_the_apps_own_command_runs_as_the_app_user_not_root(shared_root: Path) -> None:
    app = shared_root / "app"
    app.mkdir()
    chown_tree(app)
    answer = _apply(
        {"kind": "run_command", "argv": ["sh", "-c", "id -u; echo $HOME"], "cwd": str(app)}
    )
    assert answer["ok"] is True, answer
    uid, home = answer["outputs"]["0"].split()
    assert int(uid) == attacker_uid() and home == "/nonexistent"


def _root_tree_with_an_app_owned_migrate(shared_root: Path, record: Path) -> Path:
    """A root-owned app tree (0755) whose ``.venv`` belongs to nobody, with a ``migrate``
    executable there that records its uid: root deployed the tree, the app owns its venv."""
    app = shared_root / "app"
    (app / ".venv" / "bin").mkdir(parents=True)
    app.chmod(0o755)
    hook_script(app / ".venv" / "bin" / "migrate", record)
    chown_tree(app / ".venv")
    return app


def test_an_app_owned_executable_in_a_root_owned_tree_runs_as_the_app_user(
    shared_root: Path,
) -> None:
    """The applier judged only the working directory's owner: a root-owned app_root ran
    the app's own ``.venv/bin/migrate`` as root (the probe's run_as_owner already dropped)."""
    record = shared_root / "uids"
    app = _root_tree_with_an_app_owned_migrate(shared_root, record)
    answer = _apply({"kind": "run_command", "argv": [".venv/bin/migrate"], "cwd": str(app)})
    assert answer["ok"] is True, answer
    assert recorded_uids(record) == [attacker_uid()]


@pytest.mark.parametrize(
    "argv",
    [
        [".venv/bin/migrate"],
        ["sh", ".venv/bin/migrate"],
        ["python3", "manage.py", "migrate"],
        ["/usr/bin/python3.11", "-m", "alembic", "upgrade", "head"],
        ["bash", "-c", "echo hi"],
        ["alembic", "upgrade", "head"],
        ["/usr/bin/env", "-u", "X", "A=1", "python3", "manage.py", "migrate"],
        ["env", "-C", "/srv", "./run", "x"],
        ["env", "-S", "sh bin/x.sh"],
        ["timeout", "30", "python3", "bin/restart.py"],
        ["nice", "-n", "10", "/srv/app/bin/backup.sh"],
        ["timeout", "30", "systemctl", "restart", "app"],
        ["make", "-s", "restart"],
        ["timeout", "60", "npm", "run", "restart"],
        ["make", "-C", "/srv/app/dir", "target"],
        ["make", "-sC", "dir", "-f", "ops.mk", "target"],
        ["gmake", "--directory=dir", "--file", "ops.mk"],
        ["sh", "-c", "/srv/app/bin/x --full >/dev/null 2>&1"],
        ["bash", "-ec", "cd /srv/app && ./bin/x"],
        ["sh", "-c", "cd /tmp; cd dir && sh x.sh | gzip > out.gz"],
        ["bash", "-o", "pipefail", "-c", "pg_dump db > /b/$(cd /srv/app && ./bin/x).sql"],
        ["sh", "-c", 'A=1 exec python3 "bin/$(echo x).py"'],
        ["sh", "-c", "$CMD --now"],
        ["flock", "-n", "/run/x.lock", "sh", "-c", ". ./env.sh && make -C sub"],
    ],
)
def test_the_applier_judges_the_code_a_command_runs_as_the_probe_does(argv: list[str]) -> None:
    """The applier runs alone on the host and keeps its own copy of the rule: the same paths."""
    from readiness.checks._owned import code_paths

    assert set(applier._code_paths(argv, "/srv/app")) == {"/srv/app", *code_paths(argv, "/srv/app")}


@pytest.mark.timeout(120)
def test_a_long_chain_of_wrappers_is_judged_at_once_not_in_exponential_time(
    tmp_path: Path,
) -> None:
    """A wrapper's command may start at any later word, and each wrapper looked at every
    tail again: a restart command of 26 ``nice`` words kept `validate` busy past a minute
    (2^n tails; the applier, on the host as root, had the same copy). Each tail is now
    answered once, and past MAX_WRAPPED_WORDS every word is judged."""
    app = tmp_path / "app"
    (app / "run").mkdir(parents=True)
    section = {
        "enabled": True,
        "instances": [{"name": n, "pidfile": f"run/{n}.pid"} for n in ("web-1", "web-2")],
        "canary": "web-1",
        "restart": {"command": ["nice"] * 26 + ["./bin/restart"]},
    }
    inventory = local_inventory(tmp_path / "inventory.yml", app, graceful_shutdown_drill=section)
    started = time.monotonic()
    argv = ["validate", "-i", str(inventory), "-c", "graceful_shutdown_drill", "--format", "json"]
    res = run_cli(*argv, timeout=60)
    assert time.monotonic() - started < 30, "the command's code took too long to tell"
    assert res.returncode in (0, 1), res.stderr
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] != "ready", result
    for argv in (["nice"] * 26 + ["./x"], ["nice", "env"] * 400 + ["./x"]):
        from readiness.checks._owned import code_paths

        t0 = time.monotonic()
        mine, applier_s = code_paths(argv, "/srv/app"), applier._code_paths(argv, "/srv/app")
        assert time.monotonic() - t0 < 5
        assert "/srv/app/x" in mine and set(applier_s) == {"/srv/app", *mine}


def test_a_command_whose_code_belongs_to_two_users_or_is_loose_is_refused(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    app = _root_tree_with_an_app_owned_migrate(shared_root, record)
    subprocess.run(["chown", "daemon", str(app)], check=True, timeout=10)
    answer = _apply({"kind": "run_command", "argv": [".venv/bin/migrate"], "cwd": str(app)})
    assert answer["ok"] is False
    assert (
        "refused: `.venv/bin/migrate` was not run: its files belong to several users"
        in (answer["error"])
    )
    os.chown(app, 0, 0)
    app.chmod(0o777)  # root's own tree, but anyone could have put code in it
    answer = _apply({"kind": "run_command", "argv": ["./run-me"], "cwd": str(app)})
    assert answer["ok"] is False
    assert f"{app} is writable by group or others, so it cannot be run as root" in answer["error"]
    assert recorded_uids(record) == []


_FLIPPER = r"""
import os, sys, time
os.chdir(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    for a, b in (("migrate", "r"), ("e", "migrate"), ("migrate", "e"), ("r", "migrate")):
        try:
            os.rename(a, b)
        except OSError:
            pass
"""


def test_a_root_owned_command_in_the_app_users_directory_is_never_swapped_under_root(
    shared_root: Path,
) -> None:
    """Root's ``.venv/bin/migrate`` in nobody's ``.venv/bin``: the applier judged the file
    (root's), and nobody, who may rename in its directory, swapped its own script in
    between the judgement and the exec. The directory votes now: it runs as nobody."""
    record = shared_root / "uids"
    app = _root_tree_with_an_app_owned_migrate(shared_root, record)
    bin_dir = app / ".venv" / "bin"
    (bin_dir / "migrate").write_text(f"#!/bin/sh\necho root-$(id -u) >> {record}\n")
    os.chown(bin_dir / "migrate", 0, 0)
    (bin_dir / "e").write_text(f"#!/bin/sh\necho evil-$(id -u) >> {record}\n")
    (bin_dir / "e").chmod(0o755)
    os.chown(bin_dir / "e", *_nobody_ids())
    pw = pwd.getpwnam(ATTACKER)
    flipper = subprocess.Popen(
        ["python3", "-S", "-c", _FLIPPER, str(bin_dir), "6"],
        user=pw.pw_uid,
        group=pw.pw_gid,
        extra_groups=[],
    )
    try:
        deadline = time.monotonic() + 5
        runs = 0
        while time.monotonic() < deadline and runs < 300:
            _apply({"kind": "run_command", "argv": [".venv/bin/migrate"], "cwd": str(app)})
            runs += 1
    finally:
        flipper.kill()
        flipper.wait(timeout=5)
    said = record.read_text().split()
    assert said, "nothing ran"
    assert not [w for w in said if w.endswith("-0")], said[:20]


def _nobody_ids() -> tuple[int, int]:
    pw = pwd.getpwnam(ATTACKER)
    return pw.pw_uid, pw.pw_gid


@pytest.mark.ssh
@pytest.mark.postgres
@pytest.mark.parametrize(
    "command",
    [
        [".venv/bin/migrate"],
        ["sh", ".venv/bin/migrate"],
        ["env", "A=1", "sh", ".venv/bin/migrate"],
        ["nice", "-n", "10", "sh", ".venv/bin/migrate"],
    ],
    ids=["executable", "interpreter-script", "env-interpreter-script", "nice-interpreter-script"],
)
def test_over_ssh_remediate_runs_an_app_owned_migration_command_as_the_app_user(
    ssh_fleet: Any, shared_root: Path, pg_cluster: Any, command: list[str]
) -> None:
    """A real `readiness remediate --apply --run-migrations` over loopback sshd as root: the
    profile's ``.venv/bin/migrate`` is nobody's, in a root-owned tree; it runs as nobody.
    Also through an interpreter (``sh .venv/bin/migrate``, like ``python3 manage.py
    migrate``): only argv[0] (root's ``sh``) and the working directory were judged, so the
    app's script ran as root."""
    import psycopg

    from tests.services.sshd import host_entry, write_inventory

    record = shared_root / "uids"
    app = _root_tree_with_an_app_owned_migrate(shared_root, record)
    role = pg_cluster.new_role("hostile")
    database = "hostile_" + os.urandom(5).hex()
    pg_cluster.create_database(database, owner=role.name)
    dsn = pg_cluster.dsn(role.name, role.password, database)
    with psycopg.connect(dsn, autocommit=True) as conn:  # 0001 applied, 0002 pending
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('0001')")
    files = {"migrations/0001_a.sql": "SELECT 1;\n", "migrations/0002_b.sql": "SELECT 2;\n"}
    write_app(app, env={"MAHAVISHNU_DATABASE__URL": dsn}, files=files)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(app), "migration_command": command}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    res = run_cli(
        "remediate", "-i", str(inventory), "-H", "h", "-c", "database_migration",
        "--run-migrations", "--apply", "--yes", "-q", "--store", "none",
        "--known-hosts", str(ssh_fleet.known_hosts), "--audit-log", str(shared_root / "a.jsonl"),
        env={**os.environ, "HOME": str(shared_root)},
    )  # fmt: skip
    # The stand-in migrates nothing, so the re-audit still fails the fix: it did run, once.
    assert res.returncode == 1 and "database_migration: failed" in res.stdout, res.stderr
    assert recorded_uids(record) == [attacker_uid()], res.stdout


def _app_with_a_recording_script(shared_root: Path, record: Path) -> Path:
    """A nobody-owned app tree with ``bin/run.sh``, which records its uid (and writes the
    dump a backup command must leave)."""
    app = write_app(shared_root / "app")
    (app / "backups").mkdir()
    (app / "bin").mkdir()
    script = hook_script(app / "bin" / "run.sh", record)
    script.write_text(script.read_text().replace("cat\n", "echo dump > backups/x.dump\n"))
    chown_tree(app)
    return app


@pytest.mark.ssh
def test_over_ssh_the_apps_backup_command_runs_as_the_app_user_not_root(
    ssh_fleet: Any, shared_root: Path
) -> None:
    """A real `readiness run-integration-tests` over loopback sshd as root: the backup
    roundtrip's ``method: command`` ran the app's own ./bin/run.sh as root."""
    from tests.services.sshd import host_entry, write_inventory

    record = shared_root / "uids"
    app = _app_with_a_recording_script(shared_root, record)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {
        "app_root": str(app),
        "backup_roundtrip": {
            "enabled": True,
            "method": "command",
            "command": ["./bin/run.sh"],
            "dump_file": "backups/x.dump",
        },
    }
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    res = run_cli(
        "run-integration-tests", "-i", str(inventory), "-H", "h", "-c", "backup_roundtrip",
        "-q", "--store", "none", "--known-hosts", str(ssh_fleet.known_hosts),
        env={**os.environ, "HOME": str(shared_root)},
    )  # fmt: skip
    assert "BACKUP_ROUNDTRIP" in res.stdout, res.stdout + res.stderr
    assert recorded_uids(record) == [attacker_uid()], res.stdout


def _sleeper(pidfile: Path) -> subprocess.Popen[bytes]:
    """A root process writing its root-owned pidfile (a service instance of root's)."""
    proc = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
    pidfile.write_text(str(proc.pid))
    return proc


@pytest.mark.parametrize("owner", ["nobody", "loose-root"])
def test_a_drill_restart_command_is_never_root_running_another_users_code(
    shared_root: Path, owner: str
) -> None:
    """The shutdown drill's restart argv: a nobody-owned script runs as nobody; a root-owned
    one that anyone may rewrite is refused before the canary is signalled."""
    from readiness.probe import op_terminate

    record = shared_root / "uids"
    app = _app_with_a_recording_script(shared_root, record)
    script = app / "bin" / "run.sh"
    if owner == "loose-root":  # in root's directories (the app user's would make it theirs)
        for path in (app, app / "bin", script):
            os.chown(path, 0, 0)
        script.chmod(0o777)
    run = shared_root / "run"
    run.mkdir()
    canary, other = _sleeper(run / "a.pid"), _sleeper(run / "b.pid")
    try:
        fact = op_terminate(
            {
                "target": {"pidfile": str(run / "a.pid")},
                "others": [{"pidfile": str(run / "b.pid")}],
                "grace": 5,
                "restart": {
                    "argv": ["./bin/run.sh"],
                    "cwd": str(app),
                    "owned_by": [str(script)],
                    "timeout": 10,
                },
                "restart_wait": 0.2,
            }
        )
        if owner == "nobody":
            assert fact["signalled"] is True and fact["restart"]["exit_code"] == 0, fact
            assert recorded_uids(record) == [attacker_uid()]
        else:
            assert fact["signalled"] is False and canary.poll() is None, fact
            assert "is writable by group or others" in fact["restart_refused"]
            assert recorded_uids(record) == []
    finally:
        for proc in (canary, other):
            proc.kill()
            proc.wait(timeout=5)


def test_a_refused_restart_command_leaves_the_canary_running_and_the_drill_undetermined(
    shared_root: Path,
) -> None:
    record = shared_root / "uids"
    app = _app_with_a_recording_script(shared_root, record)
    script = app / "bin" / "run.sh"
    for path in (app, app / "bin", script):  # root's, in root's directories
        os.chown(path, 0, 0)
    script.chmod(0o777)
    run = shared_root / "run"
    run.mkdir()
    canary, other = _sleeper(run / "a.pid"), _sleeper(run / "b.pid")
    section = {
        "enabled": True,
        "instances": [{"name": n, "pidfile": str(run / f"{n}.pid")} for n in ("a", "b")],
        "canary": "a",
        "restart": {"command": ["./bin/run.sh"]},
    }
    try:
        result = one(
            audit_local(app, "graceful_shutdown_drill", {"graceful_shutdown_drill": section})
        )
        assert canary.poll() is None, "the canary was signalled"
    finally:
        for proc in (canary, other):
            proc.kill()
            proc.wait(timeout=5)
    assert result.status is Status.DEGRADED, result
    assert result.message.startswith("Shutdown drill")
    assert "drill not run: the restart command was not run: " in result.message
    assert recorded_uids(record) == []


_RACER = r"""
import os, sys, time
app, target = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + float(sys.argv[3])
swaps = 0
print("racing", flush=True)
for _ in range(2_000_000):
    if time.monotonic() > deadline:
        break
    for name in os.listdir(app):
        if name.startswith(".readiness-tmp-") and not name.endswith(".stolen"):
            path = os.path.join(app, name)
            if os.path.islink(path):
                continue
            try:
                os.rename(path, path + ".stolen")
                os.symlink(target, path)
                swaps += 1
            except OSError:
                pass
print(swaps)
"""


def test_a_racing_process_swapping_temp_files_never_gets_a_root_file(shared_root: Path) -> None:
    """nobody swaps every temp file it sees for a link to a root-only file while root applies
    edits of a 1 MiB file (bounded: at most 300 applies and 4 s of racing)."""
    target = victim(shared_root / "root-only", mode=0o600)
    app = shared_root / "app"
    app.mkdir()
    settings = app / "settings.yaml"
    filler = "# " + "x" * 1022 + "\n"
    settings.write_text(filler * 1024)
    chown_tree(app)
    seconds = 4.0
    argv = ["runuser", "-u", ATTACKER, "--", "/usr/bin/python3", "-c", _RACER, str(app)]
    racer = subprocess.Popen(
        [*argv, str(target.path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert racer.stdout is not None
    # the edits start when the racer is racing, not while runuser and Python start up (which
    # on a loaded machine can take most of the racing time)
    assert racer.stdout.readline().strip() == "racing"
    outcomes = []
    end = time.monotonic() + seconds
    try:
        for i in range(300):
            if time.monotonic() > end:
                break
            if settings.is_symlink() or not settings.exists():  # the app user "repairs" it
                settings.unlink(missing_ok=True)
                settings.write_text(filler * 1024)
                os.chown(settings, attacker_uid(), -1)
            answer = _apply(
                {
                    "kind": "edit_file",
                    "path": str(settings),
                    "content": filler * 1024 + f"a: {i}\n",
                },
                keep_backups=1,
            )
            outcomes.append(answer.get("error") or "ok")
    finally:
        swaps = int(racer.communicate(timeout=30)[0].strip() or 0)
    target.assert_untouched()
    for p in app.rglob("*"):
        if p.is_file() and not p.is_symlink():
            assert target.content not in p.read_bytes(), f"{p} holds the root secret"
    assert swaps > 0, "the racer never caught a temp file: the test raced nothing"
    # Under load the racer may win every round; with it gone the same edit must succeed
    # (the refusals above were the race, not an applier that refuses everything).
    if settings.is_symlink() or not settings.exists():
        settings.unlink(missing_ok=True)
        settings.write_text(filler * 1024)
        os.chown(settings, attacker_uid(), -1)
    calm = _apply({"kind": "edit_file", "path": str(settings), "content": "a: calm\n"})
    assert calm.get("error") is None, calm
    assert settings.read_text() == "a: calm\n"
    raced = [o for o in outcomes if o != "ok"]
    assert all("refused" in o or "Error" in o for o in raced), raced


def _symlinked_env_app(shared_root: Path) -> tuple[Path, Victim]:
    """An app whose .env is nobody's link to a root-owned 0644 env file lacking the JWT secret.

    World-readable, so the audit reads it through the link (nobody could read it too; a
    link to a file nobody cannot read is refused by the probe: test_hostile_reads.py)."""
    root = write_app(shared_root / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    secret_dir = shared_root / "shared"
    secret_dir.mkdir()
    real = secret_dir / "env"
    (root / ".env").rename(real)
    target = Victim(real, real.read_bytes(), 0o644, 0, 0)
    real.chmod(0o644)
    (root / ".env").symlink_to(real)
    chown_tree(root)
    return root, target


def test_remediate_refuses_a_symlinked_env_file_and_says_so(shared_root: Path) -> None:
    from readiness.remediate import remediate, render
    from tests.services.apps import LocalTestHost

    root, target = _symlinked_env_app(shared_root)
    checks = ["environment", "security_settings"]
    kw: dict[str, Any] = {
        "profile_overrides": {"app_root": str(root)},
        "audit_log": shared_root / "audit.jsonl",
        "log_stream": io.StringIO(),
    }
    dry = render(remediate([LocalTestHost()], checks, **kw))
    assert f"refused: {root}/.env is a symlink" in dry and "will be refused" not in dry
    report = remediate([LocalTestHost()], checks, apply=True, **kw)
    target.assert_untouched()
    assert (root / ".env").is_symlink()
    outcomes = {o.fix.check: o for o in report.hosts[0].outcomes}
    # refused in the plan, as every fixer refuses: nothing was attempted on the host
    assert "environment" not in outcomes
    env_refused = report.hosts[0].plan.refused["environment"]
    assert [r for r in env_refused if f"refused: {root}/.env is a symlink" in r]
    # the loose linked env file is refused in the plan already (the dry run says so too)
    assert f"refused: {root}/.env is a symlink; readiness does not chmod through links" in dry
    assert "security_settings" not in outcomes
    refused = report.hosts[0].plan.refused["security_settings"]
    assert [r for r in refused if "readiness does not chmod through links" in r]
    assert report.exit_code == 1


@pytest.mark.ssh
@pytest.mark.parametrize("sudo", [False, True], ids=["root-login", "sudo"])
def test_over_ssh_as_root_remediate_never_writes_through_a_symlinked_env_file(
    ssh_fleet: Any, ssh_options: Callable[..., Any], shared_root: Path, sudo: bool
) -> None:
    from readiness.remediate import remediate
    from tests.services.sshd import host_entry, write_inventory

    root, target = _symlinked_env_app(shared_root)
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[3])
    entry["readiness"] = {"app_root": str(root)}
    inventory = write_inventory(shared_root / "inv.yml", {"h": entry})
    report = remediate(
        "h",
        ["environment", "security_settings"],
        inventory=str(inventory),
        options=ssh_options(sudo=sudo),
        apply=True,
        audit_log=shared_root / "audit.jsonl",
        log_stream=io.StringIO(),
    )
    target.assert_untouched()
    outcomes = {o.fix.check: o for o in report.hosts[0].outcomes}
    # both refused in the plan (the read over SSH sees the link), never attempted
    assert "environment" not in outcomes
    assert [r for r in report.hosts[0].plan.refused["environment"] if "is a symlink" in r]
    assert "security_settings" not in outcomes
    assert report.hosts[0].plan.refused["security_settings"]
    assert report.exit_code == 1


# ---------------------------------------------------------------------------------------------
# 3. The dry-run diff masks secret literals exactly as validate's reports do.

PLANTED_TOKEN = "Planted-Token-Literal-7Qx2Vb9"
PLANTED_DSN_PASSWORD = "Dsn-Password-Literal-4Kd8"


def _app_with_planted_secrets(root: Path) -> Path:
    from tests.services.apps import BASE_SETTINGS

    text = yaml.safe_dump(BASE_SETTINGS) + (
        f"api_token: {PLANTED_TOKEN}\n"
        f"upstream_dsn: postgresql://app:{PLANTED_DSN_PASSWORD}@127.0.0.1:5432/app\n"
    )
    return write_app(root, settings_text=text)


def test_the_dry_run_diff_masks_secret_literals_like_validate(tmp_path: Path) -> None:
    """Through the command a user types: `invoke remediate` (dry run) and `invoke validate`."""
    root = _app_with_planted_secrets(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    local_inventory(inv, root)

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        home = {**os.environ, "HOME": str(tmp_path)}
        return run_cli(*args, "-i", str(inv), "--hosts", "local", tool="invoke", env=home)

    dry = invoke("remediate", "-c", "error_handling")
    assert dry.returncode == 0, dry.stderr
    assert "+resilience:" in dry.stdout, "the diff around the planted lines was not shown"
    assert "api_token: ***" in dry.stdout
    assert "upstream_dsn: " in dry.stdout  # shown, with its password masked
    report = invoke("validate", "-c", "error_handling,configuration", "--format", "json")
    for out in (dry.stdout + dry.stderr, report.stdout + report.stderr):
        assert PLANTED_TOKEN not in out
        assert PLANTED_DSN_PASSWORD not in out
    assert (root / "settings" / "mahavishnu.yaml").read_text().count(PLANTED_TOKEN) == 1


# ---------------------------------------------------------------------------------------------
# 4. The audit log names the real user, in one fixed place.


def test_the_audit_log_records_the_real_uid_in_its_fixed_default_place(tmp_path: Path) -> None:
    """`$LOGNAME`/`$USER` say "mallory"; the log says who really ran it, under ~/.local/state."""
    import json

    root = write_app(tmp_path / "app")
    inv = tmp_path / "inv.yml"
    local_inventory(inv, root)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env.update(HOME=str(tmp_path / "home"), LOGNAME="mallory", USER="mallory")
    res = run_cli(
        *("remediate", "-i", str(inv), "--hosts", "local", "-c", "documentation"),
        *("--apply", "--yes"),
        cwd=elsewhere,
        env=env,
    )
    assert res.returncode in (0, 1), res.stderr
    log = tmp_path / "home" / ".local" / "state" / "readiness" / "remediation-audit.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries and {(e["user"], e["uid"]) for e in entries} == {("root", 0)}
    assert "mallory" not in log.read_text() + res.stderr
    assert list(elsewhere.iterdir()) == [], "nothing is written relative to the cwd"
    # Private like the results store: it was 0644 in a 0755 directory.
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_every_fixer_refuses_files_that_are_symlinks_to_root_files(shared_root: Path) -> None:
    """Through `remediate --apply`: settings (error_handling, resource_limits), README
    (documentation), the cron file (backup_restore) are nobody's links to root files."""
    from readiness.remediate import remediate
    from tests.services.apps import BASE_SETTINGS, LocalTestHost

    root = write_app(shared_root / "app", files={"README.md": "# app\n", "cron/app": "\n"})
    victims = shared_root / "root-only"
    victims.mkdir()
    settings = {k: v for k, v in BASE_SETTINGS.items() if k != "max_concurrent_workflows"}
    planted: dict[str, Victim] = {}
    for rel, text in {
        "settings/mahavishnu.yaml": yaml.safe_dump(settings),
        "README.md": "# app\n",
        "cron/app": "# nothing yet\n",
    }.items():
        real = victims / rel.replace("/", "_")
        real.write_text(text)
        real.chmod(0o644)
        planted[rel] = Victim(real, real.read_bytes(), 0o644, 0, 0)
        (root / rel).unlink()
        (root / rel).symlink_to(real)
    chown_tree(root)
    profile = {
        "app_root": str(root),
        "backup_command": "/usr/local/bin/app-backup",
        "backup_cron_files": ["cron/app"],
    }
    checks = ["error_handling", "resource_limits", "documentation", "backup_restore"]
    report = remediate(
        [LocalTestHost()],
        checks,
        profile_overrides=profile,
        apply=True,
        audit_log=shared_root / "audit.jsonl",
        log_stream=io.StringIO(),
    )
    for v in planted.values():
        v.assert_untouched()
    host = report.hosts[0]
    said: dict[str, list[str]] = {c: list(host.plan.refused.get(c, ())) for c in checks}
    for o in host.outcomes:
        said[o.fix.check] += [o.message, *o.fix.notes]
    for check in checks:
        refusals = [t for t in said[check] if "refused: " in t and "is a symlink" in t]
        assert refusals, (check, said[check])
    assert not [o for o in host.outcomes if o.outcome == "reverted"], host.outcomes
    for rel in planted:
        assert (root / rel).is_symlink()


def test_an_owner_without_a_passwd_entry_never_gets_a_link_targets_group(
    shared_root: Path,
) -> None:
    """A uid with no passwd entry (a container volume's files) gets its group from its own
    file. It came from ``os.stat`` of the first owned path, which follows links: a link the
    owner made to a root-owned group-``shadow`` file ran the owner's code in group shadow."""
    uid = next(u for u in range(43_210, 43_310) if not _has_passwd_entry(u))
    owned = shared_root / "owned"
    owned.mkdir()
    privileged = shared_root / "privileged"
    privileged.write_text("")
    os.chown(privileged, 0, 42)  # root:shadow on Debian (any group but the owner's)
    link = owned / "code"
    link.symlink_to(privileged)
    for path in (owned, link):
        os.lchown(path, uid, uid)
    res = op_run_as_owner({"owned_by": [str(link)], "argv": ["id", "-G"], "timeout": 5})
    assert res.get("stdout") is not None, res
    groups = res["stdout"].split()
    assert "42" not in groups and "0" not in groups, res
    assert groups == [str(uid)], res  # the group its own link carries


def _has_passwd_entry(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize(
    "line",
    [
        "{app}/bin/backup.sh",
        "cd {app} && ./bin/backup.sh",
        "make -C {app}/bin backup",
        "sh -c 'cd {app}/bin; ./backup.sh --full 2>&1 | logger'",
        "pg_dump app > /var/backups/app-$(cd {app} && ./bin/backup.sh).sql",
    ],
    ids=["program", "cd-and", "make-C", "sh-c", "substitution"],
)
def test_a_root_cron_line_is_judged_by_the_code_its_shell_runs(
    shared_root: Path, line: str
) -> None:
    """Cron hands a line to `sh`: what `cd`, `make -C`, `sh -c` and `$(...)` run is code
    too. Root's own tree is accepted; the same tree once the app user owns it is refused
    (before, every form but the first was accepted either way); a line whose code only the
    shell knows is refused."""
    app = shared_root / "app"
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "backup.sh").write_text("#!/bin/sh\n")
    (app / "bin" / "Makefile").write_text("backup:\n\ttrue\n")
    cron = shared_root / "cron"
    command = line.format(app=app)

    def schedule(text: str) -> dict[str, Any]:
        change = {
            "kind": "append_lines",
            "path": str(cron),
            "lines": [f"0 2 * * * root {text}"],
            "cron_runs": {"user": "root", "command": text},
        }
        return _apply(change)

    assert schedule(command)["ok"] is True  # root's code, nobody else can change it
    cron.unlink()
    chown_tree(app)
    answer = schedule(command)
    assert answer["ok"] is False and answer["refused"] is True, answer
    assert f"would run as root from cron, but nobody can change {app}" in answer["error"]
    assert not cron.exists()
    unknown = schedule(f"cd {app} && $RUN ./bin/backup.sh")
    assert "what it runs cannot be told from the line" in unknown["error"], unknown


def test_the_applier_and_the_probe_in_process_never_end_their_callers_other_children(
    shared_root: Path,
) -> None:
    """The applier and the probe become the subreaper of what their commands leave and kill
    every child of their process when a command ends. Imported (these tests, in one pytest
    process), that was every child of pytest: the session's sshd fleets were SIGKILLed by
    the in-process run_command and run_as_owner tests before them, and every later test
    over SSH failed "connection refused". Only the host-side program does that now."""
    from readiness import probe

    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        answer = _apply({"kind": "run_command", "argv": ["true"], "cwd": str(shared_root)})
        assert answer["ok"] is True, answer
        probe.op_run({"argv": ["true"], "timeout": 5})
        time.sleep(0.1)
        assert bystander.poll() is None, "the caller's own child was killed"
    finally:
        bystander.kill()
        bystander.wait()
