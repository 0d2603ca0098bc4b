"""Controller side of the probe: one constant command line, parameters as data on stdin.

Host-side code (the probe, the applier) always starts through the same bootstrap, which
ends everything it started when it is told to stop: see docs/fleet.md, "Nothing left
behind on a host".
"""

from __future__ import annotations

import marshal
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import TransportError
from .hostdata import HostDataError, load_json
from .probe_source import ops_in, probe_source, pruned_source
from .transport import DEFAULT_MAX_OUTPUT, CommandResult, Transport

__all__ = [
    "BootstrapRun",
    "ProbeError",
    "ProbeSettings",
    "bootstrap_argv",
    "bootstrap_stdin",
    "check_exit",
    "probe_source",
    "run_bootstrapped",
    "run_probe",
    "split_output",
]

# Constant: reads "N M D" (source length, request length, deadline in seconds), arms a
# deadline (SIGALRM) and makes hang-up, SIGTERM and SIGPIPE end the run too; each of them
# first kills the process groups of commands the code started (``READINESS_CHILD_GROUPS``:
# they run in their own sessions) and exits 124/129/143/141 as coreutils `timeout` would.
# It reads exactly N + M bytes (stdin may be a terminal, which never reports EOF), hands
# the M request bytes to the code as its stdin, keeps Python's stderr apart, and frames
# stdout: [anything before Python ran] RS [the code's stdout] GS [its stderr]. Nothing
# user-controlled is ever in here.
_BOOTSTRAP = (
    "import os,sys,signal,io\n"
    "K=set()\n"
    "def q(c,*a):\n"
    " for g in list(K):\n"
    "  try:os.killpg(g,9)\n"
    "  except OSError:pass\n"
    " os._exit(c)\n"
    "for s,c in((signal.SIGALRM,124),(signal.SIGHUP,129),(signal.SIGTERM,143),(signal.SIGPIPE,141)):"
    "signal.signal(s,lambda*a,c=c:q(c))\n"
    "b=sys.stdin.buffer;n,m,d=map(int,b.readline().split());signal.alarm(d)\n"
    "s=b.read(n);sys.stdin=io.TextIOWrapper(io.BytesIO(b.read(m)))\n"
    "e=sys.stderr=io.StringIO();o=sys.stdout.buffer;o.write(b'\\x1e');o.flush();r=0\n"
    "try:exec(compile(s,'readiness-probe','exec'),dict(__name__='__main__',READINESS_CHILD_GROUPS=K))\n"
    "except SystemExit as x:r=x.code if isinstance(x.code,int) else int(x.code is not None)\n"
    "except BaseException:\n"
    " import traceback;traceback.print_exc();r=1\n"
    "sys.stdout.flush();o.write(b'\\x1d'+e.getvalue().encode('utf-8','replace'));o.flush();q(r)\n"
)
_START, _END = b"\x1e", b"\x1d"
_MESSAGES_CAP = 64 * 1024  # what a failed run said: reasons quote at most 500 characters
_GRACE_S = 1.0


# A real answer holds a few thousand values (lists stop at 500 entries, files at 256 KiB
# of text); parsed, 200 000 small values cost ~15 MB.
MAX_ANSWER_ITEMS = 200_000


@dataclass(frozen=True)
class ProbeSettings:
    """How host-side code runs: its deadline, through ``sudo -n`` or not, the output cap."""

    command_timeout: float = 60.0
    sudo: bool = False
    max_output: int = DEFAULT_MAX_OUTPUT


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
    """What the bootstrap reads: header, source, then the payload (the request).

    The deadline kills the host-side process even if the controller has gone away.
    """
    deadline = max(1, math.ceil(deadline_s))
    return b"%d %d %d\n" % (len(source), len(payload), deadline) + source + payload


@dataclass(frozen=True)
class BootstrapRun:
    """What one bootstrapped run left: exit code, the code's stdout, every other output."""

    exit_code: int
    answer: bytes
    messages: str
    timed_out: bool
    truncated: bool
    duration_s: float
    started: bool  # False: Python never ran the code (missing, hung, a forced command...)


def run_bootstrapped(
    transport: Transport,
    source: bytes,
    payload: bytes,
    *,
    timeout_s: float,
    sudo: bool = False,
    max_output: int = DEFAULT_MAX_OUTPUT,
) -> BootstrapRun:
    """Run ``source`` on the host behind ``transport`` through the constant bootstrap."""
    stdin = bootstrap_stdin(source, payload, deadline_s=timeout_s)
    python = sys.executable if transport.is_local else "python3"
    res = transport.run(
        bootstrap_argv(python=python, sudo=sudo),
        stdin=stdin,
        # One second of grace for the host's own deadline (exit 124) to arrive first; past
        # it the controller closes the channel, and the hang-up ends the host side anyway.
        timeout=timeout_s + _GRACE_S,
        max_output=max_output,
    )
    return split_output(res)


def split_output(res: CommandResult) -> BootstrapRun:
    """Take the bootstrap's frame apart (stdout and stderr share one stream on a pty)."""
    out, cap = res.stdout, _MESSAGES_CAP
    start = out.find(_START)
    if start < 0:
        answer, messages = b"", out[:cap] + res.stderr[:cap]
    else:
        # One slice of a (possibly 8 MiB) answer, no intermediate copy of the body.
        end = out.find(_END, start + 1)  # JSON escapes control characters: no GS inside
        answer = out[start + 1 :] if end < 0 else out[start + 1 : end]
        tail = b"" if end < 0 else out[end + 1 : end + 1 + cap]
        messages = out[: min(start, cap)] + res.stderr[:cap] + tail
    return BootstrapRun(
        exit_code=res.exit_code,
        answer=answer,
        messages=messages.decode("utf-8", "replace").strip(),
        timed_out=res.timed_out,
        truncated=res.truncated,
        duration_s=res.duration_s,
        started=start >= 0,
    )


def _plain(value: Any) -> Any:
    """Only marshal-safe plain data goes to the host (tuples become lists, keys strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def check_exit(
    res: BootstrapRun, what: str, *, timeout_s: float, sudo: bool, max_output: int
) -> None:
    """Raise the ProbeError that says why a bootstrapped run gave no usable answer."""
    if res.truncated:
        raise ProbeError(f"output exceeded limit ({max_output} bytes)")
    if res.timed_out or res.exit_code == 124:
        how = "" if res.started else " (Python never started it: is python3 on the host hung?)"
        raise ProbeError(f"{what} timed out after {timeout_s:.0f}s{how}")
    if sudo and res.exit_code == 1 and "password" in res.messages.lower():
        raise ProbeError("sudo requires a password on this host (use passwordless sudo for --sudo)")
    if res.exit_code == 127:
        raise ProbeError(f"python3 not found on host: {res.messages[:300]}")
    if res.exit_code != 0:
        raise ProbeError(f"{what} failed with exit code {res.exit_code}: {res.messages[:500]}")


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
    res = run_bootstrapped(
        transport, src, payload, timeout_s=timeout_s, sudo=sudo, max_output=max_output
    )
    check_exit(res, "probe", timeout_s=timeout_s, sudo=sudo, max_output=max_output)
    text, duration = res.answer.decode("utf-8", "replace"), res.duration_s
    del res  # one copy of a (possibly 8 MiB) answer at a time
    try:
        # The host may have replaced the probe: its answer is parsed within depth and
        # value-count bounds (parsed objects, not bytes, are what costs memory), and
        # undecodable names (lone surrogates) become \xNN escapes, printable anywhere.
        answer = load_json(text, max_items=MAX_ANSWER_ITEMS)
    except HostDataError as exc:
        raise ProbeError(f"probe answer is not usable JSON: {exc}") from None
    finally:
        del text
    if not isinstance(answer, dict) or "facts" not in answer:
        raise ProbeError("probe answer has no facts")
    answer.setdefault("meta", {})["probe_s"] = round(duration, 4)
    return answer
