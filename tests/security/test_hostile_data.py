"""Host data parsed on the controller is bounded and always printable (#18 items 8, 9).

A host writes its settings, dashboards and file names. A 1.8 KB YAML alias bomb must not
hang the controller, deep JSON must not become "internal error: RecursionError", and a
non-UTF-8 file name (or a terminal that cannot show a character) must not lose the
report or make ``--save`` fail. Over a real loopback sshd fleet and the local host,
through the ``readiness`` command a user types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.appconfig import parse_settings
from readiness.hostdata import HostDataError, load_json, load_yaml, printable
from readiness.loopback import LoopbackFleet, start_fleet
from readiness.model import Status
from tests.services.apps import audit_local, one, write_app
from tests.services.sshd import host_entry, write_inventory

BIN = Path(sys.executable).parent
ODD_NAME = b"\xff\xfe-nightly.dump"  # not UTF-8: a name only surrogateescape can carry


def alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": 9 levels of 9 aliases, 9**9 strings once expanded."""
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("# padding to the size seen in the report " + "x" * 1000)
    return "\n".join(lines) + "\n"


def run_readiness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [str(BIN / "readiness"), *args],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        check=False,
        cwd=cwd,
    )


# --- the parsers ----------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_quickly_naming_file_and_line() -> None:
    bomb = alias_bomb()
    assert 1500 < len(bomb) < 2500  # the 1.8 KB document of the report
    started = time.monotonic()
    settings, error = parse_settings(bomb, "/srv/app/settings.yaml")
    assert time.monotonic() - started < 2
    assert settings == {}
    assert error is not None
    assert error.startswith("/srv/app/settings.yaml:")
    assert "alias bomb" in error


def test_deep_yaml_and_json_are_one_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(HostDataError, match=r"^/x.yaml: invalid YAML: nested more than 100"):
        load_yaml("a: " + "[" * 5000 + "]" * 5000, "/x.yaml")
    with pytest.raises(HostDataError, match="nested more than 100 levels deep"):
        load_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(HostDataError, match="nested more than 100 levels deep"):
        load_json("[" * 150 + "]" * 150)  # parses, but every later walk would recurse
    assert load_json("[" * 50 + "]" * 50) is not None


def test_oversized_yaml_is_refused_before_parsing() -> None:
    with pytest.raises(HostDataError, match="more than the 524288 bytes"):
        load_yaml("a: 1\n" + "#" * (600 * 1024), "/big.yaml")


def test_undecodable_bytes_become_escapes() -> None:
    name = ODD_NAME.decode("utf-8", "surrogateescape")
    assert printable(name) == "\\xff\\xfe-nightly.dump"
    assert load_json(json.dumps({name: [name]})) == {
        "\\xff\\xfe-nightly.dump": ["\\xff\\xfe-nightly.dump"]
    }


LONG_INTS = {
    "decimal": "9" * 5000,  # past Python's 4300 digits: a ValueError inside the loader
    "hex": "0x" + "f" * 4000,  # loads, then every str() of it raised ValueError
    "underscored": "1" + "_0" * 4400,
}


@pytest.mark.parametrize("kind", sorted(LONG_INTS))
def test_an_integer_too_long_to_print_is_a_settings_error_naming_the_line(kind: str) -> None:
    text = f"server_name: x\nworkflow_timeout: {LONG_INTS[kind]}\n"
    with pytest.raises(HostDataError) as caught:
        load_yaml(text, "settings.yaml")
    assert str(caught.value).startswith("settings.yaml:2: invalid YAML: an integer of ")
    assert "is more than the 1000 readiness parses" in str(caught.value)
    assert load_yaml("a: 0x1F\nb: 1_000\n", "ok.yaml") == {"a": 31, "b": 1000}


def test_non_finite_numbers_become_text_before_any_renderer() -> None:
    from readiness.redact import Redactor

    details = {"value": float("nan"), "limits": [float("inf"), -float("inf"), 1.5, 2]}
    assert Redactor().obj(details) == {"value": "nan", "limits": ["inf", "-inf", 1.5, 2]}


def _strict_json(text: str) -> Any:
    """JSON as RFC 8259 (and JavaScript, Go, SARIF uploads) reads it: no NaN, no Infinity."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.ssh
def test_huge_integers_and_nan_in_settings_keep_every_report_valid(
    ssh_fleet: Any, shared_root: Path
) -> None:
    """A real `readiness check-config` over loopback sshd: one host's settings hold a
    4000-digit hex integer (every check was "internal error: ValueError"), another's `.nan`
    and `-.inf` (the JSON and SARIF reports held NaN and -Infinity, which is not JSON)."""
    from tests.services.apps import BASE_SETTINGS

    base = yaml.safe_dump(BASE_SETTINGS)
    long_hex = base.replace("workflow_timeout: 600", f"workflow_timeout: {LONG_INTS['hex']}")
    huge = write_app(shared_root / "huge", settings_text=long_hex)
    odd_text = base.replace("workflow_timeout: 600", "workflow_timeout: .nan")
    odd_text = odd_text.replace("max_concurrent_workflows: 10", "max_concurrent_workflows: -.inf")
    odd = write_app(shared_root / "odd", settings_text=odd_text)
    host = ssh_fleet.hosts[3]
    inventory = write_inventory(
        shared_root / "inv.yml",
        {
            "huge": {**host_entry(ssh_fleet, host), "readiness": {"app_root": str(huge)}},
            "odd": {**host_entry(ssh_fleet, host), "readiness": {"app_root": str(odd)}},
        },
    )
    sarif = shared_root / "report.sarif"
    res = run_readiness(
        "check-config", "-i", str(inventory), "--hosts", "fleet", "-q", "--store", "none",
        "--known-hosts", str(ssh_fleet.known_hosts), "-o", "json", "-r", f"sarif:{sarif}",
        cwd=shared_root,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    report = _strict_json(res.stdout.decode())
    _strict_json(sarif.read_text())
    assert b"internal error" not in res.stdout
    for check in _checks(report, "huge").values():
        assert check["status"] == Status.NOT_READY.value, check
        assert "an integer of 4002 characters is more than the 1000" in check["message"]
    limits = _checks(report, "odd")["resource_limits"]["details"]["limits"]
    assert limits["workflow_timeout"]["value"] == "nan"
    assert limits["max_concurrent_workflows"]["value"] == "-inf"


# --- a hostile host in a real fleet ---------------------------------------------------------


def _hostile_app(index: int, root: Path) -> None:
    if index == 0:
        write_app(root, settings_text=alias_bomb())
    else:
        write_app(root)
    backups = root / "backups"
    backups.mkdir(exist_ok=True)
    odd = os.fsencode(backups) + b"/" + ODD_NAME
    fd = os.open(odd, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 100)
    os.close(fd)


@pytest.fixture(scope="module")
def hostile_fleet() -> Iterator[LoopbackFleet]:
    fleet = start_fleet(2, app_writer=_hostile_app)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def fleet_args(hostile_fleet: LoopbackFleet, tmp_path: Path) -> list[str]:
    """``-i INVENTORY --known-hosts FILE`` for the hostile fleet."""
    inventory = write_inventory(
        tmp_path / "inv.yml",
        {f"h{i}": host_entry(hostile_fleet, h) for i, h in enumerate(hostile_fleet.hosts)},
    )
    return [
        "-i",
        str(inventory),
        "--hosts",
        "fleet",
        "--known-hosts",
        str(hostile_fleet.known_hosts),
    ]


def _checks(report: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    entry = next(h for h in report["hosts"] if h["host"] == host)
    return {c["check_name"]: c for c in entry["checks"]}


def test_an_alias_bomb_on_one_host_does_not_hang_the_fleet(
    fleet_args: list[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    res = run_readiness(
        "validate",
        *fleet_args,
        "-c",
        "configuration,security_settings",
        "--format",
        "json",
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert elapsed < 60, "the controller must not hang on one host's settings"
    report = json.loads(res.stdout)
    bombed, healthy = _checks(report, "h0"), _checks(report, "h1")
    for check in bombed.values():
        assert check["status"] == Status.NOT_READY.value
        assert "refusing a YAML alias bomb" in check["message"]
        assert "settings/mahavishnu.yaml:" in check["message"]
    assert healthy["configuration"]["status"] in (Status.READY.value, Status.DEGRADED.value)
    assert "alias" not in healthy["configuration"]["message"]


def test_a_non_utf8_file_name_never_loses_the_report_or_the_save(
    fleet_args: list[str], tmp_path: Path
) -> None:
    saved = {}
    for fmt in ("json", "markdown", "text"):
        target = tmp_path / f"report.{fmt}"
        res = run_readiness(
            "validate",
            *fleet_args,
            "-c",
            "backup_restore",
            "--format",
            fmt,
            "--save",
            str(target),
            cwd=tmp_path,
        )
        assert res.returncode in (0, 1), res.stderr
        assert b"Traceback" not in res.stderr
        saved[fmt] = target.read_bytes().decode("utf-8")  # strict: valid UTF-8
    odd_target = os.fsencode(tmp_path) + b"/\xffreport.json"  # a non-UTF-8 --save name
    res = run_readiness(
        "validate",
        *fleet_args,
        "-c",
        "backup_restore",
        "--save",
        os.fsdecode(odd_target),
        cwd=tmp_path,
    )
    assert res.returncode in (0, 1), res.stderr
    assert os.path.exists(odd_target)  # noqa: PTH110 - a bytes path
    # --report too: a report file's name is the file system's bytes (options.BYTES_FILE_NAMES)
    odd_report = os.fsencode(tmp_path) + b"/\xfe-junit.xml"
    res = run_readiness(
        "validate",
        *fleet_args,
        "-c",
        "backup_restore",
        "--report",
        "junit:" + os.fsdecode(odd_report),
        cwd=tmp_path,
    )
    assert res.returncode in (0, 1), res.stderr
    with open(odd_report, "rb") as written:  # noqa: PTH123 - a bytes path
        assert b"<testsuite" in written.read()
    report = json.loads(saved["json"])
    recent = _checks(report, "h1")["backup_restore"]["details"]["backups"]["recent"]
    assert "\\xff\\xfe-nightly.dump" in [r["name"] for r in recent]
    assert "\\xff\\xfe-nightly.dump" in saved["text"]


def test_a_terminal_that_cannot_show_a_character_still_gets_the_report(
    fleet_args: list[str], tmp_path: Path
) -> None:
    res = run_readiness(
        "validate",
        *fleet_args,
        "-c",
        "backup_restore",
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert res.returncode in (0, 1), res.stderr
    out = res.stdout.decode("ascii")  # nothing but ASCII reached the terminal
    assert "OVERALL STATUS: \\u2713" in out or "OVERALL STATUS: \\u2717" in out
    assert "\\\\xff\\\\xfe-nightly.dump" in out or "\\xff\\xfe-nightly.dump" in out


# --- deep JSON in a check -------------------------------------------------------------------


def test_deep_dashboard_json_is_a_finding_not_an_internal_error(
    app_tree: Callable[..., Path],
) -> None:
    deep = '{"title": "x", "panels": ' + "[" * 5000 + "]" * 5000 + "}"
    root = app_tree(files={"dashboards/deep.json": deep, "config/alerts.yml": "groups: []\n"})
    result = one(audit_local(root, ["monitoring"]))
    assert result.status is not Status.ERROR, result.message
    assert "internal error" not in result.message
    assert "RecursionError" not in result.message
    assert result.details["dashboards"]["invalid"] == ["deep.json"]


# --- a tampered probe answering 8 MiB --------------------------------------------------------

_TAMPERED_PROBE = """#!/usr/bin/python3
# Whatever the controller asks, answer ~8 MiB of JSON made of small values, framed the
# way readiness's bootstrap frames the probe's stdout (RS ... GS).
import sys
n = (8 * 1024 * 1024 - 200) // 5
body = '{"facts": {"x": [' + ",".join(['"ab"'] * n) + ']}, "meta": {}}'
sys.stdout.buffer.write(b"\\x1e" + body.encode() + b"\\x1d")
"""


@pytest.fixture(scope="module")
def tampered_host() -> Iterator[LoopbackFleet]:
    """One sshd host whose every command is a tampered probe (sshd ForceCommand)."""
    import shutil
    import tempfile

    # not pytest's tmp_path: its parents are 0700, and the login user must run the script
    script = Path(tempfile.mkdtemp(prefix="tampered-")) / "probe"
    try:
        script.write_text(_TAMPERED_PROBE)
        script.chmod(0o755)
        script.parent.chmod(0o755)
        fleet = start_fleet(1, sshd_options=[f"ForceCommand {script}"])
        try:
            yield fleet
        finally:
            fleet.stop()
    finally:
        shutil.rmtree(script.parent, ignore_errors=True)  # nothing left in /tmp


def test_an_8_mib_probe_answer_is_refused_before_it_costs_memory(
    tampered_host: LoopbackFleet, tmp_path: Path
) -> None:
    """Before: parsed into ~1.7 million objects, ~150 MB of controller memory per host."""
    inventory = write_inventory(
        tmp_path / "inv.yml", {"h0": host_entry(tampered_host, tampered_host.hosts[0])}
    )
    args = ["-i", str(inventory), "--hosts", "fleet"]
    args += ["--known-hosts", str(tampered_host.known_hosts), "-c", "configuration"]
    res = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=tmp_path,
    )
    lines = res.stdout.decode().splitlines()
    report, peak_mb = json.loads("\n".join(lines[:-1])), float(lines[-1])
    check = report["hosts"][0]["checks"][0]
    assert check["status"] == Status.ERROR.value
    assert "probe answer is not usable JSON" in check["message"]
    assert "more than the 200000 values readiness parses" in check["message"]
    assert peak_mb < 80, f"controller allocations peaked at {peak_mb:.0f} MB"


FORGED_ANSWERS = {
    "meta-list": '{"facts": {}, "meta": []}',  # was "internal error: TypeError" in every check
    "fact-int": '{"facts": {"app:settings": 5}, "meta": {}}',  # "internal error: AttributeError"
    "facts-list": '{"facts": [], "meta": {}}',  # was judged as "no file exists"
}


@pytest.fixture(scope="module")
def forging_host() -> Iterator[tuple[LoopbackFleet, Path]]:
    """One sshd host whose every command answers what the test writes into ``answer``."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="forged-"))
    root.chmod(0o755)
    script, answer = root / "probe", root / "answer"
    script.write_text(
        "#!/usr/bin/python3\nimport sys\n"
        f"sys.stdout.buffer.write(b'\\x1e' + open({str(answer)!r}, 'rb').read() + b'\\x1d')\n"
    )
    script.chmod(0o755)
    try:
        fleet = start_fleet(1, sshd_options=[f"ForceCommand {script}"])
        try:
            yield fleet, answer
        finally:
            fleet.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("forged", sorted(FORGED_ANSWERS))
def test_a_forged_answer_of_the_wrong_shape_is_one_clear_host_error(
    forging_host: tuple[LoopbackFleet, Path], tmp_path: Path, forged: str
) -> None:
    """A real `readiness validate` against an sshd host whose probe answers JSON of the wrong
    shape: the host is ERROR with one reason, never an internal error nor a verdict."""
    fleet, answer = forging_host
    answer.write_text(FORGED_ANSWERS[forged])
    inventory = write_inventory(tmp_path / "inv.yml", {"h0": host_entry(fleet, fleet.hosts[0])})
    res = run_readiness(
        "validate", "-i", str(inventory), "--hosts", "fleet", "--known-hosts",
        str(fleet.known_hosts), "-q", "--store", "none", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    checks = _checks(json.loads(res.stdout), "h0")
    assert checks, "every check has a result"
    for check in checks.values():
        assert check["status"] == Status.ERROR.value, check
        assert "internal error" not in check["message"]
        assert "probe answer " in check["message"]


# Runs the CLI in-process and prints the report, then the peak of Python's allocations
# in MB (tracemalloc: deterministic, unlike RSS, which depends on the allocator and load).
_MEASURED = """
import io, json, sys, tracemalloc
from contextlib import redirect_stdout
from readiness.cli import program
out = io.StringIO()
tracemalloc.start()
with redirect_stdout(out):
    try:
        program.run(["readiness", "validate", "--format", "json", *sys.argv[1:]], exit=False)
    except SystemExit:
        pass
peak = tracemalloc.get_traced_memory()[1]
print(out.getvalue().strip())
print(peak / 1024 / 1024)
"""


def test_the_probe_reads_a_deep_json_answer_as_no_value_not_a_crash() -> None:
    """Workflow polling reads an id/state from the app's JSON answer on the host."""
    from readiness import probe

    deep = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert probe._json_key(deep, "id") is None
    assert probe._json_key('{"run": {"id": 7}}', "run.id") == 7
