"""Generated differential test: random valid inventories and patterns, read by real Ansible and
by readiness, must give the same hosts in the same order, the same variables and the same
connection settings.

Each seed makes one case (tests/inventory/generator.py): INI, YAML, directories and several
``-i`` sources, ranges with strides and letters, ``host:port`` and IPv6, group_vars/host_vars
files and directories, priorities, typed values, and ~16 patterns plus one or two limits
(``@file`` too). Ansible runs as subprocesses only (it is GPL, never imported):

- ``ansible-inventory --list``: every host's merged variables and every group's members;
- ``ansible-console`` (``cd PATTERN`` + ``list`` per pattern, one process per case and limit):
  the hosts ``ansible PATTERN --list-hosts`` selects, in Ansible's order;
- ``ansible all -m raw -vvv`` with ``/bin/false`` as ssh: the address, port, user and key
  file Ansible's ssh connection would use (nothing reaches the network).

Where Ansible's own order is not fixed (two groups of one level both bring children: Ansible
walks them as a set), the hosts are compared as a set. Where readiness refuses a pattern, the
refusal must be a documented one: Ansible selects nothing, or a term of the pattern matches
nothing in Ansible (``unmatched-term``, ``subscript`` in differences.py).

``READINESS_INVENTORY_SEED=N`` starts the seeds at N (to explore further); CI runs the fixed set.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from readiness.api import plan
from readiness.errors import InventoryError
from readiness.inventory import Inventory, load_inventory
from tests.services.cli import ROOT, run_cli

from .ansible_cli import (
    BIN,
    connection_settings,
    console_hosts,
    require_ansible,
    run_ansible,
)
from .generator import GenCase, Generator, _terms

_FIRST_SEED = int(os.environ.get("READINESS_INVENTORY_SEED", "1000"))
_CASES = 14
SEEDS = list(range(_FIRST_SEED, _FIRST_SEED + _CASES))
_POOL = 3  # parallel Ansible processes: the machine has 2 shared cores
pytestmark = pytest.mark.timeout(600)


@dataclass
class Answers:
    hostvars: dict[str, Any]
    groups: dict[str, Any]
    hosts: dict[str, list[str] | str]  # pattern (no limit) -> hosts or error
    limited: list[dict[str, list[str] | str]]  # per limit: pattern -> hosts or error
    connections: dict[str, dict[str, str]]
    home: Path


@dataclass
class Tally:
    exact: int = 0
    as_set: int = 0
    refused: int = 0
    hosts: int = 0
    notes: list[str] = field(default_factory=list)


def _write(case: GenCase, base: Path) -> None:
    for name, text in case.files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _limit(limit: str, base: Path) -> str:
    return limit.replace("@LIMIT", f"@{base / 'limit.txt'}")


def _limit_terms(case: GenCase, limit: str, base: Path) -> list[str]:
    terms: list[str] = []
    for term in _terms(limit) if "," in limit or ":" in limit else [limit]:
        if term.startswith("@"):
            text = (base / "limit.txt").read_text(encoding="utf-8")
            terms += [line.strip() for line in text.splitlines() if line.strip()]
        else:
            terms.append(term)
    return terms


def _bare_terms(case: GenCase, base: Path) -> list[str]:
    """Every term of every pattern and limit, without & or !: asked of Ansible alone, so a
    refusal by readiness can be checked against what Ansible makes of each term."""
    terms = [t for p in case.patterns for t in _terms(p)]
    terms += [t for limit, patterns in case.limits for p in patterns for t in _terms(p)]
    terms += [t for limit, _ in case.limits for t in _limit_terms(case, limit, base)]
    # 'TERM,' is split on the comma alone, as the term is inside a pattern with commas
    return [f"{t.lstrip('&!')}," for t in terms if t.lstrip("&!")]


def _ask_ansible(
    case: GenCase, base: Path, home: Path, pool: ThreadPoolExecutor
) -> Callable[[], Answers]:
    """Submits every Ansible call of a case to ``pool``; the returned function collects them."""
    inventory = [arg for path in case.inventory for arg in ("-i", str(base / path))]

    def inventory_list() -> tuple[dict[str, Any], dict[str, Any]]:
        done = run_ansible([str(BIN / "ansible-inventory"), *inventory, "--list"], home / "l")
        assert done.returncode == 0, f"seed {case.seed}: ansible-inventory: {done.stderr[-600:]}"
        data = json.loads(done.stdout)
        hostvars = dict(data.pop("_meta", {}).get("hostvars", {}))
        return hostvars, data

    unlimited = [*case.patterns, *_bare_terms(case, base)]
    jobs = {
        "list": pool.submit(inventory_list),
        "hosts": pool.submit(console_hosts, inventory, unlimited, home / "c"),
        "connections": pool.submit(connection_settings, inventory, home / "p"),
    }
    for index, (limit, patterns) in enumerate(case.limits):
        jobs[f"limit{index}"] = pool.submit(
            console_hosts, inventory, patterns, home / f"c{index}", _limit(limit, base)
        )

    def gather() -> Answers:
        hostvars, groups = jobs["list"].result()
        return Answers(
            hostvars=hostvars,
            groups=groups,
            hosts=jobs["hosts"].result(),
            limited=[jobs[f"limit{index}"].result() for index in range(len(case.limits))],
            connections=jobs["connections"].result(),
            home=home,
        )

    return gather


@pytest.fixture(scope="module")
def generated(request: pytest.FixtureRequest) -> Iterator[dict[int, tuple[GenCase, Path, Answers]]]:
    require_ansible()
    selected = {
        item.callspec.params["seed"]
        for item in request.session.items
        if hasattr(item, "callspec") and "seed" in item.callspec.params
    }
    with tempfile.TemporaryDirectory(prefix="inv-generated-") as root:
        cases = {seed: Generator(seed).case() for seed in SEEDS if seed in selected}
        bases = {seed: Path(root) / str(seed) for seed in cases}
        for seed, case in cases.items():
            _write(case, bases[seed])
        with ThreadPoolExecutor(_POOL) as pool:
            gathers = {
                s: _ask_ansible(cases[s], bases[s], Path(root) / f"home{s}", pool) for s in cases
            }
            answers = {seed: gather() for seed, gather in gathers.items()}
        yield {seed: (cases[seed], bases[seed], answers[seed]) for seed in cases}
        print(f"\n{_summary()}")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _ansible_plain(value: Any) -> Any:
    """ansible-inventory's JSON with its !unsafe wrapper taken off: the value is the string
    (readiness templates nothing, so every string is as safe as Ansible's !unsafe ones)."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return _ansible_plain(value["__ansible_unsafe"])
        return {key: _ansible_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_ansible_plain(item) for item in value]
    return value


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_inventory_reads_as_ansible_reads_it(
    seed: int, generated: dict[int, tuple[GenCase, Path, Answers]]
) -> None:
    case, base, answers = generated[seed]
    inventory = load_inventory([base / path for path in case.inventory])
    tally = Tally()
    _compare_vars(inventory, answers, seed)
    _compare_groups(inventory, answers, seed)
    _compare_connections(inventory, answers, seed)
    selections = _Selections(inventory, case, base, answers, tally)
    for pattern in case.patterns:
        selections.compare(pattern, None)
    for index, (limit, patterns) in enumerate(case.limits):
        for pattern in patterns:
            selections.compare(pattern, (index, limit))
    _compare_plans(case, base, answers)
    # a floor, so that a change to the generator cannot quietly compare almost nothing
    assert tally.exact >= 5, f"seed {seed}: only {tally.exact} patterns compared in order"
    _TALLIES[seed] = tally


_TALLIES: dict[int, Tally] = {}


def _reason(message: str) -> str:
    for reason in ("unknown host or group", "selects no hosts", "out of range"):
        if reason in message:
            return reason
    return message


def _summary() -> str:
    """The numbers behind the generated test (printed at the end of the module with -s)."""
    tallies = _TALLIES.values()
    reasons = Counter(note for tally in tallies for note in tally.notes)
    return (
        f"generated inventories: {len(_TALLIES)} cases, {sum(t.hosts for t in tallies)} hosts "
        f"selected; patterns: {sum(t.exact for t in tallies)} compared in order, "
        f"{sum(t.as_set for t in tallies)} as sets, {sum(t.refused for t in tallies)} refused "
        f"as documented {dict(reasons)}"
    )


def _compare_vars(inventory: Inventory, answers: Answers, seed: int) -> None:
    assert set(inventory.hosts) == set(answers.hostvars) | _hosts_in(answers.groups), (
        f"seed {seed}: the inventory's hosts"
    )
    for name, host in inventory.hosts.items():
        expected = _ansible_plain(_plain(answers.hostvars.get(name, {})))
        assert _plain(dict(host.vars)) == expected, f"seed {seed}: variables of {name}"


def _hosts_in(groups: Mapping[str, Any]) -> set[str]:
    return {host for group in groups.values() for host in group.get("hosts", [])}


def _compare_groups(inventory: Inventory, answers: Answers, seed: int) -> None:
    for name, body in answers.groups.items():
        group = inventory.groups[name]
        if name == "all":  # ansible-inventory lists the hosts of 'all' under 'ungrouped'
            assert set(group.children) == set(body.get("children", [])), f"seed {seed}: all"
            continue
        assert list(group.hosts) == list(body.get("hosts", [])), f"seed {seed}: hosts of {name}"
        assert set(group.children) == set(body.get("children", [])), (
            f"seed {seed}: children of {name}"
        )
    for name, group in inventory.groups.items():
        if group.hosts or group.children:
            assert name in answers.groups, f"seed {seed}: group {name} unknown to Ansible"


def _compare_connections(inventory: Inventory, answers: Answers, seed: int) -> None:
    home = str(answers.home / "p")
    for name, host in inventory.hosts.items():
        used = answers.connections.get(name)
        assert used is not None, f"seed {seed}: Ansible logged no ssh command for {name}"
        key = used.get("IdentityFile")
        if key is not None and key.startswith(home + "/"):
            key = str(Path.home()) + key[len(home) :]
        actual = (host.address, host.port, host.user, host.key_file)
        expected = (used["address"], int(used.get("Port", 22)), used.get("User"), key)
        assert actual == expected, f"seed {seed}: connection of {name} (address, port, user, key)"


@dataclass
class _Selections:
    """Compares what one case's patterns select, and counts how each was compared."""

    inventory: Inventory
    case: GenCase
    base: Path
    answers: Answers
    tally: Tally

    def compare(self, pattern: str, limited: tuple[int, str] | None) -> None:
        limit = limited[1] if limited else None
        answers = self.answers
        expected = answers.limited[limited[0]][pattern] if limited else answers.hosts[pattern]
        label = f"seed {self.case.seed}: pattern {pattern!r}"
        label += f" --limit {limit!r}" if limit else ""
        try:
            selected = self.inventory.select(pattern, _limit(limit, self.base) if limit else None)
        except InventoryError as exc:
            self._check_refusal(pattern, limit, expected, f"{label}: {exc}")
            self.tally.refused += 1
            self.tally.notes.append(_reason(str(exc)))
            return
        actual = [host.name for host in selected]
        assert not isinstance(expected, str), f"{label}: Ansible failed ({expected}): {actual}"
        if self.case.exact_order(pattern):
            assert actual == expected, label
            self.tally.exact += 1
        else:
            assert sorted(actual) == sorted(expected), label
            self.tally.as_set += 1
        self.tally.hosts += len(actual)

    def _check_refusal(
        self, pattern: str, limit: str | None, expected: list[str] | str, label: str
    ) -> None:
        """readiness may refuse only where Ansible selects nothing or fails, or where a term
        matches nothing in Ansible (documented: unmatched-term, subscript)."""
        if isinstance(expected, str) or not expected:
            return
        terms = [t.lstrip("&!") for t in _terms(pattern)]
        if limit is not None:
            terms += [t.lstrip("&!") for t in _limit_terms(self.case, limit, self.base)]
        answered = [self.answers.hosts.get(f"{term},") for term in terms if term]
        empty = [answer for answer in answered if not answer or isinstance(answer, str)]
        assert empty, f"{label}; Ansible selects {expected} and every term matches hosts"


def _answered(
    case: GenCase, answers: Answers
) -> list[tuple[str, tuple[int, str] | None, list[str]]]:
    """(pattern, limit, Ansible's hosts) for every pattern Ansible answers with hosts in a
    fixed order, limited ones first."""
    found: list[tuple[str, tuple[int, str] | None, list[str]]] = []
    for index, (limit, patterns) in enumerate(case.limits):
        for pattern in patterns:
            hosts = answers.limited[index][pattern]
            if hosts and not isinstance(hosts, str) and case.exact_order(pattern):
                found.append((pattern, (index, limit), hosts))
    for pattern in case.patterns:
        hosts = answers.hosts[pattern]
        if hosts and not isinstance(hosts, str) and case.exact_order(pattern):
            found.append((pattern, None, hosts))
    return found


def _accepted(
    case: GenCase, base: Path, answers: Answers
) -> list[tuple[str, str | None, list[str]]]:
    """The answered patterns readiness selects too (it refuses some, as documented)."""
    inventory = load_inventory([base / path for path in case.inventory])
    accepted: list[tuple[str, str | None, list[str]]] = []
    for pattern, limited, hosts in _answered(case, answers):
        limit = _limit(limited[1], base) if limited else None
        try:
            inventory.select(pattern, limit)
        except InventoryError:
            continue
        accepted.append((pattern, limit, hosts))
    return accepted


def _compare_plans(case: GenCase, base: Path, answers: Answers) -> None:
    """The plan step of validate, the suites and remediate selects the same hosts."""
    paths = [str(base / path) for path in case.inventory]
    for pattern, limit, expected in _accepted(case, base, answers)[:5]:
        planned = plan(pattern, inventory=paths, limit=limit, checks=[])
        assert [host.name for host in planned.hosts] == expected, f"seed {case.seed}: plan"


# cases with one source, a directory and two sources (given as -i A -i B, as to Ansible)
_CLI_SEEDS = [
    next(seed for seed in SEEDS if len(Generator(seed).case().inventory) == 2),
    *(seed for seed in SEEDS[:2]),
]


@pytest.mark.parametrize("tool", ["readiness", "invoke"])
@pytest.mark.parametrize("seed", _CLI_SEEDS)
def test_the_inventory_command_selects_what_ansible_selects(
    seed: int, tool: str, generated: dict[int, tuple[GenCase, Path, Answers]], tmp_path: Path
) -> None:
    """Through the command a user types: ``readiness inventory --hosts P -i A -i B --limit L``
    (and ``invoke inventory`` from the project), hosts in Ansible's order."""
    case, base, answers = generated[seed]
    pattern, limit, expected = _accepted(case, base, answers)[0]
    sources = [arg for path in case.inventory for arg in ("-i", str(base / path))]
    args = ["inventory", "--hosts", pattern, *sources, "--format", "json"]
    args += ["--limit", limit] if limit else []
    env = {key: value for key, value in os.environ.items() if key != "READINESS_INVENTORY"}
    done = run_cli(*args, tool=tool, env=env, cwd=ROOT if tool == "invoke" else tmp_path)
    assert done.returncode == 0, done.stderr
    assert [host["host"] for host in json.loads(done.stdout)["hosts"]] == expected
