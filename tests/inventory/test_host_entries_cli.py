"""Host entries, ports and subscripts through ``readiness inventory``, as a user runs it:
what Ansible reads as something else is refused in one line (exit 2), never a traceback and
never another host or port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.cli import run_cli

from .helpers import write

_LONG = "9" * 5000  # more digits than int() converts (4300): a ValueError, not a number


def _inventory(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("inventory", *args, "--format", "json", cwd=tmp_path)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("port.ini", "[web]\nw1 ansible_port=²\n", "invalid port '²'"),
        ("entry.ini", "[web]\nw1:²\n", "invalid port in host 'w1:²'"),
        ("range.ini", "[web]\nw[²:3]\n", "invalid host range [²:3]"),
        ("prio.ini", "[web]\nw1\n[web:vars]\nansible_group_priority=²\n", "must be an integer"),
        ("long.ini", f"[web]\nw1:{_LONG}\n", "invalid port in host"),
        ("longrange.ini", f"[web]\nw[0:{_LONG}]\n", "invalid host range"),
        ("long.yml", f"all:\n  hosts:\n    w1:\n      ansible_port: '{_LONG}'\n", "invalid port"),
    ],
)
def test_a_number_int_cannot_read_is_one_line_and_exit_2(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    """'²' is a digit to str.isdigit() but not to int(), and int() refuses more than 4300
    digits: both were a ValueError traceback (exit 1) from readiness inventory/validate."""
    write(tmp_path, name, text)
    code, _, stderr = _inventory(tmp_path, "-i", name)
    assert code == 2, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_subscript_too_long_for_int_is_out_of_range(tmp_path: Path) -> None:
    write(tmp_path, "inv.ini", "[web]\nw1\nw2\n")
    code, _, stderr = _inventory(tmp_path, "-i", "inv.ini", "--hosts", f"web[{_LONG}]")
    assert code == 2, stderr
    assert "out of range" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "entry", ["deploy@web1:2222", "web1.example.com.:2222", "web_:2222", "web[:2]:2222"]
)
def test_a_port_after_a_name_ansible_does_not_read_as_a_host_is_refused(
    tmp_path: Path, entry: str
) -> None:
    """Ansible reads 'NAME:PORT' as a port only when NAME is a valid host name or address;
    otherwise the whole text is one host's name (and address). readiness used to log in to
    NAME on PORT: another host name, and a port Ansible never uses."""
    write(tmp_path, "inv.ini", f"[web]\n{entry}\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.ini")
    assert code == 2, stdout
    assert f"invalid host '{entry}'" in stderr
    assert "set ansible_port" in stderr


def test_a_bracketed_host_name_with_a_port_is_read_as_ansible_reads_it(tmp_path: Path) -> None:
    """'[web1]:2222' is web1 on port 2222 to Ansible; readiness refused it as a bad range."""
    write(tmp_path, "inv.ini", "[web]\n[web1]:2222\n[fe80::[1:2]]:2200\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.ini")
    assert code == 0, stderr
    hosts = [(h["host"], h["address"], h["port"]) for h in json.loads(stdout)["hosts"]]
    assert hosts == [
        ("web1", "web1", 2222),
        ("fe80::1", "fe80::1", 2200),
        ("fe80::2", "fe80::2", 2200),
    ]


def test_a_subscript_in_other_digits_is_a_glob_as_in_ansible(tmp_path: Path) -> None:
    """Ansible reads a subscript in ASCII digits only: 'web[１]' (a fullwidth 1) is a glob that
    matches no host here, so readiness refuses it; it used to select web's second host."""
    write(tmp_path, "inv.ini", "[web]\nw0\nw1\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.ini", "--hosts", "web[１]")
    assert code == 2, stdout
    assert "unknown host or group 'web[１]'" in stderr
    code, stdout, _ = _inventory(tmp_path, "-i", "inv.ini", "--hosts", "web[1]")
    assert [h["host"] for h in json.loads(stdout)["hosts"]] == ["w1"]


@pytest.mark.parametrize(
    "variables",
    [
        "ansible_host: ''",
        "ansible_ssh_host: ''\n      ansible_host: 10.0.0.5",
        "readiness_host: ' '",
    ],
)
def test_an_empty_address_is_refused_not_replaced_by_the_name(
    tmp_path: Path, variables: str
) -> None:
    """Ansible's ssh connects to an empty ansible_host ('', and fails); readiness logged in
    to the inventory name instead, another machine than the inventory says (with
    ansible_ssh_host: '' beside ansible_host: 10.0.0.5, to 'box' rather than 10.0.0.5)."""
    write(tmp_path, "inv.yml", f"all:\n  hosts:\n    box:\n      {variables}\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 2, stdout
    assert "host 'box':" in stderr
    assert "is empty" in stderr


def test_an_empty_address_of_a_local_host_is_no_address(tmp_path: Path) -> None:
    write(
        tmp_path,
        "inv.yml",
        "all:\n  hosts:\n    box: {ansible_connection: local, ansible_host: ''}\n",
    )
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 0, stderr
    assert [(h["host"], h["local"]) for h in json.loads(stdout)["hosts"]] == [("box", True)]


@pytest.mark.parametrize(
    "text",
    [
        '[web]\nw1 ansible_password="{[]: 1}"\n',
        "[web]\nw1\n[web:vars]\nx={[]: 1}\n",
        "[web]\nw1\n[web:vars]\nx=1" + "+1" * 20000 + "\n",
    ],
)
def test_an_ini_literal_ansible_cannot_build_is_refused(tmp_path: Path, text: str) -> None:
    """Ansible keeps an INI value as text only when ast.literal_eval raises ValueError or
    SyntaxError; '{[]: 1}' (unhashable) or a too deep sum fails its load. readiness loaded
    it as a string: an inventory Ansible refuses."""
    write(tmp_path, "inv.ini", text)
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.ini")
    assert code == 2, stdout
    assert "cannot be built" in stderr
    assert "[]: 1" not in stderr  # a value is never quoted: it may be a password


def test_a_port_in_ssh_args_int_cannot_read_stops_the_inventory(tmp_path: Path) -> None:
    """'-p ²' in ansible_ssh_common_args passed str.isdigit() and crashed int(): readiness
    inventory was a traceback, validate an internal error. ssh refuses such a port, so
    the load stops as ssh would (as for ansible_port: abc): one line, exit 2; '-p 0022'
    is ssh's port 22."""
    write(tmp_path, "inv.yml", "all:\n  hosts:\n    w1:\n      ansible_ssh_common_args: '-p ²'\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 2, stdout
    assert stderr.strip().splitlines() == [
        "readiness: inv.yml:3: host 'w1': ansible_ssh_common_args: -p '²' is not a port number "
        "(ssh refuses it)"
    ]
    write(tmp_path, "inv.yml", "all:\n  hosts:\n    w2:\n      ansible_ssh_args: '-p 0022'\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 0, stderr
    ssh = {host["host"]: host["ssh"] for host in json.loads(stdout)["hosts"]}
    assert ssh["w2"]["port"] == 22


def test_a_templated_address_is_shown_as_not_connected(tmp_path: Path) -> None:
    """readiness inventory showed 'root@{{ inventory_hostname }}.example.com:22' as the ssh
    login, the text Ansible renders before it connects."""
    write(
        tmp_path,
        "inv.yml",
        "all:\n  hosts:\n    w1:\n      ansible_host: '{{ inventory_hostname }}.example.com'\n"
        "    w2:\n      ansible_host: '{{ x }}'\n      readiness_host: 127.0.0.2\n",
    )
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 0, stderr
    ssh = {host["host"]: host["ssh"] for host in json.loads(stdout)["hosts"]}
    assert "is a Jinja template" in ssh["w1"]["error"]
    assert ssh["w2"]["address"] == "127.0.0.2"  # readiness_host is read first, as written


def test_a_templated_port_says_it_is_a_template_and_readiness_port_wins(tmp_path: Path) -> None:
    """A port that is a Jinja template was 'invalid port' with no word of why."""
    write(tmp_path, "inv.ini", "[g]\nw1 ansible_port='{{ p }}'\n")
    code, _, stderr = _inventory(tmp_path, "-i", "inv.ini", "--hosts", "all")
    assert code == 2, stderr
    assert "invalid port '{{ p }}': a Jinja template, which readiness does not render" in stderr
    write(tmp_path, "ok.ini", "[g]\nw1 ansible_port='{{ p }}' readiness_port=2222\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "ok.ini", "--hosts", "all")
    assert code == 0, stderr
    assert json.loads(stdout)["hosts"][0]["port"] == 2222


_VAULTED = (
    "$ANSIBLE_VAULT;1.1;AES256\n"
    "62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"
    "6435613865366136636530316566643965303536393035360a333130323735396366373033613538\n"
)


@pytest.mark.parametrize("name", ["hosts", "inv.ini", "group_vars/all/vault", "host_vars/w1.yml"])
def test_a_file_encrypted_with_ansible_vault_is_refused_by_name(tmp_path: Path, name: str) -> None:
    """An ansible-vault encrypted INI inventory was read as three hosts named
    '$ANSIBLE_VAULT;1.1;AES256' and two hex strings (validate logged in to those names);
    an encrypted vars file was 'must hold a mapping'. Ansible decrypts them (or fails
    without a vault password); readiness never decrypts: it says so, exit 2."""
    if "/" in name:
        write(tmp_path, "hosts", "[web]\nw1\n")
    write(tmp_path, name, _VAULTED)
    code, stdout, stderr = _inventory(tmp_path, "-i", "hosts" if "/" in name else name)
    assert code == 2, stdout
    assert f"{name}:1: encrypted with Ansible Vault" in stderr


def test_ansible_fully_qualified_connection_names_are_read_as_ansible_reads_them(
    tmp_path: Path,
) -> None:
    """ansible_connection: ansible.builtin.local (or ansible.legacy.local) runs on the
    controller in Ansible; readiness reported such a host 'not connected: uses
    ansible_connection=ansible.builtin.local'. ansible.legacy.ssh is ssh."""
    write(
        tmp_path,
        "inv.yml",
        "all:\n  hosts:\n    a: {ansible_connection: ansible.builtin.local}\n"
        "    b: {ansible_connection: ansible.legacy.local}\n"
        "    c: {ansible_connection: ansible.legacy.ssh, ansible_host: 127.0.0.1}\n",
    )
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml")
    assert code == 0, stderr
    hosts = {host["host"]: host for host in json.loads(stdout)["hosts"]}
    assert hosts["a"]["local"] and hosts["b"]["local"]
    assert hosts["a"]["ssh"] is None and hosts["b"]["ssh"] is None
    assert not hosts["c"]["local"]
    assert hosts["c"]["ssh"]["address"] == "127.0.0.1"


def test_a_host_named_local_with_an_ssh_connection_is_not_the_controller(tmp_path: Path) -> None:
    """A host named 'local' is the controller by readiness's convention, but one whose
    ansible_connection is ssh (or docker) is reached as that says, by Ansible: readiness
    audited the controller in its place."""
    write(
        tmp_path,
        "inv.yml",
        "all:\n  hosts:\n    local: {ansible_connection: ssh, ansible_host: 127.0.0.9}\n",
    )
    code, stdout, stderr = _inventory(tmp_path, "-i", "inv.yml", "--hosts", "local")
    assert code == 0, stderr
    [host] = json.loads(stdout)["hosts"]
    assert not host["local"]
    assert host["ssh"]["address"] == "127.0.0.9"
    write(tmp_path, "bare.yml", "all:\n  hosts:\n    local: {}\n")
    code, stdout, stderr = _inventory(tmp_path, "-i", "bare.yml", "--hosts", "local")
    assert [h["local"] for h in json.loads(stdout)["hosts"]] == [True]
