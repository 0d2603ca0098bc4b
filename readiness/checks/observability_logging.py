"""``observability_logging``: the app's log file is live, well-formed, and takes a marker line now.

Opt-in (``observability_logging.enabled``): emitting the marker acts on the app. On the host:

* round 1 (probe ``file_wait`` without a needle): the log file's stat and its last lines;
  its mtime is judged on the host's clock, the lines against ``format`` (``json``: every
  complete line is a JSON object; ``text``: not parsed);
* round 2 (follow-up, only when the file exists and a marker source is set): a unique
  marker is logged through the app (``marker_command`` argv, or ``marker_url`` with the
  probe's ``http`` op; ``{marker}`` is replaced), then ``file_wait`` re-reads the end of the
  file until the marker appears (bounded by ``thresholds.log_marker_wait_s``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..hostdata import load_json
from ..model import Outcome
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._common import unreadable
from ._integration import argv_of, enabled_section, gate, substitute
from ._owned import owned_run, refused_run

__all__ = ["DEFAULTS", "evaluate", "facts", "followup"]

NAME = "observability_logging"
LOG_FACT = f"{NAME}:log"
EMIT_FACT = f"{NAME}:1-emit"  # sorted before the wait: the probe runs facts in key order
WAIT_FACT = f"{NAME}:2-wait"
MAX_SHOWN = 160

DEFAULTS: dict[str, Any] = {
    NAME: {
        "enabled": False,
        "log_file": "logs/mahavishnu.log",
        "format": "json",  # json | text
        "sample_bytes": 65536,  # how much of the end of the file is read and parsed
        "marker_command": None,  # argv on the host; "{marker}" is replaced
        "marker_url": None,  # or: HTTP from the host to the app's log endpoint
        "marker_method": "POST",
        "marker_json": {"level": "info", "message": "{marker}"},
        "marker_headers": {},
    },
    "thresholds": {"log_max_age_s": 300, "log_marker_wait_s": 10},
}
KEYS = tuple(k for k in DEFAULTS[NAME] if k != "enabled")
HOW = (
    "Enable with observability_logging: {enabled: true, log_file: logs/app.log, "
    "marker_url: 'http://127.0.0.1:8080/debug/log'} (or marker_command: [argv with {marker}]); "
    "see docs/checks/observability_logging.md"
)


def facts(profile: Profile) -> FactSpecs:
    cfg = enabled_section(profile, NAME)
    path = profile.resolve(cfg.get("log_file")) if cfg else None
    if cfg is None or not path:
        return {}
    return {LOG_FACT: {"op": "file_wait", "path": path, "tail_bytes": _sample(cfg)}}


def _sample(cfg: Mapping[str, Any]) -> int:
    return int(cfg.get("sample_bytes") or 65536)


def followup(profile: Profile, app: AppConfig, facts: Mapping[str, Any]) -> FactSpecs:
    """Log a fresh marker through the app, then wait for it in the file."""
    cfg = enabled_section(profile, NAME)
    log = facts.get(LOG_FACT)
    if cfg is None or not isinstance(log, Mapping) or not log.get("exists"):
        return {}
    emit = _emit_spec(profile, cfg, "readiness-marker-" + secrets.token_hex(8))
    if emit is None:
        return {}
    return {
        EMIT_FACT: emit,
        WAIT_FACT: {
            "op": "file_wait",
            "path": log["path"],
            "needle": emit["marker"],
            "timeout": float(profile.threshold("log_marker_wait_s")),
            "interval": 0.1,
            "tail_bytes": _sample(cfg),
        },
    }


def _emit_spec(profile: Profile, cfg: Mapping[str, Any], marker: str) -> dict[str, Any] | None:
    def fill(text: str) -> str:
        return text.replace("{marker}", marker)

    if cfg.get("marker_command"):
        # The app's code: run as the app tree's owner, never as root (docs/security.md).
        argv = [fill(a) for a in argv_of(cfg["marker_command"])]
        return owned_run(argv, profile.app_root, timeout=10, marker=marker)
    if cfg.get("marker_url"):
        return {
            "op": "http",
            "url": fill(str(cfg["marker_url"])),
            "method": str(cfg.get("marker_method") or "POST"),
            "json": substitute(cfg.get("marker_json"), fill),
            "headers": dict(cfg.get("marker_headers") or {}),
            "timeout": 5,
            "marker": marker,
        }
    return None


def evaluate(ctx: CheckContext) -> Outcome:
    skipped = gate(ctx, NAME, KEYS, HOW)
    if skipped is not None:
        return skipped
    f = Findings()
    cfg = ctx.profile[NAME]
    for value in dict(cfg.get("marker_headers") or {}).values():
        ctx.secret(str(value))
    log = ctx.fact(LOG_FACT)
    f.details["log_file"] = log.get("path") or ctx.profile.resolve(cfg.get("log_file"))
    if unreadable(log):
        # It may well exist and be live: the audit account cannot read it.
        f.unknown(
            f"cannot read log file {f.details['log_file']} ({log['error']})",
            "Rerun with --sudo (or as a user that may read the app's log)",
        )
        return f.outcome("", subject="Logging")
    if not log.get("exists") or log.get("type") != "file":
        f.fail(
            f"log file {f.details['log_file']} does not exist"
            + (f" ({log['error']})" if log.get("error") else ""),
            "Point observability_logging.log_file at the file the app writes",
        )
        return f.outcome("", subject="Logging")
    # A marker logged now and found in the file proves the app writes it: an old mtime (a
    # quiet service) or an empty file (just rotated) before the marker is then no finding.
    live = bool(ctx.fact(WAIT_FACT).get("found"))
    _judge_age(ctx, f, log, live=live)
    _judge_format(f, cfg, log, live=live)
    _judge_marker(ctx, f, cfg)
    return f.outcome(
        f"Log {f.details['log_file']} is live ({f.details.get('age_s')}s old), "
        f"{f.details.get('lines_checked')} line(s) parse as {cfg.get('format')}, "
        f"marker appeared in {f.details.get('marker_s')}s",
        subject="Logging",
    )


def _judge_age(ctx: CheckContext, f: Findings, log: Mapping[str, Any], *, live: bool) -> None:
    now, limit = ctx.host_now, float(ctx.profile.threshold("log_max_age_s"))
    if now is None or not isinstance(log.get("mtime"), (int, float)):
        f.unknown("cannot tell when the log was last written (no host clock or mtime)")
        return
    age = max(0.0, now - float(log["mtime"]))
    f.details["age_s"] = round(age, 1)
    if age > limit and not live:
        f.fail(
            f"log file {log['path']} was last written {age:.0f}s ago (more than "
            f"{limit:g}s, thresholds.log_max_age_s)",
            "Check the app still logs to this file (logging config, rotation, disk full)",
        )


def _lines(log: Mapping[str, Any]) -> list[str]:
    lines = [str(x) for x in log.get("lines") or []]
    if lines and not log.get("complete_last_line", True):
        lines = lines[:-1]  # the app may be writing it right now
    return [ln for ln in lines if ln.strip()]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(load_json(line), dict)
    except ValueError:
        return False


def _judge_format(
    f: Findings, cfg: Mapping[str, Any], log: Mapping[str, Any], *, live: bool
) -> None:
    fmt = str(cfg.get("format") or "json")
    lines = _lines(log)
    f.details["lines_checked"] = len(lines)
    if not lines:
        if not live:  # else the marker line is the one judged (_judge_marker)
            f.fail(
                f"log file {log['path']} has no complete lines", "Check the app's logging config"
            )
        return
    if fmt == "text":
        return
    if fmt != "json":
        f.fail(f"unknown observability_logging.format {fmt!r}", "Use format: json or text")
        return
    bad = [ln for ln in lines if not _is_json_object(ln)]
    if bad:
        f.details["bad_lines"] = [b[:MAX_SHOWN] for b in bad[:5]]
        f.fail(
            f"{len(bad)} of {len(lines)} recent log line(s) are not JSON objects, e.g. "
            f"{bad[0][:MAX_SHOWN]!r}",
            "Configure every logger (and stray prints/tracebacks) to emit one JSON object per line",
        )


def _judge_marker(ctx: CheckContext, f: Findings, cfg: Mapping[str, Any]) -> None:
    if not (cfg.get("marker_command") or cfg.get("marker_url")):
        f.warn(
            "no marker source configured: the check cannot prove the app writes this file now",
            "Set observability_logging.marker_url (the app's log endpoint) or marker_command",
        )
        return
    emit, wait = ctx.fact(EMIT_FACT), ctx.fact(WAIT_FACT)
    marker = wait.get("needle")
    f.details["marker"] = marker
    if refused_run(f, "marker_command", emit):
        return
    emitted = emit.get("exit_code") == 0 if "exit_code" in emit else _http_ok(emit)
    if not emitted:
        why = emit.get("error") or emit.get("stderr") or f"HTTP {emit.get('status')}"
        f.fail(
            f"logging the marker through the app failed: {str(why).strip()[:300]}",
            "Check marker_command / marker_url in the profile",
        )
        return
    if not wait.get("found"):
        limit = float(ctx.profile.threshold("log_marker_wait_s"))
        f.fail(
            f"the marker logged through the app did not appear in {f.details['log_file']} "
            f"within {limit:g}s",
            "The app logs elsewhere (or buffers): check its log handlers and log_file",
        )
        return
    f.details["marker_s"] = wait.get("waited_s")
    if str(cfg.get("format") or "json") == "json" and not _is_json_object(str(wait.get("line"))):
        f.fail(f"the marker line is not a JSON object: {str(wait.get('line'))[:MAX_SHOWN]!r}")


def _http_ok(fact: Mapping[str, Any]) -> bool:
    status = fact.get("status")
    return bool(fact.get("ok")) and isinstance(status, int) and 200 <= status < 300


register(
    NAME,
    title="Logging is live",
    description=(
        "Opt-in: the app's log file was written recently (host clock), its recent lines parse "
        "as the configured format (JSON), and a unique marker logged through the app's log "
        "endpoint or command appears in it within a bounded wait."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    followup=followup,
    defaults=DEFAULTS,
    profile_keys=(
        *(f"{NAME}.{k}" for k in DEFAULTS[NAME]),
        "thresholds.log_max_age_s",
        "thresholds.log_marker_wait_s",
    ),
    aliases=("logging_live", "log_marker"),
    order=220,
    opt_in=True,
)(evaluate)
