"""Controller side of the probe: one constant command line, parameters as data on stdin."""

from __future__ import annotations

import json
import marshal
import math
import sys
from collections.abc import Mapping
from typing import Any

from .errors import TransportError
from .probe_source import ops_in, probe_source, pruned_source
from .transport import DEFAULT_MAX_OUTPUT, Transport

__all__ = ["ProbeError", "bootstrap_argv", "bootstrap_stdin", "probe_source", "run_probe"]

# Constant: reads "N D" (source length, deadline in seconds), arms a SIGALRM that ends
# the process with exit code 124 after D seconds (as coreutils `timeout` would, without
# the extra exec), then reads N bytes of source and runs them; the probe reads its JSON
# request from the rest of stdin. Nothing user-controlled is ever in here.
_BOOTSTRAP = (
    "import os,sys,signal;b=sys.stdin.buffer;n,d=map(int,b.readline().split());"
    "signal.signal(signal.SIGALRM,lambda*a:os._exit(124));signal.alarm(d);"
    "exec(compile(b.read(n),'readiness-probe','exec'))"
)


class ProbeError(TransportError):
    """The probe ran but did not produce a usable answer (ERROR, not UNREACHABLE)."""


def bootstrap_argv(*, python: str = "python3", sudo: bool = False) -> list[str]:
    """The argv that starts host-side code; under ``sudo -n`` (never prompts) when asked."""
    # -I: ignore PYTHON* variables and the user's site dir (no attacker-chosen module runs
    # as the probe); -S: no site import — the probe is stdlib-only, and it saves ~3 ms/host.
    argv = [python, "-I", "-S", "-c", _BOOTSTRAP]
    if sudo:
        argv = ["sudo", "-n", "--", *argv]
    return argv


def bootstrap_stdin(source: bytes, payload: bytes, *, deadline_s: float) -> bytes:
    """What the bootstrap reads: header, source, then the payload (the JSON request).

    The deadline kills the host-side process even if the controller has gone away.
    """
    deadline = max(1, math.ceil(deadline_s))
    return b"%d %d\n" % (len(source), deadline) + source + payload


def _plain(value: Any) -> Any:
    """Only marshal-safe plain data goes to the host (tuples become lists, keys strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def run_probe(
    transport: Transport,
    facts: Mapping[str, Mapping[str, Any]],
    *,
    timeout_s: float = 60.0,
    sudo: bool = False,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> dict[str, Any]:
    """Run the probe once on the host behind ``transport`` and return its answer."""
    src = pruned_source(ops_in(facts))
    # marshal (format 4, Python >= 3.4) is builtin on the host: no import cost, and the
    # request is the controller's own plain data, never something a host sent.
    payload = marshal.dumps({"facts": _plain(facts)}, 4)
    stdin = bootstrap_stdin(src, payload, deadline_s=timeout_s)
    python = sys.executable if transport.is_local else "python3"
    argv = bootstrap_argv(python=python, sudo=sudo)
    res = transport.run(argv, stdin=stdin, timeout=timeout_s + 5, max_output=max_output)
    if res.truncated:
        raise ProbeError(f"output exceeded limit ({max_output} bytes)")
    if res.timed_out or res.exit_code == 124:
        raise ProbeError(f"probe timed out after {timeout_s:.0f}s")
    if sudo and res.exit_code == 1 and b"password" in res.stderr.lower():
        raise ProbeError("sudo requires a password on this host (use passwordless sudo for --sudo)")
    if res.exit_code == 127:
        raise ProbeError(f"python3 not found on host: {res.stderr_text(300)}")
    if res.exit_code != 0:
        raise ProbeError(f"probe failed with exit code {res.exit_code}: {res.stderr_text(500)}")
    try:
        answer = json.loads(res.stdout.decode("utf-8", "replace"))
    except ValueError as exc:
        raise ProbeError(f"probe answer is not JSON: {exc}") from None
    if not isinstance(answer, dict) or "facts" not in answer:
        raise ProbeError("probe answer has no facts")
    answer.setdefault("meta", {})["probe_s"] = round(res.duration_s, 4)
    return answer
