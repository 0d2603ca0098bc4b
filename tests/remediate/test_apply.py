"""readiness.remediate.apply: an applier command that hangs dies with the applier."""

from __future__ import annotations

from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet
from readiness.remediate.apply import run_applier
from readiness.runner import RunOptions
from readiness.ssh import SshConnector

from ..services.sshd import wait_for_no_leftovers


def test_a_hung_migration_command_is_killed_when_the_applier_is_given_up_on(
    hostile_fleet: LoopbackFleet,
) -> None:
    options = RunOptions(known_hosts=str(hostile_fleet.known_hosts), ssh_config="")
    healthy = load_inventory(hostile_fleet.inventory).select("h0000")[0]
    transport = SshConnector(options).open(healthy)
    request = {
        "op": "apply",
        "changes": [
            {
                "kind": "run_command",
                "argv": ["sleep", "1000"],
                "cwd": str(hostile_fleet.hosts[0].app_root),
                "timeout_s": 1000,
            }
        ],
    }
    try:
        # at its deadline the applier stops the command, undoes the fix, and says so
        answer = run_applier(transport, request, timeout_s=1)
    finally:
        transport.close()
    assert answer["ok"] is False and answer["stopped"] is True, answer
    assert answer["error"] == "the applier stopped: its deadline passed", answer
    assert wait_for_no_leftovers(hostile_fleet) == {}


def test_the_controller_waits_as_long_as_the_applier_may_take_to_undo_a_stopped_fix() -> None:
    """The applier is host-side source (sent, never imported by the controller): the reserve
    the controller adds to its wait must be the one the applier gives an undo."""
    from readiness import applier
    from readiness.remediate import apply

    assert apply.RESTORE_RESERVE_S == applier.RESTORE_RESERVE_S
