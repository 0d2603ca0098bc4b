"""Differential test: readiness reads every corpus inventory as ansible-core 2.19 does.

For each case under tests/inventory/corpus/ and each of its patterns (with and without
``--limit``), real Ansible runs as a subprocess (``ansible PATTERN --list-hosts`` and
``ansible-inventory --list``; never imported: it is GPL) from an empty directory with no
ansible.cfg, and readiness must select the same hosts in the same order, with the same
connection settings and the same value for every variable. Where readiness deliberately differs,
the case names the difference from ``differences.DIFFERENCES`` and the test asserts that it
really is that difference. Nothing is cached across runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.errors import InventoryError
from readiness.inventory import Inventory, load_inventory

from .ansible_cli import BIN, require_ansible, run_ansible
from .differences import DIFFERENCES

CORPUS = Path(__file__).parent / "corpus"
_POOL = 3  # parallel Ansible processes: the machine has 2 shared cores
# The first test waits for every Ansible call (~240 at ~0.35 s CPU each on 2 shared cores).
pytestmark = pytest.mark.timeout(900)  # ~70 s on an idle 2-core machine


@dataclass(frozen=True)
class Case:
    name: str
    files: Mapping[str, str]
    inventory: tuple[str, ...]
    patterns: tuple[tuple[str, str | None], ...]  # (pattern, limit)
    differences: Mapping[str, str] = field(default_factory=dict)  # "pattern|limit" -> key
    load_difference: str | None = None
    both_refuse: bool = False  # Ansible cannot load it either: readiness refuses it too
    any_order: bool = False  # Ansible's own order varies (sets from the 2nd level of children)
    executable: tuple[str, ...] = ()


def _cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.glob("*.yml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")):
            listed = [*raw.get("patterns", []), *raw.get("extra_patterns", [])]
            patterns = [(str(p), None) for p in listed]
            patterns += [(str(p), str(limit)) for p, limit in raw.get("limits", [])]
            if not patterns:
                patterns = [("all", None)]
            cases.append(
                Case(
                    name=f"{path.stem}/{raw['name']}",
                    files=raw["files"],
                    inventory=tuple(raw.get("inventory") or [next(iter(raw["files"]))]),
                    patterns=tuple(patterns),
                    differences=raw.get("differences", {}),
                    load_difference=raw.get("load_difference"),
                    both_refuse=raw.get("both_refuse", False),
                    any_order=raw.get("any_order", False),
                    executable=tuple(raw.get("executable", [])),
                )
            )
    return cases


CASES = _cases()


def _key(pattern: str, limit: str | None) -> str:
    return pattern if limit is None else f"{pattern}|{limit}"


@dataclass
class AnsibleAnswer:
    hostvars: dict[str, Any] | None  # None: ansible-inventory failed
    list_error: str
    hosts: dict[str, list[str] | str]  # pattern key -> hosts, or the error text


def _materialize(case: Case, root: Path) -> Path:
    base = root / case.name.replace("/", "__")
    for name, text in case.files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
            continue
        path.write_text(text, encoding="utf-8")
        if name in case.executable:
            path.chmod(0o755)
    return base


def _inventory_args(case: Case, base: Path) -> list[str]:
    args: list[str] = []
    for name in case.inventory:
        args += ["-i", str(base / name)]
    return args


def _list_hosts(case: Case, base: Path, home: Path, pattern: str, limit: str | None) -> Any:
    args = [str(BIN / "ansible"), pattern, *_inventory_args(case, base), "--list-hosts"]
    if limit is not None:
        args += ["--limit", _limit(limit, base)]
    done = run_ansible(args, home)
    if done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip()[-400:]}"
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("hosts ("))
    return [line.strip() for line in lines[start + 1 :] if line.strip()]


def _limit(limit: str | None, base: Path) -> str | None:
    """``@LIMIT`` in a case stands for its own limit.txt."""
    return None if limit is None else limit.replace("@LIMIT", f"@{base / 'limit.txt'}")


def _inventory_list(case: Case, base: Path, home: Path) -> tuple[dict[str, Any] | None, str]:
    done = run_ansible(
        [str(BIN / "ansible-inventory"), *_inventory_args(case, base), "--list"], home
    )
    if done.returncode != 0:
        return None, done.stderr.strip()[-400:]
    data = json.loads(done.stdout)
    hostvars = dict(data.get("_meta", {}).get("hostvars", {}))
    for name, group in data.items():
        for host in group.get("hosts", []) if name != "_meta" else []:
            hostvars.setdefault(host, {})  # every host, with or without variables
    return hostvars, ""


@pytest.fixture(scope="module")
def corpus_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="inv-corpus-") as root:
        yield Path(root)


@pytest.fixture(scope="module")
def ansible_answers(corpus_root: Path, request: pytest.FixtureRequest) -> dict[str, AnsibleAnswer]:
    """Every Ansible call of the selected cases, run once per test session in a small pool."""
    selected = {
        item.callspec.params["case"].name
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
    }
    require_ansible()
    answers: dict[str, AnsibleAnswer] = {}
    jobs = []
    with ThreadPoolExecutor(max_workers=_POOL) as pool:
        for index, case in enumerate(CASES):
            if case.name not in selected:
                continue
            base = _materialize(case, corpus_root / "cases")
            home = corpus_root / "home" / str(index)
            home.mkdir(parents=True)
            answers[case.name] = AnsibleAnswer(None, "", {})
            jobs.append((case.name, None, pool.submit(_inventory_list, case, base, home)))
            for pattern, limit in () if case.both_refuse else case.patterns:
                future = pool.submit(_list_hosts, case, base, home, pattern, limit)
                jobs.append((case.name, _key(pattern, limit), future))
        for name, key, future in jobs:
            if key is None:
                answers[name].hostvars, answers[name].list_error = future.result()
            else:
                answers[name].hosts[key] = future.result()
    return answers


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_readiness_reads_the_inventory_as_ansible(
    case: Case, ansible_answers: dict[str, AnsibleAnswer], corpus_root: Path
) -> None:
    answer = ansible_answers[case.name]
    base = corpus_root / "cases" / case.name.replace("/", "__")
    paths = [base / name for name in case.inventory]
    if case.both_refuse:
        assert answer.hostvars is None, "documented as refused by Ansible, but Ansible loads it"
        with pytest.raises(InventoryError):
            load_inventory(paths)
        return
    if case.load_difference:
        kind, _ = DIFFERENCES[case.load_difference]
        assert kind == "refused"
        assert answer.hostvars is not None, f"Ansible failed too: {answer.list_error}"
        with pytest.raises(InventoryError):
            load_inventory(paths)
        return
    assert answer.hostvars is not None, f"ansible-inventory failed: {answer.list_error}"
    inventory = load_inventory(paths)
    _compare_vars(inventory, answer.hostvars, case)
    for pattern, limit in case.patterns:
        expected = answer.hosts[_key(pattern, limit)]
        _compare_selection(
            inventory,
            case,
            pattern,
            _limit(limit, base),
            expected=expected,
            key=_key(pattern, limit),
        )


def _compare_vars(inventory: Inventory, hostvars: Mapping[str, Any], case: Case) -> None:
    differing = [key.split(":", 1)[1] for key in case.differences if key.startswith("vars:")]
    for key in case.differences:
        if key.startswith("vars:"):
            assert DIFFERENCES[case.differences[key]][0] == "value", key
    for name, host in inventory.hosts.items():
        expected = _plain(hostvars.get(name, {}))
        actual = _plain(dict(host.vars))
        for variable in differing:
            if variable in expected or variable in actual:
                assert expected.get(variable) != actual.get(variable), (
                    f"{variable} of {name} is documented as a difference, but readiness agrees"
                )
                expected.pop(variable, None)
                actual.pop(variable, None)
        assert actual == expected, f"variables of {name}"
        if not host.local:
            # Ansible's ssh connection uses the ansible_ssh_* spelling when both are set
            address = expected.get("ansible_ssh_host", expected.get("ansible_host", name))
            port = expected.get("ansible_ssh_port", expected.get("ansible_port", 22))
            user = expected.get("ansible_ssh_user", expected.get("ansible_user"))
            assert (host.address, host.port, host.user) == (str(address), int(port), user), name
    assert set(hostvars) == set(inventory.hosts), "the inventory's hosts"


def _compare_selection(
    inventory: Inventory, case: Case, pattern: str, limit: str | None, *, expected: Any, key: str
) -> None:
    label = f"pattern {pattern!r}" + (f" --limit {limit!r}" if limit else "")
    assert not isinstance(expected, str), f"Ansible failed on {label}: {expected}"
    difference = case.differences.get(key)
    try:
        actual = [host.name for host in inventory.select(pattern, limit=limit)]
    except InventoryError as exc:
        if difference is None and not expected:
            difference = "unmatched-term"  # Ansible selects nothing; readiness says so
        assert difference is not None, f"{label}: readiness refused ({exc}), Ansible: {expected}"
        assert DIFFERENCES[difference][0] == "refused", label
        return
    assert difference is None, f"{label}: documented as {difference!r} but readiness agrees"
    if case.any_order:
        assert sorted(actual) == sorted(expected), label
    else:
        assert actual == expected, label


def test_the_corpus_is_large_and_every_difference_is_documented() -> None:
    assert len(CASES) >= 60
    used = {key for case in CASES for key in case.differences.values()}
    used |= {case.load_difference for case in CASES if case.load_difference}
    assert used <= set(DIFFERENCES)
    assert {key for key, (kind, _) in DIFFERENCES.items()} <= used | set(), (
        "every documented difference must be exercised by the corpus"
    )


_SAMPLE_NAMES = (
    "ini/basic-groups",
    "ini/children-declared-later",
    "yaml/nested-groups",
    "yaml/host-order-across-groups",
    "patterns/slices",
    "patterns/limit-from-file",
    "dirs/directory-of-files",
)
SAMPLE = [case for case in CASES if case.name in _SAMPLE_NAMES]


@pytest.mark.parametrize("case", SAMPLE, ids=[case.name for case in SAMPLE])
def test_the_readiness_inventory_command_selects_what_ansible_selects(
    case: Case, ansible_answers: dict[str, AnsibleAnswer], corpus_root: Path, tmp_path: Path
) -> None:
    base = corpus_root / "cases" / case.name.replace("/", "__")
    pattern, limit = case.patterns[-1]
    args = [str(BIN / "readiness"), "inventory", "--hosts", pattern, "--format", "json"]
    args += ["-i", str(base / case.inventory[0])]
    if limit is not None:
        args += ["--limit", str(_limit(limit, base))]
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("READINESS_INVENTORY", None)
    done = subprocess.run(
        args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    expected = ansible_answers[case.name].hosts[_key(pattern, limit)]
    assert done.returncode == 0, done.stderr
    assert [host["host"] for host in json.loads(done.stdout)["hosts"]] == expected
