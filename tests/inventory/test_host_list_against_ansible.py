"""``-i 'web1,web2:2222,'``: Ansible's comma-separated host list, read as ansible-core reads it.

readiness split such a value into file names ("inventory not found: web1"). Each case runs
the real ``ansible-console`` (which hosts, in what order) and ``ansible -m raw -vvv`` (where
its ssh logs in) on the same text, and the real ``readiness inventory``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.cli import run_cli

from .ansible_cli import connection_settings, console_hosts, require_ansible

CASES = [
    "web1,web2,",
    "web2, web1:2222 ,10.0.0.5,",
    "db.example.com,[::1]:2200,192.168.0.7:2022",
    "web1,",
    "web1:2200,web1:2300,web2",  # a host's first port counts
    "b,a,c,a",
]


@pytest.mark.parametrize("text", CASES)
def test_a_host_list_selects_and_reaches_what_ansible_does(tmp_path: Path, text: str) -> None:
    require_ansible()
    order = console_hosts(["-i", text], ["all"], tmp_path / "c")["all"]
    logins = connection_settings(["-i", text], tmp_path / "p")
    res = run_cli("inventory", "-i", text, "--hosts", "all", "--format", "json")
    assert res.returncode == 0, res.stderr
    ours = json.loads(res.stdout)["hosts"]
    assert [h["host"] for h in ours] == order
    for host in ours:
        theirs = logins[host["host"]]
        assert host["address"] == theirs["address"], (host, theirs)
        assert host["port"] == int(theirs.get("Port", 22)), (host, theirs)
        assert host["groups"] == ["ungrouped"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("prod.ini,stage.yml", "inventory not found: prod.ini"),  # a typo is no host
        ("web[1:2],", "'web[1:2]' is not a host address"),
        ("deploy@web1:2222,", "'deploy@web1:2222' is not a host address"),
    ],
)
def test_what_is_no_host_list_or_no_host_is_one_line_exit_2(
    tmp_path: Path, text: str, said: str
) -> None:
    res = run_cli("inventory", "-i", text, "--hosts", "all", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and said in res.stderr, res.stderr


def test_files_given_with_a_comma_are_still_sources(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[g]\nweb1\n", encoding="utf-8")
    (tmp_path / "b").write_text("[h]\nweb2\n", encoding="utf-8")
    res = run_cli("inventory", "-i", "a.ini,b", "--hosts", "all", "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [h["host"] for h in json.loads(res.stdout)["hosts"]] == ["web1", "web2"]
