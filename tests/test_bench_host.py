"""Host-side benchmarks, timed by the probe: a real smoke workflow script and real git repos."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one
from tests.services.gitrepos import make_repo as make_git_repo

# Sleeps SMOKE_SLEEP seconds, then prints its final state as JSON (as `mahavishnu workflow run`).
SMOKE = """\
import json, os, sys, time
time.sleep(float(os.environ.get("SMOKE_SLEEP", "0")))
print("starting smoke workflow", file=sys.stderr)
print(json.dumps({"run": {"id": os.getpid(), "state": os.environ.get("SMOKE_STATE", "completed")}}))
"""


def rows(result: CheckResult) -> dict[str, Mapping[str, Any]]:
    return {r["name"]: r for r in result.details["benchmark"]["rows"]}


def smoke(sleep: float = 0.0, state: str = "completed") -> dict[str, Any]:
    return {
        "command": [sys.executable, "smoke.py"],
        "env": {"SMOKE_SLEEP": str(sleep), "SMOKE_STATE": state},
        "json_key": "run.state",
        "timeout_s": 10,
    }


def workflow(
    app_tree: Callable[..., Path], tmp_path: Path, smoke_cfg: Any, bench: Any, **profile: Any
) -> CheckResult:
    root = app_tree(files={"smoke.py": SMOKE})
    overrides = {
        "smoke_workflow": smoke_cfg,
        "workflow_benchmark": bench,
        "benchmark_baseline_dir": str(tmp_path / "baselines"),
        **profile,
    }
    return one(audit_local(root, "workflow_benchmark", overrides))


def test_sequential_and_concurrent_smoke_runs_are_timed_and_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = workflow(app_tree, tmp_path, smoke(0.05), {"runs": 3, "concurrency": 3})
    assert r.status is Status.READY, r.message
    seq, conc = rows(r)["sequential"], rows(r)["concurrent"]
    assert seq["n"] == 3
    assert conc["n"] == 3
    assert seq["errors"] == conc["errors"] == 0
    assert seq["min_ms"] >= 50, "the script's own sleep is inside the timing"
    assert seq["duration_s"] >= 3 * 0.05


def test_concurrent_runs_really_overlap(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    """Four 0.5 s runs at once take about one run's time, not four: the probe starts them
    together. Judged against the runs' own measured time (one after another the batch could
    not take less than their sum), so a loaded machine slowing every run changes nothing."""
    r = workflow(app_tree, tmp_path, smoke(0.5), {"runs": 1, "concurrency": 4})
    conc = rows(r)["concurrent"]
    assert conc["n"] == 4
    assert conc["min_ms"] >= 500
    one_after_another_ms = conc["mean_ms"] * conc["n"]
    assert conc["duration_s"] * 1000 < one_after_another_ms / 2, conc


def test_a_slow_smoke_workflow_over_its_threshold_is_not_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = workflow(
        app_tree,
        tmp_path,
        smoke(0.3),
        {"runs": 2, "concurrency": 2},
        thresholds={"workflow_run_p95_s": 0.1, "workflow_concurrent_max_s": 0.2},
    )
    assert r.status is Status.NOT_READY  # over its threshold: fails the performance gate
    assert "sequential smoke workflow runs: p95" in r.message
    assert any("2 concurrent runs took" in w for w in r.details["problems"])


def test_runs_that_end_in_the_wrong_state_are_not_ready(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = workflow(app_tree, tmp_path, smoke(state="failed"), {"runs": 2, "concurrency": 0})
    assert r.status is Status.NOT_READY
    assert "2/2 runs failed" in r.message
    assert "state 'failed' (expected 'completed')" in r.message


def test_the_time_cap_stops_starting_runs(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    """50 runs of 0.3 s each (15 s) under a 2 s cap. At most 6 can finish one after another
    in 2 s on any machine (load only makes runs slower); at least one does even when a
    loaded machine stretches the interpreter's start-up; the rest are counted as cut."""
    r = workflow(app_tree, tmp_path, smoke(0.3), {"runs": 50, "concurrency": 0, "time_cap_s": 2.0})
    seq = rows(r)["sequential"]
    assert 1 <= seq["n"] <= 6, seq
    assert seq["errors"] == 0
    assert seq["cut_by_time_cap"] == 50 - seq["n"]
    # The run in flight at the cap is cut to the time left and killed: the batch ends
    # within a second of the cap (kill and reap on a loaded machine), never near 15 s.
    assert seq["duration_s"] < 2.0 + 1.0, seq


def test_without_a_smoke_workflow_the_benchmark_is_skipped_and_says_which_key(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    r = workflow(app_tree, tmp_path, None, {"runs": 2})
    assert r.status is Status.SKIPPED
    assert "set smoke_workflow in the profile" in r.message


# --- repositories -----------------------------------------------------------------------------


def make_repo(path: Path, commits: int = 3) -> Path:
    return make_git_repo(path, commits)


def repositories(
    app_tree: Callable[..., Path],
    tmp_path: Path,
    repos: list[dict[str, str]],
    bench: Any,
    **kw: Any,
) -> CheckResult:
    root = app_tree(files={"repos.yaml": yaml.safe_dump({"repos": repos})})
    overrides = {
        "repository_benchmark": bench,
        "benchmark_baseline_dir": str(tmp_path / "baselines"),
        **kw,
    }
    return one(audit_local(root, "repository_benchmark", overrides))


def test_git_operations_on_every_repository_are_timed_on_the_host(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    a, b = make_repo(tmp_path / "a"), make_repo(tmp_path / "b")
    index_before = (a / ".git" / "index").stat().st_mtime_ns
    r = repositories(
        app_tree,
        tmp_path,
        [{"name": "alpha", "path": str(a)}, {"name": "beta", "path": str(b)}],
        {"repetitions": 3},
    )
    assert r.status is Status.READY, r.message
    found = rows(r)
    assert set(found) == {
        f"{n}:{op}" for n in ("alpha", "beta") for op in ("status", "rev_list", "log")
    }
    for stats in found.values():
        assert stats["n"] == 3
        assert stats["errors"] == 0
        assert 0 < stats["p50_ms"] <= stats["max_ms"]
    assert (a / ".git" / "index").stat().st_mtime_ns == index_before, "benchmark wrote the index"


def test_a_tight_git_threshold_is_not_ready(app_tree: Callable[..., Path], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "a")
    r = repositories(
        app_tree,
        tmp_path,
        [{"name": "alpha", "path": str(repo)}],
        {"repetitions": 2, "operations": ["status"]},
        thresholds={"repository_op_p95_ms": 0.01},
    )
    assert r.status is Status.NOT_READY
    assert "git status --porcelain in alpha: p95" in r.message
    assert list(rows(r)) == ["alpha:status"]


def test_a_directory_that_is_not_a_repository_fails_its_git_operations(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    r = repositories(
        app_tree, tmp_path, [{"name": "plain", "path": str(plain)}], {"repetitions": 2}
    )
    assert r.status is Status.NOT_READY
    assert "2/2 runs failed" in r.message
    assert "not a git repository" in r.message


def test_repositories_are_not_timed_unless_configured(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "a")
    r = repositories(app_tree, tmp_path, [{"name": "alpha", "path": str(repo)}], None)
    assert r.status is Status.SKIPPED
    assert "set repository_benchmark in the profile" in r.message


@pytest.mark.parametrize("check", ["workflow_benchmark", "repository_benchmark"])
def test_host_benchmarks_are_opt_in_members_of_the_performance_category(check: str) -> None:
    from readiness.registry import get

    spec = get(check)
    assert spec.opt_in is True
    assert spec.categories == ("performance",)
    assert spec.suites == ("production",)


@pytest.mark.ssh
def test_host_benchmarks_run_in_the_remote_probe_over_real_ssh(
    ssh_fleet: Any, ssh_options: Callable[..., Any], tmp_path: Path, http_server: Callable[[], Any]
) -> None:
    """Workflow and git timings come from the probe on the SSH host; a loopback URL is loaded
    through the host's SSH tunnel (service_access: auto), never on the controller's own."""
    from readiness import validate
    from tests.services.apps import write_app
    from tests.services.sshd import host_entry, write_inventory

    root = write_app(tmp_path / "app", files={"repos.yaml": yaml.safe_dump(["repos/clean"])})
    make_repo(root / "repos" / "clean")
    host = ssh_fleet.hosts[3]
    inventory = write_inventory(tmp_path / "inv.yml", {"spare": host_entry(ssh_fleet, host)})
    srv = http_server().route("/health", body="ok")
    smoke_argv = ["python3", "-c", "import json; print(json.dumps({'state': 'completed'}))"]
    overrides = {
        "app_root": str(root),
        "smoke_workflow": {"command": smoke_argv, "timeout_s": 10},
        "workflow_benchmark": {"runs": 2, "concurrency": 2, "time_cap_s": 10},
        "repository_benchmark": {"repetitions": 2, "operations": ["status", "log"]},
        # 100 requests: the fewest a p99 is measured on (fewer is "cannot determine"); 2 at
        # a time: the test server's listen backlog is 5, and a dropped SYN waits 1 s (p99)
        "http_benchmarks": [
            {"name": "lo", "url": srv.url + "/health", "requests": 100, "concurrency": 2}
        ],
        "benchmark_baseline_dir": str(tmp_path / "baselines"),
    }
    report = validate(
        "spare",
        ["workflow_benchmark", "repository_benchmark", "http_benchmark"],
        inventory=str(inventory),
        options=ssh_options(),
        profile_overrides=overrides,
    )
    assert report.hosts[0].address != "local"
    by_name = {r.check_name: r for r in report.results}
    wf, repo, http = (
        by_name[n] for n in ("workflow_benchmark", "repository_benchmark", "http_benchmark")
    )
    assert wf.status is Status.READY, wf.message
    assert rows(wf)["concurrent"]["n"] == 2
    assert repo.status is Status.READY, repo.message
    assert set(rows(repo)) == {"clean:status", "clean:log"}
    assert http.status is Status.READY, http.message
    assert http.details["via"] == "ssh tunnel via spare"
    assert len(srv.requests_to("/health")) == 100


def test_a_home_relative_repository_is_undetermined_and_the_others_are_timed(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """`path: ~/repos/one` is in the app user's home: git ran with `-C ~/repos/one`
    (no shell expands it) and validate said NOT_READY "2/2 runs failed ... cannot change to
    '~/repos/one'", while repository_access says it cannot tell where it is."""
    from tests.services.cli import local_inventory, validate_check

    repo = make_repo(tmp_path / "a")
    manifest = {
        "repos": [{"name": "one", "path": "~/repos/one"}, {"name": "alpha", "path": str(repo)}]
    }
    root = app_tree(files={"repos.yaml": yaml.safe_dump(manifest)})
    inventory = local_inventory(
        tmp_path / "inv.yml",
        root,
        repository_benchmark={"repetitions": 2, "operations": ["status"]},
        benchmark_baseline_dir=None,
    )
    result = validate_check(inventory, "repository_benchmark")
    assert result["status"] == "degraded", result["message"]
    assert "cannot time git in repository one (~/repos/one)" in result["message"]
    assert [r["name"] for r in result["details"]["benchmark"]["rows"]] == ["alpha:status"]


def test_the_message_says_how_many_repositories_were_timed_when_the_manifest_has_more(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """At most 50 repositories are timed per host; with 52 in the manifest the READY message
    said "... on 52 repository(ies) within thresholds", two of which were never timed."""
    from tests.services.cli import local_inventory, validate_check

    repo = make_repo(tmp_path / "a")
    manifest = {"repos": [{"name": f"r{i:02d}", "path": str(repo)} for i in range(52)]}
    root = app_tree(files={"repos.yaml": yaml.safe_dump(manifest)})
    inventory = local_inventory(
        tmp_path / "inv.yml",
        root,
        repository_benchmark={"repetitions": 1, "operations": ["log"]},
        benchmark_baseline_dir=None,
    )
    result = validate_check(inventory, "repository_benchmark")
    assert result["status"] == "ready", result["message"]
    assert "50 git operation(s) on 50 repository(ies) within thresholds" in result["message"]
    assert "(the first 50 of 52 in " in result["message"]


def test_the_ready_message_says_what_was_timed(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """With concurrency: 0 only sequential runs are timed, yet the READY message said
    "Smoke workflow timings within thresholds, alone and concurrently"."""
    from tests.services.cli import local_inventory, validate_check

    argv = [sys.executable, "-c", "import json; print(json.dumps({'state': 'completed'}))"]
    inventory = local_inventory(
        tmp_path / "inv.yml",
        app_tree(),
        smoke_workflow={"command": argv, "timeout_s": 20},
        workflow_benchmark={"runs": 2, "concurrency": 0, "time_cap_s": 20},
        benchmark_baseline_dir=None,
    )
    result = validate_check(inventory, "workflow_benchmark")
    assert result["status"] == "ready", result["message"]
    assert result["message"] == "Smoke workflow timings within thresholds: 2 run(s) alone"


@pytest.mark.ssh
def test_a_manifest_the_audit_account_may_not_read_says_so_with_the_right_advice(
    tmp_path: Path,
) -> None:
    """The app user's 0600 repos manifest, audited as readiness-nopw: repository_benchmark said
    "was not read in the first probe round", "Add it to repository_manifest_paths (or create
    it on the host)": it is in those paths and it exists; the audit account may not read it."""
    import json
    import subprocess

    from readiness.loopback import start_fleet
    from tests.services.apps import write_app
    from tests.services.cli import run_cli
    from tests.services.sshd import NOPW_USER

    def write(index: int, root: Path) -> None:
        write_app(root, files={"repos.yaml": "repos: [repos/one]\n"})
        (root / ".env").chmod(0o644)
        subprocess.run(["chown", "nobody", str(root / "repos.yaml")], check=True, timeout=10)
        (root / "repos.yaml").chmod(0o600)

    with start_fleet(1, app_writer=write, extra_users=[NOPW_USER]) as fleet:
        inventory = fleet.write_inventory(
            tmp_path / "inventory.yml",
            host_vars=lambda h: {
                "ansible_user": NOPW_USER,
                "readiness": {
                    "app_root": str(h.app_root),
                    "repository_benchmark": {"repetitions": 1},
                },
            },
        )
        argv = ["validate", "-i", str(inventory), "--hosts", "fleet", "-c", "repository_benchmark"]
        res = run_cli(*argv, "--known-hosts", str(fleet.known_hosts), "--format", "json")
    result = json.loads(res.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "degraded", result["message"]
    assert "cannot read the repos manifest" in result["message"]
    assert "PermissionError" in result["message"]
    assert result["recommendations"] == [
        "Rerun with --sudo (or as a user that may read the app's files)"
    ]
