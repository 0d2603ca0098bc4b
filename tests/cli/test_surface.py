"""One test per promise of docs/cli.md and docs/reports.md, through real subprocesses.

Closed pipes, --save targets, 80-column tables and catalogue, colour, --group-by,
profile errors with file:line, configuration files, "did you mean", no inventory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.errors import UsageError
from readiness.options import CONFIG_KEYS
from readiness.runner import RunOptions
from tests.services.apps import write_app

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(
    cwd: Path, *args: str, tool: str = "readiness", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / tool)]
    if tool == "invoke":
        argv += ["--search-root", str(ROOT)]
    return subprocess.run(
        [*argv, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """Three local hosts in two groups; ``b`` is in both (``web`` and ``db``)."""
    apps = {n: write_app(tmp_path / f"app-{n}") for n in ("a", "b", "c")}

    def host(n: str) -> dict[str, Any]:
        return {"ansible_connection": "local", "readiness": {"app_root": str(apps[n])}}

    inventory = {
        "all": {
            "children": {
                "web": {"hosts": {"a": host("a"), "b": host("b")}},
                "db": {"hosts": {"b": None, "c": host("c")}},
            }
        }
    }
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def audit(inv: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run(inv.parent, "validate", "-i", str(inv), "-H", "all", "-q", *args, **kw)


# --- output ------------------------------------------------------------------------------------


def test_a_pipe_closed_by_head_ends_quietly_and_the_saved_file_is_intact(fleet: Path) -> None:
    saved = fleet.parent / "out.json"
    script = (
        f"{BIN / 'readiness'} validate -i {fleet} -H all -q --save {saved} | head -1; "
        "echo rc=${PIPESTATUS[0]}"
    )
    res = subprocess.run(
        ["bash", "-c", script],
        cwd=fleet.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("=" * 10)
    direct = audit(fleet)
    assert lines[-1] == f"rc={direct.returncode}"
    data = json.loads(saved.read_text())
    assert data["schema"] == "readiness.report/1"
    assert len(data["hosts"]) == 3


@pytest.mark.parametrize("target", ["/proc/x", "/etc/passwd/x", ""])
def test_an_unwritable_save_target_is_exit_2_before_the_audit(fleet: Path, target: str) -> None:
    res = audit(fleet, f"--save={target}")
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("readiness: --save")


def test_save_into_a_directory_and_by_extension(fleet: Path) -> None:
    outdir = fleet.parent / "reports-here"
    outdir.mkdir()
    into_dir = audit(fleet, "-c", "environment", "--save", str(outdir))
    by_ext = audit(fleet, "-c", "environment", "--save", str(fleet.parent / "r.md"))
    assert into_dir.returncode == by_ext.returncode == 0, into_dir.stderr + by_ext.stderr
    (written,) = outdir.iterdir()
    assert written.name.startswith("readiness-") and written.suffix == ".txt"
    assert "PRODUCTION READINESS" in written.read_text()
    markdown = (fleet.parent / "r.md").read_text()
    assert markdown.startswith("## ") and "| host |" in markdown
    assert by_ext.stdout.startswith("=" * 10)  # stdout keeps --format text


def test_the_table_fits_80_columns(fleet: Path) -> None:
    for task in ("validate", "run-all-tests"):
        res = run(
            fleet.parent,
            task,
            "-i",
            str(fleet),
            "-H",
            "all",
            "-q",
            "--format",
            "table",
            env={"COLUMNS": "80"},
        )
        assert res.returncode in (0, 1, 3), res.stderr
        long = [ln for ln in res.stdout.splitlines() if len(ln) > 80]
        assert not long, f"{task}: lines over 80 columns:\n" + "\n".join(long)
        assert "legend:" in res.stdout


def test_the_check_catalogue_fits_80_columns_and_never_splits_a_key(tmp_path: Path) -> None:
    res = run(tmp_path, "checks", env={"COLUMNS": "80"})
    assert res.returncode == 0
    assert max(len(ln) for ln in res.stdout.splitlines()) <= 80
    keys = [ln.split("profile keys:")[1] for ln in res.stdout.splitlines() if "profile keys:" in ln]
    assert any("thresholds.backup_max_age_hours" in k for k in keys) or "backup_max_age_hours" in (
        res.stdout
    )
    for word in res.stdout.split():
        assert not word.endswith("_") and not word.startswith("_"), word


def test_colour_follows_color_and_no_color(fleet: Path) -> None:
    always = audit(fleet, "-c", "environment", "--color", "always", "-o", "table")
    never = audit(fleet, "-c", "environment", "--color", "never", "-o", "table")
    auto = audit(fleet, "-c", "environment", "-o", "table")  # stdout is a pipe here
    assert "\x1b[32m" in always.stdout
    assert "\x1b[" not in never.stdout and "\x1b[" not in auto.stdout


def test_group_by_lists_a_host_in_two_groups_under_both(fleet: Path) -> None:
    row_of_b = {
        "table": lambda ln: ln.startswith("b "),
        "text": lambda ln: ln.startswith("DETAILED RESULTS — b ("),
        "markdown": lambda ln: ln.startswith("| b |"),
    }
    heading = {"table": "[{}]", "text": "GROUP {}", "markdown": "#### group {}"}
    for fmt, is_b in row_of_b.items():
        res = audit(fleet, "-c", "environment", "--group-by", "group", "-o", fmt)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert sum(1 for ln in lines if is_b(ln)) == 2, (fmt, res.stdout)
        for group in ("web", "db"):
            assert heading[fmt].format(group) in lines, (fmt, group)
        plain = audit(fleet, "-c", "environment", "-o", fmt)
        assert sum(1 for ln in plain.stdout.splitlines() if is_b(ln)) == 1
    refused = audit(fleet, "--group-by", "group", "--json")
    assert refused.returncode == 2


# --- values, configuration, hints --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("thresholds:\n  backup_max_age_hourz: 6\n", ":2: unknown profile key 'thresholds.backup"),
        ('thresholds:\n  backup_max_age_hours: "two days"\n', ":2: profile key 'thresholds."),
        ("thresholds: {}\nthresholds: {}\n", ":2: invalid YAML: duplicate key 'thresholds'"),
        ("quality_gates:\n  security:\n    critcal: true\n", ":3: unknown profile key"),
        # true/false settings: a word is not a boolean (it would switch the check off)
        (
            'app_name: x\nrequire_auth: "yes please"\n',
            ":2: profile key 'require_auth' must be true/false, got 'yes please'",
        ),
        (
            "graceful_shutdown_drill:\n  enabled: maybe\n",
            ":2: profile key 'graceful_shutdown_drill.enabled' must be true/false, got 'maybe'",
        ),
        (
            "repository_forbid_dirty: sometimes\n",
            ":1: profile key 'repository_forbid_dirty' must be true/false or 'warn', got",
        ),
        ("app_root: [/srv/a, /srv/b]\n", ":1: profile key 'app_root' must be a string, got ["),
        # numbers: a negative length passes every secret; a 0 timeout waits for nothing
        (
            "thresholds:\n  secret_min_length: -5\n",
            ":2: profile key 'thresholds.secret_min_length' must be a whole number 0 or more, "
            "got -5",
        ),
        (
            "thresholds:\n  otlp_connect_timeout_s: 0\n",
            ":2: profile key 'thresholds.otlp_connect_timeout_s' must be a number above 0, got 0",
        ),
        ("thresholds:\n  http_p95_ms: .inf\n", ":2: profile key 'thresholds.http_p95_ms' must"),
    ],
)
def test_profile_errors_name_file_line_and_dotted_key(fleet: Path, text: str, needle: str) -> None:
    profile = fleet.parent / "p.yml"
    profile.write_text(text)
    res = audit(fleet, "-p", str(profile))
    assert res.returncode == 2, res.stderr
    assert f"{profile}{needle}" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr


def test_true_false_settings_take_booleans_and_their_documented_words(fleet: Path) -> None:
    profile = fleet.parent / "p.yml"
    profile.write_text("require_auth: false\nrepository_forbid_dirty: warn\n")
    res = audit(fleet, "-p", str(profile), "-c", "environment")
    assert res.returncode in (0, 1), res.stderr


def test_a_fractional_command_timeout_is_refused_not_rounded(fleet: Path) -> None:
    """The host-side deadline is a whole-second alarm: 1.5 would silently be 2 there."""
    res = audit(fleet, "--command-timeout", "1.5")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == (
        "readiness: --command-timeout: expected a whole number of seconds 1..86400, got '1.5'"
    )
    cwd = fleet.parent
    (cwd / "readiness.yaml").write_text("command_timeout: 2.5\n")
    try:
        typed = run(cwd, "validate", "-i", str(fleet), "-H", "all", "-q")
    finally:
        (cwd / "readiness.yaml").unlink()
    assert typed.returncode == 2
    assert "readiness.yaml:1: readiness.command_timeout: expected a whole number" in typed.stderr


def test_readiness_reads_invoke_yaml_and_readiness_yaml_and_refuses_unknown_keys(
    fleet: Path,
) -> None:
    cwd = fleet.parent
    (cwd / "invoke.yaml").write_text(f"readiness:\n  inventory: {fleet}\n")
    found = run(cwd, "validate", "-H", "all", "-c", "environment", "-q")
    assert found.returncode == 0, found.stderr  # ./invoke.yaml supplied the inventory
    (cwd / "readiness.yaml").write_text("forks: 4\nconect_timeout: 3\n")
    typo = run(cwd, "validate", "-H", "all", "-q")
    assert typo.returncode == 2
    assert "readiness.yaml:2: unknown key readiness.conect_timeout" in typo.stderr
    assert "did you mean 'connect_timeout'" in typo.stderr
    (cwd / "readiness.yaml").write_text("forks: eight\n")
    typed = run(cwd, "validate", "-H", "all", "-q")
    assert typed.returncode == 2 and "readiness.forks: expected an integer" in typed.stderr


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["valdiate"], "did you mean 'validate'"),
        (["validate", "--forsk", "2"], "did you mean '--forks'"),
        (["validate", "-c", "enviroment"], "did you mean 'environment'"),
    ],
)
def test_did_you_mean(fleet: Path, args: list[str], hint: str) -> None:
    res = (
        run(fleet.parent, *args, "-i", str(fleet))
        if args[0] == "validate"
        else run(fleet.parent, *args)
    )
    assert res.returncode == 2
    assert hint in res.stderr


def test_did_you_mean_is_not_fooled_by_the_dashes(fleet: Path) -> None:
    """`validate --nope` suggested '--store': the shared "--" made any short word close."""
    res = run(fleet.parent, "validate", "--nope", "-i", str(fleet))
    assert (res.returncode, res.stderr) == (2, "readiness: No idea what '--nope' is!\n")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["nagios", "--nope"], "No idea what '--nope' is!"),
        (["nagios", "-c"], "--check needs a value"),
        (["-f", "missing.yaml", "nagios"], "-f missing.yaml: no such configuration file"),
    ],
)
def test_a_command_line_the_parser_rejects_is_unknown_for_the_nagios_plugin(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    """`readiness nagios --nope` exited 2, CRITICAL to Nagios, with an empty status line:
    a typo in a command definition paged. The plugin convention makes it UNKNOWN."""
    res = run(tmp_path, *args)
    assert (res.returncode, res.stdout, res.stderr) == (3, f"READINESS UNKNOWN - {reason}\n", "")
    other = run(tmp_path, "validate", *args[1:]) if args[0] == "nagios" else None
    assert other is None or other.returncode == 2  # every other task keeps readiness' 2


def test_a_broken_user_configuration_is_unknown_for_the_nagios_plugin(tmp_path: Path) -> None:
    """~/.invoke.yaml is read before the command line is parsed: still UNKNOWN, exit 3."""
    (tmp_path / ".invoke.yaml").write_text("a: [\n")
    res = run(tmp_path, "nagios", env={"HOME": str(tmp_path)})
    assert res.returncode == 3 and res.stderr == "", (res.returncode, res.stderr)
    assert (
        res.stdout.startswith("READINESS UNKNOWN - configuration file: ")
        and ".invoke.yaml" in res.stdout
    )


def test_did_you_mean_suggests_only_the_tasks_own_flags(fleet: Path) -> None:
    """`inventory --check` is another task's flag: never suggested back as itself."""
    res = run(fleet.parent, "inventory", "--check=x", "-i", str(fleet))
    assert res.returncode == 2
    assert "No idea what '--check' is!" in res.stderr
    assert "did you mean '--check'" not in res.stderr
    typo = run(fleet.parent, "inventory", "--hostz", "x", "-i", str(fleet))
    assert typo.returncode == 2 and "did you mean '--hosts'" in typo.stderr


@pytest.mark.parametrize("task", ["validate", "inventory", "remediate", "check-config"])
def test_no_inventory_is_the_same_error_everywhere(tmp_path: Path, task: str) -> None:
    res = run(tmp_path, task, env={"READINESS_INVENTORY": ""})
    assert res.returncode == 2
    assert res.stderr.startswith("readiness: no inventory: pass -i/--inventory")
    assert not list(tmp_path.iterdir())


def test_remediate_apply_never_acts_on_an_implicit_local_host(tmp_path: Path) -> None:
    res = run(tmp_path, "remediate", "--apply", "--yes", env={"READINESS_INVENTORY": ""})
    assert res.returncode == 2
    assert not Path("/opt/mahavishnu").exists() or "no inventory" in res.stderr
    assert not list(tmp_path.iterdir())


def _tasks_defaulting_to_local() -> list[str]:
    """Every task whose --hosts defaults to ``local``, from the option table (not a list)."""
    from readiness.options import option
    from readiness.tasks import all_tasks

    seen: set[int] = set()
    names = []
    for name, task in all_tasks().items():  # production.<suite> is the same task
        if id(task) in seen or "hosts" not in task.option_specs():
            continue
        seen.add(id(task))
        if option("hosts", name).default == "local":
            names.append(name)
    return names


def _inventory_without_local(tmp_path: Path) -> Path:
    app = write_app(tmp_path / "app")
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": {"web1": host}}}}}))
    return inv


@pytest.mark.parametrize("task", _tasks_defaulting_to_local())
def test_no_hosts_given_and_no_local_in_the_inventory_is_a_usage_error(
    tmp_path: Path, task: str
) -> None:
    """A user who forgets --hosts for their own inventory gets one line naming its groups, not
    an audit (or remediation) of the controller on the built-in /opt/mahavishnu defaults."""
    inv = _inventory_without_local(tmp_path)
    from readiness.tasks import all_tasks

    specs = all_tasks()[task].option_specs()
    extra = ["--max-runs", "1", "--listen", "127.0.0.1:0"] if task == "watch" else []
    extra += ["-q"] if "quiet" in specs else []
    extra += ["--store", "none"] if "store" in specs else []
    res = run(tmp_path, task, "-i", str(inv), *extra)
    if task == "nagios":  # the plugin convention: UNKNOWN on stdout
        assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
        said = res.stdout
    else:
        assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
        said = res.stderr
    assert len(said.strip().splitlines()) == 1 and "Traceback" not in said, said
    assert "'local' is not a host of" in said and "known groups: all, ungrouped, web" in said
    assert "/opt/mahavishnu" not in res.stdout + res.stderr


def test_remediate_never_acts_on_the_implicit_local_host_of_an_inventory(tmp_path: Path) -> None:
    """`-H local` names Ansible's implicit controller host for an audit (docs/inventories.md),
    but remediate only ever changes hosts an inventory names (issue 10)."""
    inv = _inventory_without_local(tmp_path)
    audit = run(tmp_path, "validate", "-i", str(inv), "-H", "local", "-c", "documentation", "-q")
    assert audit.returncode == 1 and "/opt/mahavishnu" in audit.stdout, audit.stderr
    for apply in ([], ["--apply", "--yes"]):
        res = run(tmp_path, "remediate", "-i", str(inv), "-H", "local", "-q", *apply)
        assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
        assert res.stderr.startswith("readiness: remediate acts only on hosts an inventory names")
        assert res.stdout == ""
    assert not Path("/opt/mahavishnu").exists()


@pytest.mark.parametrize("argv", [["--list"], ["--help", "validate"], ["-l", "production"]])
def test_invoke_listing_and_help_into_a_closed_pipe_end_quietly(argv: list[str]) -> None:
    """`invoke --list | head -1`: invoke's own printing met a closed stdout with a
    BrokenPipeError traceback; now it ends quietly with exit 0, as `readiness --list` does."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write is EPIPE
    try:
        res = subprocess.run(
            [str(BIN / "invoke"), "--search-root", str(ROOT), *argv],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    assert res.returncode == 0, (res.returncode, res.stderr)


def test_a_store_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    """psycopg's refusal is two lines ("...Connection refused\n\tIs the server running");
    a usage error and the "run not recorded" warning are one line each, without the password."""
    from tests.services.ports import closed_port

    url = f"postgresql://u:pw-sentinel@127.0.0.1:{closed_port()}/db"
    history = run(tmp_path, "history", "--store", url)
    assert history.returncode == 2, history.stderr
    assert len(history.stderr.splitlines()) == 1, history.stderr
    assert history.stderr.startswith("readiness: cannot connect to store postgresql://u:***@")
    inv = _inventory_without_local(tmp_path)
    audit = run(
        tmp_path,
        "validate",
        "-i",
        str(inv),
        "-H",
        "web",
        "-c",
        "documentation",
        "-q",
        "--store",
        url,
    )
    assert audit.returncode in (0, 1), audit.stderr
    warnings = [ln for ln in audit.stderr.splitlines() if "run not recorded" in ln]
    assert warnings and audit.stderr.splitlines() == warnings, audit.stderr
    assert "pw-sentinel" not in history.stderr + audit.stderr + audit.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--since", "100000000000d"],
        ["history-prune", "--keep", "99999999d"],
        ["watch", "--every", "100000000000d", "--max-runs", "1"],
    ],
)
def test_an_age_too_large_for_a_date_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    """An age past what a date can hold was an OverflowError traceback (history --since,
    history-prune --keep, watch --every); now one line naming the option, exit 2."""
    res = run(tmp_path, *argv, "--store", str(tmp_path / "h.sqlite3"))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith(f"readiness: {argv[1]}: bad age '{argv[2]}': at most 100 years")
    assert len(res.stderr.splitlines()) == 1 and res.stdout == "", res.stderr


@pytest.mark.parametrize(
    ("setup", "argv", "said"),
    [
        ("", ["-f", "ci.yaml"], "readiness: -f ci.yaml: no such configuration file"),
        ("ci", ["-f", "ci"], "readiness: configuration file: Config files of type ''"),
        ("ci.yaml", ["-f", "ci.yaml"], "readiness: configuration file: while parsing"),
        ("invoke.yaml", [], "readiness: configuration file: while parsing"),
        ("home/.invoke.yaml", [], "readiness: configuration file: while parsing"),
    ],
)
def test_a_configuration_file_that_cannot_be_read_is_one_line(
    tmp_path: Path, setup: str, argv: list[str], said: str
) -> None:
    """A missing -f file ran silently with every default; a malformed ./invoke.yaml,
    ~/.invoke.yaml or -f file (or one of an unknown type) was invoke's traceback."""
    if setup:
        (tmp_path / setup).parent.mkdir(exist_ok=True)
        (tmp_path / setup).write_text("readiness: [\n")
    env = {"HOME": str(tmp_path / "home"), "READINESS_INVENTORY": str(ROOT / "inventories")}
    res = run(tmp_path, *argv, "validate", "-q", "--store", "none", env=env)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith(said) and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (
            ["validate", "-c", "ENVIRONMENT"],
            "unknown check 'ENVIRONMENT' (did you mean 'environment'?)",
        ),
        (["validate", "--format", "JSON"], "got 'JSON' (did you mean 'json'?)"),
        (["VALIDATE"], "No idea what 'VALIDATE' is! (did you mean 'validate'?)"),
        # `readiness help` (git's and pip's habit) was a bare "No idea what 'help' is!"
        (["help"], "No idea what 'help' is! (did you mean '--help'?)"),
        (["version"], "No idea what 'version' is! (did you mean '--version'?)"),
    ],
)
def test_a_word_in_the_wrong_case_gets_a_hint(tmp_path: Path, argv: list[str], hint: str) -> None:
    res = run(tmp_path, *argv, env={"READINESS_INVENTORY": str(ROOT / "inventories")})
    assert res.returncode == 2 and hint in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_a_tilde_in_the_inventory_and_profile_paths_is_the_home_directory(tmp_path: Path) -> None:
    """`inventory: ~/inv.yml` in readiness.yaml (and a quoted `-i '~/inv.yml'`) was "inventory
    not found: ~/inv.yml", `profile: ~/p.yml` "cannot read profile"; known_hosts, --store and
    --save already expanded `~`, as Ansible does for its inventory."""
    home = tmp_path / "home"
    home.mkdir()
    inv = _inventory_without_local(home)
    (home / "p.yml").write_text("app_rot: /srv\n")
    env = {"HOME": str(home), "READINESS_INVENTORY": ""}
    (tmp_path / "readiness.yaml").write_text("inventory: ~/inv.yml\nstore: none\n")
    listed = run(tmp_path, "inventory", env=env)
    assert listed.returncode == 0 and "web1" in listed.stdout, listed.stderr
    quoted = run(tmp_path, "inventory", "-i", "~/inv.yml", env=env)
    assert quoted.returncode == 0 and "web1" in quoted.stdout, quoted.stderr
    assert inv == home / "inv.yml"
    (tmp_path / "readiness.yaml").write_text("inventory: ~/inv.yml\nprofile: ~/p.yml\n")
    res = run(tmp_path, "validate", "-H", "web", "-q", "--store", "none", env=env)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"readiness: {home}/p.yml:1: unknown profile key 'app_rot'")


def test_an_audit_log_that_cannot_be_written_stops_remediate_before_any_change(
    tmp_path: Path,
) -> None:
    """`--apply --audit-log` under a regular file: the fix was made, then the log failed, and
    the host was reported "unreachable: internal error ... nothing was audited or changed"
    with no entry. Now exit 2 before any host is touched; the dry run still plans."""
    inv = _inventory_without_local(tmp_path)
    app = tmp_path / "app"
    before = sorted(str(p.relative_to(app)) for p in app.rglob("*"))
    (tmp_path / "afile").write_text("")
    bad = tmp_path / "afile" / "audit.jsonl"
    args = ["remediate", "-i", str(inv), "-H", "web1", "-q", "--audit-log", str(bad)]
    dry = run(tmp_path, *args)
    assert dry.returncode == 0 and "(dry run)" in dry.stdout, dry.stderr
    res = run(tmp_path, *args, "--apply")
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    said = f"readiness: --audit-log {bad}: cannot write: {tmp_path / 'afile'} is not a directory\n"
    assert res.stderr == said
    assert not bad.exists()
    assert res.stdout == ""
    assert sorted(str(p.relative_to(app)) for p in app.rglob("*")) == before


@pytest.mark.parametrize("output", ["/proc/x/b.json", "."])
def test_baseline_export_to_a_path_that_cannot_be_written_is_one_line(
    tmp_path: Path, output: str
) -> None:
    """`baseline-export --output /proc/x/b.json` (or a directory) was a traceback."""
    inv = _inventory_without_local(tmp_path)
    store = str(tmp_path / "h.sqlite3")
    audit = run(tmp_path, "validate", "-i", str(inv), "-H", "web", "-q", "--store", store)
    assert audit.returncode in (0, 1), audit.stderr
    assert run(tmp_path, "baseline-accept", "--store", store).returncode == 0
    res = run(tmp_path, "baseline-export", "--output", output, "--store", store)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith(f"readiness: --output {output}: cannot write")
    assert len(res.stderr.splitlines()) == 1 and res.stdout == ""


@pytest.mark.parametrize(
    ("flag", "url", "shown"),
    [
        ("--webhook", "hooks.example/x", "'hooks.example/x'"),
        ("--alertmanager-url", "ftp://u:pw@am", "'ftp://u:***@am'"),
    ],
)
def test_watch_refuses_an_alert_url_it_could_never_post_to(
    tmp_path: Path, flag: str, url: str, shown: str
) -> None:
    """watch checks its setup before it starts ("exit 2 now, not at 3 a.m."), but took any
    text as an alert URL: the first alert would have failed hours later."""
    env = {"READINESS_INVENTORY": str(ROOT / "inventories")}
    argv = ["watch", flag, url, "--max-runs", "1", "--listen", "127.0.0.1:0", "--store", "none"]
    res = run(tmp_path, *argv, env=env)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert (
        res.stderr
        == f"readiness: {flag}: expected an http:// or https:// URL with a host, got {shown}\n"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["-F", "yaml", "--list"], "readiness: --list-format: expected one of flat, nested, json"),
        (["-D", "x", "--list"], "readiness: --list-depth: expected an integer 0 or more"),
        (["-D", "-1", "--list"], "readiness: --list-depth: expected an integer 0 or more"),
        (["-D", "1", "-F", "json", "--list"], "readiness: The --list-depth option is not"),
        (["--list", "nope"], "readiness: Sub-collection 'nope' not found!"),
        (["--print-completion-script", "tcsh"], 'readiness: Completion for shell "tcsh"'),
    ],
)
def test_a_bad_core_option_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], said: str
) -> None:
    """-F yaml and -D x were tracebacks; -l nope, -D with -F json and an unknown completion
    shell exited 1, the code of a fleet that is not ready."""
    res = run(tmp_path, *argv)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith(said) and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--report", "json:", "--report", "json:"], "json: and json:"),
        (["--report", "json:", "--format", "json", "--save"], "--save and json:"),
        # text, table and nagios share .txt: the second report overwrote the first
        (["--report", "text:", "--report", "nagios:"], "text: and nagios:"),
        (["--report", "table:", "--save"], "--save and table:"),
    ],
)
def test_two_reports_to_one_default_name_are_refused(
    tmp_path: Path, argv: list[str], said: str
) -> None:
    """docs/reports.md: "no two reports on one file"; two default-named reports of one format
    (reports/readiness-<time>.json) were both written to the same file, silently, and so were
    two of one extension (text and nagios: reports/readiness-<time>.txt)."""
    env = {"READINESS_INVENTORY": str(ROOT / "inventories")}
    res = run(tmp_path, "validate", "-q", "--store", "none", *argv, env=env)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr == (
        f"readiness: two reports to one file: {said} (both the default name in reports/)\n"
    )
    assert not (tmp_path / "reports").exists()


def test_the_readme_first_command_works_from_the_repository_root() -> None:
    res = run(ROOT, "validate", "-q", tool="invoke", env={"READINESS_INVENTORY": ""})
    assert res.returncode in (0, 1), res.stderr
    assert "PRODUCTION READINESS VALIDATION REPORT" in res.stdout


def test_run_options_coerce_and_range_check_values_from_python() -> None:
    assert RunOptions(forks="8", connect_timeout="2.5").forks == 8  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"RunOptions.forks: expected an integer 1..1000"):
        RunOptions(forks="x")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"RunOptions\.command_timeout"):
        RunOptions(command_timeout=0)


# --- exit codes: 2 is for usage errors only (docs/exit-codes.md) --------------------------------


def test_run_benchmarks_on_an_unreachable_fleet_is_not_a_usage_error(tmp_path: Path) -> None:
    from tests.services.ports import closed_port

    port = closed_port()
    host = {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root"}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"gone": host}}}))
    res = run(tmp_path, "run-benchmarks", "-i", str(inv), "-H", "all", "-q", "-T", "2")
    assert "Traceback" not in res.stderr
    assert res.returncode in (1, 3), (res.returncode, res.stderr)


def test_a_not_ready_check_outside_the_suite_is_not_a_usage_error(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", env={"MAHAVISHNU_REPOS_PATH": None})
    host = {"ansible_connection": "local", "readiness": {"app_root": str(app)}}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"local": host}}}))
    res = run(tmp_path, "run-integration-tests", "-i", str(inv), "-c", "environment", "-q")
    assert "Traceback" not in res.stderr
    assert res.returncode in (0, 1, 3), (res.returncode, res.stderr)
    assert res.returncode != 2


def test_remediate_summary_says_what_happened_to_the_hosts(fleet: Path) -> None:
    """`remediate --apply` ended with `[readiness] 3 hosts in 0s: 3 ready` while every host
    still failed checks: the words were the audit's. Now they say what remediation did."""
    args = ["remediate", "-i", str(fleet), "-H", "all", "-q", "--store", "none"]
    dry = run(fleet.parent, *args)
    assert dry.returncode == 0, dry.stderr
    assert re.fullmatch(
        r"\[readiness\] remediation plan for 3 hosts in \d+s: 3 planned\n", dry.stderr
    )
    log = str(fleet.parent / "audit.jsonl")
    applied = run(fleet.parent, *args, "--apply", "--yes", "--audit-log", log)
    assert applied.returncode == 0, applied.stderr
    last = applied.stderr.splitlines()[-1]
    assert re.fullmatch(r"\[readiness\] remediation of 3 hosts in \d+s: 3 succeeded", last)
    assert " ready" not in last


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--workers", "2"], "--workers applies to bench --engine celery only"),
        (["--workers", "0"], "--workers: expected worker counts 1..16 like 1,2,4, got '0'"),
        (["--workers", "1,,2"], "--workers: expected worker counts 1..16 like 1,2,4, got ''"),
        (["--engine", "celery", "--hostile"], "--hostile runs with --engine local only"),
    ],
)
def test_bench_refuses_options_it_would_ignore_before_starting_a_fleet(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """`bench --workers 0` (or any --workers without --engine celery) ran the local bench and
    ignored it; `--engine celery --hostile` dropped --hostile. One line and exit 2 now."""
    res = run(tmp_path, "bench", "--hosts", "1", *args)
    assert (res.returncode, res.stdout, res.stderr) == (2, "", f"readiness: {said}\n")


@pytest.mark.parametrize("task", ["inventory", "validate", "remediate", "nagios"])
def test_readiness_inventory_in_the_environment_wins_over_the_configuration_file(
    tmp_path: Path, task: str
) -> None:
    """docs/cli.md: -i wins, then $READINESS_INVENTORY, then ``inventory:`` in the
    configuration. The configuration's value was taken as if it were -i, so an inventory
    exported for one shell lost to readiness.yaml (here: 'inventory not found', exit 2)."""
    (tmp_path / "home").mkdir()
    from_env = _inventory_without_local(tmp_path)
    (tmp_path / "readiness.yaml").write_text("inventory: stale-inventory.yml\nstore: none\n")
    env = {"HOME": str(tmp_path / "home"), "READINESS_INVENTORY": str(from_env)}
    args = [] if task == "inventory" else ["--hosts", "web1", "--format", "json"]
    if task in ("remediate", "nagios"):
        args = args[:2]
    res = run(tmp_path, task, *args, env=env)
    assert "inventory not found" not in res.stdout + res.stderr, res.stderr
    ran = (0, 1, 2, 3) if task == "nagios" else (0, 1, 3)  # nagios: 2 is CRITICAL
    assert res.returncode in ran, (res.returncode, res.stdout, res.stderr)
    assert "web1" in res.stdout, res.stdout
    with_flag = run(tmp_path, task, "-i", "stale-inventory.yml", *args, env=env)
    refused = (3, with_flag.stdout) if task == "nagios" else (2, with_flag.stderr)  # UNKNOWN
    assert with_flag.returncode == refused[0] and "inventory not found: stale" in refused[1]


@pytest.mark.parametrize("tool", ["readiness", "invoke"])
def test_a_configuration_file_named_with_f_wins_over_readiness_yaml(
    tmp_path: Path, tool: str
) -> None:
    """``readiness -f ci.yaml validate`` (or $INVOKE_RUNTIME_CONFIG) names the file for this
    run; ./readiness.yaml, found in the directory, used to override it key by key, so the
    file a CI job named on its command line silently lost. A flag still wins over both."""
    (tmp_path / "home").mkdir()
    wanted = _inventory_without_local(tmp_path)
    (tmp_path / "readiness.yaml").write_text("inventory: stale-inventory.yml\n")
    (tmp_path / "ci.yaml").write_text(yaml.safe_dump({"readiness": {"inventory": str(wanted)}}))
    env = {"HOME": str(tmp_path / "home"), "READINESS_INVENTORY": ""}
    named = run(tmp_path, "-f", "ci.yaml", "inventory", tool=tool, env=env)
    assert named.returncode == 0 and "web1" in named.stdout, named.stderr
    from_env = run(
        tmp_path, "inventory", tool=tool, env={**env, "INVOKE_RUNTIME_CONFIG": "ci.yaml"}
    )
    assert from_env.returncode == 0 and "web1" in from_env.stdout, from_env.stderr
    alone = run(tmp_path, "inventory", tool=tool, env=env)  # readiness.yaml still read
    assert alone.returncode == 2 and "inventory not found: stale" in alone.stderr, alone.stderr
    flag = run(tmp_path, "-f", "ci.yaml", "inventory", "-i", "nope.yml", tool=tool, env=env)
    assert flag.returncode == 2 and "inventory not found: nope.yml" in flag.stderr


CANARY_URL = "postgresql://app:Config-Canary-5150@db.internal/app"


@pytest.mark.parametrize("key", sorted(CONFIG_KEYS))
def test_a_wrong_config_value_is_named_by_its_file_and_never_echoes_a_password(
    tmp_path: Path, key: str
) -> None:
    """Every configuration key, given a mapping holding a store URL (a typical slip:
    `store: {url: ...}`) in a -f file: exit 2, one line naming that file (it was blamed on
    "configuration (invoke.yaml)"), and the URL's password masked (it was echoed whole)."""
    config = tmp_path / "ci-config.yaml"
    config.write_text(yaml.safe_dump({"readiness": {key: {"url": CANARY_URL}}}))
    done = run(tmp_path, "-f", str(config), "checks")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"readiness: {config}: readiness.{key}: expected "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Config-Canary-5150" not in done.stdout + done.stderr


@pytest.mark.parametrize("source", ["readiness.yaml", "invoke.yaml"])
def test_a_wrong_store_in_a_project_file_never_echoes_its_password(
    tmp_path: Path, source: str
) -> None:
    doc = {"store": {"url": CANARY_URL}}
    (tmp_path / source).write_text(
        yaml.safe_dump(doc if source == "readiness.yaml" else {"readiness": doc})
    )
    done = run(tmp_path, "checks")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "readiness.store: expected" in done.stderr
    assert "postgresql://app:***@db.internal/app" in done.stderr
    assert "Config-Canary-5150" not in done.stdout + done.stderr
