"""Run checks on hosts: one probe per host, bounded fleet parallelism, deadlines, Ctrl-C.

Per-host outcomes are data (as fabric's GroupResult): a dead host becomes a
HostReport marked UNREACHABLE, never a raised exception. Only KeyboardInterrupt
crosses this boundary, and even then every finished host is kept.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any, Generic, TypeVar

from .appconfig import AppConfig, build_app_config
from .collect import ProbeError, ProbeSession, ProbeSettings
from .errors import TransportError
from .interrupt import (
    TRANSACTION_GRACE_S,
    HostGate,
    reraise_if_the_task_ends,
    signal_name,
    stop_reason,
    stop_requested,
    transaction,
    working_on,
)
from .inventory.secrets import hosts_secrets
from .model import CheckResult, FleetReport, HostReport, Outcome, Status, utcnow
from .netaddr import endpoint
from .profile import Profile
from .progress import Progress, Wording
from .redact import Redactor, holds_a_secret
from .registry import CheckContext, CheckSpec, FactSpecs
from .transport import (
    DEFAULT_MAX_OUTPUT,
    ConnectionSettings,
    Connector,
    HostLike,
    LocalTransport,
    Transport,
    reach_through,
)

__all__ = [
    "APP_OBSERVERS",
    "FACT_OBSERVERS",
    "FACT_REQUESTS",
    "NOT_AUDITED",
    "TRANSACTION_GRACE_S",
    "ConnectionSettings",
    "Connector",
    "FleetSettings",
    "HostLike",
    "LocalConnector",
    "LoopResult",
    "ProbeSettings",
    "RunOptions",
    "audit_host",
    "base_facts",
    "run_fleet",
    "run_hosts",
    "stop_reason",
    "stop_requested",
    "transaction",
]


@dataclass(frozen=True)
class FleetSettings:
    """How the fleet loop runs: parallelism, the per-host deadline, progress."""

    forks: int = 32
    host_deadline: float = 120.0
    progress: bool | None = None  # None/True: a live line on a tty, else a plain line
    progress_interval: float = 10.0  # seconds between plain progress lines (no tty)
    quiet: bool = False


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a run, flat as the flags and invoke.yaml give them.

    Each layer reads only its own part: :attr:`connection` (transport: connect, host
    keys, ssh_config, identity), :attr:`probe` (collect: command timeout, sudo, output
    cap) and :attr:`fleet` (this module: forks, host deadline, progress). Every network
    wait has an explicit bound.
    """

    forks: int = 32
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    host_deadline: float = 120.0
    sudo: bool = False
    accept_new_host_keys: bool = False
    known_hosts: str | None = None
    ssh_config: str | None = None
    identity_file: str | None = None
    max_output: int = DEFAULT_MAX_OUTPUT
    # None/True: a live line on a tty, else a plain line. False: a run inside another
    # (bench's measured runs, a worker's shard) that its caller reports: no progress line
    # and no summary line (--quiet keeps the summary: it is the one line a CI log needs).
    progress: bool | None = None
    progress_interval: float = 10.0  # seconds between plain progress lines (no tty)
    quiet: bool = False
    # Where the hosts are audited (readiness/engine, docs/distributed.md). The broker URL may
    # hold a password: never in a repr.
    engine: str = "local"
    broker: str | None = field(default=None, repr=False)
    shard_size: int = 25
    shard_wait: float = 60.0
    visibility_timeout: float = 300.0

    @property
    def connection(self) -> ConnectionSettings:
        return ConnectionSettings(
            connect_timeout=self.connect_timeout,
            known_hosts=self.known_hosts,
            ssh_config=self.ssh_config,
            identity_file=self.identity_file,
            accept_new_host_keys=self.accept_new_host_keys,
        )

    def __post_init__(self) -> None:
        """Coerce and range-check every field (``RunOptions(forks="8")`` works, "x" fails)."""
        from .options import OPTIONS

        for name in self.__dataclass_fields__:
            spec = OPTIONS.get(name)
            value = getattr(self, name)
            if spec is None or spec.kind not in ("int", "float", "bool") or value is None:
                continue  # paths stay as given ("" means "none" to the SSH layer)
            object.__setattr__(self, name, spec.coerce(value, f"RunOptions.{name}"))

    @property
    def probe(self) -> ProbeSettings:
        return ProbeSettings(
            command_timeout=self.command_timeout, sudo=self.sudo, max_output=self.max_output
        )

    @property
    def fleet(self) -> FleetSettings:
        return FleetSettings(
            forks=self.forks,
            host_deadline=self.host_deadline,
            progress=self.progress,
            progress_interval=self.progress_interval,
            quiet=self.quiet,
        )


class LocalConnector:
    """Runs every host on the controller; SSH hosts need ``readiness.ssh.SshConnector``."""

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        self._ssh: Connector | None = None
        self._lock = threading.Lock()

    def open(self, host: HostLike) -> Transport:
        if host.local:
            return LocalTransport()
        with self._lock:
            if self._ssh is None:
                from .ssh import SshConnector  # type: ignore[import-not-found,unused-ignore]

                self._ssh = SshConnector(self.options.connection)
        return self._ssh.open(host)

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()


# Observers of each audited host's parsed configuration, called before its checks run:
# the results store's drift fingerprints (readiness/store/drift.py keeps only keyed HMACs
# of the values, never a value). An observer must not raise.
APP_OBSERVERS: list[Callable[[str, AppConfig, Profile], None]] = []
# Observers of the facts the probe brought back for the checks (both round trips): drift
# fingerprints of alert rules, cron lines and migration scripts, with no extra round trip.
# Same contract: keyed HMACs only, and an observer must not raise.
FACT_OBSERVERS: list[Callable[[str, Mapping[str, Any], Profile], None]] = []
# Facts an observer asks the probe for besides the checks' (in the first round trip): the
# drift collector's package versions. A request must not raise.
FACT_REQUESTS: list[Callable[[Profile], FactSpecs]] = []


def base_facts(profile: Profile) -> FactSpecs:
    """Facts every audit needs: the settings file, the env file, and the running service."""
    facts: FactSpecs = {
        "app:settings": {"op": "file", "path": profile.path_of("settings_file")},
        "app:env_file": {"op": "file", "path": profile.path_of("env_file")},
    }
    facts = {k: v for k, v in facts.items() if v.get("path")}
    pidfile, match = profile.path_of("pidfile"), profile.get("process_match")
    if pidfile or match:
        facts["app:process"] = {
            "op": "process",
            "pidfile": pidfile,
            "match": match,
            "env_prefixes": [str(profile.get("env_prefix") or "")],
        }
    return facts


def _gather(specs: Sequence[CheckSpec], profile: Profile) -> FactSpecs:
    facts = base_facts(profile)
    for request in tuple(FACT_REQUESTS):
        facts.update(request(profile))
    for spec in specs:
        if spec.facts is not None:
            facts.update(spec.facts(profile))
    return facts


def audit_host(
    host: HostLike,
    specs: Sequence[CheckSpec],
    profile: Profile,
    transport: Transport,
    *,
    options: RunOptions,
    redactor: Redactor,
    app_object: Any = None,
) -> HostReport:
    """Probe one host (one round trip, two when a check needs follow-up facts) and judge it."""
    started = time.monotonic()
    followups = [spec.followup for spec in specs if spec.followup is not None]
    try:
        # One host-side process for both rounds: the follow-up round (facts that depend on
        # the first answer) costs a request on the same command, not a second command.
        with ProbeSession(
            transport,
            timeout_s=options.command_timeout,
            sudo=options.sudo,
            max_output=options.max_output,
        ) as probe:
            answer = probe.ask(_gather(specs, profile), more=bool(followups))
            facts: dict[str, Any] = dict(answer["facts"])
            meta = dict(answer.get("meta") or {})
            app = _app_config(facts, profile)
            # The tunnels the checks will need are known now: opening them meanwhile
            # overlaps their round trip with the follow-up round's.
            _prefetch_tunnels(
                transport,
                specs,
                lambda: _context(host, transport, profile=profile, facts=facts, app=app, meta=meta),
            )
            more: FactSpecs = {}
            for followup in followups:
                more.update(followup(profile, app, facts))
            if more:
                second = probe.ask(more, more=False)
                facts.update(second["facts"])
                meta["probe_s"] = meta.get("probe_s", 0) + second["meta"].get("probe_s", 0)
    except ProbeError as exc:
        return _failed_host(host, specs, Status.ERROR, redactor.text(str(exc)), started)
    except TransportError as exc:
        return _failed_host(host, specs, Status.UNREACHABLE, redactor.text(str(exc)), started)
    _register_secrets(redactor, app, profile)
    for observe in tuple(APP_OBSERVERS):
        observe(host.name, app, profile)
    for observe_facts in tuple(FACT_OBSERVERS):
        observe_facts(host.name, facts, profile)

    results = [
        _evaluate(
            spec,
            _context(
                host,
                transport,
                profile=profile,
                facts=facts,
                app=app,
                meta=meta,
                app_object=app_object,
            ),
            redactor,
        )
        for spec in specs
    ]
    report = HostReport(
        host=host.name,
        results=tuple(results),
        address=_address(host),
        groups=tuple(host.groups),
        duration_s=time.monotonic() - started,
        facts_meta=meta,
    )
    return redactor.host(report)


def _context(
    host: HostLike,
    transport: Transport,
    *,
    profile: Profile,
    facts: dict[str, Any],
    app: AppConfig,
    meta: dict[str, Any],
    app_object: Any = None,
) -> CheckContext:
    return CheckContext(
        host=host.name,
        profile=profile,
        facts=facts,
        app=app,
        meta=meta,
        is_local=transport.is_local,
        app_object=app_object,
        reach=reach_through(transport),
    )


def _prefetch_tunnels(
    transport: Transport, specs: Sequence[CheckSpec], context: Callable[[], CheckContext]
) -> None:
    """Open the tunnels this host's checks will need, all at once, before they run.

    Each check names what it will reach from this host's own configuration (a context of
    its own, from the first round's facts, thrown away afterwards); the transport opens those channels together on this
    host's connection, and each check's own tunnel request then shares the answer. A
    check that cannot name them is simply not helped: it opens its tunnel itself.
    """
    prefetch = getattr(transport, "prefetch", None)
    if transport.is_local or not callable(prefetch):
        return
    wanted: list[tuple[str, int]] = []
    for spec in specs:
        if spec.destinations is None:
            continue
        with contextlib.suppress(Exception):  # the check itself reports what is wrong
            wanted.extend(spec.destinations(context()))
    if wanted:
        prefetch(wanted)


def _app_config(facts: Mapping[str, Any], profile: Profile) -> AppConfig:
    return build_app_config(
        settings_fact=facts.get("app:settings"),
        env_file_fact=facts.get("app:env_file"),
        process_fact=facts.get("app:process"),
        env_prefix=str(profile.get("env_prefix") or ""),
        delimiter=str(profile.get("env_nested_delimiter") or "__"),
    )


def _register_secrets(redactor: Redactor, app: AppConfig, profile: Profile) -> None:
    patterns = tuple(str(p) for p in profile.get("secret_env") or ())
    # a setting about a secret (token_audience: mahavishnu, token_expiry: 1h) holds none: its
    # value registered as one was masked in every string of the report, paths included
    for name, var in app.env.items():
        if holds_a_secret(name, patterns):
            redactor.add(var.value)

    def walk(node: Any, key: str = "") -> None:
        # Strings and dicts first: most of a settings tree, and an ABC isinstance (Mapping)
        # costs ~1 us a value; the same values registered as testing Mapping first.
        if isinstance(node, str):
            if key and holds_a_secret(key, patterns):
                redactor.add(node)
        elif isinstance(node, (dict, Mapping)):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(app.settings)


def _evaluate(spec: CheckSpec, ctx: CheckContext, redactor: Redactor) -> CheckResult:
    """The boundary where every exception becomes a status (as nox's SessionRunner.execute)."""
    ts, t0 = utcnow(), time.monotonic()
    try:
        outcome = spec.evaluate(ctx)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a broken check is reported, never crashes the run
        outcome = Outcome(
            Status.ERROR,
            f"check failed to run: {type(exc).__name__}: {exc}",
            {"exception": type(exc).__name__},
            (
                "This is a bug in the check or an unexpected environment; rerun with -v and report it",
            ),
        )
    redactor.add(*ctx.secrets)
    outcome = _undetermined_if_refused(outcome, ctx.refusals())
    return CheckResult.from_outcome(
        spec.name, outcome, host=ctx.host, started=ts, duration_s=time.monotonic() - t0
    )


def _undetermined_if_refused(outcome: Outcome, refusals: list[str]) -> Outcome:
    """A check that depends on a file the probe refused to read cannot be READY: it judged
    without that file. READY (and SKIPPED: "not configured" may only mean unread) becomes
    DEGRADED ("cannot determine"); a worse verdict stays; each names the refusal (details
    ``refused``)."""
    if not refusals or outcome.status is Status.ERROR:
        return outcome
    why = "cannot determine: " + "; ".join(f"refused: {r}" for r in refusals)
    details = {**outcome.details, "refused": list(refusals)}
    status, message = outcome.status, outcome.message
    if status in (Status.READY, Status.SKIPPED):
        status, message = Status.DEGRADED, why
    elif why not in message:
        message = f"{message} ({why})"
    recommendations = (
        *outcome.recommendations,
        "Point the profile at the real file, or make the link's target readable by the "
        "user who owns the link",
    )
    return replace(
        outcome, status=status, message=message, details=details, recommendations=recommendations
    )


def _address(host: HostLike) -> str:
    if host.local:
        return "local"
    return endpoint(host.address, host.port) if host.port and host.port != 22 else host.address


def _failed_host(
    host: HostLike, specs: Sequence[CheckSpec], status: Status, reason: str, started: float
) -> HostReport:
    ts = utcnow()
    recs = {
        Status.UNREACHABLE: "Check the host is up, its address/port/user in the inventory, and its key in known_hosts",
        Status.ERROR: "Fix the host-side problem above, then rerun the audit",
        Status.INTERRUPTED: "Rerun the audit: this host was not audited",
    }
    results = tuple(
        CheckResult(
            check_name=s.name,
            status=status,
            message=reason,
            details={},
            recommendations=(recs.get(status, "Rerun the audit for this host"),),
            timestamp=ts,
            host=host.name,
        )
        for s in specs
    )
    return HostReport(
        host=host.name,
        results=results,
        address=_address(host),
        groups=tuple(host.groups),
        reason=reason,
        duration_s=time.monotonic() - started,
    )


T = TypeVar("T")

# What one host's work is, once its connection is open: an audit, a remediation, a bench.
HostWork = Callable[[HostLike, Transport], T]
# The result for a host that could not be worked on: (host, status, reason, monotonic start).
HostFailed = Callable[[HostLike, Status, str, float], T]

NOT_AUDITED = "not audited: run interrupted"


@dataclass(frozen=True)
class LoopResult(Generic[T]):
    """One result per host, in inventory order, and the signal that stopped the run if any."""

    results: tuple[T, ...]
    interrupted_by: str = ""  # "SIGINT" or "SIGTERM"


class _Loop(Generic[T]):
    """State of one fleet run: which host started when, which transport is open."""

    def __init__(
        self,
        hosts: Sequence[HostLike],
        work: HostWork[T],
        failed: HostFailed[T],
        *,
        status_of: Callable[[T], Status],
        options: RunOptions,
        connector: Connector,
        progress: Progress,
    ) -> None:
        self.hosts, self.work_fn, self.failed = hosts, work, failed
        self.status_of, self.options, self.connector = status_of, options, connector
        self.progress = progress
        self.results: list[T | None] = [None] * len(hosts)
        self.transports: dict[int, Transport] = {}
        # When each host started that is not yet recorded, and how many are recorded: the
        # main loop asks both after every finished host, so neither may cost in proportion
        # to the fleet.
        self.in_flight: dict[int, float] = {}
        self.recorded = 0
        self.lock = threading.Lock()
        # Shared with the hosts' work: stopping (start nothing more), by which signal, and
        # which hosts are inside a transaction (interrupt.transaction).
        self.gate = HostGate(self.lock)
        self.stopping = self.gate.stopping
        # hosts past their deadline inside a transaction: (transport, hang up by then)
        self.closing: dict[int, tuple[Transport, float]] = {}
        self.done: queue.SimpleQueue[tuple[int, T | BaseException]] = queue.SimpleQueue()
        self.next_index = 0

    def worker(self) -> None:
        """Take the next host until none are left or the run stops (a daemon thread)."""
        while not self.stopping.is_set():
            with self.lock:
                i = self.next_index
                if i >= len(self.hosts):
                    return
                self.next_index += 1
                self.in_flight[i] = began = time.monotonic()
            self.progress.started(i)
            try:
                outcome: T | BaseException = self.work(i, began)
            except BaseException as exc:  # reported as the host's ERROR by collect()
                outcome = exc
            self.done.put((i, outcome))

    def work(self, i: int, t0: float) -> T:
        host = self.hosts[i]
        try:
            transport = self.connector.open(host)
        except Exception as exc:  # refused, timed out, auth failed, host key: all UNREACHABLE
            msg = str(exc) if isinstance(exc, TransportError) else f"{type(exc).__name__}: {exc}"
            return self.failed(host, Status.UNREACHABLE, msg, t0)
        with self.lock:
            if self.stopping.is_set():  # interrupted while connecting: start nothing there
                _quiet_close(transport)
                return self.failed(host, Status.INTERRUPTED, NOT_AUDITED, t0)
            given_up = self.results[i]
            if given_up is not None:  # its deadline passed while connecting: start nothing
                _quiet_close(transport)
                return given_up
            self.transports[i] = transport
        try:
            with working_on(self.gate, i):
                return self.work_fn(host, transport)
        finally:
            with self.lock:
                self.transports.pop(i, None)
            _quiet_close(transport)

    def record(self, i: int, result: T) -> None:
        if self.results[i] is None:
            self.results[i] = result
            with self.lock:
                self.in_flight.pop(i, None)
            self.recorded += 1
            self.progress.finished(i, self.status_of(result))

    def collect(self, i: int, outcome: T | BaseException) -> None:
        if isinstance(outcome, BaseException):
            msg = f"internal error: {outcome!r}"
            self.record(i, self.failed(self.hosts[i], Status.ERROR, msg, time.monotonic()))
        else:
            self.record(i, outcome)

    def enforce_deadlines(self) -> None:
        """A host past its deadline is reported UNREACHABLE and its connection torn down."""
        now, limit = time.monotonic(), self.options.host_deadline
        with self.lock:
            late = [
                (i, began, self.transports.get(i))
                for i, began in self.in_flight.items()
                if self.results[i] is None and now - began > limit
            ]
        for i, began, transport in late:
            msg = f"host deadline of {limit:g}s exceeded"
            self.record(i, self.failed(self.hosts[i], Status.UNREACHABLE, msg, began))
            if transport is None:
                continue
            with self.gate.cond:
                held = bool(self.gate.held.get(i))
                self.gate.host_stops[i] = msg
            if held:  # inside a transaction: it undoes its work, then is hung up (bounded)
                self.closing[i] = (transport, now + TRANSACTION_GRACE_S)
            else:
                _quiet_close(transport)  # hangs the remote session up: nothing stays there
        self.close_settled()

    def close_settled(self, *, wait: bool = False) -> None:
        """Hang up the hosts stopped at their deadline inside a transaction once it has
        ended, or its grace is over; with ``wait``, wait (bounded) for that."""
        while self.closing:
            with self.gate.cond:
                now = time.monotonic()
                due = [
                    i
                    for i, (_, until) in self.closing.items()
                    if not self.gate.held.get(i) or now >= until
                ]
                if not due and wait:
                    until = min(until for _, until in self.closing.values())
                    self.gate.cond.wait(max(0.0, until - now))
                    continue
            for i in due:
                _quiet_close(self.closing.pop(i)[0])
            if not wait:
                return

    def finished(self) -> bool:
        return self.recorded == len(self.results)

    def abort(self, by: str) -> None:
        """Start nothing more; hang up every open connection (their remote work ends).

        A host inside a :func:`transaction` is given up to TRANSACTION_GRACE_S to end it
        (and its result is kept: what it finished or rolled back is known); then it is
        hung up too."""
        gate = self.gate
        with gate.cond:
            gate.stopped_by = by
            self.stopping.set()
            open_now = dict(self.transports)
            held = {i for i in open_now if gate.held.get(i)}
        for i, transport in open_now.items():
            if i not in held:
                _quiet_close(transport)
        if not held:
            return
        deadline = time.monotonic() + TRANSACTION_GRACE_S
        with gate.cond:
            while any(gate.held.get(i) for i in held) and time.monotonic() < deadline:
                gate.cond.wait(max(0.0, deadline - time.monotonic()))
            late = [i for i in held if gate.held.get(i)]
        for i in late:
            _quiet_close(open_now[i])
        # a moment more for the result a transaction's end leads to (the host's work
        # returns right after it)
        self._collect_within(held, max(deadline, time.monotonic() + 0.25))

    def _collect_within(self, wanted: set[int], deadline: float) -> None:
        """Record the results ``wanted`` hosts deliver before ``deadline`` (the others'
        results after a hang-up are only "connection closed": they stay INTERRUPTED)."""
        waiting = {i for i in wanted if self.results[i] is None}
        while waiting and (left := deadline - time.monotonic()) > 0:
            try:
                i, outcome = self.done.get(timeout=left)
            except queue.Empty:
                return
            if i in waiting and not isinstance(outcome, BaseException):
                waiting.discard(i)
                self.record(i, outcome)

    def final(self, reason: str) -> tuple[T, ...]:
        now = time.monotonic()
        return tuple(
            r
            if r is not None
            else self.failed(self.hosts[i], Status.INTERRUPTED, reason, self.in_flight.get(i, now))
            for i, r in enumerate(self.results)
        )


# The cyclic garbage collector during a fleet run. A run allocates many small containers
# per host (parsed answers, findings, paramiko messages), so at the default thresholds
# CPython collects the young generation every 700 allocations and, now and then, walks
# the whole heap (every module, class and function loaded before the run, too): ~2-3 ms
# of controller CPU per host on the example fleet. For the run's duration the heap that
# existed before it is frozen (``gc.freeze``: never walked again until the run ends) and
# the young generation is collected every 10,000 allocations, so cycles a host leaves
# behind are still collected during the run. Restored when the last concurrent run ends;
# nothing changes when the caller disabled the collector, set its own thresholds above
# these, or froze objects itself (then it is not unfrozen here).
FLEET_GC_THRESHOLD = (10_000, 10, 10)


class _FleetGc:
    """Freeze the heap and raise the young threshold while any run is going.

    A Ctrl-C can land at any bytecode, so each run is a token in ``active`` (adding or
    discarding it is one step: the count cannot drift), the set-up happens inside the
    ``try`` whose ``finally`` always leaves, and leaving waits for the lock through an
    interrupt (re-raised once the collector is restored).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: set[object] = set()
        self.saved: tuple[tuple[int, int, int], bool] | None = None

    @property
    def runs(self) -> int:
        return len(self.active)

    @contextlib.contextmanager
    def during_run(self) -> Iterator[None]:
        token = object()
        try:
            self._enter(token)
            yield
        finally:
            self._leave(token)

    def _enter(self, token: object) -> None:
        with self.lock:
            if not self.active and self.saved is None:
                threshold = gc.get_threshold()
                if gc.isenabled() and threshold[0] > 0:
                    freeze = gc.get_freeze_count() == 0
                    self.saved = (threshold, freeze)  # first: an interrupt below is undone
                    if freeze:
                        gc.freeze()
                    gc.set_threshold(
                        *(
                            max(mine, theirs)
                            for mine, theirs in zip(FLEET_GC_THRESHOLD, threshold, strict=True)
                        )
                    )
            self.active.add(token)

    def _leave(self, token: object) -> None:
        interrupted: BaseException | None = None
        for _ in range(100):  # bounded: a Ctrl-C per attempt is already absurd
            try:
                self.lock.acquire()
            except BaseException as exc:  # Ctrl-C while waiting: restore first, raise below
                interrupted = exc
                continue
            try:
                self.active.discard(token)
                if not self.active and self.saved is not None:
                    threshold, froze = self.saved
                    gc.set_threshold(*threshold)
                    if froze:
                        gc.unfreeze()
                    self.saved = None
            finally:
                self.lock.release()
            break
        if interrupted is not None:
            raise interrupted


_fleet_gc = _FleetGc()


def run_hosts(
    hosts: Sequence[HostLike],
    work: HostWork[T],
    failed: HostFailed[T],
    *,
    status_of: Callable[[T], Status],
    options: RunOptions | None = None,
    connector: Connector | None = None,
    stderr: IO[str] | None = None,
    cancel: threading.Event | None = None,
    wording: Wording | None = None,
) -> LoopResult[T]:
    """The one fleet loop: ``work(host, transport)`` on every host, ``options.forks`` at once.

    Every task (validate, the suites, remediate, bench) runs through here, so forks,
    the per-host deadline, interruption and progress are the same everywhere. A host
    that cannot be connected, passes its deadline, or is not reached before an
    interruption gets ``failed(host, status, reason, started)``; ``status_of`` tells the
    progress line how a result counts and ``wording`` what the progress and summary lines
    call it.

    Ctrl-C (KeyboardInterrupt, or :class:`~readiness.interrupt.Interrupted` for SIGTERM)
    stops starting hosts, hangs up every open connection (which ends the remote
    processes) and returns at once: finished hosts are kept, the rest are INTERRUPTED.
    Workers are daemon threads, so a host stuck in a TCP connect cannot hold the process.
    ``cancel`` set from another thread stops the run the same way (a revoked Celery shard).
    """
    with _fleet_gc.during_run():
        return _run_hosts(
            hosts,
            work,
            failed,
            status_of=status_of,
            options=options,
            connector=connector,
            stderr=stderr,
            cancel=cancel,
            wording=wording,
        )


_TICK_S = 0.05  # how often the fleet loop looks at deadlines, progress and cancel


def _run_hosts(
    hosts: Sequence[HostLike],
    work: HostWork[T],
    failed: HostFailed[T],
    *,
    status_of: Callable[[T], Status],
    options: RunOptions | None,
    connector: Connector | None,
    stderr: IO[str] | None,
    cancel: threading.Event | None,
    wording: Wording | None = None,
) -> LoopResult[T]:
    options = options or RunOptions()
    own_connector = connector is None
    connector = connector or LocalConnector(options)
    progress = Progress.for_run(hosts, options, stderr or sys.stderr, wording)
    loop = _Loop(
        hosts,
        work,
        failed,
        status_of=status_of,
        options=options,
        connector=connector,
        progress=progress,
    )
    interrupted_by = ""
    workers = max(1, min(options.forks, len(hosts) or 1))
    try:
        for n in range(workers if hosts else 0):
            threading.Thread(target=loop.worker, name=f"readiness-fleet-{n}", daemon=True).start()
        due = time.monotonic()  # the next look at deadlines, progress and cancel
        while not loop.finished():
            with contextlib.suppress(queue.Empty):
                i, outcome = loop.done.get(timeout=_TICK_S)
                if isinstance(outcome, KeyboardInterrupt):  # a worker's Ctrl-C stops the run
                    raise outcome
                loop.collect(i, outcome)
                if time.monotonic() < due:
                    continue
            # Every _TICK_S even while hosts finish faster than that: before, only after
            # _TICK_S without any result, so a steady stream of finished hosts (a big fleet)
            # held a hung host past its deadline until the stream thinned out.
            due = time.monotonic() + _TICK_S
            loop.enforce_deadlines()
            progress.tick()
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
        loop.close_settled(wait=True)  # a host stopped at its deadline mid-transaction
    except KeyboardInterrupt as exc:
        interrupted_by = signal_name(exc)
        loop.abort(interrupted_by)
    finally:
        progress.close()
        if own_connector:
            connector.close()
    reason = f"{NOT_AUDITED} ({interrupted_by})" if interrupted_by else NOT_AUDITED
    results = loop.final(reason)
    progress.summary([status_of(r) for r in results], interrupted_by)
    reraise_if_the_task_ends(interrupted_by)  # bench: every host is hung up by now
    return LoopResult(results, interrupted_by)


def run_fleet(
    hosts: Sequence[HostLike],
    specs: Sequence[CheckSpec],
    profiles: Mapping[str, Profile],
    *,
    options: RunOptions | None = None,
    connector: Connector | None = None,
    redactor: Redactor | None = None,
    app_object: Any = None,
    stderr: IO[str] | None = None,
    on_host: Callable[[HostReport], None] | None = None,
    cancel: threading.Event | None = None,
) -> FleetReport:
    """Audit ``hosts`` through :func:`run_hosts`; one :class:`FleetReport` in inventory order.

    ``on_host`` sees each host's report as soon as it is made (a Celery shard streams them
    to the controller); ``cancel`` stops the run like Ctrl-C."""
    options = options or RunOptions()
    redactor = redactor or Redactor()
    redactor.add(*hosts_secrets(hosts))  # they can reach a reason (a ProxyCommand's sshpass -p)
    opts = options

    def audit(host: HostLike, transport: Transport) -> HostReport:
        began = time.monotonic()
        report = audit_host(
            host,
            specs,
            profiles[host.name],
            transport,
            options=opts,
            redactor=redactor,
            app_object=app_object,
        )
        stopped = stop_requested()
        if stopped:  # a check's work was cut short (see transaction()): no verdict
            return failed(host, Status.INTERRUPTED, f"{NOT_AUDITED} ({stopped})", began)
        if on_host is not None:
            on_host(report)
        return report

    def failed(host: HostLike, status: Status, reason: str, began: float) -> HostReport:
        report = _failed_host(host, specs, status, redactor.text(reason), began)
        if on_host is not None and status is not Status.INTERRUPTED:
            on_host(report)
        return report

    loop = run_hosts(
        hosts,
        audit,
        failed,
        status_of=lambda report: report.status,
        options=options,
        connector=connector,
        stderr=stderr,
        cancel=cancel,
    )
    return FleetReport(
        hosts=loop.results,
        checks=tuple(s.name for s in specs),
        interrupted=bool(loop.interrupted_by),
        interrupted_by=loop.interrupted_by,
    )


def _quiet_close(transport: Transport) -> None:
    with contextlib.suppress(Exception):  # tearing down a dead connection must not mask the report
        transport.close()
