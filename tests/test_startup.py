"""Start-up: the CLI imports what a run needs, on first use (docs/performance.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import readiness
from readiness.model import FleetReport
from readiness.report import FORMATS, render

from .services.apps import running_service

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_importing_the_cli_leaves_the_renderers_and_the_old_validator_for_later() -> None:
    code = (
        "import sys, readiness.cli\n"
        "lazy = ['readiness.report.html', 'readiness.report.prometheus', 'prometheus_client',"
        " 'readiness.validator', 'readiness.report.markdown']\n"
        "print(','.join(m for m in lazy if m in sys.modules))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert res.stdout.strip() == ""


def test_lazy_names_still_resolve() -> None:
    from readiness import ProductionReadinessValidator, print_validation_report

    assert ProductionReadinessValidator.__module__ == "readiness.validator"
    assert callable(print_validation_report)
    assert readiness.ProductionReadinessValidator is ProductionReadinessValidator
    for fmt in FORMATS:  # each renderer is imported on first use and renders
        assert isinstance(render(FleetReport(hosts=(), checks=()), fmt), str), fmt


# What `readiness validate` on the local example (the README's first audit) must not import:
# each is start-up time the audit does not use (docs/performance.md, "Start-up"). A module
# that comes back shows here, without timing anything.
NOT_ON_THE_LOCAL_PATH = (
    "unittest",  # invoke.context's `from unittest.mock import Mock` (readiness/_lean_invoke.py)
    "unittest.mock",
    "asyncio",  # imported by unittest.mock
    "argparse",  # imported by unittest
    "ssl",  # asyncio's, and security_settings' (only with tls_endpoints)
    "tabulate",  # tables are rendered by other formats and tasks (readiness/tables.py)
    "wcwidth",
    "importlib.metadata",  # tabulate asks it for its own version
    "email",
    "uuid",  # alert_delivery, only when it sends an alert
    "psycopg",  # nothing listens at the example's database (tests/test_refused_fast_path.py)
    "requests",
    "fabric",  # `local` never uses SSH
    "paramiko",
    "readiness.validator",
    "readiness.report.nagios",
    "readiness.store.cli",  # the store's own tasks: recording a run needs none of them
    "readiness.store.diff",
    "readiness.store.baseline",
)

_RUN_AND_LIST_MODULES = (
    "import atexit, runpy, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "sys.argv = [sys.argv[2], 'validate']\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


@pytest.mark.timeout(120)
def test_validate_on_the_local_example_leaves_unused_modules_unimported(tmp_path: Path) -> None:
    """The console script, as the README runs it: ./inventories, the example's demo service
    running, the run recorded in the default (SQLite) store."""
    app = tmp_path / "mahavishnu"
    shutil.copytree(ROOT / "examples" / "mahavishnu", app, ignore=shutil.ignore_patterns("run"))
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "local.yml").write_text(
        (ROOT / "inventories" / "local.yml")
        .read_text()
        .replace("{{ inventory_dir }}/../examples/mahavishnu", str(app))
    )
    modules = tmp_path / "modules.txt"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for name in ("READINESS_INVENTORY", "READINESS_STORE"):  # conftest sets a test store
        env.pop(name, None)
    with running_service(app) as (demo, _):
        res = subprocess.run(
            [sys.executable, "-c", _RUN_AND_LIST_MODULES, str(modules), str(BIN / "readiness")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert res.returncode == 1, res.stderr  # the example is deliberately NOT_READY somewhere
    assert "Total Checks: 8" in res.stdout and "Traceback" not in res.stderr
    assert f"process {demo.pid} environment" in res.stdout  # the demo was audited
    loaded = set(modules.read_text().split())
    # It did audit, report and record: the modules that do it are there.
    for needed in ("readiness.checks.environment", "readiness.report.text", "readiness.store.db"):
        assert needed in loaded, needed
    assert (tmp_path / "data" / "readiness" / "history.sqlite3").is_file()
    assert sorted(set(NOT_ON_THE_LOCAL_PATH) & loaded) == []


def test_invoke_imported_by_the_console_script_still_mocks_for_real() -> None:
    """The stand-in for unittest.mock lives only while invoke is imported: afterwards
    ``unittest.mock`` is the real module and ``MockContext`` wraps ``run`` in real mocks."""
    code = (
        "import sys, readiness.cli\n"
        "assert 'unittest.mock' not in sys.modules, 'imported after all'\n"
        "from unittest import mock\n"
        "from invoke import MockContext, Result\n"
        "c = MockContext(run={'true': Result('ok')})\n"
        "assert c.run('true').stdout == 'ok'\n"
        "assert isinstance(c.run, mock.Mock) and c.run.call_count == 1\n"
        "assert mock.Mock is sys.modules['unittest.mock'].Mock and mock.patch\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.stdout.strip() == "ok", res.stderr


def test_an_option_spec_is_shared_not_copied_when_invoke_copies_the_parser() -> None:
    """invoke deep-copies every task's arguments per parse; their specs are immutable."""
    import copy
    import dataclasses

    from readiness.options import option
    from readiness.tasks import ns

    spec = option("forks", "validate")
    assert copy.deepcopy(spec) is spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    (validate,) = (c for c in ns.to_contexts() if c.name == "validate")
    copied = copy.deepcopy(validate)
    assert copied.flags["--forks"] is not validate.flags["--forks"]
    assert copied.flags["--forks"].spec is validate.flags["--forks"].spec


@pytest.mark.timeout(120)
def test_invoke_caches_readiness_bytecode_unless_python_is_told_not_to(tmp_path: Path) -> None:
    """invoke turns bytecode caching off for its whole process; this repository's tasks.py
    turns it back on for what it imports (the tasks file itself stays uncached), unless
    PYTHONDONTWRITEBYTECODE says otherwise."""
    written = {}
    for told_not_to in (False, True):
        prefix = tmp_path / f"pycache-{told_not_to}"
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if told_not_to:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        res = subprocess.run(
            [str(BIN / "invoke"), "--search-root", str(ROOT), "checks"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert res.returncode == 0 and "monitoring" in res.stdout, res.stderr
        written[told_not_to] = {p.relative_to(prefix) for p in prefix.rglob("*.pyc")}
    here = ROOT.relative_to(ROOT.anchor)
    assert written[True] == set()
    assert any(p.parent == here / "readiness" / "checks" for p in written[False])
    assert any(
        p.parent == here / "readiness" and p.name.startswith("tasks.") for p in written[False]
    )
    assert not any(p.parent == here for p in written[False])  # the tasks file: invoke's choice
