"""``graceful_shutdown_drill``: one canary instance really gets SIGTERM, exits in time, and comes back.

Opt-in (``graceful_shutdown_drill.enabled``), and refused unless the profile lists at
least two instances of the service on the host: the probe's ``terminate`` op checks
on the host, just before signalling, that another instance is running, so the drill
never takes the service down. The canary gets SIGTERM; if it has not exited within
``thresholds.drill_grace_period_s`` it is killed (SIGKILL) and the check is
NOT_READY. Then the profile's restart argv runs (in its own session, output to a
file) and the probe waits up to ``thresholds.drill_restart_max_s`` for a new process.

"Exits cleanly" means: gone on its own within the grace period. A process's exit
status is only visible to its parent (or systemd), not to the probe.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._integration import argv_of, as_list, enabled_section, gate
from ._owned import code_paths

__all__ = ["DEFAULTS", "evaluate", "facts"]

NAME = "graceful_shutdown_drill"
FACT = f"{NAME}:terminate"

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        # Every instance on this host: [{name, pidfile | match}, ...]; at least two.
        "instances": [],
        "canary": None,  # name of the instance to drill
        "signal": "SIGTERM",
        "restart": None,  # {command: [argv], cwd: ., env: {}} run on the host after the exit
    },
    "thresholds": {"drill_grace_period_s": 30, "drill_restart_max_s": 60},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable on the canary host only (host vars) with graceful_shutdown_drill: {enabled: true, "
    "instances: [{name: web-1, pidfile: run/web-1.pid}, {name: web-2, pidfile: run/web-2.pid}], "
    "canary: web-1, restart: {command: [systemctl, start, mahavishnu@web-1]}}; "
    "see docs/checks/graceful_shutdown_drill.md"
)


def _instances(profile: Profile, cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in as_list(cfg.get("instances")):
        if isinstance(item, Mapping):
            out.append(
                {
                    "name": str(item.get("name") or ""),
                    "pidfile": profile.resolve(item.get("pidfile")),
                    "match": item.get("match"),
                }
            )
    return out


def _refusal(
    cfg: Mapping[str, Any],
    instances: list[dict[str, Any]],
    canary: dict[str, Any] | None,
    command: list[str],
    sig: Any,
) -> str | None:
    names = ", ".join(i["name"] for i in instances)
    reasons = (
        (
            len(instances) < 2,
            f"the profile lists {len(instances)} instance(s); the drill needs at least two so "
            "it never stops the only one",
        ),
        (canary is None, f"canary {cfg.get('canary')!r} is not one of the instances ({names})"),
        (
            canary is not None and not (canary["pidfile"] or canary["match"]),
            "the canary has neither pidfile nor match",
        ),
        (not command, "no restart command: the drill never stops what it cannot start again"),
        (not isinstance(sig, signal.Signals), f"unknown signal {cfg.get('signal')!r}"),
    )
    return next((why for bad, why in reasons if bad), None)


def _plan(profile: Profile) -> tuple[dict[str, Any] | None, str | None]:
    """The ``terminate`` request, or why the drill is refused (nothing is sent then)."""
    cfg = enabled_section(profile, NAME)
    if cfg is None:
        return None, None
    instances = _instances(profile, cfg)
    canary = next((i for i in instances if i["name"] == cfg.get("canary")), None)
    raw = cfg.get("restart")
    restart: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    command = argv_of(restart.get("command"))
    sig = getattr(signal, str(cfg.get("signal") or "SIGTERM").upper(), None)
    refused = _refusal(cfg, instances, canary, command, sig)
    if refused is not None or canary is None or not isinstance(sig, signal.Signals):
        return None, refused
    restart_max = float(profile.threshold("drill_restart_max_s"))
    cwd = profile.resolve(str(restart.get("cwd") or "."))
    # The code it names decides whose it is (docs/security.md, section 1); not the working
    # directory: a bare program name (systemctl) runs as the probe's user, it manages the
    # service.
    owned_by = code_paths(command, cwd or "/")
    return {
        "op": "terminate",
        "target": {"pidfile": canary["pidfile"], "match": canary["match"]},
        "others": [
            {"pidfile": i["pidfile"], "match": i["match"]} for i in instances if i is not canary
        ],
        "min_others": 1,
        "signal": int(sig),
        "grace": float(profile.threshold("drill_grace_period_s")),
        "kill_after": True,
        "restart": {
            "argv": command,
            "cwd": cwd,
            "owned_by": owned_by,
            "env": {str(k): str(v) for k, v in dict(restart.get("env") or {}).items()},
            "timeout": restart_max,
        },
        "restart_wait": restart_max,
    }, None


def facts(profile: Profile) -> FactSpecs:
    request, _ = _plan(profile)
    return {FACT: request} if request else {}


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    f = Findings()
    request, refused = _plan(ctx.profile)
    if request is None:
        f.fail(f"drill refused: {refused}", HOW)
        return f.outcome("", subject="Shutdown drill")
    fact = ctx.fact(FACT)
    grace = float(request["grace"])
    sig = signal.Signals(int(request["signal"])).name  # the profile's signal, not always TERM
    f.details.update(
        {
            "canary": ctx.profile[NAME].get("canary"),
            "pid": fact.get("pid"),
            "grace_period_s": grace,
        }
    )
    if fact.get("error"):
        f.fail(f"the drill could not run on the host: {fact['error']}")
    elif not fact.get("found"):
        f.fail(
            "canary instance is not running (pidfile/match found no live process)",
            "Start the canary instance, or fix its pidfile/match in the profile",
        )
    elif fact.get("foreign_pidfile"):
        # Not a shutdown problem: the probe would not signal a process on the word of a
        # pidfile whose writer does not own it (docs/security.md). Undetermined, never READY.
        f.unknown(
            f"drill not run: the canary's pidfile {fact['foreign_pidfile']} names process "
            f"{fact.get('pid')}, and {fact['refused']}; a process is only signalled when the "
            "pidfile's writer owns it (or root wrote the file), so graceful shutdown was not "
            "tested",
            "Have the service write its own pidfile (as the user it runs as) and make sure the "
            "file names the service's process, then rerun the drill",
        )
    elif fact.get("signal_denied"):
        # The audit account may not signal the app user's process: nothing was tested.
        f.unknown(
            f"drill not run: the canary was not signalled: {fact['signal_denied']}; graceful "
            "shutdown was not tested",
            "Rerun the drill with --sudo (or as the user the service runs as)",
        )
    elif fact.get("restart_refused"):
        f.unknown(
            f"drill not run: {fact['restart_refused']}; the canary was not stopped, so "
            "graceful shutdown was not tested",
            "Give the restart command to root (or use systemctl), or make the app user run "
            "the drill, then rerun it",
        )
    elif fact.get("refused"):
        f.fail(
            f"drill refused on the host: {fact['refused']}; stopping the canary would take the "
            "service down",
            "Start the other instances first, then rerun the drill",
        )
    else:
        _judge_exit(f, fact, grace, sig)
        _judge_restart(ctx, f, fact)
    return f.outcome(
        f"Canary exited {f.details.get('exit_s')}s after {sig} (grace {grace:g}s) and "
        f"restarted in {f.details.get('restart_s')}s (new pid {fact.get('new_pid')})",
        subject="Shutdown drill",
    )


def _judge_exit(f: Findings, fact: Mapping[str, Any], grace: float, sig: str) -> None:
    f.details.update(
        {
            "exit_s": fact.get("exit_s"),
            "exited_in_grace": bool(fact.get("exited")),
            "killed": bool(fact.get("killed")),
            "others_running": fact.get("others_running"),
        }
    )
    if not fact.get("exited"):
        after = (
            "it was then killed with SIGKILL" if fact.get("killed") else "and it is STILL running"
        )
        f.fail(
            f"canary did not exit within its grace period of {grace:g}s after {sig}; {after}",
            f"Handle {sig} in the service: stop accepting work, finish or checkpoint in-flight "
            "work, exit before the grace period (thresholds.drill_grace_period_s)",
        )


def _judge_restart(ctx: CheckContext, f: Findings, fact: Mapping[str, Any]) -> None:
    restart = fact.get("restart")
    if not isinstance(restart, Mapping):
        if not fact.get("killed") and not fact.get("exited"):
            f.fail("canary was not restarted because it could not be stopped")
        return
    limit = float(ctx.profile.threshold("drill_restart_max_s"))
    f.details.update({"restart_s": fact.get("restart_s"), "new_pid": fact.get("new_pid")})
    f.details["restart"] = {
        k: restart.get(k) for k in ("exit_code", "timed_out", "duration_s", "output", "error")
    }
    if not restart.get("started") or restart.get("exit_code") != 0 or restart.get("timed_out"):
        why = restart.get("error") or f"exit code {restart.get('exit_code')}"
        if restart.get("timed_out"):
            why = f"timed out after {limit:g}s"
        f.fail(
            f"restart command failed ({why}): the canary is DOWN",
            "Start the canary by hand now, then fix graceful_shutdown_drill.restart",
        )
    elif not fact.get("new_pid"):
        f.fail(
            f"restart command succeeded but no new canary process appeared within {limit:g}s",
            "Check the service's start-up logs; the canary may be down",
        )


register(
    NAME,
    title="Graceful shutdown drill",
    description=(
        "Opt-in: sends SIGTERM to one canary instance (never the only one), measures that it "
        "exits within its grace period, kills it otherwise, and restarts it with the profile's "
        "command."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "thresholds.drill_grace_period_s",
        "thresholds.drill_restart_max_s",
    ),
    aliases=("shutdown_drill",),
    order=210,
    opt_in=True,
)(evaluate)
