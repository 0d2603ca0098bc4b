"""``graceful_shutdown``: the running service catches SIGTERM/SIGINT, and its unit stops it gently.

Signal handling is read, not guessed: the probe's ``process`` fact carries the
service's ``SigCgt``/``SigIgn`` masks from ``/proc/<pid>/status`` (hex bitmasks,
bit n-1 set for signal n). The systemd unit's stop settings come from
``systemctl show`` on the host.
"""

from __future__ import annotations

import re
from typing import Any

from ..findings import Findings
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import process_problem

DEFAULTS: dict[str, Any] = {
    # The service's systemd unit (e.g. "mahavishnu.service"); None skips the unit checks.
    "systemd_unit": None,
    "thresholds": {"shutdown_min_timeout_s": 10},
}

UNIT_FACT = "graceful_shutdown:unit"
UNIT_PROPERTIES = ("LoadState", "KillSignal", "TimeoutStopUSec", "SendSIGKILL", "KillMode")

# Linux signal numbers (the /proc masks this check decodes are Linux-only too).
SIGNAL_NAMES = {
    n + 1: name
    for n, name in enumerate(
        [
            "SIGHUP",
            "SIGINT",
            "SIGQUIT",
            "SIGILL",
            "SIGTRAP",
            "SIGABRT",
            "SIGBUS",
            "SIGFPE",
            "SIGKILL",
            "SIGUSR1",
            "SIGSEGV",
            "SIGUSR2",
            "SIGPIPE",
            "SIGALRM",
            "SIGTERM",
            "SIGSTKFLT",
            "SIGCHLD",
            "SIGCONT",
            "SIGSTOP",
            "SIGTSTP",
            "SIGTTIN",
            "SIGTTOU",
            "SIGURG",
            "SIGXCPU",
            "SIGXFSZ",
            "SIGVTALRM",
            "SIGPROF",
            "SIGWINCH",
            "SIGIO",
            "SIGPWR",
            "SIGSYS",
        ]
    )
}
SIGINT, SIGKILL, SIGTERM = 2, 9, 15
_SIGNAL_NUMBERS = {name: num for num, name in SIGNAL_NAMES.items()}
_TIMESPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(us|ms|min|s|h|d|w)")
_UNIT_SECONDS = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def facts(profile: Profile) -> FactSpecs:
    unit = profile.get("systemd_unit")
    if not unit:
        return {}
    return {UNIT_FACT: {"op": "systemd", "unit": str(unit), "properties": list(UNIT_PROPERTIES)}}


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    f.details["signals"] = _signals(ctx, f)
    if ctx.profile.get("systemd_unit"):
        f.details["systemd"] = _unit(ctx, f)
    if ctx.app_object is not None:
        f.details["cleanup_procedures"] = _app_object(ctx, f)
    return f.outcome(
        "The service handles SIGTERM and SIGINT and shuts down gracefully",
        subject="Graceful shutdown",
    )


def decode_mask(value: str) -> set[int]:
    """``"0000000000004002"`` → ``{2, 15}``: bit n-1 of the hex mask is signal n."""
    mask = int(value.strip() or "0", 16)
    return {bit + 1 for bit in range(mask.bit_length()) if mask >> bit & 1}


def _signals(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    profile = ctx.profile
    if not (profile.get("pidfile") or profile.get("process_match")):
        f.fail(
            "no service process configured, so its signal handling cannot be checked",
            "Set pidfile (or process_match) in the profile to the service's pidfile",
        )
        return {"checked": False}
    proc = ctx.fact("app:process")
    where = proc.get("pidfile") or profile.get("process_match")
    if not proc.get("found") or not proc.get("running"):
        why = process_problem(proc, profile.get("process_match"))
        f.fail(
            f"service not running ({why})",
            "Start the service (or fix pidfile/process_match in the profile) and rerun the audit",
        )
        return {"checked": False, "process": where}
    out: dict[str, Any] = {"pid": proc.get("pid"), "name": proc.get("name")}
    if not proc.get("sigcgt"):
        f.unknown(
            f"cannot read the signal masks of process {proc.get('pid')}",
            "Rerun with --sudo so the probe can read /proc/<pid>/status",
        )
        return out
    caught, ignored = decode_mask(str(proc["sigcgt"])), decode_mask(str(proc.get("sigign") or ""))
    blocked = decode_mask(str(proc.get("sigblk") or ""))
    out["caught"] = _names(caught)
    out["ignored"] = _names(ignored)
    if blocked:
        out["blocked"] = _names(blocked)
    out["sigterm"] = _disposition(SIGTERM, caught, ignored, blocked)
    out["sigint"] = _disposition(SIGINT, caught, ignored, blocked)
    if out["sigterm"] == "blocked":
        # Blocked with no handler: read with sigwait()/signalfd (a graceful stop the masks
        # cannot show), or left pending forever. It does not die: "dies without cleanup"
        # (NOT_READY) was wrong, and READY would be a guess.
        f.unknown(
            f"process {proc.get('pid')} blocks SIGTERM without a handler: it may take it "
            "with sigwait()/signalfd or never act on it, which its signal masks cannot tell",
            "Prove the stop with a real SIGTERM: readiness validate -c graceful_shutdown_drill "
            "(or stop it in staging and watch it drain)",
        )
    elif out["sigterm"] == "ignored":
        f.fail(
            f"process {proc.get('pid')} ignores SIGTERM: stopping it ends in SIGKILL with no cleanup",
            "Register SIGTERM handler for graceful shutdown (remove signal.SIG_IGN for SIGTERM)",
        )
    elif out["sigterm"] == "default":
        f.fail(
            f"process {proc.get('pid')} does not handle SIGTERM: it dies without cleanup",
            "Register SIGTERM handler for graceful shutdown "
            "(e.g. signal.signal(signal.SIGTERM, handler) that drains work and exits)",
        )
    if out["sigint"] != "caught":
        f.warn(
            f"process {proc.get('pid')} does not handle SIGINT ({out['sigint']})",
            "Register a SIGINT handler that runs the same graceful shutdown as SIGTERM",
        )
    return out


def _disposition(sig: int, caught: set[int], ignored: set[int], blocked: set[int]) -> str:
    if sig in caught:
        return "caught"
    if sig in ignored:
        return "ignored"
    return "blocked" if sig in blocked else "default"


def _names(signals: set[int]) -> list[str]:
    return [
        SIGNAL_NAMES.get(s, f"SIGRTMIN+{s - 34}" if s >= 34 else f"SIG{s}") for s in sorted(signals)
    ]


def _unit(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    unit = str(ctx.profile.get("systemd_unit"))
    fact = ctx.fact(UNIT_FACT)
    if not fact.get("available"):
        f.unknown(
            f"systemd is not available on the host ({fact.get('error') or 'systemctl failed'}); "
            f"cannot judge {unit}'s stop settings",
            "Run the audit where systemd manages the service, or unset systemd_unit in the profile",
        )
        return {"unit": unit, "available": False, "error": fact.get("error")}
    props = {k: str(v) for k, v in (fact.get("properties") or {}).items()}
    out: dict[str, Any] = {"unit": unit, "available": True, "properties": props}
    if props.get("LoadState") == "not-found":
        f.fail(
            f"systemd unit {unit} does not exist on the host",
            "Install the unit file (systemctl daemon-reload) or fix systemd_unit in the profile",
        )
        return out
    _kill_signal(ctx, f, unit, props, out)
    _stop_timeout(ctx, f, unit, props, out)
    if props.get("SendSIGKILL", "yes") == "no":
        f.warn(
            f"{unit} has SendSIGKILL=no: a hung shutdown is never forced",
            f"Remove SendSIGKILL=no from {unit} (systemctl edit {unit})",
        )
    if props.get("KillMode") == "none":
        f.warn(
            f"{unit} has KillMode=none: its processes are left running on stop",
            f"Set KillMode=mixed or control-group in {unit} (systemctl edit {unit})",
        )
    return out


def _kill_signal(
    ctx: CheckContext, f: Findings, unit: str, props: dict[str, str], out: dict[str, Any]
) -> None:
    raw = props.get("KillSignal", "")
    name = raw.upper() if raw.upper().startswith("SIG") else f"SIG{raw.upper()}"
    number = int(raw) if raw.isdigit() else _SIGNAL_NUMBERS.get(name)
    out["kill_signal"] = SIGNAL_NAMES.get(number, raw) if number else raw
    if number == SIGKILL:
        f.fail(
            f"{unit} stops the service with SIGKILL: no graceful shutdown is possible",
            f"Set KillSignal=SIGTERM in {unit} (systemctl edit {unit})",
        )
        return
    caught = ctx.fact("app:process").get("sigcgt")
    if number and caught and number not in decode_mask(str(caught)):
        f.fail(
            f"{unit} stops the service with {out['kill_signal']}, which the process does not handle",
            f"Handle {out['kill_signal']} in the service, or set KillSignal=SIGTERM in {unit}",
        )


def _stop_timeout(
    ctx: CheckContext, f: Findings, unit: str, props: dict[str, str], out: dict[str, Any]
) -> None:
    raw = props.get("TimeoutStopUSec", "")
    minimum = float(ctx.profile.threshold("shutdown_min_timeout_s"))
    if raw == "infinity":
        out["timeout_stop_s"] = None
        f.warn(
            f"{unit} has no stop timeout (TimeoutStopSec=infinity): a hung shutdown blocks forever",
            f"Set TimeoutStopSec= to a bound of at least {minimum:g}s in {unit}",
        )
        return
    seconds = parse_timespan(raw)
    out["timeout_stop_s"] = seconds
    if seconds is None:
        f.unknown(f"cannot parse {unit}'s TimeoutStopUSec={raw!r}")
    elif seconds < minimum:
        f.warn(
            f"{unit} allows only {seconds:g}s to stop (TimeoutStopSec below {minimum:g}s)",
            f"Set TimeoutStopSec={minimum:g}s or more in {unit} so in-flight work can drain",
        )


def parse_timespan(value: str) -> float | None:
    """systemd's ``1min 30s`` / ``500ms`` / ``90`` (seconds) → seconds; None if unparsable."""
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _TIMESPAN.findall(text)
    if not parts or _TIMESPAN.sub("", text).strip():
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _app_object(ctx: CheckContext, f: Findings) -> dict[str, Any]:
    """As the original validator: cleanup methods, pool_manager.close_all, observability flush."""
    app = ctx.app_object
    methods = [m for m in ("shutdown", "cleanup", "close") if callable(getattr(app, m, None))]
    out: dict[str, Any] = {"cleanup_methods": methods}
    if not methods:
        f.warn(
            "the app has no shutdown(), cleanup() or close() method",
            "Implement shutdown() or cleanup() method on app",
        )
    pool = getattr(app, "pool_manager", None)
    out["pool_manager"] = pool is not None
    if pool is None:
        f.warn(
            "the app has no pool_manager to stop workers on shutdown",
            "Initialize pool_manager for graceful worker shutdown",
        )
    else:
        out["worker_shutdown"] = callable(getattr(pool, "close_all", None))
        if not out["worker_shutdown"]:
            f.warn(
                "the app's pool_manager has no close_all() method",
                "Implement close_all() method on pool_manager",
            )
    obs = getattr(app, "observability", None)
    if obs is not None:
        out["observability_flush"] = callable(getattr(obs, "flush_metrics", None))
        if not out["observability_flush"]:
            f.warn(
                "the app's observability has no flush_metrics(): metrics are lost on shutdown",
                "Implement flush_metrics() on observability and call it from shutdown()",
            )
    return out


register(
    "graceful_shutdown",
    title="Graceful shutdown",
    description=(
        "The running service catches SIGTERM (not ignored) and SIGINT, read from its "
        "/proc/<pid>/status signal masks; its systemd unit stops it with a catchable signal "
        "and enough time; a Python app object has cleanup, worker and metrics-flush hooks."
    ),
    categories=("operations",),
    suites=("validate",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=(
        "pidfile",
        "process_match",
        "systemd_unit",
        "thresholds.shutdown_min_timeout_s",
    ),
    aliases=("shutdown",),
    order=80,
)(evaluate)
