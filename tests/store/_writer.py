"""A separate controller process for store tests: ``python -m tests.store._writer MODE STORE N``.

MODE ``record``: record N runs of a 50-host report, one after another.
MODE ``crash``: start recording a run and SIGKILL itself before the commit.
"""

from __future__ import annotations

import os
import signal
import sys

from readiness.model import Status
from readiness.store import open_store
from readiness.store.location import parse_location
from tests.store.helpers import fleet, meta


def main() -> None:
    mode, location, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tag = os.getpid()
    report = fleet(
        {
            f"h{i:03d}-{tag}": {"environment": Status.READY, "documentation": Status.DEGRADED}
            for i in range(50)
        }
    )
    with open_store(parse_location(location)) as store:
        if mode == "record":
            for i in range(count):
                store.record(report, meta(pattern=f"writer-{tag}", minutes=i))
            return
        db = store._db
        with db.transaction():
            db.execute(
                "INSERT INTO runs (run_id, started_at, recorded_at, kind, pattern, controller, "
                "user_name, command, profile_fingerprint, title, checks, overall_status, exit_code, "
                "interrupted_by, duration_s, host_count, summary, extra) VALUES "
                "('crashed-run', 'x', 'x', 'validate', 'p', 'c', 'u', 'cmd', '', 't', '[]', "
                "'ready', 0, '', 0, 0, '{}', '{}')"
            )
            sys.stdout.write("in transaction\n")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
