"""The small YAML fleet most inventory tests read."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.inventory import Inventory, load_inventory

from .helpers import write

FLEET_YAML = """
all:
  vars:
    env: prod
  hosts:
    bastion:
  children:
    web:
      hosts:
        web01: {ansible_host: 10.0.0.11}
        web02: {ansible_host: 10.0.0.12}
      children:
        canary:
          hosts:
            web01:
    db:
      hosts:
        db1: {ansible_host: 10.0.1.1, ansible_port: 2200, ansible_user: pg}
        db2: {ansible_host: 10.0.1.2}
    staging:
      hosts:
        web02:
        db2:
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Inventory:
    return load_inventory(write(tmp_path, "fleet.yml", FLEET_YAML))
