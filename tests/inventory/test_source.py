"""{{ inventory_dir }} / {{ inventory_file }} substitution; other values kept verbatim."""

from __future__ import annotations

from pathlib import Path

from readiness.inventory import load_inventory

from .helpers import load_text, write

# --------------------------------------------------------------------------- substitution


def test_inventory_dir_and_inventory_file_are_substituted(tmp_path: Path) -> None:
    inventory_file = write(
        tmp_path,
        "inventories/local.yml",
        """
        all:
          hosts:
            local:
              readiness:
                app_root: "{{ inventory_dir }}/../examples/app"
                required_env: ["{{inventory_file}}"]
        """,
    )
    profile = load_inventory(inventory_file).hosts["local"].profile_vars
    assert profile["app_root"] == f"{inventory_file.parent.resolve()}/../examples/app"
    assert profile["required_env"] == [str(inventory_file.resolve())]


def test_inventory_dir_in_ini_and_group_vars_files(tmp_path: Path) -> None:
    inventory_file = write(tmp_path, "hosts.ini", 'app conf="{{ inventory_dir }}/app.conf"\n')
    write(tmp_path, "group_vars/all.yml", "data: '{{ inventory_dir }}/data'\n")
    app = load_inventory(inventory_file).hosts["app"]
    assert app.vars["conf"] == f"{tmp_path.resolve()}/app.conf"
    assert app.vars["data"] == f"{tmp_path.resolve()}/data"


def test_other_templates_are_left_verbatim(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "inv.yml",
        "all:\n  hosts:\n    h1: {home: '{{ ansible_env.HOME }}', x: '{{ lookup(\"pipe\", \"id\") }}'}\n",
    )
    assert inventory.hosts["h1"].vars["home"] == "{{ ansible_env.HOME }}"
    assert inventory.hosts["h1"].vars["x"] == '{{ lookup("pipe", "id") }}'


def test_shell_metacharacters_are_kept_verbatim_as_data(tmp_path: Path) -> None:
    payload = "$(touch pwned); `id` | rm -rf / && echo $HOME > /tmp/x"
    yml = load_text(tmp_path, "inv.yml", f"all:\n  hosts:\n    h1:\n      cmd: '{payload}'\n")
    ini = load_text(tmp_path, "hosts.ini", f'h1 cmd="{payload}" bare=$(id);ls glob=*\n')
    assert yml.hosts["h1"].vars["cmd"] == payload
    assert ini.hosts["h1"].vars["cmd"] == payload
    assert ini.hosts["h1"].vars["bare"] == "$(id);ls"
    assert ini.hosts["h1"].vars["glob"] == "*"
    assert not (tmp_path / "pwned").exists()
