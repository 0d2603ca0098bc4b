"""Controller side of the probe: one constant bootstrap, parameters as data on stdin (or,
for a first request that holds only locations and patterns, as base64 arguments after it).

Host-side code (the probe, the applier) always starts through the same bootstrap, which
ends everything it started when it is told to stop: see docs/fleet.md, "Nothing left
behind on a host".
"""

from __future__ import annotations

import binascii
import functools
import importlib.util
import marshal
import math
import re
import sys
import types
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import TransportError
from .hostdata import HostDataError, load_json
from .probe_source import ops_in, probe_source, pruned_source
from .transport import DEFAULT_MAX_OUTPUT, CommandResult, Session, Transport

__all__ = [
    "BootstrapRun",
    "FrameEnd",
    "ProbeError",
    "ProbeSession",
    "ProbeSettings",
    "argv_too_long",
    "bootstrap_argv",
    "bootstrap_stdin",
    "check_exit",
    "inline_request",
    "probe_source",
    "run_bootstrapped",
    "run_probe",
    "split_output",
]

# Constant (``_signal`` and ``posix``, the C modules: ``signal`` imports enum, ~7 ms of
# host CPU, and ``os`` ~1.1 ms under ``-I -S``, where nothing has imported it yet): reads
# "N M D [C [K [Z [R]]]]" (source length, request length, deadline in seconds, C=1 when
# another request may follow, K the compiled code's length, Z the length of source and code
# zlib-compressed when they come so, R=1 to run in the namespace the previous request's
# code left: a follow-up ships only the functions it lacks), arms a deadline (SIGALRM)
# and makes hang-up, SIGTERM and SIGPIPE end the run too; each of them first kills the
# process groups of commands the code started (``READINESS_CHILD_GROUPS``: they run in
# their own sessions) and, while the code is starting one (``READINESS_SPAWNING`` not
# empty: forked, not yet in the groups), every child of this process, and, once the code
# has made this process a child subreaper (``READINESS_REAPER`` not empty: readiness.probe's
# _subreaper), every process the commands left that was re-parented to it, until none is
# left (at most 1 s); then exits 124/129/143/141 as coreutils `timeout` would. It reads exactly N + M bytes (stdin may be
# a terminal, which never reports EOF), hands the M request bytes to the code as its stdin,
# keeps Python's stderr apart, and frames stdout: [anything before Python ran] RS [the
# code's stdout] GS "EXIT LEN\n" [LEN bytes: its stderr]. With C=1 it then reads the next
# header (re-arming the deadline) and runs that request in the same process: the probe's
# follow-up round costs no second command, interpreter or pty (docs/performance.md). An
# empty line, end of input or hang-up ends it. The first request may come as three
# base64 arguments instead (header, zlib of source and code, request: :func:`inline_request`):
# sshd opens a session's input window only when the command starts, so input on stdin
# costs a round trip of its own. Nothing user-controlled is ever in here.
_BOOTSTRAP = (
    "import posix as os,sys,io,_signal as signal\n"
    "K=set();P=[];R=[]\n"
    "def C():\n"
    " n=0\n"
    " try:L=os.listdir('/proc')\n"
    " except OSError:L=()\n"
    " for p in L:\n"
    "  try:\n"
    "   t=open('/proc/%s/stat'%p,'rb').read().rsplit(b')',1)[1].split()\n"
    "   if int(t[1])==os.getpid() and t[0]!=b'Z':os.kill(int(p),9);n+=1;os.killpg(int(p),9)\n"
    "  except Exception:pass\n"
    " return n\n"
    "def q(c,*a):\n"
    " for g in list(K):\n"
    "  try:os.killpg(g,9)\n"
    "  except OSError:pass\n"
    " if P:C()\n"
    " if R:\n"
    "  import time;e=time.monotonic()+1\n"
    "  while time.monotonic()<e:\n"
    "   try:\n"
    "    if os.waitpid(-1,os.WNOHANG)[0]==0:\n"
    "     if not C():break\n"
    "     time.sleep(.005)\n"
    "   except OSError:break\n"
    " os._exit(c)\n"
    "for s,c in((signal.SIGALRM,124),(signal.SIGHUP,129),(signal.SIGTERM,143),(signal.SIGPIPE,141)):"
    "signal.signal(s,lambda*a,c=c:q(c))\n"
    "try:X=__import__('_frozen_importlib_external').MAGIC_NUMBER\n"
    "except Exception:X=None\n"
    "b=I=sys.stdin.buffer;o=sys.stdout.buffer;O=sys.stdout;r=0;a=sys.argv[1:];G=None\n"
    "if a[2:]:import binascii,zlib;A=binascii.a2b_base64;b=io.BytesIO(A(a[0])+zlib.decompress(A(a[1]))+A(a[2]))\n"
    "while 1:\n"
    " h=b.readline().split()\n"
    " if len(h)<3:q(r)\n"
    " n,m,d=map(int,h[:3]);k=int(h[4]) if h[4:] else 0;z=int(h[5]) if h[5:] else 0;signal.alarm(d)\n"
    " if z:import zlib;b=io.BytesIO(zlib.decompress(b.read(z))+b.read(m))\n"
    " s=b.read(n);c=b.read(k);sys.stdin=io.TextIOWrapper(io.BytesIO(b.read(m)));b=I\n"
    " sys.stdout=O;e=sys.stderr=io.StringIO();o.write(b'\\x1e');o.flush();r=0\n"
    " if h[6:7]!=[b'1'] or not G:G=dict(__name__='__main__',READINESS_CHILD_GROUPS=K,READINESS_SPAWNING=P,READINESS_REAPER=R)\n"
    " try:exec(__import__('marshal').loads(c[4:]) if c[:4]==X else compile(s,'readiness-probe','exec'),G)\n"
    " except SystemExit as x:r=x.code if isinstance(x.code,int) else int(x.code is not None)\n"
    " except BaseException:\n"
    "  import traceback;traceback.print_exc();r=1\n"
    " sys.stdout.flush();E=e.getvalue().encode('utf-8','replace')\n"
    " o.write(b'\\x1d%d %d\\n'%(r,len(E))+E);o.flush()\n"
    " if h[3:4]!=[b'1']:q(r)\n"
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


def bootstrap_stdin(
    source: bytes,
    payload: bytes,
    *,
    deadline_s: float,
    more: bool = False,
    compiled: bool = False,
    packed: bool = False,
    reuse: bool = False,
) -> bytes:
    """What the bootstrap reads: header, source, [code], then the payload (the request).

    The deadline kills the host-side process even if the controller has gone away.
    ``more``: the process waits for another request after answering this one.
    ``compiled``: the source compiled here goes along (marshal, after this Python's magic
    number); a host whose Python has the same magic runs it instead of compiling the
    source (~2.5 ms of host CPU per round), any other compiles the source.
    ``packed``: source and code travel zlib-compressed (a sixth header field, their
    compressed length), as inline arguments do: the example's follow-up request is 31 KB
    plain, 12 KB packed, through sshd and the host's pty.
    ``reuse``: the code runs in the namespace the previous request's code left in the same
    process (a seventh header field): ``source`` need only define what that code did not
    (``pruned_source(ops, loaded)``).
    """
    deadline = max(1, math.ceil(deadline_s))
    code = compiled_source(source) if compiled else b""
    fields = (len(source), len(payload), deadline, int(more), len(code))
    block = _zlib(source, compiled) if packed else b""
    if reuse:
        return b"%d %d %d %d %d %d 1\n" % (*fields, len(block)) + (block or source + code) + payload
    if packed:
        return b"%d %d %d %d %d %d\n" % (*fields, len(block)) + block + payload
    return b"%d %d %d %d %d\n" % fields + source + code + payload


# Ops whose fields are locations, patterns and limits from the profile. A request of
# only these may travel in the command line (other users of the host can read a command
# line in /proc); ``http`` (headers, URLs), ``run`` and friends (argv, environment) may
# carry a credential and always go on stdin.
INLINE_OPS = frozenset(
    {
        "stat",
        "file",
        "file_refs",
        "list",
        "glob",
        "write_test",
        "process",
        "tcp",
        "crontab",
        "systemd",
        "systemd_timers",
        "dists",
    }
)
# The shell's -c argument holds the whole command, under Linux's 128 KiB per argument;
# the command line and the host's environment share ARG_MAX (at least 128 KiB), and a
# large environment must not push the exec to E2BIG. The example's request is ~22 KB.
MAX_INLINE_BYTES = 48 * 1024


def inline_request(
    source: bytes,
    payload: bytes,
    facts: Mapping[str, Mapping[str, Any]],
    *,
    deadline_s: float,
    more: bool = False,
    compiled: bool = False,
) -> list[str] | None:
    """What :func:`bootstrap_stdin` would send, as three arguments for the bootstrap's
    command line (base64: header, zlib of source and code, request), or ``None`` when the
    request may carry a credential (an op outside :data:`INLINE_OPS`) or is too big.

    sshd opens a session's input window only once the command has started, so a first
    request on stdin waits a round trip for it; in the exec request it costs none.
    """
    if any(spec.get("op") not in INLINE_OPS for spec in facts.values()):
        return None
    deadline = max(1, math.ceil(deadline_s))
    code = compiled_source(source) if compiled else b""
    header = b"%d %d %d %d %d\n" % (len(source), len(payload), deadline, int(more), len(code))
    args = [_b64(header), _packed(source, compiled), _b64(payload)]
    if sum(map(len, args)) > MAX_INLINE_BYTES:
        return None
    return args


def _b64(data: bytes) -> str:
    # The newline (ignored when decoded) makes shlex.join single-quote the argument: the
    # host's shell parses a quoted word faster than a bare one (a ~30 KB request: +1.08
    # -> +0.82 ms of bash CPU). It leads: shlex.quote's search for a character to quote
    # then stops at once instead of scanning the whole argument (~0.2 ms per 30 KB).
    return "\n" + binascii.b2a_base64(data, newline=False).decode("ascii")


@functools.lru_cache(maxsize=64)
def _packed(source: bytes, compiled: bool) -> str:
    """base64 of zlib of source and compiled code, once per distinct source."""
    return _b64(_zlib(source, compiled))


@functools.lru_cache(maxsize=64)
def _zlib(source: bytes, compiled: bool) -> bytes:
    """zlib of source and compiled code, once per distinct source."""
    code = compiled_source(source) if compiled else b""
    return zlib.compress(source + code, 6)


@functools.lru_cache(maxsize=64)
def compiled_source(source: bytes) -> bytes:
    """``MAGIC_NUMBER + marshal.dumps(compile(source))``, once per distinct source, without
    column positions (:func:`without_columns`)."""
    code = compile(source, "readiness-probe", "exec", dont_inherit=True)
    return importlib.util.MAGIC_NUMBER + marshal.dumps(without_columns(code))


def without_columns(code: types.CodeType) -> types.CodeType:
    """``code`` with line numbers but no column positions, as ``python -X no_debug_ranges``
    compiles it: a third less to send, zlib-compressed (the example's first request,
    base64: 29 -> 22 KB), and nothing on the host reads the columns (a traceback shows them
    only under a source line, and the probe's ``readiness-probe`` has none). Returns
    ``code`` itself unless every instruction keeps its line (Python < 3.11, a new format)."""
    if not hasattr(code, "co_positions"):  # before 3.11: line numbers only already
        return code
    try:
        stripped = _strip_columns(code)
    except (IndexError, ValueError):
        return code
    return stripped if _lines(stripped) == _lines(code) else code


def _strip_columns(code: types.CodeType) -> types.CodeType:
    consts = tuple(
        _strip_columns(c) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return code.replace(
        co_linetable=_linetable_without_columns(code.co_linetable), co_consts=consts
    )


def _lines(code: types.CodeType) -> list[tuple[int, int, int | None]]:
    """Each code object's (start, end, line) ranges: ~4x cheaper than every position."""
    found = list(code.co_lines())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += _lines(const)
    return found


def _linetable_without_columns(table: bytes) -> bytes:
    """Python 3.11's location table (Objects/locations.md) with every entry rewritten as
    "no column" (code 13: its line delta only) or left as "no location" (code 15)."""
    out = bytearray()
    at = 0
    while at < len(table):
        first = table[at]
        at += 1
        if not first & 0x80:
            raise ValueError("not the start of a location entry")
        kind, units = (first >> 3) & 15, first & 7
        delta: int | None
        if kind == 15:
            delta = None
        elif kind in (13, 14):
            value, at = _varint(table, at)
            delta = -(value >> 1) if value & 1 else value >> 1
            if kind == 14:  # end line delta, start and end columns
                for _ in range(3):
                    _, at = _varint(table, at)
        elif kind >= 10:  # one line, line delta in the code, two column bytes
            delta, at = kind - 10, at + 2
        else:  # the same line, one column byte
            delta, at = 0, at + 1
        if delta is None:
            out.append(0x80 | 15 << 3 | units)
            continue
        out.append(0x80 | 13 << 3 | units)
        value = (-delta << 1) | 1 if delta < 0 else delta << 1
        while value >= 64:
            out.append(64 | (value & 63))
            value >>= 6
        out.append(value)
    if at != len(table):
        raise ValueError("location table ends inside an entry")
    return bytes(out)


def _varint(table: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = table[at]
        at += 1
        value |= (byte & 63) << shift
        shift += 6
        if not byte & 64:
            return value, at


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


_TRAILER = re.compile(rb"(-?\d{1,9}) (\d{1,9})\n")


def split_output(res: CommandResult) -> BootstrapRun:
    """Take the bootstrap's frame apart (stdout and stderr share one stream on a pty)."""
    out, cap = res.stdout, _MESSAGES_CAP
    start = out.find(_START)
    exit_code = res.exit_code
    if start < 0:
        answer, messages = b"", out[:cap] + res.stderr[:cap]
    else:
        # One slice of a (possibly 8 MiB) answer, no intermediate copy of the body.
        end = out.find(_END, start + 1)  # JSON escapes control characters: no GS inside
        answer = out[start + 1 :] if end < 0 else out[start + 1 : end]
        tail = b"" if end < 0 else out[end + 1 : end + 1 + cap + 32]
        trailer = _TRAILER.match(tail)
        if trailer is not None:
            tail = tail[trailer.end() :]
            if res.running:  # the process waits for more: its exit code is in the frame
                exit_code = int(trailer.group(1))
        messages = out[: min(start, cap)] + res.stderr[:cap] + tail[:cap]
    return BootstrapRun(
        exit_code=exit_code,
        answer=answer,
        messages=messages.decode("utf-8", "replace").strip(),
        timed_out=res.timed_out,
        truncated=res.truncated,
        duration_s=res.duration_s,
        started=start >= 0,
    )


class FrameEnd:
    """Watches a bootstrapped run's stdout, chunk by chunk, for the end of one frame (GS,
    then "EXIT LEN\\n" and LEN bytes): where a waiting process's answer is complete."""

    def __init__(self) -> None:
        self.state = 0  # 0: before RS, 1: in the answer, 2: in the trailer, 3: in messages
        self.trailer = b""
        self.left = 0

    def __call__(self, chunk: bytes) -> bool:
        if self.state == 0:
            at = chunk.find(_START)
            if at < 0:
                return False
            self.state, chunk = 1, chunk[at + 1 :]
        if self.state == 1:
            at = chunk.find(_END)
            if at < 0:
                return False
            self.state, chunk = 2, chunk[at + 1 :]
        if self.state == 2:
            self.trailer += chunk[:32]
            newline = self.trailer.find(b"\n")
            if newline < 0:
                if len(self.trailer) >= 32:
                    self.state = 4  # not our trailer: only the end of the output ends it
                return False
            found = _TRAILER.match(self.trailer)
            if found is None:
                self.state = 4
                return False
            self.state, self.left = 3, int(found.group(2))
            chunk = self.trailer[found.end() :] + chunk[32:]
        if self.state == 3:
            self.left -= len(chunk)
            return self.left <= 0
        return False


# strerror(E2BIG) in the C locale. sshd never sets a locale: its own exec of the user's
# shell fails with "/bin/bash: Argument list too long" (exit 1); the shell's exec of
# python3 with "bash: line 1: /usr/bin/python3: Argument list too long" (exit 126).
_E2BIG_TEXT = "Argument list too long"


def argv_too_long(res: BootstrapRun) -> bool:
    """Whether a run failed because its command line did not fit beside the host's
    environment (E2BIG): the host's shell, or sshd starting it, said so and Python never
    ran. Anything else (a missing or unexecutable python3, a forced command) is not this."""
    return (
        not res.started
        and res.exit_code in (1, 126)
        and not (res.timed_out or res.truncated)
        and _E2BIG_TEXT in res.messages
    )


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """Only marshal-safe plain data goes to the host (tuples become lists, keys strings)."""
    # Exact types first (an ABC isinstance costs ~1 us; a request holds ~100 values):
    # the same data as the general path below.
    kind = type(value)
    if kind is dict:
        return {(k if type(k) is str else str(k)): _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    if kind in _PLAIN_SCALARS:
        return value
    return _plain_general(value)


def _plain_general(value: Any) -> Any:
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
    if res.exit_code == -1:  # SSH: no exit status (paramiko drops sshd's exit-signal)
        said = f": {res.messages[:500]}" if res.messages else ""
        raise ProbeError(
            f"{what} ended without an exit status: killed by a signal on the host (the OOM "
            f"killer, an administrator), or the connection was lost{said}"
        )
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
    with ProbeSession(transport, timeout_s=timeout_s, sudo=sudo, max_output=max_output) as probe:
        return probe.ask(facts, more=False)


class ProbeSession:
    """The probe's rounds on one host in one host-side process: one command per host.

    ``ask(facts, more=True)`` leaves the process waiting for another request (the
    follow-up round: no second command, interpreter start or pty); ``close()`` ends it.
    A transport without ``start`` (or a process that is gone) gets one command per round.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timeout_s: float = 60.0,
        sudo: bool = False,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.transport, self.timeout_s, self.sudo = transport, timeout_s, sudo
        self.max_output = max_output
        self._session: Session | None = None
        # The ops whose module the waiting process has run (its namespace holds their
        # functions): a follow-up request then ships only what they lack.
        self._loaded: frozenset[str] | None = None

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        session, self._session = self._session, None
        self._loaded = None
        if session is not None:
            session.close()

    def _round(
        self, argv: list[str], inline: list[str] | None, stdin: bytes, *, more: bool
    ) -> BootstrapRun:
        """One request: on a new process (``argv``, the request in ``inline`` arguments or
        on ``stdin``) or, when one is waiting, on it (``stdin``)."""
        timeout = self.timeout_s + _GRACE_S  # see run_bootstrapped
        start = getattr(self.transport, "start", None)
        pending = stdin
        if self._session is None and inline is not None:
            argv, stdin = argv + inline, b""
        if self._session is None and more and callable(start):
            self._session = start(argv, timeout=timeout, stdin=stdin)
            pending = b""
        if self._session is not None:
            raw = self._session.exchange(
                pending, until=FrameEnd(), timeout=timeout, max_output=self.max_output
            )
            if not (raw.running and more):
                self.close()  # it exited, or exits now: this was the last round
        else:
            raw = self.transport.run(argv, stdin=stdin, timeout=timeout, max_output=self.max_output)
        return split_output(raw)

    def ask(self, facts: Mapping[str, Mapping[str, Any]], *, more: bool) -> dict[str, Any]:
        """Run the probe for ``facts``; its answer (``meta.probe_s``: this round's time)."""
        ops = ops_in(facts)
        # marshal (format 4, Python >= 3.4) is builtin on the host: no import cost, and the
        # request is the controller's own plain data, never something a host sent.
        payload = marshal.dumps({"facts": _plain(facts)}, 4)
        start = getattr(self.transport, "start", None)
        if not callable(start):
            more = False

        try:
            if self._session is not None and not self._session.alive:
                self.close()
            # A waiting process keeps the namespace its first request's code left: this
            # request ships only the functions that code lacked.
            loaded = self._loaded if self._session is not None else None
            src = pruned_source(ops, loaded)

            def on_stdin() -> bytes:
                return bootstrap_stdin(
                    src,
                    payload,
                    deadline_s=self.timeout_s,
                    more=more,
                    compiled=not self.transport.is_local,
                    packed=not self.transport.is_local,
                    reuse=loaded is not None,
                )

            argv: list[str] = []
            inline = None
            if self._session is None:
                python = sys.executable if self.transport.is_local else "python3"
                argv = bootstrap_argv(python=python, sudo=self.sudo)
                # Over SSH, the first request travels in the exec request itself (no round
                # trip for sshd to open the input window). Not under sudo: sudo logs
                # command lines.
                if not (self.transport.is_local or self.sudo):
                    inline = inline_request(
                        src, payload, facts, deadline_s=self.timeout_s, more=more, compiled=True
                    )
            res = self._round(argv, inline, b"" if inline else on_stdin(), more=more)
            if inline is not None and argv_too_long(res):
                # The host's environment left no room for the request in the command line
                # (E2BIG, before Python ran): the same request again on stdin, the one case
                # where a host gets a second command (docs/performance.md).
                res = self._round(argv, None, on_stdin(), more=more)
            check_exit(
                res, "probe", timeout_s=self.timeout_s, sudo=self.sudo, max_output=self.max_output
            )
            if self._session is not None:
                self._loaded = ops if loaded is None else ops | loaded
        except BaseException:
            self.close()
            raise
        return _answer(res)


def _answer(res: BootstrapRun) -> dict[str, Any]:
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
    if not isinstance(answer, dict) or not isinstance(answer.get("facts"), dict):
        raise ProbeError("probe answer has no facts")
    # The real probe answers an object per fact and an object of meta: anything else is a
    # forged answer, one clear per-host error (not "internal error: TypeError" in every
    # check, nor a list of facts read as "no file exists").
    if not isinstance(answer.setdefault("meta", {}), dict) or not all(
        type(fact) is dict for fact in answer["facts"].values()
    ):
        raise ProbeError("probe answer is malformed: its facts or meta are not JSON objects")
    answer["meta"]["probe_s"] = round(duration, 4)
    return answer
