"""``workflow_execution``: the app's smoke workflow runs to the expected final state, in time.

It acts on the system, so it is opt-in: nothing runs until the profile sets
``smoke_workflow``. Two ways, both executed ON THE HOST by the probe (so a URL
like ``http://127.0.0.1:8080`` means the host's loopback, as the app sees it):

* ``command``: an argv run with the probe's ``run`` op (timeout; the whole process
  group is killed when it expires); the final state is read from its stdout
  (a JSON key, or a regex).
* ``url``: an HTTP request with the probe's ``http`` op, optionally polling
  ``poll_url`` (``{id}`` = the first answer's ``id_key``) until a final state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..findings import Findings
from ..hostdata import load_json
from ..model import Outcome, Status
from ..profile import Profile
from ..registry import CheckContext, FactSpecs, register
from ._owned import owned_run, refused_run

__all__ = ["DEFAULTS", "evaluate", "extract_state", "facts"]

NAME = "workflow_execution"
FACT = f"{NAME}:smoke"

DEFAULTS: dict[str, Any] = {
    # None: the check is SKIPPED. Keys: docs/checks/workflow_execution.md.
    "smoke_workflow": None,
    "thresholds": {"workflow_max_duration_s": 30.0},
}

_DEFAULT_TIMEOUT_S = 30.0
_DEFAULT_FINAL = ("completed", "failed", "crashed", "cancelled", "error")
_HOW = (
    "Configure smoke_workflow in the profile to run a smoke workflow, e.g. "
    "smoke_workflow: {command: [.venv/bin/mahavishnu, workflow, run, smoke, --json], "
    "json_key: state, expect_state: completed, timeout_s: 30} or "
    "{url: http://127.0.0.1:8080/workflows/smoke/runs, method: POST, "
    "poll_url: 'http://127.0.0.1:8080/runs/{id}', state_key: state}"
)


def _smoke(profile: Profile) -> Mapping[str, Any] | None:
    value = profile.get("smoke_workflow")
    return value if isinstance(value, Mapping) and value else None


def _timeout(smoke: Mapping[str, Any]) -> float:
    return float(smoke.get("timeout_s") or _DEFAULT_TIMEOUT_S)


def facts(profile: Profile) -> FactSpecs:
    smoke = _smoke(profile)
    if smoke is None:
        return {}
    if smoke.get("command"):
        return {FACT: _command_spec(profile, smoke)}
    if smoke.get("url"):
        return {FACT: _http_spec(smoke)}
    return {}


def _command_spec(profile: Profile, smoke: Mapping[str, Any]) -> dict[str, Any]:
    command = smoke["command"]
    argv = [str(a) for a in command] if isinstance(command, list) else [str(command)]
    cwd = profile.resolve(str(smoke.get("cwd") or ".")) or profile.app_root
    # The app's code: run as the app tree's owner, never as root (docs/security.md).
    # The state is printed last, after whatever the workflow logs: keep the output's end.
    spec = owned_run(argv, cwd, timeout=_timeout(smoke), max_bytes=64 * 1024, keep="tail")
    if smoke.get("env"):
        spec["env"] = {str(k): str(v) for k, v in dict(smoke["env"]).items()}
    return spec


def _http_spec(smoke: Mapping[str, Any]) -> dict[str, Any]:
    timeout = _timeout(smoke)
    spec: dict[str, Any] = {
        "op": "http",
        "url": str(smoke["url"]),
        "method": str(smoke.get("method") or "POST"),
        "timeout": min(timeout, float(smoke.get("request_timeout_s") or 10)),
        "headers": dict(smoke.get("headers") or {}),
    }
    if smoke.get("json") is not None:
        spec["json"] = smoke["json"]
    elif spec["method"].upper() in ("POST", "PUT", "PATCH"):
        spec["body"] = str(smoke.get("body") or "")
    if smoke.get("poll_url"):
        expect = str(smoke.get("expect_state") or "completed")
        spec["poll"] = {
            "url": str(smoke["poll_url"]),
            "id_key": str(smoke.get("id_key") or "id"),
            "state_key": _state_key(smoke),
            "final": _spellings(smoke.get("final_states") or (expect, *_DEFAULT_FINAL)),
            "interval": float(smoke.get("poll_interval_s") or 1.0),
            "deadline": timeout,
        }
    return spec


def _spellings(states: Any) -> list[str]:
    """Each final state as written, upper-case and capitalised: the probe stops polling on
    an exact match, and apps spell the same state differently (Prefect reports
    ``COMPLETED`` / ``Completed``, others ``completed``)."""
    out: list[str] = []
    for state in (str(s).strip() for s in states):
        for spelling in (state, state.upper(), state.capitalize(), state.lower()):
            if spelling not in out:
                out.append(spelling)
    return out


def same_state(state: str, expect: str) -> bool:
    """States compare without case and surrounding whitespace (``COMPLETED\\r`` from a
    CRLF-printing command is ``completed``)."""
    return state.strip().casefold() == expect.strip().casefold()


def _state_key(smoke: Mapping[str, Any]) -> str:
    return str(smoke.get("state_key") or smoke.get("json_key") or "state")


def extract_state(text: str, *, json_key: str | None, regex: str | None) -> str | None:
    """The final state in a command's output: a regex match, or a (dotted) key of the
    whole output as JSON, else of the last line that is a JSON object."""
    if regex:
        m = re.search(regex, text, re.MULTILINE)
        if m is None:
            return None
        if "state" in m.groupdict():
            return m.group("state")
        return m.group(1) if m.groups() else m.group(0)
    candidates = [text, *reversed(text.strip().splitlines())]
    for chunk in candidates:
        try:
            doc = load_json(chunk)
        except ValueError:
            continue
        value = _dig(doc, json_key or "state")
        if value is not None:
            return str(value)
    return None


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return doc


def evaluate(ctx: CheckContext) -> Outcome:
    smoke = _smoke(ctx.profile)
    if smoke is None:
        return Outcome(
            Status.SKIPPED,
            "No smoke workflow configured (it acts on the system, so it is opt-in)",
            {},
            (_HOW,),
        )
    f = Findings()
    expect = str(smoke.get("expect_state") or "completed")
    f.details["expect_state"] = expect
    if smoke.get("command"):
        state = _judge_command(ctx, smoke, f)
    elif smoke.get("url"):
        state = _judge_http(ctx, smoke, f)
    else:
        f.fail("smoke_workflow has neither a command nor a url", _HOW)
        return f.outcome("", subject="Workflow execution")
    if state is not None:
        f.details["final_state"] = state
        if not same_state(state, expect):
            f.fail(
                f"the smoke workflow ended in state {state!r} (expected {expect!r})",
                "Inspect the smoke workflow's run in the app (logs, failed task) and fix the cause",
            )
    _judge_duration(ctx, f)
    return f.outcome(
        f"The smoke workflow reached {expect!r} in {f.details.get('duration_s', 0):.2f}s",
        subject="Workflow execution",
    )


def _judge_command(ctx: CheckContext, smoke: Mapping[str, Any], f: Findings) -> str | None:
    res = ctx.fact(FACT)
    argv = [str(a) for a in smoke["command"]] if isinstance(smoke["command"], list) else []
    f.details.update({"mode": "command", "command": argv})
    if refused_run(f, "the smoke workflow command", res):
        return None
    if not res.get("started"):
        f.fail(
            f"the smoke workflow command could not be started ({res.get('error', 'not probed')})",
            "Fix smoke_workflow.command (argv list: a bare program name is looked up on the host's "
            "PATH, a path with a slash is relative to smoke_workflow.cwd) and smoke_workflow.cwd",
        )
        return None
    f.details["duration_s"] = res.get("duration_s")
    f.details["exit_code"] = res.get("exit_code")
    if res.get("timed_out"):
        f.fail(
            f"the smoke workflow did not finish within {_timeout(smoke):g}s (its process group was killed)",
            "Find why the workflow hangs (a stuck adapter, a missing worker) or raise smoke_workflow.timeout_s",
        )
        return None
    stdout, stderr = str(res.get("stdout") or ""), str(res.get("stderr") or "")
    state = extract_state(
        stdout,
        json_key=str(smoke["json_key"]) if smoke.get("json_key") else None,
        regex=str(smoke["state_regex"]) if smoke.get("state_regex") else None,
    )
    if res.get("exit_code") != 0:
        tail = (stderr.strip() or stdout.strip())[-200:]
        f.fail(
            f"the smoke workflow command exited with code {res.get('exit_code')}: {tail!r}",
            "Run the smoke workflow command by hand on the host and fix the error it reports",
        )
    elif state is None:
        f.fail(
            f"the smoke workflow's output has no final state: {stdout.strip()[-200:]!r}",
            'Make the command print its final state as JSON ({"state": ...}) or set '
            "smoke_workflow.json_key / smoke_workflow.state_regex to match its output",
        )
    return state


def _judge_http(ctx: CheckContext, smoke: Mapping[str, Any], f: Findings) -> str | None:
    res = ctx.fact(FACT)
    url = str(smoke["url"])
    f.details.update({"mode": "http", "url": url})
    if not res.get("ok"):
        f.fail(
            f"the smoke workflow endpoint {url} is not reachable from the host ({res.get('error', 'not probed')})",
            "Start the app's API or fix smoke_workflow.url",
        )
        return None
    f.details["duration_s"] = res.get("duration_s")
    f.details["http_status"] = res.get("status")
    if not 200 <= int(res.get("status") or 0) < 300:
        f.fail(
            f"starting the smoke workflow failed: HTTP {res.get('status')} {str(res.get('body') or '').strip()[:200]!r}",
            "Check smoke_workflow.url/method/json against the app's API and the app's logs",
        )
        return None
    poll = res.get("poll")
    if not smoke.get("poll_url"):
        return _http_state(f, smoke, res, url)
    if not isinstance(poll, Mapping):
        f.fail("the smoke workflow was started but not polled", "Check smoke_workflow.poll_url")
        return None
    return _judge_poll(f, smoke, poll)


def _http_state(
    f: Findings, smoke: Mapping[str, Any], res: Mapping[str, Any], url: str
) -> str | None:
    state = _dig(_loads(str(res.get("body") or "")), _state_key(smoke))
    if state is None:
        f.fail(
            f"the answer of {url} has no {_state_key(smoke)!r}",
            "Set smoke_workflow.state_key, or poll_url when the workflow runs asynchronously",
        )
        return None
    return str(state)


def _judge_poll(f: Findings, smoke: Mapping[str, Any], poll: Mapping[str, Any]) -> str | None:
    f.details.update({"poll_url": poll.get("url"), "polls": poll.get("polls")})
    if poll.get("error") and not poll.get("ok"):
        f.fail(
            f"polling the smoke workflow failed: {poll.get('error')}",
            "Check smoke_workflow.poll_url and id_key against the app's API",
        )
        return None
    if poll.get("timed_out"):
        f.fail(
            f"the smoke workflow did not reach a final state within {_timeout(smoke):g}s "
            f"(last state {poll.get('state')!r})",
            "Find why the workflow does not finish (workers, adapters) or raise smoke_workflow.timeout_s",
        )
        return None
    state = poll.get("state")
    return None if state is None else str(state)


def _loads(text: str) -> Any:
    try:
        return load_json(text)
    except ValueError:
        return None


def _judge_duration(ctx: CheckContext, f: Findings) -> None:
    duration = f.details.get("duration_s")
    limit = float(ctx.profile.threshold("workflow_max_duration_s"))
    if isinstance(duration, (int, float)) and not f.problems and duration > limit:
        f.warn(
            f"the smoke workflow took {duration:.2f}s (> {limit:g}s)",
            "Find the slow step (adapter latency, worker start-up) or raise thresholds.workflow_max_duration_s",
        )


register(
    NAME,
    title="Workflow execution",
    description=(
        "The app's smoke workflow (a command or an HTTP call, run on the host; opt-in via "
        "smoke_workflow) finishes within its timeout in the expected final state, and within "
        "thresholds.workflow_max_duration_s."
    ),
    categories=("integration",),
    suites=("production",),
    facts=facts,
    defaults=DEFAULTS,
    profile_keys=("smoke_workflow", "thresholds.workflow_max_duration_s"),
    aliases=("workflow", "workflow_smoke"),
    order=160,
)(evaluate)
