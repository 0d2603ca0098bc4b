"""Controller side of the probe: one constant command line, parameters as data on stdin."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from .errors import TransportError
from .transport import DEFAULT_MAX_OUTPUT, Transport

__all__ = ["ProbeError", "bootstrap_argv", "probe_source", "run_probe"]

# Constant: reads N, then N bytes of probe source, from stdin; the probe then reads
# its JSON request from the rest of stdin. Nothing user-controlled is ever in here.
_BOOTSTRAP = (
    "import sys;b=sys.stdin.buffer;n=int(b.readline());"
    "exec(compile(b.read(n),'readiness-probe','exec'))"
)


class ProbeError(TransportError):
    """The probe ran but did not produce a usable answer (ERROR, not UNREACHABLE)."""


@cache
def probe_source() -> bytes:
    return resources.files("readiness").joinpath("probe.py").read_bytes()


def bootstrap_argv(
    *, python: str = "python3", timeout_s: float | None = None, sudo: bool = False
) -> list[str]:
    """The argv that starts the probe; wrapped in coreutils ``timeout`` so a stuck
    probe dies on the host too, and in ``sudo -n`` (never prompts) when asked."""
    argv = [python, "-c", _BOOTSTRAP]
    if timeout_s:
        argv = ["timeout", "-k", "2", str(max(1, math.ceil(timeout_s))), *argv]
    if sudo:
        argv = ["sudo", "-n", "--", *argv]
    return argv


def run_probe(
    transport: Transport,
    facts: Mapping[str, Mapping[str, Any]],
    *,
    timeout_s: float = 60.0,
    sudo: bool = False,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> dict[str, Any]:
    """Run the probe once on the host behind ``transport`` and return its answer."""
    src = probe_source()
    request = {"facts": facts, "deadline_s": max(1, math.ceil(timeout_s))}
    stdin = b"%d\n" % len(src) + src + json.dumps(request).encode()
    python = sys.executable if transport.is_local else "python3"
    argv = bootstrap_argv(python=python, timeout_s=timeout_s, sudo=sudo)
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
