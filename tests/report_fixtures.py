"""Fleets for the renderer tests: every Status, hostile host text, a large fleet."""

from __future__ import annotations

from datetime import datetime, timezone

from readiness.model import CheckResult, FleetReport, HostReport, Status

TS = datetime(2025, 2, 5, 10, 30, tzinfo=timezone.utc)

# What a hostile host can put in a message: markup, CDATA end, control characters, ANSI,
# the separators of line formats (| for Nagios perfdata, # for TAP, " and \ for labels).
HOSTILE = (
    "<script>alert(1)</script> ]]> <img src=x onerror=\"document.title='pwned'\"> "
    "\x00\x07\x1b[31mred\x1b[0m & 'quote\" | perf=1 # SKIP \\ back\nsecond line\u2028é ✓"
    " [click](http://evil.example) ![i](http://evil.example/i.png) @octocat #1 \u202eexe.txt"
)
HOSTILE_HOST = 'web"7\\x'  # quote and backslash: Prometheus label escaping
CHECKS = ("environment", "configuration", "database_migration")


def result(host: str, check: str, status: Status, message: str = "") -> CheckResult:
    recs = (f"fix {check} on {host}", HOSTILE) if status is not Status.READY else ()
    return CheckResult(
        check,
        status,
        message or f"{check} is {status.value}",
        {"settings_file": "/srv/app/settings.yaml", "note": HOSTILE, "nested": {"n": 1}},
        recs,
        TS,
        host,
        duration_s=0.25,
    )


def every_status_fleet() -> FleetReport:
    """One host per Status (all checks that status), one hostile host, one never audited."""
    hosts = [
        HostReport(
            f"h-{status.value}",
            tuple(result(f"h-{status.value}", c, status) for c in CHECKS),
            address=f"127.0.0.{i + 2}",
            groups=("web",) if i % 2 else ("db", "web"),
            duration_s=1.5,
            reason="interrupted before audit" if status is Status.INTERRUPTED else "",
        )
        for i, status in enumerate(Status)
    ]
    hosts.append(
        HostReport(
            HOSTILE_HOST,
            (
                result(HOSTILE_HOST, "environment", Status.NOT_READY, HOSTILE),
                result(HOSTILE_HOST, "configuration", Status.DEGRADED, HOSTILE),
                result(HOSTILE_HOST, "database_migration", Status.READY, HOSTILE),
            ),
            address="127.0.0.20",
            groups=("hostile",),
        )
    )
    hosts.append(HostReport("gone", (), address="127.0.0.21", reason="connection refused"))
    return FleetReport(tuple(hosts), generated_at=TS, checks=CHECKS)


def big_fleet(n_hosts: int, checks: int = 14) -> FleetReport:
    """``n_hosts`` hosts × ``checks`` checks, statuses spread deterministically."""
    names = tuple(f"check_{c:02d}" for c in range(checks))
    spread = (Status.READY,) * 6 + (Status.DEGRADED, Status.NOT_READY, Status.SKIPPED)
    hosts = []
    for h in range(n_hosts):
        host = f"host{h:04d}"
        if h % 97 == 5:
            rows = tuple(result(host, c, Status.UNREACHABLE, "refused") for c in names)
        else:
            rows = tuple(
                result(host, c, spread[(h * 7 + i * 3) % len(spread)]) for i, c in enumerate(names)
            )
        hosts.append(
            HostReport(host, rows, address=f"127.0.{h // 250}.{h % 250 + 2}", groups=(f"g{h % 5}",))
        )
    return FleetReport(tuple(hosts), generated_at=TS, checks=names)
